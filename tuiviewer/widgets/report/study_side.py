"""Beside the report: the study's header (whose study it is) and the reports already written.

Enter or ``v`` on the priors opens them full screen in the reader
(:class:`~tuiviewer.screens.report_reader.ReportReaderScreen`); the pane posts
:class:`StudySide.ReadPriors` and the screen opens it.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Label, Static

from tuiviewer.dicom.display import display_date
from tuiviewer.reports.sr.context import StudyContext
from tuiviewer.safetext import clean
from tuiviewer.widgets.safe import shown


def study_header(ctx: StudyContext) -> Text:
    """Patient, ID, birth date, sex, accession, date, description, modality."""
    text = shown(ctx.patient_name.replace("^", " ").strip() or "(no name)", style="bold")
    rows = (
        ("ID", ctx.patient_id),
        ("Born", display_date(ctx.patient_birth_date)),
        ("Sex", ctx.patient_sex),
        ("Accession", ctx.accession_number),
        ("Date", display_date(ctx.study_date)),
        ("Study", ctx.study_description),
        ("Modality", ctx.modality),
        ("Images", str(len(ctx.instances))),
    )
    for label, value in rows:
        text.append(f"\n{label:<10}", style="dim")
        text.append(clean(value) or "—")
    return text


class PriorsScroll(VerticalScroll, can_focus=True):
    """The prior reports, scrollable from the keyboard; Enter reads them full screen."""

    BINDINGS = [
        Binding("enter", "read", "Read priors"),
        Binding("v", "read", "Read priors", show=False),
    ]

    def action_read(self) -> None:
        self.post_message(StudySide.ReadPriors())


class StudySide(Vertical):
    """The study header and the prior reports, as text."""

    class ReadPriors(Message):
        """The reader asked to read the prior reports full screen."""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self.priors_text = ""
        """The prior reports as shown (what the reader view shows full screen)."""

    def compose(self) -> ComposeResult:
        yield Static("Reading the study…", id="study-header")
        yield Label("Prior reports", classes="side-title")
        with PriorsScroll(id="priors-scroll"):
            yield Static("", id="priors")

    def failed(self, reason: str) -> None:
        self.query_one("#study-header", Static).update(shown(f"⚠ {reason}", style="red"))

    def show(self, ctx: StudyContext, priors: list[str], remote: list[str]) -> None:
        self.query_one("#study-header", Static).update(study_header(ctx))
        shown_priors = priors or ["No report of this study on disk."]
        if remote:
            shown_priors = [*shown_priors, "On the PACS:", *remote]
        self.priors_text = "\n\n".join(shown_priors)
        self.query_one("#priors", Static).update(shown(self.priors_text, lines=True))
