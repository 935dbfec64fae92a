"""Tables of studies: the columns every study list shows, and the table of studies the worklist,
the Inbox and the PACS query share: sorted by a column the reader picks from the keyboard (``<``
``>`` the column, ``S`` the direction, shown ▲/▼ on its header), filtered by report state, its
columns fitted to the width (the less important ones left out on a narrow terminal)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual import events, on
from textual.binding import Binding
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


STATE_ORDER = {state: index for index, state in enumerate(STATE_STYLES)}


@dataclass(frozen=True)
class ColumnFit:
    """How a column takes part in the layout: its narrowest width, and whether it takes a share
    of the room left over (names and descriptions do; dates and counts have one width)."""

    key: str
    width: int
    grows: bool = False


#: The columns a list of studies cannot do without, in order of importance.
REQUIRED = (
    ColumnFit("state", 12),
    ColumnFit("patient", 14),
    ColumnFit("date", 10),
    ColumnFit("mod", 5),
    ColumnFit("desc", 22, grows=True),
)
#: The columns shown when there is room, the most useful first.
OPTIONAL = (
    ColumnFit("id", 10),
    ColumnFit("images", 4),
    ColumnFit("series", 3),
    ColumnFit("acc", 10),
    ColumnFit("birth", 10),
)
PATIENT_WIDEST = 30
"""The patient column is as wide as the longest name shown, up to this."""
MOD_WIDEST = 8
"""The modality column is as wide as the longest modalities shown ("CT/MR/SR"), up to this."""
PADDING = 2
"""A DataTable cell's padding, both sides together."""


def fit_columns(
    width: int, required: Sequence[ColumnFit], optional: Sequence[ColumnFit]
) -> dict[str, int]:
    """The width of each column shown in ``width`` cells: every required column, then the
    optional ones in order while they fit, the room left to the growing columns (the
    description: it is the value most often longer than its column)."""
    chosen = list(required)
    used = sum(c.width + PADDING for c in chosen)
    for column in optional:
        if used + column.width + PADDING > width:
            break  # a later, smaller column is not worth more than the description's room
        chosen.append(column)
        used += column.width + PADDING
    widths = {c.key: c.width for c in chosen}
    spare = max(0, width - used)
    growing = [c.key for c in chosen if c.grows]
    for key in growing:
        share = spare // len(growing) if key != growing[-1] else spare
        widths[key] += share
        spare -= share
    order = [key for key in ("state", *(k for k, _, _ in STUDY_COLUMNS)) if key in widths]
    extras = [c.key for c in chosen if c.key not in order]
    return {key: widths[key] for key in (*order, *extras)}


class StudyTable(DataTable[Any]):
    """Studies, one row per study with its report state, newest first unless sorted otherwise.

    ``studies`` and ``states`` are the screen's: rows are kept for every study of the last
    answer (also those the state filter hides), states for every study seen (priors too).
    A subclass adds columns after the study columns: :attr:`EXTRA_COLUMNS` and
    :meth:`extra_cells`. ``show_state=False`` leaves the report state out (the PACS query).
    """

    BINDINGS = [
        Binding("greater_than_sign", "sort(1)", "Sort →", show=False),
        Binding("less_than_sign", "sort(-1)", "Sort ←", show=False),
        Binding("S", "reverse_sort", "Reverse sort", show=False),
    ]
    EXTRA_COLUMNS: ClassVar[tuple[ColumnFit, ...]] = ()
    """Columns a subclass adds after :data:`STUDY_COLUMNS`, the first to show when there is
    room for more than the required ones."""
    LABELS: ClassVar[dict[str, str]] = {"state": "Report"}
    """Headers of the columns that are not in :data:`STUDY_COLUMNS`."""

    def __init__(
        self,
        studies: MutableMapping[str, StudyRow],
        states: Mapping[str, StudyStatus],
        *,
        show_state: bool = True,
        sort_key: str | None = "date",
        id: str | None = None,  # noqa: A002
    ) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.studies = studies
        self.states = states
        self.show_state = show_state
        self.status_filter: ReportState | None = None
        self.sort_key = sort_key
        """The column the rows are sorted by (None: in the order the PACS sent them)."""
        self.sort_reverse = sort_key == "date"
        self.widths: dict[str, int] = {}
        """The columns shown and their widths (they follow the table's width)."""

    # ---- columns ----------------------------------------------------------------------------
    def patient_width(self) -> int:
        """As wide as the longest name listed, at least 14 and at most :data:`PATIENT_WIDEST`."""
        names = (len(study_cells(row)[0]) for row in self.studies.values())
        return min(PATIENT_WIDEST, max(14, *names, 0))

    def modality_width(self) -> int:
        """As wide as the longest modalities listed ("RTPLAN", "CT/SR"), 5 to :data:`MOD_WIDEST`."""
        listed = (len("/".join(row.modalities)) for row in self.studies.values())
        return min(MOD_WIDEST, max(5, *listed, 0))

    def fit(self, width: int) -> dict[str, int]:
        """The columns to show in ``width`` cells (the patient's as wide as the longest name,
        the modality's as wide as the longest modalities)."""
        fitted = {
            "patient": ColumnFit("patient", self.patient_width()),
            "mod": ColumnFit("mod", self.modality_width()),
        }
        required = [fitted.get(c.key, c) for c in REQUIRED]
        if not self.show_state:
            required = required[1:]
        elif width >= 100:
            required[0] = ColumnFit("state", STATE_WIDTH)
        return fit_columns(width - 2, required, [*self.EXTRA_COLUMNS, *OPTIONAL])

    def refit(self) -> None:
        """Fit the columns again to the rows now listed (after a refresh)."""
        widths = self.fit(self.size.width or self.app.size.width)
        if widths != self.widths:
            self.lay_out(widths)

    def label(self, key: str) -> Text:
        """A column's header, with ▲ or ▼ when the rows are sorted by it."""
        text = Text(self.LABELS.get(key) or next(h for k, h, _ in STUDY_COLUMNS if k == key))
        if key == self.sort_key:
            text.append(" ▼" if self.sort_reverse else " ▲", style="bold")
        return text

    def on_mount(self) -> None:
        self.lay_out(self.fit(self.size.width or self.app.size.width))

    def on_resize(self, event: events.Resize) -> None:
        widths = self.fit(event.size.width)
        if widths != self.widths:
            self.lay_out(widths)

    def lay_out(self, widths: dict[str, int]) -> None:
        """The columns ``widths`` says, their headers, and every row again."""
        self.widths = widths
        selected = self.selected_study()
        self.clear(columns=True)
        for key, width in widths.items():
            self.add_column(self.label(key), key=key, width=width)
        self.rebuild(keep=selected)

    def extra_cells(self, row: StudyRow) -> tuple[Text, ...]:
        """The cells of :attr:`EXTRA_COLUMNS` for ``row``."""
        return ()

    def cells(self, row: StudyRow) -> dict[str, Text]:
        """Every cell of ``row`` by column key (shown or not)."""
        keys = [k for k, _, _ in STUDY_COLUMNS]
        values = dict(zip(keys, study_cells(row), strict=True))
        values["state"] = state_cell(self.states.get(row.uid))
        extras = [c.key for c in self.EXTRA_COLUMNS]
        values.update(zip(extras, self.extra_cells(row), strict=True))
        return values

    def set_cell(self, uid: str, key: str, value: Text) -> None:
        """Change a cell if its column is shown."""
        if key in self.widths and uid in self.rows:
            self.update_cell(uid, key, value)

    # ---- rows -------------------------------------------------------------------------------
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
                    for key, value in self.cells(row).items():
                        if key != "state":
                            self.set_cell(row.uid, key, value)
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
                self.set_cell(uid, "state", state_cell(status))
            else:
                self.remove_row(uid)
        elif uid in self.studies and self.matches(uid):
            self._add(self.studies[uid])

    def _add(self, row: StudyRow) -> None:
        if self.widths:
            values = self.cells(row)
            self.add_row(*(values[key] for key in self.widths), key=row.uid)

    def _sort_value(self, row: StudyRow) -> Any:
        if self.sort_key == "state":
            status = self.states.get(row.uid)
            return -1 if status is None else STATE_ORDER[status.state]
        getter = next((g for k, _, g in STUDY_COLUMNS if k == self.sort_key), None)
        return getter(row) if getter is not None else 0

    def ordered(self) -> list[str]:
        """Study UIDs in the order shown (as they arrived when not sorted)."""
        if self.sort_key is None:
            return list(self.studies)
        rows = sorted(self.studies.values(), key=self._sort_value, reverse=self.sort_reverse)
        return [row.uid for row in rows]

    def newest_first(self) -> None:
        """Back in order after rows arrived. (DataTable.sort hands its key function cell
        values, not row keys, and the time is in no cell: the rows are laid out again when out
        of order.)"""
        shown = [str(key.value) for key in self.rows]
        wanted = [uid for uid in self.ordered() if uid in set(shown)]
        if shown != wanted:
            self.rebuild()
        self.refit()

    def rebuild(self, keep: StudyRow | None = None) -> None:
        """Lay the rows out again (after the filter changed, or out of order)."""
        # The reader's study stays under the cursor; a cursor still on the top row stays there
        # (a fresh list is read from the top, whatever the PACS sent first).
        selected = keep or (self.selected_study() if self.cursor_row > 0 else None)
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

    # ---- sorting ----------------------------------------------------------------------------
    def sort_by(self, key: str, *, reverse: bool | None = None) -> None:
        """Sort by column ``key``; the same column again reverses the order."""
        if reverse is None:
            reverse = not self.sort_reverse if key == self.sort_key else key == "date"
        self.sort_key, self.sort_reverse = key, reverse
        self.lay_out(self.widths)
        order = "descending" if reverse else "ascending"
        self.notify(f"Sorted by {self.label(key).plain.rstrip(' ▲▼')} ({order})")

    def action_sort(self, step: int) -> None:
        """Sort by the next (``1``) or previous (``-1``) column shown; the first sort is by
        study date, newest first."""
        keys = list(self.widths)
        if self.sort_key not in keys:
            key = "date"
        else:
            key = keys[(keys.index(self.sort_key) + step) % len(keys)]
        self.sort_by(key, reverse=key == "date")

    def action_reverse_sort(self) -> None:
        self.sort_by(self.sort_key or "date", reverse=not self.sort_reverse)

    @on(DataTable.HeaderSelected)
    def _header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.sort_by(str(event.column_key.value))

    # ---- counts -----------------------------------------------------------------------------
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
