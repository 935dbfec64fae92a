"""Above the sections: what the report is and whether its draft reached the disk.

One line says the title, the state (preliminary or FINAL), "draft saved" / "draft saving…" /
"draft NOT saved", the key images, and whether the SR was written and sent. When drafts cannot
be written a warning stays on a line of its own (not a toast that goes away) until the disk
takes them again; a notice line tells of a damaged draft set aside.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from tuiviewer.reports.drafts import Autosaver
from tuiviewer.reports.model import Report, ReportStatus


class EditorStatus(Vertical):
    """The status line, the "draft NOT being saved" warning and the notice line."""

    DEFAULT_CSS = """
    EditorStatus {
        height: auto;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self.save_problem: str | None = None
        """Why drafts are not being saved right now (shown on a line of its own), or None."""

    def compose(self) -> ComposeResult:
        yield Static("", id="report-status")
        yield Static("", id="draft-warning", markup=False)
        yield Static("", id="draft-notice", markup=False)

    def not_saved(self, reason: str) -> None:
        """A draft could not be written: said until one is written again."""
        self.save_problem = reason

    def notice(self, text: str) -> None:
        """A line that stays above the sections (not a toast that goes away)."""
        notice = self.query_one("#draft-notice", Static)
        notice.update(text)
        notice.display = True

    def show(
        self,
        report: Report,
        saver: Autosaver,
        *,
        last_sr: Path | None,
        sent: bool,
        has_previous: bool,
    ) -> None:
        """Say where ``report`` and its draft (written by ``saver``) are."""
        state = "FINAL" if report.status is ReportStatus.FINAL else "preliminary"
        text = Text(f"{report.title.meaning} · {state}", style="bold")
        # The draft's state first: at 80 columns the line wraps, and this is what must show.
        if saver.pending and saver.last_error is not None:
            text.append(" · draft NOT saved", style="bold red")
        else:
            text.append(" · draft saving…" if saver.pending else " · draft saved", style="dim")
        if report.key_images:
            text.append(f" · {len(report.key_images)} key images")
        if last_sr is not None:
            # The file's name is a UID: the notification of the save gives the whole path.
            text.append(" · SR saved", style="green")
        if sent:
            text.append(" · sent", style="green")
        if has_previous:
            text.append(" · F8: earlier draft", style="dim")
        self.query_one("#report-status", Static).update(text)
        self._show_save_problem(saver)

    def _show_save_problem(self, saver: Autosaver) -> None:
        if saver.last_error is not None:
            self.save_problem = saver.last_error.message
        elif saver.last_saved is not None and not saver.pending:
            self.save_problem = None  # the disk took it again
        warning = self.query_one("#draft-warning", Static)
        if self.save_problem is None:
            warning.display = False
            return
        warning.update(
            f"⚠ The draft is NOT being saved: {self.save_problem} What you type stays in this "
            "editor and saving is retried every few seconds; ctrl+r saves a copy elsewhere."
        )
        warning.display = True
