"""How screens and widgets reach the workstation: typed, never through ``getattr``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, cast, runtime_checkable

from textual.dom import DOMNode

from tuiviewer.services.report_desk import ReportSource

if TYPE_CHECKING:
    from tuiviewer.workstation import Workstation


def workstation(node: DOMNode) -> Workstation:
    """The workstation (the app) that ``node`` runs in: its services and moves, typed."""
    return cast("Workstation", node.app)


StudyInView = ReportSource
"""The study a screen is about (the row under the cursor, the series on show): its UID, its
images on disk if any, and the PACS it came from or lives on if any. The same triple the report
editor opens on, so F9 passes it straight through."""


@runtime_checkable
class ShowsStudy(Protocol):
    """A screen that can say which study it is about, so app-wide keys (the report) act on it."""

    def study_in_view(self) -> StudyInView | None:
        """The study the reader is on, or None when there is none (an empty list)."""
        ...
