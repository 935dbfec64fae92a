"""The worklist's feed: one refresh at a time of the studies on the PACS and their report states.

A widget without a look of its own: it runs the query in a worker, posts the studies in batches
as the PACS answers (:class:`WorklistFeed.RowsFound`), then when the list is complete
(:class:`WorklistFeed.ListFinished`), then the report states as they are worked out
(:class:`~tuiviewer.messages.StatesFound`) and their end (:class:`WorklistFeed.StatesFinished`).
A new refresh cancels the one still running; messages of an old one carry its ``refresh_id``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from textual import work
from textual.message import Message
from textual.widget import Widget
from textual.worker import get_current_worker

from tuiviewer.config.nodes import Node
from tuiviewer.dicom.rows import StudyRow
from tuiviewer.exceptions import TuiviewerError
from tuiviewer.messages import StatesFound
from tuiviewer.net.transport import find_rows
from tuiviewer.services.batches import BATCH_S, batched
from tuiviewer.services.worklist import PACS_DOWN, WorklistQuery, merge_answers, report_states
from tuiviewer.store import LocalStore


class WorklistFeed(Widget):
    """Runs the worklist's refreshes and posts what they find."""

    DEFAULT_CSS = "WorklistFeed { display: none; }"

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

    def __init__(self) -> None:
        super().__init__()
        self.refresh_id = 0
        self.refreshing = False
        """A refresh (query and report states) is running."""
        self.started = 0.0
        self.received = 0
        self.first_rows_s: float | None = None
        """Seconds from the start of the last refresh to its first rows (for the benchmark)."""

    def start(self, node: Node, query: WorklistQuery, store: LocalStore) -> None:
        """Ask the PACS again (cancels a refresh still running)."""
        self.refresh_id += 1
        self.refreshing = True
        self.first_rows_s = None
        self.received = 0
        self.started = time.monotonic()
        self.run_refresh(node, query, store, self.refresh_id)

    def rows_arrived(self, count: int) -> None:
        """The screen shows ``count`` more rows of the current refresh."""
        if self.first_rows_s is None:
            self.first_rows_s = time.monotonic() - self.started
        self.received += count

    @work(thread=True, exclusive=True, exit_on_error=False, group="worklist", description="List")
    def run_refresh(
        self, node: Node, query: WorklistQuery, store: LocalStore, refresh_id: int
    ) -> None:
        cancel: threading.Event = get_current_worker().cancelled_event
        started = time.monotonic()
        found: dict[str, StudyRow] = {}

        def new_rows() -> Iterator[StudyRow]:
            for row in find_rows(node, query.to_find_query(), cancel=cancel):
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
