"""tuiviewer: a terminal DICOM workstation (study browser, tag editor, PACS client, viewer)."""

from __future__ import annotations

__version__ = "0.1.0"
