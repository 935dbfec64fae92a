"""The reading worklist: what is on the PACS, what still needs reading, and the patient's priors.

The home screen when a PACS is configured. Studies of the date range stream in as the PACS
answers; each one's report state (unreported, draft, preliminary, final: see
:mod:`tuiviewer.services.worklist`) fills in afterwards from a worker, and the list refreshes itself
on a timer. Enter opens a study: at once when it is on disk, else as soon as the first image
series of its retrieve has arrived. A PACS that stops answering is said so; the rows it gave
before stay.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Select, Static
from textual.worker import Worker, WorkerState, get_current_worker

from tuiviewer.config.nodes import Node
from tuiviewer.dicom.rows import QueryLevel, StudyRow, to_row
from tuiviewer.exceptions import SaveError, TuiviewerError
from tuiviewer.messages import StatesFound
from tuiviewer.net.transport import find
from tuiviewer.screens.base import workstation
from tuiviewer.services.batches import BATCH_S, batched
from tuiviewer.services.jobs import RetrieveJob, job_label
from tuiviewer.services.worklist import (
    PACS_DOWN,
    ReportState,
    StudyStatus,
    WorklistQuery,
    WorklistView,
    first_image_series,
    images_on_disk,
    is_retrieved,
    load_view,
    merge_answers,
    report_states,
    save_view,
)
from tuiviewer.store import LocalStore
from tuiviewer.widgets.priors_panel import PriorsPanel
from tuiviewer.widgets.safe import shown
from tuiviewer.widgets.study_table import FILTERS, StudyTable


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


class WorklistScreen(Screen[None]):
    """Studies to read on the default PACS, with their report state and the patient's priors."""

    CSS_PATH = "worklist.tcss"
    REFRESH_S: ClassVar[float] = 60.0
    REMEMBERS_VIEW: ClassVar[bool] = True
    """The date window and filters are kept for the next launch (worklist.json)."""
    """Seconds between automatic refreshes (unless the screen is given another interval)."""
    BINDINGS = [
        Binding("o", "open", "Open"),
        Binding("W", "report", "Report"),
        Binding("r", "read_report", "Read report"),
        Binding("s", "cycle_status", "Status filter"),
        Binding("p", "focus_priors", "Priors"),
        Binding("slash", "focus_filters", "Filters"),
        Binding("ctrl+r", "refresh", "Refresh"),
        Binding("d", "app.drafts", "Drafts"),
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
    class StatesFinished(Message):
        """The report states of a refresh are all known, or could not be asked for."""

        refresh_id: int
        error: str | None

    class RetrieveMoved(Message):
        """A retrieve progressed, finished a series or ended; a flood collapses to one."""

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, WorklistScreen.RetrieveMoved)

    def __init__(self, refresh_s: float | None = None) -> None:
        super().__init__()
        self.refresh_s = refresh_s
        self.rows: dict[str, StudyRow] = {}
        """Studies of the last query by Study Instance UID (kept when the PACS goes away)."""
        self.states: dict[str, StudyStatus] = {}
        """Report state of every study seen, worklist rows and priors alike."""
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
        self.view = load_view() if self.REMEMBERS_VIEW else WorklistView()
        """The date window and filters of the last launch (config dir, worklist.json)."""
        self._view_unsaved_said = False

    # ---- layout -----------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        start, end = self.view.window()
        with Horizontal(id="wl-filters"):
            yield Input(
                f"{start:%Y%m%d}" if start else "", placeholder="From YYYYMMDD", id="wl-from"
            )
            yield Input(f"{end:%Y%m%d}" if end else "", placeholder="To YYYYMMDD", id="wl-to")
            yield Input(self.view.modality, placeholder="Modality", id="wl-modality")
            yield Select[str](
                [(label, label.lower()) for label, _ in FILTERS],
                value=self.view.status,
                allow_blank=False,
                id="wl-status-filter",
                compact=True,
            )
        with Horizontal(id="wl-bar"):
            yield Static("", id="wl-counts")
            yield Static("", id="wl-status")
        yield Static("", id="wl-empty")
        with Horizontal(id="wl-main"):
            table = self.study_table()
            table.status_filter = next(
                (state for label, state in FILTERS if label.lower() == self.view.status), None
            )
            yield table
            yield PriorsPanel(self.states, id="wl-side")
        yield Footer()

    def study_table(self) -> StudyTable:
        """The table of studies (the Inbox adds columns to it)."""
        return StudyTable(self.rows, self.states, id="worklist")

    def on_mount(self) -> None:
        self.set_interval(self.interval(), self._timer_refresh)
        # A retrieve that moved on may have brought the first series of a study to open.
        self._unsubscribe: Callable[[], None] = workstation(self).queue.on_change(
            lambda _job: self.post_message(self.RetrieveMoved())
        )
        node = self.current_node()
        self.sub_title = f"Worklist · {node.name}" if node else "Worklist"
        if node is None:
            self._status("No PACS configured: F5 opens the node manager to add one.")
        else:
            self.start_refresh()
        self.table.focus()

    @property
    def table(self) -> StudyTable:
        return self.query_one("#worklist", StudyTable)

    @property
    def side(self) -> PriorsPanel:
        return self.query_one("#wl-side", PriorsPanel)

    @property
    def status_filter(self) -> ReportState | None:
        return self.table.status_filter

    @property
    def priors(self) -> dict[str, list[StudyRow]]:
        return self.side.priors

    def on_unmount(self) -> None:
        self._unsubscribe()

    def interval(self) -> float:
        """Seconds between automatic refreshes."""
        if self.refresh_s is not None and self.refresh_s > 0:
            return float(self.refresh_s)
        return self.REFRESH_S

    def current_node(self) -> Node | None:
        """The default node, else the first one configured."""
        return workstation(self).current_node()

    def _store(self) -> LocalStore | None:
        return workstation(self).store

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
        self._remember()
        self.table.focus()

    def _remember(self) -> None:
        """Keep the date window and filters for the next launch (worklist.json)."""
        if not self.REMEMBERS_VIEW:
            return
        try:
            query = self.build_query()
        except ValueError:
            return  # the status line says what is wrong; the last good view stays
        select = self.query_one("#wl-status-filter", Select)
        status = select.value if isinstance(select.value, str) else "all"
        self.view = WorklistView.of(query.date_from, query.date_to, query.modality, status)
        try:
            save_view(self.view)
        except SaveError as exc:
            if not self._view_unsaved_said:
                self._view_unsaved_said = True
                self.notify(
                    f"The worklist filters cannot be kept for next time: {exc.message}",
                    severity="warning",
                )

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
        found: dict[str, StudyRow] = {}

        def new_rows() -> Iterator[StudyRow]:
            for ds in find(node, query.to_find_query(), cancel=cancel):
                row = to_row(QueryLevel.STUDY, ds)
                if isinstance(row, StudyRow) and row.uid in found:
                    found[row.uid] = merge_answers(found[row.uid], row)  # for report states
                elif isinstance(row, StudyRow) and row.uid:
                    found[row.uid] = row  # some PACS answer once per instance
                    yield row

        try:
            for batch in batched(new_rows()):
                self.post_message(self.RowsFound(refresh_id, batch))
        except (TuiviewerError, ValueError) as exc:
            elapsed = time.monotonic() - started
            down = isinstance(exc, PACS_DOWN)
            self.post_message(self.ListFinished(refresh_id, [], elapsed, False, str(exc), down))
            return
        elapsed = time.monotonic() - started
        uids = [r.uid for r in sorted(found.values(), key=lambda r: (r.date, r.time), reverse=True)]
        self.post_message(self.ListFinished(refresh_id, uids, elapsed, cancel.is_set(), None))
        if cancel.is_set():
            return
        # Rows, not UIDs: their modalities and counts spare most studies a query.
        self._states_into_messages(node, [found[u] for u in uids], store, refresh_id, cancel)

    def _states_into_messages(
        self,
        node: Node,
        uids: list[StudyRow],
        store: LocalStore,
        refresh_id: int,
        cancel: threading.Event,
    ) -> None:
        """Post report states as they are worked out, batched like the rows (less often: each
        batch re-sorts the list)."""
        error: str | None = None
        states = report_states(node, uids, store, cancel=cancel)
        try:
            for batch in batched(states, seconds=BATCH_S * 4):
                self.post_message(StatesFound(refresh_id, batch))
        except TuiviewerError as exc:
            error = exc.message
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
        self.table.add_studies(message.rows)
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
        self.table.keep_only(message.uids)
        self.table.newest_first()
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
        for status in message.statuses:
            self.states[status.study_uid] = status
            self.table.state_changed(status)
            self.side.state_changed(status)
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
            self.table.newest_first()
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
    def counts(self) -> dict[ReportState | None, int]:
        """Studies per report state among the rows (None: all rows)."""
        return self.table.counts()

    def _show_counts(self) -> None:
        self.query_one("#wl-counts", Static).update(self.table.counts_text())
        self._show_empty()

    def _show_empty(self) -> None:
        """An empty list says why and what to do, instead of a blank table."""
        empty = self.query_one("#wl-empty", Static)
        node = self.current_node()
        if self.table.row_count or node is None or self.refreshed_at is None or self.pacs_error:
            empty.display = False
            return
        if self.rows:
            state = self.status_filter.value if self.status_filter else "shown"
            count = len(self.rows)
            empty.update(
                f"None of the {count} {'study' if count == 1 else 'studies'} is {state}: "
                "s shows the next report-state filter (All shows every study)."
            )
        else:
            text = self.nothing_found(node)
            if text is None:
                return
            empty.update(text)
        empty.display = True

    def nothing_found(self, node: Node) -> Text | None:
        """What to do when the PACS has no study for the filters (None: the filters are
        invalid, which the status line says)."""
        try:
            query = self.build_query()
        except ValueError:
            return None
        start = f"{query.date_from:%Y-%m-%d}" if query.date_from else "the first study"
        end = f"{query.date_to:%Y-%m-%d}" if query.date_to else "today"
        modality = f" with modality {query.modality}" if query.modality else ""
        return Text.assemble(
            (f"No studies on {node.name} from {start} to {end}{modality}.\n", "bold"),
            "Widen the dates: / goes to the From date, Enter asks again.\n"
            "F2 searches the whole PACS; F5 picks another PACS (Enter on it).\n"
            "Report drafts of any date: d (or ctrl+p, Unfinished drafts).",
        )

    @on(Select.Changed, "#wl-status-filter")
    def _status_filter_changed(self, event: Select.Changed) -> None:
        value = event.value if isinstance(event.value, str) else "all"
        self.table.status_filter = next(
            (state for label, state in FILTERS if label.lower() == value), None
        )
        self.table.rebuild()
        self._show_counts()
        if value != self.view.status:
            self._remember()

    def action_cycle_status(self) -> None:
        """Next status filter: all → unreported → draft → preliminary → final → all."""
        counts = self.counts()
        values = [
            label.lower()
            for label, state in FILTERS
            if state is not ReportState.UNREADABLE or counts.get(state)
        ]
        select = self.query_one("#wl-status-filter", Select)
        current = select.value if isinstance(select.value, str) else "all"
        at = values.index(current) if current in values else -1
        select.value = values[(at + 1) % len(values)]

    def action_focus_filters(self) -> None:
        self.query_one("#wl-from", Input).focus()

    def action_focus_priors(self) -> None:
        self.side.table.focus()

    def action_back(self) -> None:
        self.table.focus()

    # ---- opening a study --------------------------------------------------------------------
    def selected_study(self) -> StudyRow | None:
        return self.table.selected_study()

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
        running = workstation(self).queue.active_for(study.uid)
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
        workstation(self).queue_retrieve(job)
        if not resume:
            self._awaiting[study.uid] = job

    @on(RetrieveMoved)
    def _check_awaiting(self) -> None:
        """Open a study being retrieved once an image series is on disk."""
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
        store.touch(study_uid)
        workstation(self).view_study(study_uid, store.study_dir(study_uid))

    def action_report(self) -> None:
        """The report editor for the highlighted study (from its images if retrieved)."""
        study = self.selected_study()
        store = self._store()
        if study is None or store is None:
            return
        folder: Path | None = None
        if images_on_disk(store, study.uid):
            folder = store.study_dir(study.uid)
        workstation(self).open_report(study.uid, folder, self.current_node())

    # ---- priors and reading reports ---------------------------------------------------------
    @on(DataTable.RowHighlighted, "#worklist")
    def _study_highlighted(self, event: DataTable.RowHighlighted) -> None:
        study = self.selected_study()
        if study is not None:
            self.side.follow(study)

    def action_read_report(self) -> None:
        """The report of the highlighted prior (priors focused) or study, in the side pane."""
        side = self.side
        study = side.selected_prior() if side.table.has_focus else self.selected_study()
        if study is not None:
            side.show_report(study)
