"""Beside the worklist: the patient's other studies on the PACS (priors) with their report
state, and the text of a report to read.

The priors of the highlighted study are asked for once the cursor rests on it (scrolling
through the list must not fire a C-FIND per row passed) and kept for the session; a report is
read from the SR documents in the local store, retrieved first when needed. Report states
found here travel up as :class:`~tuiviewer.messages.StatesFound`, so the worklist shows them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.timer import Timer
from textual.widgets import DataTable, Static
from textual.worker import get_current_worker

from tuiviewer.config.nodes import Node
from tuiviewer.dicom.display import display_date
from tuiviewer.dicom.reading import read_dicom
from tuiviewer.dicom.rows import StudyRow
from tuiviewer.exceptions import TuiviewerError
from tuiviewer.messages import StatesFound
from tuiviewer.reports.text import sr_to_text
from tuiviewer.screens.base import workstation
from tuiviewer.services.jobs import job_label
from tuiviewer.services.worklist import ReportState, StudyStatus, find_priors, report_states
from tuiviewer.store import LocalStore
from tuiviewer.widgets.safe import cell, shown
from tuiviewer.widgets.study_table import STATE_WIDTH, state_cell

#: Seconds the cursor rests on a study before its priors are asked for.
PRIORS_DELAY_S = 0.3
#: States with a report document on the PACS to read.
_WITH_REPORT = (ReportState.PRELIMINARY, ReportState.FINAL)


class PriorsPanel(Vertical):
    """The priors of the study the worklist's cursor rests on, and a report to read."""

    @dataclass
    class PriorsFound(Message):
        """The other studies of the patient of ``study_uid``."""

        study_uid: str
        rows: list[StudyRow]
        error: str | None

    @dataclass
    class ReportShown(Message):
        """Text of a study's report, or why there is none."""

        title: str
        text: str

    def __init__(
        self,
        states: Mapping[str, StudyStatus],
        *,
        id: str | None = None,  # noqa: A002
    ) -> None:
        super().__init__(id=id)
        self.states = states
        """Report states of every study seen (the worklist's)."""
        self.priors: dict[str, list[StudyRow]] = {}
        """The priors of each study asked about, by Study Instance UID."""
        self.showing: str | None = None
        """The study whose priors are shown (or on their way)."""
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Static("Priors", id="priors-title")
        yield DataTable(id="priors", cursor_type="row", zebra_stripes=True)
        yield Static("Report", id="report-title")
        with VerticalScroll(id="report-scroll"):
            yield Static("", id="report-text")

    def on_mount(self) -> None:
        table = self.table
        for key, label in (("date", "Date"), ("mod", "Mod"), ("desc", "Description")):
            table.add_column(label, key=key)
        table.add_column("Report", key="state", width=STATE_WIDTH)

    @property
    def table(self) -> DataTable[object]:
        return self.query_one("#priors", DataTable)

    def _pacs(self) -> tuple[Node, LocalStore] | None:
        node = workstation(self).current_node()
        return None if node is None else (node, workstation(self).store)

    # ---- priors -----------------------------------------------------------------------------
    def follow(self, study: StudyRow) -> None:
        """The worklist's cursor is on ``study``: show its priors once it rests there."""
        if study.uid == self.showing:
            return
        self.showing = study.uid
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(PRIORS_DELAY_S, lambda: self._load(study))

    def _load(self, study: StudyRow) -> None:
        if study.uid != self.showing:
            return
        if study.uid in self.priors:
            self._show(study.uid)
            return
        pacs = self._pacs()
        if pacs is None:
            return
        title = self.query_one("#priors-title", Static)
        title.update(shown(f"Priors of {study.patient_name.replace('^', ' ')}: asking…"))
        self.table.clear()
        self.run_priors(*pacs, study)

    @work(thread=True, exclusive=True, exit_on_error=False, group="priors", description="Priors")
    def run_priors(self, node: Node, store: LocalStore, study: StudyRow) -> None:
        cancel = get_current_worker().cancelled_event
        try:
            rows = find_priors(node, study, cancel=cancel)
        except TuiviewerError as exc:
            self.post_message(self.PriorsFound(study.uid, [], exc.message))
            return
        if cancel.is_set():
            return
        self.post_message(self.PriorsFound(study.uid, rows, None))
        unknown = [r.uid for r in rows if r.uid not in self.states]
        try:
            for status in report_states(node, unknown, store, cancel=cancel):
                self.post_message(StatesFound(-1, [status]))
        except TuiviewerError:
            return  # the prior rows stay without a state; the worklist says the PACS is down

    @on(PriorsFound)
    def _priors_found(self, message: PriorsFound) -> None:
        if message.error:
            if message.study_uid == self.showing:
                self.query_one("#priors-title", Static).update(shown(f"Priors: ⚠ {message.error}"))
            return
        self.priors[message.study_uid] = message.rows
        if message.study_uid == self.showing:
            self._show(message.study_uid)

    def _show(self, study_uid: str) -> None:
        rows = self.priors.get(study_uid, [])
        table = self.table
        table.clear()
        for row in rows:
            table.add_row(
                display_date(row.date),
                cell("/".join(row.modalities)),
                cell(row.description),
                state_cell(self.states.get(row.uid)),
                key=row.uid,
            )
        count = len(rows)
        self.query_one("#priors-title", Static).update(
            f"Priors: {count} earlier {'study' if count == 1 else 'studies'}"
            + (" (Enter reads the report)" if count else "")
        )

    def state_changed(self, status: StudyStatus) -> None:
        """Show a prior's new report state."""
        if status.study_uid in self.table.rows:
            self.table.update_cell(status.study_uid, "state", state_cell(status))

    def selected_prior(self) -> StudyRow | None:
        table = self.table
        if not table.row_count or self.showing is None:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((r for r in self.priors.get(self.showing, []) if r.uid == key), None)

    @on(DataTable.RowSelected, "#priors")
    def _prior_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        prior = self.selected_prior()
        if prior is not None:
            self.show_report(prior)

    # ---- reading a report -------------------------------------------------------------------
    def show_report(self, study: StudyRow) -> None:
        """Read the newest report of ``study`` (retrieving its SR if needed) into the pane."""
        pacs = self._pacs()
        if pacs is None:
            return
        self.query_one("#report-title", Static).update(
            shown(f"Report of {job_label(study)}: reading…")
        )
        self.run_read_report(*pacs, study, self.states.get(study.uid))

    @work(thread=True, exclusive=True, exit_on_error=False, group="read", description="Report")
    def run_read_report(
        self, node: Node, store: LocalStore, study: StudyRow, status: StudyStatus | None
    ) -> None:
        title = f"Report of {job_label(study)}"
        # States come from the PACS's answers; the report documents are retrieved only now.
        if status is None or (
            not status.reports and (status.error or status.state in _WITH_REPORT)
        ):
            try:
                found = list(report_states(node, [study.uid], store, fetch=True))
            except TuiviewerError as exc:
                self.post_message(self.ReportShown(title, f"⚠ {exc.message}"))
                return
            if found:
                status = found[0]
                self.post_message(StatesFound(-1, [status]))
        if status is None or not status.reports:
            state = status.state.value if status else "unknown"
            self.post_message(self.ReportShown(title, f"No report on the PACS ({state})."))
            return
        try:
            text = sr_to_text(read_dicom(status.reports[0]))
        except TuiviewerError as exc:
            self.post_message(self.ReportShown(title, f"⚠ {exc.message}"))
            return
        except (OSError, ValueError) as exc:
            self.post_message(self.ReportShown(title, f"⚠ Cannot read the report: {exc}"))
            return
        self.post_message(self.ReportShown(f"{title} ({status.state.value})", text))

    @on(ReportShown)
    def _report_shown(self, message: ReportShown) -> None:
        self.query_one("#report-title", Static).update(shown(message.title))
        self.query_one("#report-text", Static).update(shown(message.text, lines=True))
