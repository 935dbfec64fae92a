"""Tables of studies: the columns every study list shows, and the worklist's table of studies
with their report state, newest first, filtered by state."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import Any, ClassVar

from rich.text import Text
from textual.widgets import DataTable

from tuiviewer.dicom.display import display_date
from tuiviewer.dicom.rows import StudyRow
from tuiviewer.services.worklist import ReportState, StudyStatus
from tuiviewer.widgets.safe import cell

STATE_STYLES = {
    ReportState.UNREPORTED: "bold",
    ReportState.DRAFT: "cyan",
    ReportState.PRELIMINARY: "yellow",
    ReportState.FINAL: "green",
    ReportState.UNREADABLE: "bold red",
}
#: The report-state filters, in the order ``s`` cycles through them.
FILTERS: tuple[tuple[str, ReportState | None], ...] = (
    ("All", None),
    ("Unreported", ReportState.UNREPORTED),
    ("Draft", ReportState.DRAFT),
    ("Preliminary", ReportState.PRELIMINARY),
    ("Final", ReportState.FINAL),
    ("Unreadable report", ReportState.UNREADABLE),
)
#: Wide enough for "unreadable report ⚠": states arrive after the rows, widths do not follow.
STATE_WIDTH = 19


def state_cell(status: StudyStatus | None) -> Text:
    """A study's report state as a cell (``…`` while unknown, ``⚠`` when incomplete)."""
    if status is None:
        return Text("…", style="dim")
    text = Text(status.state.value, style=STATE_STYLES[status.state])
    if status.error:
        text.append(" ⚠", style="red")
    return text


#: (key, header, sort key) of the study columns, in order.
STUDY_COLUMNS: tuple[tuple[str, str, Callable[[StudyRow], Any]], ...] = (
    ("patient", "Patient", lambda r: r.patient_name),
    ("id", "ID", lambda r: r.patient_id),
    ("birth", "Birth", lambda r: r.birth_date),
    ("date", "Date", lambda r: r.date + r.time),
    ("mod", "Mod", lambda r: "/".join(r.modalities)),
    ("desc", "Description", lambda r: r.description),
    ("acc", "Accession", lambda r: r.accession),
    ("series", "Ser", lambda r: -1 if r.series_count is None else r.series_count),
    ("images", "Img", lambda r: -1 if r.instance_count is None else r.instance_count),
)


def count_cell(value: int | None) -> str:
    """A count, blank when the PACS does not say."""
    return "" if value is None else str(value)


def study_cells(row: StudyRow) -> tuple[Text, ...]:
    """The cells of :data:`STUDY_COLUMNS` for ``row``, as the PACS said them but cleaned and
    never read as markup."""
    return tuple(
        cell(value)
        for value in (
            row.patient_name.replace("^", " ").strip(),
            row.patient_id,
            display_date(row.birth_date),
            display_date(row.date),
            "/".join(row.modalities),
            row.description,
            row.accession,
            count_cell(row.series_count),
            count_cell(row.instance_count),
        )
    )


class StudyTable(DataTable[Any]):
    """The worklist's studies, one row per study with its report state, newest first.

    ``studies`` and ``states`` are the screen's: rows are kept for every study of the last
    answer (also those the state filter hides), states for every study seen (priors too).
    A subclass adds columns after the study columns: :attr:`EXTRA_COLUMNS` and
    :meth:`extra_cells`.
    """

    EXTRA_COLUMNS: ClassVar[tuple[tuple[str, str], ...]] = ()
    """(key, header) of the columns a subclass adds after :data:`STUDY_COLUMNS`."""

    def __init__(
        self,
        studies: MutableMapping[str, StudyRow],
        states: Mapping[str, StudyStatus],
        *,
        id: str | None = None,  # noqa: A002
    ) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.studies = studies
        self.states = states
        self.status_filter: ReportState | None = None

    def on_mount(self) -> None:
        self.add_column("Report", key="state", width=STATE_WIDTH)
        for key, label, _ in STUDY_COLUMNS:
            self.add_column(label, key=key)
        for key, label in self.EXTRA_COLUMNS:
            self.add_column(label, key=key)

    def extra_cells(self, row: StudyRow) -> tuple[Text, ...]:
        """The cells of :attr:`EXTRA_COLUMNS` for ``row``."""
        return ()

    def matches(self, uid: str) -> bool:
        """Whether study ``uid`` passes the report-state filter."""
        if self.status_filter is None:
            return True
        status = self.states.get(uid)
        return status is not None and status.state is self.status_filter

    def add_studies(self, rows: Iterable[StudyRow]) -> None:
        """Studies as the PACS sends them: new ones appended, known ones updated."""
        for row in rows:
            old = self.studies.get(row.uid)
            self.studies[row.uid] = row
            if row.uid in self.rows:
                if old != row:
                    for column, value in zip(STUDY_COLUMNS, study_cells(row), strict=True):
                        self.update_cell(row.uid, column[0], value)
            elif self.matches(row.uid):
                self._add(row)

    def keep_only(self, uids: Iterable[str]) -> None:
        """Drop the studies the PACS no longer lists."""
        keep = set(uids)
        for uid in [uid for uid in self.studies if uid not in keep]:
            del self.studies[uid]
            if uid in self.rows:
                self.remove_row(uid)

    def state_changed(self, status: StudyStatus) -> None:
        """Show a study's new report state (it may now pass or fail the filter)."""
        uid = status.study_uid
        if uid in self.rows:
            if self.matches(uid):
                self.update_cell(uid, "state", state_cell(status))
            else:
                self.remove_row(uid)
        elif uid in self.studies and self.matches(uid):
            self._add(self.studies[uid])

    def _add(self, row: StudyRow) -> None:
        self.add_row(
            state_cell(self.states.get(row.uid)),
            *study_cells(row),
            *self.extra_cells(row),
            key=row.uid,
        )

    def ordered(self) -> list[str]:
        """Study UIDs newest first."""
        rows = sorted(self.studies.values(), key=lambda r: (r.date, r.time), reverse=True)
        return [row.uid for row in rows]

    def newest_first(self) -> None:
        """Newest first. (DataTable.sort hands its key function cell values, not row keys,
        and the time is in no cell: the rows are laid out again when out of order.)"""
        shown = [str(key.value) for key in self.rows]
        wanted = [uid for uid in self.ordered() if uid in set(shown)]
        if shown != wanted:
            self.rebuild()

    def rebuild(self) -> None:
        """Lay the rows out again (after the filter changed, or out of order)."""
        # The reader's study stays under the cursor; a cursor still on the top row stays there
        # (a fresh list is read from the top, whatever the PACS sent first).
        selected = self.selected_study() if self.cursor_row > 0 else None
        self.clear()
        for uid in self.ordered():
            if self.matches(uid):
                self._add(self.studies[uid])
        if selected is not None and selected.uid in self.rows:
            self.move_cursor(row=self.get_row_index(selected.uid))

    def selected_study(self) -> StudyRow | None:
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return self.studies.get(str(key)) if key is not None else None

    def counts(self) -> dict[ReportState | None, int]:
        """Studies per report state among the rows (None: all rows)."""
        counter: Counter[ReportState | None] = Counter()
        for uid in self.studies:
            status = self.states.get(uid)
            if status is not None:
                counter[status.state] += 1
        counter[None] = len(self.studies)
        return dict(counter)

    def counts_text(self) -> Text:
        """``All 12  Unreported 3  …`` with the active filter highlighted."""
        counts = self.counts()
        text = Text()
        for label, state in FILTERS:
            if state is ReportState.UNREADABLE and not counts.get(state):
                continue  # shown only when some report could not be read
            style = STATE_STYLES[state] if state is not None else ""
            if state is self.status_filter:
                style = "reverse"
            if text:
                text.append("  ")
            text.append(f"{label} {counts.get(state, 0)}", style=style or "")
        pending = len(self.studies) - sum(v for k, v in counts.items() if k is not None)
        if pending:
            text.append(f"  ({pending} pending)", style="dim")
        return text
