"""Query a PACS: criteria and results on one screen, study → series drill-down, retrieve.

Matches stream in as the PACS sends them (a C-FIND can take seconds on a big archive) and the
query can be cancelled with Esc (C-CANCEL). Retrieves become jobs in the retrieve queue.
"""

from __future__ import annotations

import threading
import time

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal
from textual.screen import Screen
from textual.widgets import Button, DataTable, Header, Input, Select, Static
from textual.worker import get_current_worker

from tuiviewer.config.nodes import Node
from tuiviewer.dicom.rows import QueryLevel, SeriesRow, StudyRow, to_row
from tuiviewer.exceptions import TuiviewerError
from tuiviewer.messages import (
    EchoAnswered,
    QueryFinished,
    SeriesFound,
    StudiesFound,
    echo_node,
)
from tuiviewer.net.find import FindQuery, validate_date_range
from tuiviewer.net.trace import AssociationTrace
from tuiviewer.net.transport import find
from tuiviewer.screens.base import StudyInView, workstation
from tuiviewer.screens.dialogs.common import ValueDialog
from tuiviewer.screens.nodes import NodeDialog
from tuiviewer.services.batches import batched
from tuiviewer.services.jobs import RetrieveJob, job_label
from tuiviewer.widgets.key_footer import KeyFooter
from tuiviewer.widgets.safe import cell, shown
from tuiviewer.widgets.study_opener import StudyOpener
from tuiviewer.widgets.study_table import StudyTable, count_cell
from tuiviewer.widgets.wording import plural

NO_PACS = "No PACS (F5)"
"""The picker's only entry when no node is configured (F5: the node manager adds one)."""


#: Each criterion's hint, in full and in the form that fits a quarter of 80 columns.
HINTS = {
    "patient_name": ("Patient name (Doe* ok)", "Name (Doe*)"),
    "patient_id": ("Patient ID", "Patient ID"),
    "accession_number": ("Accession", "Accession"),
    "study_date": ("Date YYYYMMDD[-YYYYMMDD]", "Date YYYYMMDD-…"),
    "modality": ("Modality (CT, MR…)", "Modality (CT…)"),
    "study_description": ("Study description", "Description"),
    "referring_physician": ("Referring physician", "Referring"),
}


class QueryScreen(Screen[None]):
    """Find studies on a PACS, look at their series, retrieve them."""

    CSS_PATH = "query.tcss"
    BINDINGS = [
        Binding("slash", "focus_form", "Criteria"),
        Binding("ctrl+s", "search", "Search"),
        Binding("escape", "cancel_query", "Cancel", show=False),
        Binding("g", "retrieve", "Retrieve"),
        Binding("o", "open_local", "Open"),
        Binding("s", "sort", "Sort", show=False),
        # The same keys as in the node manager: e edits the PACS, t tests it, T the trace.
        Binding("t", "echo", "C-ECHO"),
        Binding("e", "edit_node", "Edit PACS", show=False),
        Binding("T", "trace", "Trace", show=False),
        Binding("W", "report", "Report"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, StudyRow] = {}
        """Studies of the current query by Study Instance UID (a PACS may repeat a match)."""
        self.series: dict[str, list[SeriesRow]] = {}
        self.query_id = 0
        self.query_started = 0.0
        self.last_trace: AssociationTrace | None = None
        self._default_seen: str | None = None
        """The workstation's default node when the picker was last filled."""
        self._series_study: str | None = None

    # ---- layout -----------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        with Grid(id="criteria"):
            yield Select[str](self._node_options(), id="node", allow_blank=False, compact=True)
            for field, (hint, _short) in HINTS.items():
                yield Input(placeholder=hint, id=field)
        with Horizontal(id="query-bar"):
            yield Static("", id="query-status")
            yield Button("Search", id="search", variant="primary", compact=True)
        yield StudyTable(self.rows, {}, show_state=False, sort_key=None, id="studies")
        yield Static("Series", id="series-title")
        yield DataTable(id="series", cursor_type="row", zebra_stripes=True)
        yield StudyOpener()
        yield KeyFooter()

    def on_resize(self) -> None:
        """The hints in full where they fit, else in their short form (never cut)."""
        for field, (hint, short) in HINTS.items():
            box = self.query_one(f"#{field}", Input)
            room = box.content_region.width or box.size.width - 2
            box.placeholder = hint if len(hint) <= room else short

    def on_mount(self) -> None:
        self.sub_title = "PACS query"
        studies = self.query_one("#studies", StudyTable)
        series = self.query_one("#series", DataTable)
        series.add_columns("#", "Mod", "Description", "Images", "Body part", "Local")
        self.refresh_nodes()
        if self.current_node() is None:
            self._status("No PACS configured: F5 opens the node manager to add one.")
        else:
            self.action_search()
        studies.focus()

    def _node_options(self) -> list[tuple[str, str]]:
        """The PACS to choose from; without any, one entry that says so (there is no blank
        entry: a query is always on a PACS)."""
        nodes = workstation(self).nodes.values()
        return [(f"{n.name}  {n.address}", n.name) for n in nodes] or [(NO_PACS, "")]

    def refresh_nodes(self) -> None:
        """Fill the PACS selector from the app's nodes (after the node manager changed them)."""
        nodes = workstation(self).nodes
        select = self.query_one("#node", Select)
        current = select.value if isinstance(select.value, str) else None
        select.set_options(self._node_options())
        # The node manager's "Query it" names a new default: it wins over the one picked here.
        chosen = workstation(self).default_node
        if chosen == self._default_seen and current in nodes:
            chosen = current
        self._default_seen = chosen
        default = chosen
        if default in nodes:
            select.value = default
        elif nodes:
            select.value = next(iter(nodes))

    def current_node(self) -> Node | None:
        value = self.query_one("#node", Select).value
        return workstation(self).nodes.get(value) if isinstance(value, str) else None

    def _status(self, text: str | Text) -> None:
        self.query_one("#query-status", Static).update(
            shown(text) if isinstance(text, str) else text
        )

    # ---- query ------------------------------------------------------------------------------
    def action_focus_form(self) -> None:
        self.query_one("#patient_name", Input).focus()

    def build_query(self) -> FindQuery:
        def value(name: str) -> str:
            return self.query_one(f"#{name}", Input).value.strip()

        query = FindQuery(
            level=QueryLevel.STUDY,
            patient_name=value("patient_name"),
            patient_id=value("patient_id"),
            accession_number=value("accession_number"),
            study_date=value("study_date"),
            modality=value("modality").upper(),
            study_description=value("study_description"),
            referring_physician=value("referring_physician"),
        )
        if query.study_date:
            validate_date_range(query.study_date)
        return query

    @on(Input.Submitted)
    @on(Button.Pressed, "#search")
    def action_search(self) -> None:
        node = self.current_node()
        if node is None:
            self._status("Choose a PACS first (F5: node manager).")
            return
        try:
            query = self.build_query()
        except (TuiviewerError, ValueError) as exc:
            self._status(shown(f"⚠ {exc}", style="bold red"))
            return
        self.query_id += 1
        self.rows.clear()
        self.series.clear()
        self._series_study = None
        self.query_one("#studies", DataTable).clear()
        self.query_one("#series", DataTable).clear()
        self.query_started = time.monotonic()
        self._status(f"Searching {node.name}… (Esc cancels)")
        self.last_trace = AssociationTrace()
        self.run_find(node, query, self.query_id, self.last_trace)
        self.query_one("#studies", DataTable).focus()

    @work(thread=True, exclusive=True, exit_on_error=False, group="find", description="C-FIND")
    def run_find(
        self, node: Node, query: FindQuery, query_id: int, trace: AssociationTrace
    ) -> None:
        worker = get_current_worker()
        cancel: threading.Event = worker.cancelled_event
        count = 0
        started = time.monotonic()
        error: str | None = None
        rows = (
            to_row(QueryLevel.STUDY, ds) for ds in find(node, query, cancel=cancel, trace=trace)
        )
        try:
            for batch in batched(rows):
                studies = [row for row in batch if isinstance(row, StudyRow)]
                count += len(studies)
                self.post_message(StudiesFound(query_id, studies))
        except TuiviewerError as exc:
            error = exc.message
        elapsed = time.monotonic() - started
        self.post_message(QueryFinished(query_id, count, elapsed, cancel.is_set(), error))

    @on(StudiesFound)
    def _studies_found(self, message: StudiesFound) -> None:
        if message.query_id != self.query_id:
            return
        # Some PACS (qrscp) answer once per instance: a study is listed once.
        self.studies.add_studies(row for row in message.rows if row.uid not in self.rows)
        self._status(f"Searching… {plural(len(self.rows), 'study')} so far (Esc cancels)")

    @on(QueryFinished)
    def _query_finished(self, message: QueryFinished) -> None:
        if message.query_id != self.query_id:
            return
        count = len(self.rows)
        text = Text(plural(count, "study"))
        node = self.current_node()
        if node is not None:
            text.append(f" on {node.name}", style="bold")
        text.append(f" in {message.elapsed_s:.2f} s", style="dim")
        if message.cancelled:
            text.append("  (cancelled: showing what arrived)", style="yellow")
        if message.error:
            text = shown(f"⚠ {message.error}", style="bold red")
            if count:
                text.append(f"  ({plural(count, 'study')} arrived before)", style="yellow")
        self._status(text)
        # Back in the order asked for, the columns fitted to the names that came.
        self.studies.newest_first()

    def action_cancel_query(self) -> None:
        for worker in self.workers:
            if worker.group == "find" and not worker.is_finished:
                worker.cancel()
                self._status("Cancelling (C-CANCEL sent)…")

    # ---- drill-down -------------------------------------------------------------------------
    @property
    def studies(self) -> StudyTable:
        return self.query_one("#studies", StudyTable)

    def selected_study(self) -> StudyRow | None:
        return self.studies.selected_study()

    def study_in_view(self) -> StudyInView | None:
        """The study under the cursor, with its folder when it is in the local store."""
        study = self.selected_study()
        if study is None:
            return None
        folder = None
        try:
            candidate = workstation(self).store.study_dir(study.uid)
            folder = candidate if candidate.is_dir() else None
        except TuiviewerError:
            folder = None
        return StudyInView(study.uid, folder, self.current_node())

    @on(DataTable.RowHighlighted, "#studies")
    def _study_highlighted(self, event: DataTable.RowHighlighted) -> None:
        study = self.selected_study()
        if study is None or study.uid == self._series_study:
            return
        self._series_study = study.uid
        self.query_one("#series", DataTable).clear()
        node = self.current_node()
        if study.uid in self.series:
            self._show_series(study.uid)
        elif node is not None:
            self.query_one("#series-title", Static).update("Series: asking the PACS…")
            self.run_series_find(node, study.uid)

    @work(thread=True, exclusive=True, exit_on_error=False, group="series", description="Series")
    def run_series_find(self, node: Node, study_uid: str) -> None:
        query = FindQuery(level=QueryLevel.SERIES, study_uid=study_uid)
        rows: list[SeriesRow] = []
        try:
            for ds in find(node, query, cancel=get_current_worker().cancelled_event):
                row = to_row(QueryLevel.SERIES, ds)
                if isinstance(row, SeriesRow) and all(r.uid != row.uid for r in rows):
                    rows.append(row)
        except TuiviewerError as exc:
            self.app.call_from_thread(
                self.query_one("#series-title", Static).update, shown(f"Series: ⚠ {exc.message}")
            )
            return
        rows.sort(key=lambda r: (r.number is None, r.number or 0, r.description))
        self.post_message(SeriesFound(study_uid, rows))

    @on(SeriesFound)
    def _series_found(self, message: SeriesFound) -> None:
        self.series[message.study_uid] = message.rows
        if message.study_uid == self._series_study:
            self._show_series(message.study_uid)

    def _show_series(self, study_uid: str) -> None:
        rows = self.series.get(study_uid, [])
        on_disk: set[str] = set()
        try:
            folder = workstation(self).store.study_dir(study_uid)
            on_disk = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
        except (TuiviewerError, OSError):
            on_disk = set()
        table = self.query_one("#series", DataTable)
        table.clear()
        for row in rows:
            table.add_row(
                "" if row.number is None else str(row.number),
                cell(row.modality),
                cell(row.description),
                count_cell(row.instance_count),
                cell(row.body_part),
                "✔" if row.uid in on_disk else "",
                key=row.uid,
            )
        self.query_one("#series-title", Static).update(
            f"Series: {len(rows)} (g on a series retrieves the study, that series first)"
        )

    # ---- sorting ----------------------------------------------------------------------------
    def action_sort(self) -> None:
        """Sort by the next column (as ``>`` does; the first sort is by date, newest first)."""
        self.studies.action_sort(1)

    # ---- retrieve, open, echo, trace --------------------------------------------------------
    def action_retrieve(self) -> None:
        study = self.selected_study()
        node = self.current_node()
        if study is None or node is None:
            self.notify("Select a study to retrieve.", severity="warning")
            return
        first_series: str | None = None
        series_table = self.query_one("#series", DataTable)
        if series_table.has_focus and series_table.row_count:
            key = series_table.coordinate_to_cell_key(series_table.cursor_coordinate).row_key
            first_series = str(key.value)
        label = job_label(study)
        job = RetrieveJob(node=node, study_uid=study.uid, label=label, first_series=first_series)
        workstation(self).queue_retrieve(job)
        self.notify(f"Retrieving {label} (F4: retrieve queue)")

    @on(DataTable.RowSelected, "#studies")
    def _study_chosen(self) -> None:
        """Enter on a study: read it, at once when on disk, else retrieved from this PACS with
        the viewer opening on its first image while the rest arrives (as on the worklist)."""
        study = self.selected_study()
        if study is not None:
            self.query_one(StudyOpener).open(study, self.current_node())

    def action_open_local(self) -> None:
        study = self.selected_study()
        if study is not None:
            workstation(self).open_study(study.uid)

    def action_report(self) -> None:
        """Report the highlighted study: from its files if retrieved, else from the PACS."""
        study = self.study_in_view()
        if study is not None:
            workstation(self).open_report(study.study_uid, study.path, study.node)

    def action_edit_node(self) -> None:
        """Edit the PACS picked (the node manager's dialog); the query goes on with it."""
        node = self.current_node()
        if node is None or node.kind != "dimse":
            self.notify("Pick a DICOM node to edit (DICOMweb nodes are edited in nodes.toml).")
            return
        station = workstation(self)

        def done(new: Node | None) -> None:
            if new is None:
                return
            try:
                station.save_node(new, node.name)
            except TuiviewerError as exc:
                self.notify(exc.message, severity="error")
                return
            station.default_node = new.name
            self.refresh_nodes()

        self.app.push_screen(NodeDialog(node, set(station.nodes)), done)

    def action_echo(self) -> None:
        node = self.current_node()
        if node is not None:
            self._status(f"C-ECHO {node.address}…")
            self.run_echo(node)

    @work(thread=True, exclusive=True, exit_on_error=False, group="echo", description="C-ECHO")
    def run_echo(self, node: Node) -> None:
        trace = AssociationTrace()
        self.last_trace = trace
        self.post_message(echo_node(node, trace))

    @on(EchoAnswered)
    def _echo_answered(self, message: EchoAnswered) -> None:
        if message.error:
            self._status(shown(f"⚠ {message.error}", style="bold red"))
        else:
            self._status(f"C-ECHO {message.node_name}: OK, {message.rtt_ms:.1f} ms")

    def action_trace(self) -> None:
        if self.last_trace is None:
            self.notify("No association yet.")
            return
        self.app.push_screen(ValueDialog("Association trace (no PHI)", self.last_trace.format()))
