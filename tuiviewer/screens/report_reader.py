"""Reading a report full screen: its text, read-only, with the dates written as dates.

Opened from the report editor's priors (Enter on them) and by
:meth:`~tuiviewer.workstation.Workstation.read_report` for any SR on disk; the text is
:func:`~tuiviewer.reports.text.sr_to_text`'s, which writes DICOM dates and times as
``2026-12-01 08:43``. Esc or q goes back.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Header, Static

from tuiviewer.widgets.key_footer import KeyFooter
from tuiviewer.widgets.safe import shown


class ReportReaderScreen(Screen[None]):
    """A report's text, full screen, to read and scroll."""

    DEFAULT_CSS = """
    ReportReaderScreen #reader-text {
        padding: 0 2;
    }
    """
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("q", "app.pop_screen", "Back", show=False),
    ]

    def __init__(self, text: str, *, title: str = "Report") -> None:
        super().__init__()
        self.text = text
        self.heading = title

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="reader-scroll"):
            # From files and PACS answers: cleaned, never markup.
            yield Static(shown(self.text, lines=True), id="reader-text")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.sub_title = self.heading
        self.query_one("#reader-scroll").focus()
