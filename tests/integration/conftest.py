"""Fixtures that start real Orthanc servers for the integration tests.

One Orthanc serves the whole session (it starts in ~0.1 s but needs ~3.5 s to stop); tests that
need other settings (TLS, Latin-1, C-MOVE destinations) or that kill the server take their own
from ``orthanc_factory``. Without Orthanc the tests skip locally, but fail on CI, where the
package is installed and a silent skip would hide a broken setup.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.orthanc import DEBIAN_ORTHANC, Orthanc, OrthancConfig, OrthancPool, find_orthanc


@pytest.fixture(scope="session")
def orthanc_binary() -> Path:
    """The Orthanc executable; skips (locally) or fails (CI=true) when it is not installed."""
    binary = find_orthanc()
    if binary is None:
        reason = (
            f"Orthanc is not installed (no 'Orthanc' on PATH, no {str(DEBIAN_ORTHANC)!r}); "
            "install the Debian package 'orthanc'."
        )
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail(f"{reason} CI must provide it.", pytrace=False)
        pytest.skip(reason)
    return binary


@pytest.fixture(scope="session")
def orthanc(orthanc_factory: OrthancPool) -> Orthanc:
    """An Orthanc with the default test configuration, shared by the session.

    Started through the pool so that every Orthanc stops in parallel at the end of the session.
    """
    return orthanc_factory.start()


@pytest.fixture
def empty_orthanc(orthanc: Orthanc) -> Orthanc:
    """The session Orthanc, restarted if a test killed it, with no patients stored."""
    if not orthanc.is_running:
        orthanc.start()
    orthanc.clear()
    return orthanc


@pytest.fixture(scope="session")
def orthanc_factory(
    tmp_path_factory: pytest.TempPathFactory, orthanc_binary: Path
) -> Iterator[OrthancPool]:
    """Starts extra Orthancs: ``orthanc_factory.start(OrthancConfig(...))``; all stop at the end."""
    pool = OrthancPool(tmp_path_factory.mktemp("orthancs"), binary=orthanc_binary)
    try:
        yield pool
    finally:
        pool.stop_all()


@pytest.fixture(scope="session")
def dicomweb_orthanc(orthanc_factory: OrthancPool) -> Orthanc:
    """An Orthanc with the Debian DICOMweb plugin, open to all (``orthanc.dicomweb_url``)."""
    return orthanc_factory.start(OrthancConfig(dicomweb=True))


@pytest.fixture(scope="session")
def dicomweb_orthanc_auth(orthanc_factory: OrthancPool) -> Orthanc:
    """An Orthanc with the DICOMweb plugin behind HTTP basic authentication (reader/s3cret)."""
    return orthanc_factory.start(OrthancConfig(dicomweb=True, users={"reader": "s3cret"}))
