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
from collections.abc import Iterable
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static
from textual.worker import Worker, WorkerState

from tuiviewer.config.nodes import Node
from tuiviewer.dicom.rows import StudyRow
from tuiviewer.messages import StatesFound
from tuiviewer.net.transport import warm_retrieve
from tuiviewer.screens.base import StudyInView, workstation
from tuiviewer.services.worklist import (
    ReportState,
    StudyStatus,
    WorklistQuery,
    WorklistView,
    images_on_disk,
    load_view,
    with_local_drafts,
)
from tuiviewer.store import LocalStore
from tuiviewer.widgets.key_footer import KeyFooter
from tuiviewer.widgets.priors_panel import PriorsPanel
from tuiviewer.widgets.safe import shown
from tuiviewer.widgets.study_opener import StudyOpener
from tuiviewer.widgets.study_table import StudyTable
from tuiviewer.widgets.wording import plural
from tuiviewer.widgets.worklist_feed import WorklistFeed
from tuiviewer.widgets.worklist_filters import WorklistFilters


class WorklistScreen(Screen[None]):
    """Studies to read on the default PACS, with their report state and the patient's priors."""

    CSS_PATH = "worklist.tcss"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]
    """Under 100 columns the priors go below the list (worklist.tcss)."""
    REFRESH_S: ClassVar[float] = 60.0
    """Seconds between automatic refreshes (unless the screen is given another interval)."""
    REMEMBERS_VIEW: ClassVar[bool] = True
    """The date window and filters are kept for the next launch (worklist.json)."""
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

    def __init__(self, refresh_s: float | None = None) -> None:
        super().__init__()
        self.refresh_s = refresh_s
        self.rows: dict[str, StudyRow] = {}
        """Studies of the last query by Study Instance UID (kept when the PACS goes away)."""
        self.states: dict[str, StudyStatus] = {}
        """Report state of every study seen, worklist rows and priors alike."""
        self.refreshed_at: dt.datetime | None = None
        self.pacs_error: str | None = None

    # ---- layout -----------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        view = load_view() if self.REMEMBERS_VIEW else WorklistView()
        filters = WorklistFilters(view, remembers=self.REMEMBERS_VIEW, id="wl-filters")
        yield filters
        with Horizontal(id="wl-bar"):
            yield Static("", id="wl-counts")
            yield Static("", id="wl-status")
        yield Static("", id="wl-empty")
        with Horizontal(id="wl-main"):
            table = self.study_table()
            table.status_filter = filters.status
            yield table
            yield PriorsPanel(self.states, id="wl-side")
        yield WorklistFeed()
        yield StudyOpener()
        yield KeyFooter()

    def study_table(self) -> StudyTable:
        """The table of studies (the Inbox adds columns to it)."""
        return StudyTable(self.rows, self.states, id="worklist")

    def on_mount(self) -> None:
        self.set_interval(self.interval(), self._timer_refresh)
        node = self.current_node()
        self.sub_title = f"Worklist · {node.name}" if node else "Worklist"
        if node is None:
            self._status("No PACS configured: F5 opens the node manager to add one.")
        else:
            self.start_refresh()
        self.table.focus()

    def on_screen_resume(self) -> None:
        """Back from the report editor: a draft saved (or removed) there shows at once, not at
        the next refresh. Looked at again shortly after, for the editor's last save, which it
        writes as it closes."""
        self._drafts_changed()
        self.set_timer(0.5, self._drafts_changed)

    def _drafts_changed(self) -> None:
        changed = with_local_drafts(list(self.states.values()), workstation(self).drafts)
        if changed:
            self._apply_states(changed)

    @property
    def table(self) -> StudyTable:
        return self.query_one("#worklist", StudyTable)

    @property
    def side(self) -> PriorsPanel:
        return self.query_one("#wl-side", PriorsPanel)

    @property
    def filters(self) -> WorklistFilters:
        return self.query_one(WorklistFilters)

    @property
    def feed(self) -> WorklistFeed:
        return self.query_one(WorklistFeed)

    @property
    def refreshing(self) -> bool:
        """A refresh (query and report states) is running: the timer does not start another."""
        return self.feed.refreshing

    @property
    def first_rows_s(self) -> float | None:
        """Seconds from the start of the last refresh to its first rows (for the benchmark)."""
        return self.feed.first_rows_s

    @property
    def status_filter(self) -> ReportState | None:
        return self.table.status_filter

    @property
    def priors(self) -> dict[str, list[StudyRow]]:
        return self.side.priors

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
        return self.filters.build_query()

    def _timer_refresh(self) -> None:
        if not self.refreshing:
            self.start_refresh()

    def action_refresh(self) -> None:
        if self.refreshing:
            self.notify("A refresh is running already.")
            return
        self.start_refresh()

    @on(WorklistFilters.Submitted)
    def _filters_submitted(self) -> None:
        # New criteria: whatever runs belongs to the old ones.
        self.start_refresh()
        self.table.focus()

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
        self._status(f"Asking {node.name}…")
        self.feed.start(node, query, store)

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        # Failures the core reports arrive as messages; this is for the ones it did not expect.
        if event.worker.group == "worklist" and event.state is WorkerState.ERROR:
            self.feed.refreshing = False
            self._status(shown(f"⚠ The refresh failed: {event.worker.error}", style="bold red"))

    @on(WorklistFeed.RowsFound)
    def _rows_found(self, message: WorklistFeed.RowsFound) -> None:
        if message.refresh_id != self.feed.refresh_id:
            return
        self.feed.rows_arrived(len(message.rows))
        self.table.add_studies(message.rows)
        self._show_counts()
        self._status(f"Receiving studies… {self.feed.received} so far")

    @on(WorklistFeed.ListFinished)
    def _list_finished(self, message: WorklistFeed.ListFinished) -> None:
        if message.refresh_id != self.feed.refresh_id:
            return
        node = self.current_node()
        name = node.name if node else "the PACS"
        if message.error:
            self.feed.refreshing = False
            self.pacs_error = message.error
            when = f"{self.refreshed_at:%H:%M:%S}" if self.refreshed_at else "never"
            what = "unreachable" if message.unreachable else "refused the worklist query"
            text = shown(f"⚠ {name} {what}: {message.error}", style="bold red")
            if self.rows:
                text.append(
                    f"  Showing {plural(len(self.rows), 'study')} from {when}.", style="yellow"
                )
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
                f"{plural(count, 'study')} on ",
                (name, "bold"),
                (f" in {message.elapsed_s:.2f} s, at {self.refreshed_at:%H:%M:%S}", "dim"),
                ("  · report states…" if count else "", "dim"),
            )
        )
        if not count:
            self.feed.refreshing = False

    @on(StatesFound)
    def _states_found(self, message: StatesFound) -> None:
        self._apply_states(message.statuses)

    def _apply_states(self, statuses: Iterable[StudyStatus]) -> None:
        """New report states: the rows, the priors panel and the counts show them."""
        for status in statuses:
            self.states[status.study_uid] = status
            self.table.state_changed(status)
            self.side.state_changed(status)
        self._show_counts()

    @on(WorklistFeed.StatesFinished)
    def _states_finished(self, message: WorklistFeed.StatesFinished) -> None:
        if message.refresh_id != self.feed.refresh_id:
            return
        self.feed.refreshing = False
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
                f"{plural(len(self.rows), 'study')} on ",
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
                f"None of the {plural(count, 'study')} is {state}: "
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

    @on(WorklistFilters.StatusChanged)
    def _status_filter_changed(self, message: WorklistFilters.StatusChanged) -> None:
        self.table.status_filter = message.state
        self.table.rebuild()
        self._show_counts()

    def action_cycle_status(self) -> None:
        """Next status filter: all → unreported → draft → preliminary → final → all."""
        self.filters.cycle_status(self.counts())

    def action_focus_filters(self) -> None:
        self.query_one("#wl-from").focus()

    def action_focus_priors(self) -> None:
        self.side.table.focus()

    def action_back(self) -> None:
        self.table.focus()

    # ---- opening a study --------------------------------------------------------------------
    def selected_study(self) -> StudyRow | None:
        return self.table.selected_study()

    def study_in_view(self) -> StudyInView | None:
        """The study under the cursor, with its folder when its images are on disk."""
        study = self.selected_study()
        if study is None:
            return None
        store = self._store()
        on_disk = store is not None and images_on_disk(store, study.uid)
        folder = store.study_dir(study.uid) if store is not None and on_disk else None
        return StudyInView(study.uid, folder, self.current_node())

    @on(DataTable.RowSelected, "#worklist")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        """View the highlighted study: at once when on disk, else retrieve and view the first
        series as soon as it has arrived."""
        study = self.selected_study()
        if study is not None:
            self.query_one(StudyOpener).open(study, self.current_node())

    def action_report(self) -> None:
        """The report editor for the highlighted study (from its images if retrieved)."""
        study = self.study_in_view()
        if study is not None:
            workstation(self).open_report(study.study_uid, study.path, study.node)

    # ---- priors and reading reports ---------------------------------------------------------
    @on(DataTable.RowHighlighted, "#worklist")
    def _study_highlighted(self, event: DataTable.RowHighlighted) -> None:
        study = self.selected_study()
        if study is not None:
            self.side.follow(study)
            node = self.current_node()
            self.query_one(StudyOpener).rest(study, node)
            if node is not None:  # Enter's retrieve then needs no association set up
                warm_retrieve(node, workstation(self).config.pacs.associations)

    def action_read_report(self) -> None:
        """The report of the highlighted prior (priors focused) or study, in the side pane."""
        side = self.side
        study = side.selected_prior() if side.table.has_focus else self.selected_study()
        if study is not None:
            side.show_report(study)
