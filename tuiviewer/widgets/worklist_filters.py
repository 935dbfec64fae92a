"""The worklist's filter bar: the date window and modality the PACS applies, and the
report-state filter the table applies.

It starts from the view remembered from the last launch and, when asked to, keeps what the
reader sets for the next one (worklist.json). Enter in a field posts :class:`Submitted`; a new
report-state filter posts :class:`StatusChanged`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Input, Select

from tuiviewer.exceptions import SaveError
from tuiviewer.services.worklist import ReportState, WorklistQuery, WorklistView, save_view
from tuiviewer.widgets.study_table import FILTERS


def parse_day(text: str, what: str) -> dt.date | None:
    """``YYYYMMDD`` (or ``YYYY-MM-DD``) as a date, None when blank. :raises ValueError:"""
    value = text.strip().replace("-", "")
    if not value:
        return None
    try:
        if len(value) != 8 or not value.isdigit():
            raise ValueError
        return dt.datetime.strptime(value, "%Y%m%d").date()
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a date of the form YYYYMMDD.") from None


class WorklistFilters(Horizontal):
    """From, To, Modality and the report-state filter, on one line."""

    class Submitted(Message):
        """Enter in a field: the PACS is to be asked again with these criteria."""

    @dataclass
    class StatusChanged(Message):
        """The report-state filter changed (None: every study)."""

        state: ReportState | None

    def __init__(self, view: WorklistView, *, remembers: bool, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.view = view
        """The date window and filters of the last launch (config dir, worklist.json)."""
        self.remembers = remembers
        self._unsaved_said = False

    def compose(self) -> ComposeResult:
        start, end = self.view.window()
        yield Input(f"{start:%Y%m%d}" if start else "", placeholder="From YYYYMMDD", id="wl-from")
        yield Input(f"{end:%Y%m%d}" if end else "", placeholder="To YYYYMMDD", id="wl-to")
        yield Input(self.view.modality, placeholder="Modality", id="wl-modality")
        yield Select[str](
            [(label, label.lower()) for label, _ in FILTERS],
            value=self.view.status,
            allow_blank=False,
            id="wl-status-filter",
            compact=True,
        )

    @property
    def status_value(self) -> str:
        """The report-state filter's label in lower case (``all``, ``unreported``…)."""
        value = self.query_one("#wl-status-filter", Select).value
        return value if isinstance(value, str) else "all"

    @property
    def status(self) -> ReportState | None:
        """The report-state filter (None: every study)."""
        value = self.status_value if self.is_mounted else self.view.status
        return next((state for label, state in FILTERS if label.lower() == value), None)

    def build_query(self) -> WorklistQuery:
        """The filters the PACS applies. :raises ValueError: a date is invalid."""
        start = parse_day(self.query_one("#wl-from", Input).value, "From date")
        end = parse_day(self.query_one("#wl-to", Input).value, "To date")
        modality = self.query_one("#wl-modality", Input).value
        query = WorklistQuery(start, end, modality)
        query.to_find_query()  # validates the range
        return query

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(self.Submitted())
        self.remember()

    @on(Select.Changed, "#wl-status-filter")
    def _status_changed(self, event: Select.Changed) -> None:
        event.stop()
        self.post_message(self.StatusChanged(self.status))
        if self.status_value != self.view.status:
            self.remember()

    def cycle_status(self, counts: Mapping[ReportState | None, int]) -> None:
        """Next status filter: all → unreported → draft → preliminary → final → all (and
        "unreadable report" when some report could not be read)."""
        values = [
            label.lower()
            for label, state in FILTERS
            if state is not ReportState.UNREADABLE or counts.get(state)
        ]
        current = self.status_value
        at = values.index(current) if current in values else -1
        self.query_one("#wl-status-filter", Select).value = values[(at + 1) % len(values)]

    def remember(self) -> None:
        """Keep the date window and filters for the next launch (worklist.json)."""
        if not self.remembers:
            return
        try:
            query = self.build_query()
        except ValueError:
            return  # the status line says what is wrong; the last good view stays
        self.view = WorklistView.of(
            query.date_from, query.date_to, query.modality, self.status_value
        )
        try:
            save_view(self.view)
        except SaveError as exc:
            if not self._unsaved_said:
                self._unsaved_said = True
                self.notify(
                    f"The worklist filters cannot be kept for next time: {exc.message}",
                    severity="warning",
                )
