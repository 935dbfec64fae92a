"""The Orthanc fixtures of the integration tests, for the PHI checks that talk to a PACS."""

from __future__ import annotations

from tests.integration.conftest import (  # noqa: F401 - fixtures are found by name
    empty_orthanc,
    orthanc,
    orthanc_binary,
    orthanc_factory,
)
