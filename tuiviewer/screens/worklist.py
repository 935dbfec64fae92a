"""The reading worklist: what is on the PACS, what still needs reading, and the patient's priors.

The home screen when a PACS is configured. Studies of the date range stream in as the PACS
answers; each one's report state (unreported, draft, preliminary, final: see
:mod:`tuiviewer.worklist`) fills in afterwards from a worker, and the list refreshes itself
on a timer. Enter opens a study: at once when it is on disk, else as soon as the first image
series of its retrieve has arrived. A PACS that stops answering is said so; the rows it gave
before stay.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Header, Input, Select, Static
from textual.worker import Worker, WorkerState, get_current_worker

from tuiviewer.dicom.display import display_date
from tuiviewer.dicom.reading import read_dicom
from tuiviewer.exceptions import TuiviewerError
from tuiviewer.jobs import RetrieveJob, job_label
from tuiviewer.net.find import QueryLevel, StudyRow, find, to_row
from tuiviewer.net.nodes import Node
from tuiviewer.reports.text import sr_to_text
from tuiviewer.screens.query import STUDY_COLUMNS, study_cells
from tuiviewer.store import LocalStore
from tuiviewer.widgets.safe import cell, shown
from tuiviewer.worklist import (
    DEFAULT_DAYS,
    PACS_DOWN,
    ReportState,
    StudyStatus,
    WorklistQuery,
    find_priors,
    first_image_series,
    images_on_disk,
    is_retrieved,
    report_states,
)

_STATE_STYLES = {
    ReportState.UNREPORTED: "bold",
    ReportState.DRAFT: "cyan",
    ReportState.PRELIMINARY: "yellow",
    ReportState.FINAL: "green",
    ReportState.UNREADABLE: "bold red",
}
_FILTERS: tuple[tuple[str, ReportState | None], ...] = (
    ("All", None),
    ("Unreported", ReportState.UNREPORTED),
    ("Draft", ReportState.DRAFT),
    ("Preliminary", ReportState.PRELIMINARY),
    ("Final", ReportState.FINAL),
    ("Unreadable report", ReportState.UNREADABLE),
)
_BATCH_S = 0.05
_BATCH_ROWS = 50


def _parse_day(text: str, what: str) -> dt.date | None:
    value = text.strip().replace("-", "")
    if not value:
        return None
    try:
        if len(value) != 8 or not value.isdigit():
            raise ValueError
        return dt.datetime.strptime(value, "%Y%m%d").date()
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a date of the form YYYYMMDD.") from None


def _state_cell(status: StudyStatus | None) -> Text:
    if status is None:
        return Text("…", style="dim")
    text = Text(status.state.value, style=_STATE_STYLES[status.state])
    if status.error:
        text.append(" ⚠", style="red")
    return text


class WorklistScreen(Screen[None]):
    """Studies to read on the default PACS, with their report state and the patient's priors."""

    CSS_PATH = "worklist.tcss"
    REFRESH_S: ClassVar[float] = 60.0
    """Seconds between automatic refreshes (``ui.worklist_refresh_s`` in the config wins)."""
    BINDINGS = [
        Binding("o", "open", "Open"),
        Binding("W", "report", "Report"),
        Binding("r", "read_report", "Read report"),
        Binding("s", "cycle_status", "Status filter"),
        Binding("p", "focus_priors", "Priors"),
        Binding("slash", "focus_filters", "Filters"),
        Binding("ctrl+r", "refresh", "Refresh"),
        Binding("escape", "back", "Back", show=False),
    ]

    @dataclass
    class RowsFound(Message):
        """Studies of a running worklist query (a batch, in arrival order)."""

        refresh_id: int
        rows: list[StudyRow]

    @dataclass
    class ListFinished(Message):
        """The worklist query ended; ``uids`` are every study it found."""

        refresh_id: int
        uids: list[str]
        elapsed_s: float
        cancelled: bool
        error: str | None
        unreachable: bool = False
        """The error is the PACS not answering at all (rather than refusing the query)."""

    @dataclass
    class StatesFound(Message):
        """Report states of some studies (worklist rows or priors)."""

        refresh_id: int
        statuses: list[StudyStatus]

    @dataclass
    class StatesFinished(Message):
        """The report states of a refresh are all known, or could not be asked for."""

        refresh_id: int
        error: str | None

    @dataclass
    class PriorsFound(Message):
        """The other studies of the patient of ``study_uid``."""

        study_uid: str
        rows: list[StudyRow]
        error: str | None

    @dataclass
    class ReportShown(Message):
        """Text of a study's report, or why there is none, for the side pane."""

        title: str
        text: str

    def __init__(self, refresh_s: float | None = None) -> None:
        super().__init__()
        self.refresh_s = refresh_s
        self.rows: dict[str, StudyRow] = {}
        """Studies of the last query by Study Instance UID (kept when the PACS goes away)."""
        self.states: dict[str, StudyStatus] = {}
        """Report state of every study seen, worklist rows and priors alike."""
        self.priors: dict[str, list[StudyRow]] = {}
        self.status_filter: ReportState | None = None
        self.refresh_id = 0
        self.refreshing = False
        """A refresh (query and report states) is running: the timer does not start another."""
        self.refreshed_at: dt.datetime | None = None
        self.pacs_error: str | None = None
        self.first_rows_s: float | None = None
        """Seconds from the start of the last refresh to its first rows (for the benchmark)."""
        self._started = 0.0
        self._received = 0
        self._awaiting: dict[str, RetrieveJob] = {}
        self._priors_for: str | None = None
        self._priors_timer: Timer | None = None

    # ---- layout -----------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        today = dt.date.today()
        start = today - dt.timedelta(days=DEFAULT_DAYS - 1)
        with Horizontal(id="wl-filters"):
            yield Input(f"{start:%Y%m%d}", placeholder="From YYYYMMDD", id="wl-from")
            yield Input(f"{today:%Y%m%d}", placeholder="To YYYYMMDD", id="wl-to")
            yield Input(placeholder="Modality", id="wl-modality")
            yield Select[str](
                [(label, label.lower()) for label, _ in _FILTERS],
                value="all",
                allow_blank=False,
                id="wl-status-filter",
                compact=True,
            )
        with Horizontal(id="wl-bar"):
            yield Static("", id="wl-counts")
            yield Static("", id="wl-status")
        with Horizontal(id="wl-main"):
            yield DataTable(id="worklist", cursor_type="row", zebra_stripes=True)
            with Vertical(id="wl-side"):
                yield Static("Priors", id="priors-title")
                yield DataTable(id="priors", cursor_type="row", zebra_stripes=True)
                yield Static("Report", id="report-title")
                with VerticalScroll(id="report-scroll"):
                    yield Static("", id="report-text")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#worklist", DataTable)
        # Wide enough for "unreadable report ⚠": states arrive after the rows, widths do not follow.
        table.add_column("Report", key="state", width=19)
        for key, label, _ in STUDY_COLUMNS:
            table.add_column(label, key=key)
        priors = self.query_one("#priors", DataTable)
        for key, label in (("date", "Date"), ("mod", "Mod"), ("desc", "Description")):
            priors.add_column(label, key=key)
        priors.add_column("Report", key="state", width=19)
        self.set_interval(self.interval(), self._timer_refresh)
        self.set_interval(0.05, self._check_awaiting)
        node = self.current_node()
        self.sub_title = f"Worklist · {node.name}" if node else "Worklist"
        if node is None:
            self._status("No PACS configured: F5 opens the node manager to add one.")
        else:
            self.start_refresh()
        table.focus()

    def interval(self) -> float:
        """Seconds between automatic refreshes."""
        config = getattr(self.app, "config", None)
        configured = getattr(getattr(config, "ui", None), "worklist_refresh_s", None)
        for value in (self.refresh_s, configured):
            if isinstance(value, (int, float)) and value > 0:
                return float(value)
        return self.REFRESH_S

    def current_node(self) -> Node | None:
        """The default node, else the first one configured."""
        nodes: dict[str, Node] = getattr(self.app, "nodes", {})
        default = getattr(self.app, "default_node", None)
        if default in nodes:
            return nodes[default]
        return next(iter(nodes.values()), None)

    def _store(self) -> LocalStore | None:
        store = getattr(self.app, "store", None)
        return store if isinstance(store, LocalStore) else None

    def _status(self, text: str | Text) -> None:
        content = shown(text) if isinstance(text, str) else text
        self.query_one("#wl-status", Static).update(content)

    # ---- refreshing -------------------------------------------------------------------------
    def build_query(self) -> WorklistQuery:
        """The filters the PACS applies. :raises ValueError: a date is invalid."""
        start = _parse_day(self.query_one("#wl-from", Input).value, "From date")
        end = _parse_day(self.query_one("#wl-to", Input).value, "To date")
        modality = self.query_one("#wl-modality", Input).value
        query = WorklistQuery(start, end, modality)
        query.to_find_query()  # validates the range
        return query

    def _timer_refresh(self) -> None:
        if not self.refreshing:
            self.start_refresh()

    def action_refresh(self) -> None:
        if self.refreshing:
            self.notify("A refresh is running already.")
            return
        self.start_refresh()

    @on(Input.Submitted, "#wl-filters Input")
    def _filters_submitted(self) -> None:
        # New criteria: whatever runs belongs to the old ones.
        self.start_refresh()
        self.query_one("#worklist", DataTable).focus()

    def start_refresh(self) -> None:
        """Ask the PACS again (cancels a refresh still running)."""
        node = self.current_node()
        if node is None:
            return
        try:
            query = self.build_query()
        except ValueError as exc:
            self._status(shown(f"⚠ {exc}", style="bold red"))
            return
        store = self._store()
        if store is None:
            return
        self.refresh_id += 1
        self.refreshing = True
        self.first_rows_s = None
        self._received = 0
        self._started = time.monotonic()
        self._status(f"Asking {node.name}…")
        self.run_refresh(node, query, store, self.refresh_id)

    @work(thread=True, exclusive=True, exit_on_error=False, group="worklist", description="List")
    def run_refresh(
        self, node: Node, query: WorklistQuery, store: LocalStore, refresh_id: int
    ) -> None:
        cancel: threading.Event = get_current_worker().cancelled_event
        started = time.monotonic()
        batch: list[StudyRow] = []
        found: dict[str, StudyRow] = {}
        last = started
        try:
            for ds in find(node, query.to_find_query(), cancel=cancel):
                row = to_row(QueryLevel.STUDY, ds)
                if not isinstance(row, StudyRow) or not row.uid or row.uid in found:
                    continue  # some PACS answer once per instance
                found[row.uid] = row
                batch.append(row)
                # Small batches: the first rows show at once, a flood stays cheap.
                if time.monotonic() - last > _BATCH_S or len(batch) >= _BATCH_ROWS:
                    self.post_message(self.RowsFound(refresh_id, batch))
                    batch, last = [], time.monotonic()
        except (TuiviewerError, ValueError) as exc:
            if batch:
                self.post_message(self.RowsFound(refresh_id, batch))
            elapsed = time.monotonic() - started
            down = isinstance(exc, PACS_DOWN)
            self.post_message(self.ListFinished(refresh_id, [], elapsed, False, str(exc), down))
            return
        if batch:
            self.post_message(self.RowsFound(refresh_id, batch))
        elapsed = time.monotonic() - started
        uids = [r.uid for r in sorted(found.values(), key=lambda r: (r.date, r.time), reverse=True)]
        self.post_message(self.ListFinished(refresh_id, uids, elapsed, cancel.is_set(), None))
        if cancel.is_set():
            return
        self._states_into_messages(node, uids, store, refresh_id, cancel)

    def _states_into_messages(
        self,
        node: Node,
        uids: list[str],
        store: LocalStore,
        refresh_id: int,
        cancel: threading.Event,
    ) -> None:
        """Post report states as they are worked out, batched like the rows."""
        batch: list[StudyStatus] = []
        last = time.monotonic()
        error: str | None = None
        try:
            for status in report_states(node, uids, store, cancel=cancel):
                batch.append(status)
                if time.monotonic() - last > _BATCH_S * 4 or len(batch) >= _BATCH_ROWS:
                    self.post_message(self.StatesFound(refresh_id, batch))
                    batch, last = [], time.monotonic()
        except TuiviewerError as exc:
            error = exc.message
        if batch:
            self.post_message(self.StatesFound(refresh_id, batch))
        self.post_message(self.StatesFinished(refresh_id, error))

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        # Failures the core reports arrive as messages; this is for the ones it did not expect.
        if event.worker.group == "worklist" and event.state is WorkerState.ERROR:
            self.refreshing = False
            self._status(shown(f"⚠ The refresh failed: {event.worker.error}", style="bold red"))

    @on(RowsFound)
    def _rows_found(self, message: RowsFound) -> None:
        if message.refresh_id != self.refresh_id:
            return
        if self.first_rows_s is None:
            self.first_rows_s = time.monotonic() - self._started
        table = self.query_one("#worklist", DataTable)
        for row in message.rows:
            old = self.rows.get(row.uid)
            self.rows[row.uid] = row
            if row.uid in table.rows:
                if old != row:
                    for column, value in zip(STUDY_COLUMNS, study_cells(row), strict=True):
                        table.update_cell(row.uid, column[0], value)
            elif self._matches(row.uid):
                self._add_row(row)
        self._show_counts()
        self._received += len(message.rows)
        self._status(f"Receiving studies… {self._received} so far")

    @on(ListFinished)
    def _list_finished(self, message: ListFinished) -> None:
        if message.refresh_id != self.refresh_id:
            return
        node = self.current_node()
        name = node.name if node else "the PACS"
        if message.error:
            self.refreshing = False
            self.pacs_error = message.error
            when = f"{self.refreshed_at:%H:%M:%S}" if self.refreshed_at else "never"
            what = "unreachable" if message.unreachable else "refused the worklist query"
            text = shown(f"⚠ {name} {what}: {message.error}", style="bold red")
            if self.rows:
                text.append(f"  Showing {len(self.rows)} studies from {when}.", style="yellow")
            self._status(text)
            return
        if message.cancelled:
            return
        self.pacs_error = None
        self.refreshed_at = dt.datetime.now()
        keep = set(message.uids)
        table = self.query_one("#worklist", DataTable)
        for uid in [uid for uid in self.rows if uid not in keep]:
            del self.rows[uid]
            if uid in table.rows:
                table.remove_row(uid)
        self._sort()
        self._show_counts()
        count = len(self.rows)
        self._status(
            Text.assemble(
                f"{count} {'study' if count == 1 else 'studies'} on ",
                (name, "bold"),
                (f" in {message.elapsed_s:.2f} s, at {self.refreshed_at:%H:%M:%S}", "dim"),
                ("  · report states…" if count else "", "dim"),
            )
        )
        if not count:
            self.refreshing = False

    @on(StatesFound)
    def _states_found(self, message: StatesFound) -> None:
        table = self.query_one("#worklist", DataTable)
        priors = self.query_one("#priors", DataTable)
        for status in message.statuses:
            self.states[status.study_uid] = status
            uid = status.study_uid
            if uid in table.rows:
                if self._matches(uid):
                    table.update_cell(uid, "state", _state_cell(status))
                else:
                    table.remove_row(uid)
            elif uid in self.rows and self._matches(uid):
                self._add_row(self.rows[uid])
            if uid in priors.rows:
                priors.update_cell(uid, "state", _state_cell(status))
        self._show_counts()

    @on(StatesFinished)
    def _states_finished(self, message: StatesFinished) -> None:
        if message.refresh_id != self.refresh_id:
            return
        self.refreshing = False
        if message.error:
            node = self.current_node()
            name = node.name if node else "the PACS"
            self.pacs_error = message.error
            self._status(shown(f"⚠ {name} stopped answering: {message.error}", style="bold red"))
            return
        if self.status_filter is not None:
            self._sort()
        when = f"{self.refreshed_at:%H:%M:%S}" if self.refreshed_at else ""
        node = self.current_node()
        self._status(
            Text.assemble(
                f"{len(self.rows)} studies on ",
                (node.name if node else "", "bold"),
                (f", report states at {when}; next refresh in {self.interval():g} s", "dim"),
            )
        )

    # ---- rows and filters -------------------------------------------------------------------
    def _matches(self, uid: str) -> bool:
        if self.status_filter is None:
            return True
        status = self.states.get(uid)
        return status is not None and status.state is self.status_filter

    def _add_row(self, row: StudyRow) -> None:
        table = self.query_one("#worklist", DataTable)
        table.add_row(_state_cell(self.states.get(row.uid)), *study_cells(row), key=row.uid)

    def _sort(self) -> None:
        """Newest first. (DataTable.sort hands its key function cell values, not row keys,
        and the time is in no cell: the rows are laid out again when out of order.)"""
        table = self.query_one("#worklist", DataTable)
        shown = [str(key.value) for key in table.rows]
        wanted = [uid for uid in self._ordered() if uid in set(shown)]
        if shown != wanted:
            self._rebuild()

    def _ordered(self) -> list[str]:
        rows = sorted(self.rows.values(), key=lambda r: (r.date, r.time), reverse=True)
        return [row.uid for row in rows]

    def _rebuild(self) -> None:
        table = self.query_one("#worklist", DataTable)
        # The reader's study stays under the cursor; a cursor still on the top row stays there
        # (a fresh list is read from the top, whatever the PACS sent first).
        selected = self.selected_study() if table.cursor_row > 0 else None
        table.clear()
        for uid in self._ordered():
            if self._matches(uid):
                self._add_row(self.rows[uid])
        if selected is not None and selected.uid in table.rows:
            table.move_cursor(row=table.get_row_index(selected.uid))
        self._show_counts()

    def counts(self) -> dict[ReportState | None, int]:
        """Studies per report state among the rows (None: all rows)."""
        counter: Counter[ReportState | None] = Counter()
        for uid in self.rows:
            status = self.states.get(uid)
            if status is not None:
                counter[status.state] += 1
        counter[None] = len(self.rows)
        return dict(counter)

    def _show_counts(self) -> None:
        counts = self.counts()
        text = Text()
        for label, state in _FILTERS:
            if state is ReportState.UNREADABLE and not counts.get(state):
                continue  # shown only when some report could not be read
            style = _STATE_STYLES[state] if state is not None else ""
            if state is self.status_filter:
                style = "reverse"
            if text:
                text.append("  ")
            text.append(f"{label} {counts.get(state, 0)}", style=style or "")
        pending = len(self.rows) - sum(v for k, v in counts.items() if k is not None)
        if pending:
            text.append(f"  ({pending} pending)", style="dim")
        self.query_one("#wl-counts", Static).update(text)

    @on(Select.Changed, "#wl-status-filter")
    def _status_filter_changed(self, event: Select.Changed) -> None:
        value = event.value if isinstance(event.value, str) else "all"
        self.status_filter = next(
            (state for label, state in _FILTERS if label.lower() == value), None
        )
        self._rebuild()

    def action_cycle_status(self) -> None:
        """Next status filter: all → unreported → draft → preliminary → final → all."""
        counts = self.counts()
        values = [
            label.lower()
            for label, state in _FILTERS
            if state is not ReportState.UNREADABLE or counts.get(state)
        ]
        select = self.query_one("#wl-status-filter", Select)
        current = select.value if isinstance(select.value, str) else "all"
        at = values.index(current) if current in values else -1
        select.value = values[(at + 1) % len(values)]

    def action_focus_filters(self) -> None:
        self.query_one("#wl-from", Input).focus()

    def action_focus_priors(self) -> None:
        self.query_one("#priors", DataTable).focus()

    def action_back(self) -> None:
        self.query_one("#worklist", DataTable).focus()

    # ---- opening a study --------------------------------------------------------------------
    def selected_study(self) -> StudyRow | None:
        table = self.query_one("#worklist", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.rows.get(str(key)) if key is not None else None

    @on(DataTable.RowSelected, "#worklist")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        """View the highlighted study: at once when on disk, else retrieve and view the first
        series as soon as it has arrived."""
        study = self.selected_study()
        store = self._store()
        node = self.current_node()
        if study is None or store is None:
            return
        if is_retrieved(store, study):
            self._view(study.uid, store)
            return
        running = next(
            (
                j
                for j in getattr(self.app, "jobs", [])
                if j.study_uid == study.uid and not j.finished
            ),
            None,
        )
        on_disk = images_on_disk(store, study.uid)
        if on_disk:
            self._view(study.uid, store)
        if running is not None:
            if not on_disk:
                self._awaiting[study.uid] = running
                self.notify(f"Retrieving {job_label(study)}: it opens when the first series is in.")
            return
        if node is None:
            self.notify("No PACS to retrieve the study from (F5: nodes).", severity="warning")
            return
        self.notify(f"Retrieving {job_label(study)} (F4: retrieve queue)")
        self.prepare_retrieve(node, study, resume=bool(on_disk))

    @work(thread=True, exclusive=False, exit_on_error=False, group="open", description="Series")
    def prepare_retrieve(self, node: Node, study: StudyRow, *, resume: bool) -> None:
        first = None if resume else first_image_series(node, study.uid)
        self.app.call_from_thread(self._queue, node, study, first, resume)

    def _queue(self, node: Node, study: StudyRow, first: str | None, resume: bool) -> None:
        # A later attempt resumes: only what is not on disk yet is fetched.
        job = RetrieveJob(
            node=node,
            study_uid=study.uid,
            label=job_label(study),
            first_series=first,
            attempts=1 if resume else 0,
        )
        queue = getattr(self.app, "queue_retrieve", None)
        if queue is None:
            return
        queue(job)
        if not resume:
            self._awaiting[study.uid] = job

    def _check_awaiting(self) -> None:
        """Open a study being retrieved once an image series is on disk (polled: cheap)."""
        store = self._store()
        if store is None:
            return
        for uid, job in list(self._awaiting.items()):
            if not job.series_done and not job.finished:
                continue
            if images_on_disk(store, uid):
                del self._awaiting[uid]
                row = self.rows.get(uid)
                if self.is_current:
                    self._view(uid, store)
                else:
                    what = job_label(row) if row else uid
                    self.notify(f"{what}: the first series is on disk (worklist: Enter opens).")
            elif job.finished:
                del self._awaiting[uid]
                self.notify(
                    f"Retrieve {job.id} {job.state}: no image arrived. {job.error or ''}".strip(),
                    severity="error",
                )

    def _view(self, study_uid: str, store: LocalStore) -> None:
        viewer = getattr(self.app, "view_study", None)
        if viewer is None:
            return
        store.touch(study_uid)
        viewer(study_uid, store.study_dir(study_uid))

    def action_report(self) -> None:
        """The report editor for the highlighted study (from its images if retrieved)."""
        study = self.selected_study()
        opener = getattr(self.app, "open_report", None)
        store = self._store()
        if study is None or opener is None or store is None:
            return
        folder: Path | None = None
        if images_on_disk(store, study.uid):
            folder = store.study_dir(study.uid)
        opener(study.uid, folder, self.current_node())

    # ---- priors and reading reports ---------------------------------------------------------
    @on(DataTable.RowHighlighted, "#worklist")
    def _study_highlighted(self, event: DataTable.RowHighlighted) -> None:
        study = self.selected_study()
        if study is None or study.uid == self._priors_for:
            return
        self._priors_for = study.uid
        if self._priors_timer is not None:
            self._priors_timer.stop()
        # Scrolling through the list must not fire a C-FIND per row passed.
        self._priors_timer = self.set_timer(0.3, lambda: self._load_priors(study))

    def _load_priors(self, study: StudyRow) -> None:
        if study.uid != self._priors_for:
            return
        title = self.query_one("#priors-title", Static)
        if study.uid in self.priors:
            self._show_priors(study.uid)
            return
        node, store = self.current_node(), self._store()
        if node is None or store is None:
            return
        title.update(shown(f"Priors of {study.patient_name.replace('^', ' ')}: asking…"))
        self.query_one("#priors", DataTable).clear()
        self.run_priors(node, study, store)

    @work(thread=True, exclusive=True, exit_on_error=False, group="priors", description="Priors")
    def run_priors(self, node: Node, study: StudyRow, store: LocalStore) -> None:
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
                self.post_message(self.StatesFound(-1, [status]))
        except TuiviewerError:
            return  # the prior rows stay without a state; the worklist says the PACS is down

    @on(PriorsFound)
    def _priors_found(self, message: PriorsFound) -> None:
        if message.error:
            if message.study_uid == self._priors_for:
                self.query_one("#priors-title", Static).update(shown(f"Priors: ⚠ {message.error}"))
            return
        self.priors[message.study_uid] = message.rows
        if message.study_uid == self._priors_for:
            self._show_priors(message.study_uid)

    def _show_priors(self, study_uid: str) -> None:
        rows = self.priors.get(study_uid, [])
        table = self.query_one("#priors", DataTable)
        table.clear()
        for row in rows:
            table.add_row(
                display_date(row.date),
                cell("/".join(row.modalities)),
                cell(row.description),
                _state_cell(self.states.get(row.uid)),
                key=row.uid,
            )
        count = len(rows)
        self.query_one("#priors-title", Static).update(
            f"Priors: {count} earlier {'study' if count == 1 else 'studies'}"
            + (" (Enter reads the report)" if count else "")
        )

    def selected_prior(self) -> StudyRow | None:
        table = self.query_one("#priors", DataTable)
        if not table.row_count or self._priors_for is None:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((r for r in self.priors.get(self._priors_for, []) if r.uid == key), None)

    @on(DataTable.RowSelected, "#priors")
    def _prior_selected(self, event: DataTable.RowSelected) -> None:
        prior = self.selected_prior()
        if prior is not None:
            self.show_report(prior)

    def action_read_report(self) -> None:
        """The report of the highlighted prior (priors focused) or study, in the side pane."""
        priors = self.query_one("#priors", DataTable)
        study = self.selected_prior() if priors.has_focus else self.selected_study()
        if study is not None:
            self.show_report(study)

    def show_report(self, study: StudyRow) -> None:
        """Read the newest report of ``study`` (retrieving its SR if needed) into the pane."""
        node, store = self.current_node(), self._store()
        if node is None or store is None:
            return
        self.query_one("#report-title", Static).update(
            shown(f"Report of {job_label(study)}: reading…")
        )
        self.run_read_report(node, study, store, self.states.get(study.uid))

    @work(thread=True, exclusive=True, exit_on_error=False, group="read", description="Report")
    def run_read_report(
        self, node: Node, study: StudyRow, store: LocalStore, status: StudyStatus | None
    ) -> None:
        title = f"Report of {job_label(study)}"
        if status is None or (not status.reports and status.error):
            try:
                found = list(report_states(node, [study.uid], store))
            except TuiviewerError as exc:
                self.post_message(self.ReportShown(title, f"⚠ {exc.message}"))
                return
            if found:
                status = found[0]
                self.post_message(self.StatesFound(-1, [status]))
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
