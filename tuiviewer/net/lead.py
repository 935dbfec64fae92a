"""The lead: the first instances of a study fetched while the PACS still lists it.

A PACS's image-level C-FIND of a large study can take a second; the reader should see the
first slice before it ends. The lead asks for each instance as its C-FIND answer comes, on
its own association (a warm one when the worklist opened it ahead), and hands what it brought
to the ordinary retrieve, which does not ask for it again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pynetdicom import evt

from tuiviewer.config.nodes import Node
from tuiviewer.net.association import MAX_CONTEXTS, require_context
from tuiviewer.net.errors import DimseStatusError, NetError
from tuiviewer.net.execute import _Lane
from tuiviewer.net.find import _CancelWatcher
from tuiviewer.net.follow import ReaderFocus
from tuiviewer.net.inventory import InstanceInfo, StudyInventory
from tuiviewer.net.move import Expected, InstanceWriter
from tuiviewer.net.request import (
    _QR_SYNTAXES,
    GET_MODEL,
    RetrieveProgress,
    _identifier,
    _image_refused,
    _Request,
    _Run,
    _run_request,
    _storage_contexts,
)
from tuiviewer.net.sopclasses import scp_roles
from tuiviewer.net.trace import AssociationTrace
from tuiviewer.net.warm import available, held_or_new, release_idle, warm_up
from tuiviewer.store import LocalStore

#: first pixel): a few, so that the follower takes over soon after the list is whole.
LEAD_PER_REQUEST = 4
#: Seconds the lead waits after the C-FIND's first answer before its first request, so that
#: it asks for the lowest Instance Number listed by then (the top of the stack, when the
#: PACS lists quickly) and not whatever the PACS happened to list first. A whole list within
#: it leaves the work to the follower, which starts at the top, so the wait is only this long
#: for a long or slow list. 0.15 s was too short on a busy machine: the viewer opened on slice
#: 2 or 3 of 12 (test_arriving_study failed 2 of 4 beside a CI run).
LEAD_GRACE_S = 0.4


def lead_contexts(deflate: bool) -> tuple[list[tuple[str, list[str]]], list[Any]]:
    """The lead's presentation contexts and roles: C-GET and the broad storage set (it asks
    before the C-FIND has said which classes the study holds)."""
    storage = _storage_contexts(None, [], MAX_CONTEXTS - 1, deflate)
    return [(GET_MODEL, _QR_SYNTAXES), *storage], scp_roles(uid for uid, _ in storage)


def warm_for_retrieve(node: Node, associations: int) -> bool:
    """Open the association Enter's retrieve will lead with (:mod:`tuiviewer.net.warm`), when
    ``node`` retrieves by C-GET and may have ``associations`` >= 2 of ours at once (the
    listing of a rest on the row holds the other). True when one is warm or warming."""
    if node.kind != "dimse" or node.retrieve != "get" or associations < 2:
        return False
    contexts, roles = lead_contexts(node.accept_deflated)
    return warm_up(node, contexts, roles)


@dataclass
class _SignalledTrace(AssociationTrace):
    """A trace that says when its association sent its first request (it is up)."""

    up: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    def on_dimse_sent(self, message: Any) -> None:
        super().on_dimse_sent(message)
        self.up.set()


class _Lead:
    """The first series' first instances, fetched while the image-level C-FIND of a study
    still answers, so that the reader sees a slice before the PACS has listed the study.

    Its own C-GET association, opened once the C-FIND's is up (a PACS that takes one
    association refuses this one, not the C-FIND's), asks at IMAGE level for the first
    instance listed, then for the next few listed, until the list is whole. It writes through
    the retrieve's writer, so what it brought is neither asked for again nor lost. Whatever goes
    wrong (a refused association, image level refused, nothing sent) leaves the work to the
    ordinary retrieve: the lead's own counts never reach the result.
    """

    def __init__(
        self,
        node: Node,
        study_uid: str,
        store: LocalStore,
        first_series: str | None,
        focus: ReaderFocus,
        progress: Callable[[RetrieveProgress], None] | None,
        cancel: threading.Event | None,
        deflate: bool,
    ) -> None:
        self.node = node
        self.focus = focus
        self.study_uid = study_uid
        self.store = store
        self.series_uid = first_series
        """The series to lead with; None: the first series the C-FIND answers."""
        self.cancel = cancel
        self.deflate = deflate
        self.trace = _SignalledTrace()
        """Give it to the C-FIND: the lead associates once that association is up."""
        self.run = _Run(study_uid, None, progress)
        self.writer = InstanceWriter(store, study_uid, on_written=lambda p, _n: self.run.report(p))
        self.run.writer = self.writer
        self.refused: str | None = None
        """Why the PACS would not retrieve by instance: the retrieve asks for series."""
        self._listed: dict[str, list[InstanceInfo]] = {}
        self._asked: set[str] = set()
        self._ended = False
        self._keep = True
        self._first_listed: float | None = None
        """Hand the association on to the rest of the retrieve (see :meth:`release`)."""
        self.warm = False
        """The lead took a warm association (the C-FIND's may then be refused)."""
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._drive, name="tuiviewer-lead", daemon=True)

    def start(self) -> None:
        self.warm = available(self.node)
        self._thread.start()

    def on_match(self, series_uid: str, info: InstanceInfo) -> None:
        """The C-FIND answered ``info`` (of ``series_uid``)."""
        with self._changed:
            if self.series_uid is None:
                self.series_uid = series_uid
            self._listed.setdefault(series_uid, []).append(info)
            if self._first_listed is None:
                self._first_listed = time.monotonic()
            self.trace.up.set()
            self._changed.notify_all()

    def finish(self) -> InstanceWriter:
        """The list is whole (or will not come): no new request; the one in flight ends. The
        writer, with what the lead brought, is the retrieve's from now on."""
        with self._changed:
            self._ended = True
            self._changed.notify_all()
        self.trace.up.set()
        self._thread.join()
        self.writer.flush()
        return self.writer

    def _next(self) -> _Request | None:
        """The next instances listed and not asked for; None once the list is whole."""
        with self._changed:
            while not self._ended and not (self.cancel is not None and self.cancel.is_set()):
                items = self._listed.get(self.series_uid or "", [])
                if not self._asked and not self.focus.placed:
                    # The top of the stack, if the PACS lists it soon: a moment for more answers.
                    first = self._first_listed
                    left = LEAD_GRACE_S - (time.monotonic() - first) if first else 0.25
                    if left > 0:
                        self._changed.wait(left)
                        continue
                # By Instance Number until the reader is somewhere, then from there.
                order = self.focus.order(self.series_uid or "", items)
                at = self.focus.at(self.series_uid or "")
                if at is not None and at not in self._asked and order[:1] != [at]:
                    order = []  # where the reader is, not listed yet: wait for it
                fresh = [sop for sop in order if sop not in self._asked]
                if fresh:
                    chunk = tuple(fresh[: LEAD_PER_REQUEST if self._asked else 1])
                    self._asked.update(chunk)
                    # Where each slice will lie, as far as the PACS has said.
                    listed = {uid: list(items) for uid, items in self._listed.items()}
                    self.run.inventory = StudyInventory(self.study_uid, listed)
                    return _Request(self.series_uid, chunk, follow_chunk=True)
                self._changed.wait(0.25)  # a cancel is seen within this
        return None

    def release(self) -> None:
        """End now and close the lead's association instead of handing it on: the PACS
        refused the C-FIND's, and may take only one."""
        self._keep = False
        self.finish()
        release_idle(self.node)

    def _drive(self) -> None:
        if not self.warm:  # a PACS that takes one association refuses the lead, not the C-FIND
            self.trace.up.wait(self.node.acse_timeout or 30)
        if self._ended or (self.cancel is not None and self.cancel.is_set()):
            return
        contexts, roles = lead_contexts(self.deflate)
        lane = _Lane(self.run, self.writer, self.study_uid)
        handlers = [(evt.EVT_C_STORE, lane.handle)]
        try:
            with (
                self.store.in_use(self.study_uid),
                held_or_new(
                    self.node, contexts, roles=roles, handlers=handlers, keep=lambda: self._keep
                ) as assoc,
            ):
                require_context(assoc, [GET_MODEL])
                msg_id = 0
                while (request := self._next()) is not None:
                    msg_id += 1
                    lane.expected = Expected(
                        self.study_uid, request.series_uid, frozenset(request.sop_uids)
                    )
                    identifier = _identifier(self.study_uid, request)
                    responses = assoc.send_c_get(identifier, GET_MODEL, msg_id=msg_id)
                    watcher = _CancelWatcher(assoc, GET_MODEL, msg_id, self.cancel)
                    try:
                        outcome = _run_request(assoc, "C-GET", responses, self.run, watcher)
                    finally:
                        watcher.stop()
                    self.writer.flush()
                    if outcome.cancelled:
                        return
                    refused = isinstance(outcome.error, DimseStatusError)
                    if refused or (outcome.error is None and self.run.final.completed == 0):
                        self.refused = _image_refused("C-GET", outcome.error)
                        return
                    if outcome.error is not None:
                        return
        except NetError:
            return  # a second association refused, or the link failed: the retrieve does it
