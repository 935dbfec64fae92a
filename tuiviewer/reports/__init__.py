"""Radiology reports without any UI: model, drafts, DICOM SR (TID 2000), text and Markdown.

The report editor screen builds on these modules; the ``tuiviewer report`` commands use them
directly. Nothing here imports Textual.
"""

from __future__ import annotations
