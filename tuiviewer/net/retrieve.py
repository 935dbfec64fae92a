"""Retrieving a study from a PACS into the local store: C-GET or C-MOVE, series by series.

The flow, and why:

1. An image-level C-FIND lists the study's series, instances and SOP classes. It tells the
   C-GET which storage contexts to propose (a class we fail to offer is silently lost), the
   progress its total, and a resume what is missing. A PACS that will not answer it gets the
   broad fallback set of :mod:`tuiviewer.net.sopclasses`.
2. One association carries one C-GET (or C-MOVE) per series, the one the user opened first,
   so it can be read while the rest arrives (``on_series_done``).
3. Each instance is written to disk the moment it arrives (:class:`~tuiviewer.net.move.
   InstanceWriter`); an association that dies mid-way leaves every instance received so far
   on disk, and :func:`resume_study` fetches only what is missing with image-level requests.

Nothing here imports Textual; ``progress`` is called from worker threads (see retrieve_study).
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import evt

from tuiviewer.config.nodes import Node
from tuiviewer.net.association import MAX_CONTEXTS, associate, check_status, require_context
from tuiviewer.net.errors import (
    AssociationAborted,
    ConnectionFailed,
    DimseStatusError,
    NetError,
    NetTimeout,
    NoAcceptedContext,
    TlsFailed,
    status_meaning,
)
from tuiviewer.net.find import FindQuery, QueryLevel, _CancelWatcher, find
from tuiviewer.net.move import (
    Expected,
    InstanceWriter,
    Refusal,
    StorageScp,
    listen_address,
    peer_addresses,
)
from tuiviewer.net.sopclasses import (
    broad_storage_contexts,
    scp_roles,
    storage_contexts,
)
from tuiviewer.net.tls import server_ssl_context
from tuiviewer.net.trace import AssociationTrace
from tuiviewer.store import LocalStore, foreign_uid, uid_name

#: Study Root Query/Retrieve Information Model - GET and - MOVE (PS3.4 C.6.2).
GET_MODEL = "1.2.840.10008.5.1.4.1.2.2.3"
MOVE_MODEL = "1.2.840.10008.5.1.4.1.2.2.2"
_QR_SYNTAXES = [str(ExplicitVRLittleEndian), str(ImplicitVRLittleEndian)]

#: SOP Instance UIDs per image-level request. A UI element holds at most 65,534 bytes in
#: Explicit VR (2-byte length, PS3.5 7.1.2), i.e. about 1,000 UIDs of 64 characters.
MAX_UIDS_PER_REQUEST = 500

Method = Literal["get", "move"]


@dataclass(frozen=True)
class RetrieveProgress:
    """Where a retrieve stands; sent after every instance written and every pending response."""

    study_uid: str
    series_uid: str
    """The series being retrieved ("" when the whole study is requested at once)."""
    done: int
    """Instances written to disk so far."""
    total: int | None
    """Instances expected (image-level C-FIND, else the PACS's counts); None when unknown."""
    failed: int
    """Sub-operations the PACS reports as failed so far."""
    warning: int
    bytes: int
    """Bytes of data sets received so far."""
    elapsed_s: float
    path: Path | None = None
    """The instance whose commit this report follows (None: a PACS response): a viewer shows
    a series while it arrives from these."""
    inventory: StudyInventory | None = None
    """The study's instances as the C-FIND listed them, where each will lie (None: unknown)."""

    @property
    def mb_per_s(self) -> float:
        """Throughput in megabytes (10^6 bytes) per second."""
        return self.bytes / 1e6 / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the current rate; None until something arrived or without a total."""
        if self.total is None or self.done == 0 or self.elapsed_s <= 0:
            return None
        left = max(self.total - self.done - self.failed, 0)
        return left * self.elapsed_s / self.done


@dataclass(frozen=True)
class RetrieveResult:
    """What a retrieve did. Every file in ``received`` is on disk, whatever else happened."""

    study_uid: str
    series_done: list[str]
    """Series whose request finished (possibly with failed sub-operations), in order."""
    completed: int
    """Sub-operations the PACS reports completed (for C-MOVE: whatever destination)."""
    failed: int
    warning: int
    failed_sops: list[str]
    """SOP Instance UIDs from the PACS's Failed SOP Instance UID List (0008,0058)."""
    received: list[Path]
    cancelled: bool
    error: NetError | None
    """Set when the association died or a request failed after instances had arrived."""
    method: Method = "get"
    total: int | None = None
    """Instances the retrieve asked for (from the image-level C-FIND), None when unknown."""
    bytes: int = 0
    elapsed_s: float = 0.0
    refused: list[Refusal] = field(default_factory=list)
    """Instances we did not keep, and why (disk full, another study, a SOP Instance UID that
    differs from its C-STORE's, beyond the reading limits)."""
    rejected_calls: list[str] = field(default_factory=list)
    """C-MOVE: associations our storage SCP rejected (not the PACS, or not its address)."""
    inventory_used: bool = True
    """False when the image-level C-FIND failed and the broad context set was proposed."""
    notes: list[str] = field(default_factory=list)
    """What the retrieve did differently from what it asked for, and why (a fallback)."""

    @property
    def partial(self) -> bool:
        """True unless every requested instance arrived without failure."""
        return bool(self.failed or self.cancelled or self.error is not None or self.refused) or (
            self.total is not None and len(self.received) < self.total
        )


# --- what the study holds ----------------------------------------------------------------------


@dataclass(frozen=True)
class InstanceInfo:
    """One instance as the image-level C-FIND describes it."""

    sop_uid: str
    sop_class_uid: str
    """"" when the PACS does not return SOP Class UID (pynetdicom's qrscp does not)."""
    transfer_syntaxes: tuple[str, ...] = ()
    """Available Transfer Syntax UID (0008,3002), when the PACS fills it in."""
    number: int | None = None
    """Instance Number, when the PACS returns it: where the instance lies before it arrives."""


@dataclass(frozen=True)
class StudyInventory:
    """The study's series, in the order the PACS listed them, with their instances."""

    study_uid: str
    series: dict[str, list[InstanceInfo]]

    @property
    def count(self) -> int:
        return sum(len(items) for items in self.series.values())

    def classes(self, series_uids: Sequence[str]) -> tuple[dict[str, set[str]], bool]:
        """SOP classes (with known transfer syntaxes) of ``series_uids``, and whether every
        instance's class is known."""
        classes: dict[str, set[str]] = {}
        complete = True
        for uid in series_uids:
            for item in self.series.get(uid, []):
                if not item.sop_class_uid:
                    complete = False
                    continue
                classes.setdefault(item.sop_class_uid, set()).update(item.transfer_syntaxes)
        return classes, complete


def _values(ds: Dataset, keyword: str) -> tuple[str, ...]:
    value = ds.get(keyword)
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return tuple(v for v in value.split("\\") if v)
    return tuple(str(v) for v in value if str(v))


def instance_number(ds: Dataset) -> int | None:
    """A C-FIND answer's Instance Number, None when absent or not a number."""
    try:
        value = ds.get("InstanceNumber")
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def study_inventory(
    node: Node,
    study_uid: str,
    *,
    cancel: threading.Event | None = None,
    trace: AssociationTrace | None = None,
    on_match: Callable[[str, InstanceInfo], None] | None = None,
) -> StudyInventory:
    """List a study's instances with an image-level C-FIND (Study Root); ``on_match`` is
    called with each instance (and its series' UID) as its answer comes.

    Raises:
        NetError: any C-FIND failure (see :func:`tuiviewer.net.find.find`).
    """
    query = FindQuery(
        level=QueryLevel.IMAGE,
        study_uid=study_uid,
        extra={"AvailableTransferSyntaxUID": ""},
    )
    series: dict[str, list[InstanceInfo]] = {}
    seen: set[str] = set()
    for match in find(node, query, cancel=cancel, trace=trace):
        sop = str(match.get("SOPInstanceUID", "") or "")
        series_uid = str(match.get("SeriesInstanceUID", "") or "")
        if not sop or not series_uid or sop in seen:
            continue
        seen.add(sop)
        info = InstanceInfo(
            sop_uid=sop,
            sop_class_uid=str(match.get("SOPClassUID", "") or ""),
            transfer_syntaxes=_values(match, "AvailableTransferSyntaxUID"),
            number=instance_number(match),
        )
        series.setdefault(series_uid, []).append(info)
        if on_match is not None:
            on_match(series_uid, info)
    return StudyInventory(study_uid=study_uid, series=series)


# --- the retrieve itself -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Request:
    """One C-GET/C-MOVE: a series (or the whole study), optionally limited to some instances."""

    series_uid: str | None
    sop_uids: tuple[str, ...] = ()
    ends_series: bool = True
    follow: bool = False
    """Image-level requests, a few instances each, in the order the reader needs them
    (:class:`ReaderFocus`); the series level if the PACS refuses those."""
    follow_chunk: bool = False
    """One of those image-level requests."""


#: Instances per image-level request while a series follows the reader: small enough that
#: the reader's next move is served within a second at a few MB/s, large enough that the
#: request's round trip is a small part of its time.
FOLLOW_PER_REQUEST = 16


class ReaderFocus:
    """Where the reader is in the series being retrieved: each next image-level request starts
    at the slice they look at and goes the way they scroll. Set from the viewer's thread,
    read by the retrieving thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._where: tuple[str, str, int] | None = None

    def set(self, series_uid: str, sop_uid: str, direction: int = 1) -> None:
        """The reader is on ``sop_uid`` of ``series_uid``, moving towards higher Instance
        Numbers (``direction`` 1) or lower (-1)."""
        with self._lock:
            self._where = (series_uid, sop_uid, 1 if direction >= 0 else -1)

    @property
    def placed(self) -> bool:
        """Whether the reader is anywhere yet (a viewer set where)."""
        with self._lock:
            return self._where is not None

    def at(self, series_uid: str) -> str | None:
        """The SOP Instance UID the reader is on in ``series_uid``; None when elsewhere."""
        with self._lock:
            where = self._where
        return where[1] if where is not None and where[0] == series_uid else None

    def order(self, series_uid: str, items: Sequence[InstanceInfo]) -> list[str]:
        """``items`` (SOP Instance UIDs) in the order to fetch them: by Instance Number from
        the reader's slice, first the way they scroll, then the other way."""
        ordered = sorted(
            enumerate(items), key=lambda e: (e[1].number is None, e[1].number or 0, e[0])
        )
        uids = [item.sop_uid for _, item in ordered]
        with self._lock:
            where = self._where
        if where is None or where[0] != series_uid or where[1] not in uids:
            return uids
        at, direction = uids.index(where[1]), where[2]
        if direction > 0:
            return uids[at:] + uids[:at][::-1]
        return uids[at::-1] + uids[at + 1 :]


class _Follower:
    """The image-level requests of one series, each chosen when it is sent."""

    def __init__(
        self,
        series_uid: str,
        items: Sequence[InstanceInfo],
        focus: ReaderFocus,
        have: Collection[str] = (),
    ):
        self.series_uid = series_uid
        self.items = list(items)
        self.left = {item.sop_uid for item in items} - set(have)
        """Not asked for yet (``have``: already in, brought while the C-FIND answered)."""
        self.focus = focus

    def next(self) -> _Request | None:
        if not self.left:
            return None
        order = self.focus.order(self.series_uid, self.items)
        chunk = tuple([sop for sop in order if sop in self.left][:FOLLOW_PER_REQUEST])
        self.left.difference_update(chunk)
        return _Request(self.series_uid, chunk, ends_series=not self.left, follow_chunk=True)


@dataclass
class _Counts:
    completed: int = 0
    failed: int = 0
    warning: int = 0
    remaining: int | None = None


class _Run:
    """State of one retrieve, shared by the response loop and the C-STORE handler."""

    def __init__(
        self,
        study_uid: str,
        total: int | None,
        progress: Callable[[RetrieveProgress], None] | None,
    ) -> None:
        self.study_uid = study_uid
        self.total = total
        self.progress = progress
        self.started = time.monotonic()
        self.final = _Counts()
        self.pending = _Counts()
        self.series_uid = ""
        self.failed_sops: list[str] = []
        self.writer: InstanceWriter | None = None
        self.inventory: StudyInventory | None = None
        self._lock = threading.Lock()

    def report(self, path: Path | None = None) -> None:
        if self.progress is None:
            return
        with self._lock:
            writer = self.writer
            done = len(writer.received) if writer is not None else 0
            total = self.total
            if total is None and self.pending.remaining is not None:
                total = (
                    self.final.completed
                    + self.final.failed
                    + self.final.warning
                    + self.pending.completed
                    + self.pending.failed
                    + self.pending.warning
                    + self.pending.remaining
                )
            snapshot = RetrieveProgress(
                study_uid=self.study_uid,
                series_uid=self.series_uid,
                done=done,
                total=total,
                failed=self.final.failed + self.pending.failed,
                warning=self.final.warning + self.pending.warning,
                bytes=writer.bytes if writer is not None else 0,
                elapsed_s=time.monotonic() - self.started,
                path=path,
                inventory=self.inventory,
            )
        self.progress(snapshot)


def _identifier(study_uid: str, request: _Request) -> Dataset:
    ds = Dataset()
    if request.sop_uids:
        ds.QueryRetrieveLevel = "IMAGE"
    elif request.series_uid:
        ds.QueryRetrieveLevel = "SERIES"
    else:
        ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = study_uid
    if request.series_uid:
        ds.SeriesInstanceUID = request.series_uid
    if request.sop_uids:
        ds.SOPInstanceUID = list(request.sop_uids)
    return ds


def _count(status: Dataset, keyword: str) -> int | None:
    value = status.get(keyword)
    return int(value) if value is not None else None


@dataclass
class _Outcome:
    cancelled: bool = False
    error: NetError | None = None


def _run_request(
    assoc: Any,
    service: str,
    responses: Any,
    run: _Run,
    watcher: _CancelWatcher,
) -> _Outcome:
    """Consume one C-GET/C-MOVE's responses, updating ``run``; raise if the association dies."""
    outcome = _Outcome()
    for status, identifier in responses:
        if watcher.sent and status and "Status" in status:
            category, _ = status_meaning(service, int(status.Status))
        else:
            code = _checked(service, status, assoc)
            category, _ = status_meaning(service, code) if code is not None else ("Failure", "")
        counts = _Counts(
            completed=_count(status, "NumberOfCompletedSuboperations") or 0,
            failed=_count(status, "NumberOfFailedSuboperations") or 0,
            warning=_count(status, "NumberOfWarningSuboperations") or 0,
            remaining=_count(status, "NumberOfRemainingSuboperations"),
        )
        if category == "Pending":
            changed = (counts.failed, counts.warning) != (run.pending.failed, run.pending.warning)
            run.pending = counts
            if changed or run.total is None:
                run.report()
            watcher.poll()
            continue
        run.pending = _Counts()
        run.final.completed += counts.completed
        run.final.failed += counts.failed
        run.final.warning += counts.warning
        if category == "Cancel" or watcher.sent:
            outcome.cancelled = True
        elif identifier is not None:
            run.failed_sops.extend(_values(identifier, "FailedSOPInstanceUIDList"))
        if category == "Failure":
            try:
                check_status(service, status, assoc)
            except DimseStatusError as exc:
                outcome.error = exc
        run.report()
        break
    return outcome


def _checked(service: str, status: Dataset | None, assoc: Any) -> int | None:
    """The status code; failure statuses return their code, lost responses raise."""
    if status is None or "Status" not in status:
        check_status(service, status, assoc)  # raises NetTimeout / AssociationAborted
        return None
    return int(status.Status)


def _plan(
    inventory: StudyInventory | None,
    series_uids: Sequence[str] | None,
    first_series: str | None,
) -> list[_Request]:
    if inventory is not None:
        order = list(series_uids) if series_uids else list(inventory.series)
    else:
        order = list(series_uids) if series_uids else []
    if first_series:
        order = [first_series, *[uid for uid in order if uid != first_series]]
    requests = [_Request(series_uid=uid) for uid in dict.fromkeys(order)]
    if inventory is None and not series_uids:
        # Without a series list, the rest of the study comes in one study-level request.
        requests.append(_Request(series_uid=None))
    return requests


def _resolve_method(node: Node, method: Method | None) -> Method:
    chosen = method or node.retrieve
    if chosen not in ("get", "move"):
        raise ValueError(f"Retrieve method {chosen!r} must be 'get' or 'move'.")
    return chosen


def _storage_contexts(
    inventory: StudyInventory | None, series: Sequence[str], budget: int, deflate: bool
) -> list[tuple[str, list[str]]]:
    if inventory is not None:
        classes, complete = inventory.classes(series)
        if complete and classes and len(classes) <= budget:
            return storage_contexts(classes, budget, deflate=deflate)
        known = list(classes)
    else:
        known = []
    # Classes the C-FIND did report go first so the broad set cannot crowd them out.
    broad = broad_storage_contexts(budget)
    first = [(uid, ts) for uid, ts in broad if uid in known]
    missing = [(uid, list(broad[0][1])) for uid in known if uid not in {u for u, _ in first}]
    rest = [(uid, ts) for uid, ts in broad if uid not in known]
    return [*first, *missing, *rest][:budget]


class _Source:
    """The requests of one retrieve, handed out to one association or several (locked): the
    plan in order, a series that follows the reader one image-level request at a time."""

    def __init__(
        self,
        plan: list[_Request],
        inventory: StudyInventory | None,
        focus: ReaderFocus | None,
        have: Collection[str] = (),
    ) -> None:
        self.have = set(have)
        """Instances already in (the lead's): a follower does not ask for them again."""
        self.queue = deque(plan)
        self.inventory = inventory
        self.focus = focus
        self.follower: _Follower | None = None
        self.out: dict[str, int] = {}
        """Requests handed out and not finished, per series."""
        self.series_done: list[str] = []
        self.notes: list[str] = []
        self._lock = threading.Lock()

    def take(self) -> _Request | None:
        """The next request to send; None when everything was handed out."""
        with self._lock:
            while True:
                if self.follower is not None:
                    request = self.follower.next()
                    if request is None:
                        self.follower = None
                        continue
                elif self.queue:
                    request = self.queue.popleft()
                    if request.follow and self.focus is not None and self.inventory is not None:
                        items = self.inventory.series.get(request.series_uid or "", [])
                        self.follower = _Follower(
                            request.series_uid or "", items, self.focus, self.have
                        )
                        continue
                else:
                    return None
                key = request.series_uid or ""
                self.out[key] = self.out.get(key, 0) + 1
                return request

    def finished(self, request: _Request) -> bool:
        """``request`` ended well; True (once) when that was the last of its series."""
        series = request.series_uid
        with self._lock:
            self.out[series or ""] -= 1
            following = self.follower
            more = bool(following and following.series_uid == series and following.left)
            more = more or any(r.series_uid == series for r in self.queue)
            if not series or more or self.out[series] or series in self.series_done:
                return False
            self.series_done.append(series)
            return True

    def fall_back(self, request: _Request, note: str) -> None:
        """The PACS would not retrieve ``request`` by instance: the rest of its series (and
        what it missed) at series level."""
        with self._lock:
            self.out[request.series_uid or ""] -= 1
            if self.follower is not None and self.follower.series_uid == request.series_uid:
                self.follower = None
                self.queue.appendleft(_Request(request.series_uid))
                self.notes.append(note)


class _Lane:
    """One association of a retrieve: sends what the source hands it, one request at a time;
    what arrives goes to the retrieve's one writer, checked against this lane's request."""

    def __init__(self, run: _Run, writer: InstanceWriter, study_uid: str) -> None:
        self.run = run
        self.writer = writer
        self.expected = Expected(study_uid)
        self.cancelled = False
        self.error: NetError | None = None

    def handle(self, event: Any) -> int | Dataset:
        return self.writer.handle(event, expected=self.expected)

    def drive_own(
        self,
        node: Node,
        contexts: list[tuple[str, list[str]]],
        roles: Any,
        source: _Source,
        cancel: threading.Event | None,
        on_series_done: Callable[[str], None] | None,
        started: threading.Event,
    ) -> None:
        """A second (third...) association of a C-GET, opened once the first instance is in
        (so the reader's first slice does not share the setup); a PACS that will not have it
        leaves the work to the others, and the result says so."""
        started.wait(node.dimse_timeout or 30)
        if cancel is not None and cancel.is_set():
            return
        try:
            handlers = [(evt.EVT_C_STORE, self.handle)]
            with associate(node, contexts, roles=roles, handlers=handlers) as assoc:
                require_context(assoc, [GET_MODEL])
                self.drive(assoc, source, node, "get", cancel, on_series_done)
        except NetError as exc:
            if self.run.final.completed == 0 and self.error is None:
                source.notes.append(
                    f"The PACS did not take a second association ({exc.message.rstrip('.')});"
                    " the retrieve used one."
                )
            elif self.error is None:
                self.error = exc

    def drive(
        self,
        assoc: Any,
        source: _Source,
        node: Node,
        method: Method,
        cancel: threading.Event | None,
        on_series_done: Callable[[str], None] | None,
    ) -> None:
        service = "C-GET" if method == "get" else "C-MOVE"
        model = GET_MODEL if method == "get" else MOVE_MODEL
        run, msg_id = self.run, 0
        while True:
            if cancel is not None and cancel.is_set():
                self.cancelled = True
                return
            request = source.take()
            if request is None:
                return
            msg_id += 1
            asked = _asked(request, source.inventory)
            self.expected = Expected(self.expected.study_uid, request.series_uid, frozenset(asked))
            run.series_uid = request.series_uid or ""
            identifier = _identifier(run.study_uid, request)
            if method == "get":
                responses = assoc.send_c_get(identifier, model, msg_id=msg_id)
            else:
                responses = assoc.send_c_move(identifier, node.calling_aet, model, msg_id=msg_id)
            watcher = _CancelWatcher(assoc, model, msg_id, cancel)
            counted = (replace(run.final), len(run.failed_sops))
            try:
                outcome = _run_request(assoc, service, responses, run, watcher)
            except NetError as exc:
                self.error = exc
                return
            finally:
                watcher.stop()
            if outcome.cancelled:
                self.cancelled = True
                return
            ignored = outcome.error is None and (run.final.completed, run.final.failed) == (
                counted[0].completed,
                counted[0].failed,
            )
            refused = isinstance(outcome.error, DimseStatusError) or ignored
            if request.follow_chunk and refused:
                run.final = counted[0]
                del run.failed_sops[counted[1] :]
                source.fall_back(request, _image_refused(service, outcome.error))
                continue
            if outcome.error is not None:
                self.error = outcome.error
                return
            self.writer.flush()  # the series is on disk before anyone is told
            if source.finished(request) and on_series_done is not None:
                on_series_done(request.series_uid or "")


def _image_refused(service: str, error: NetError | None) -> str:
    """The note of a PACS that would not retrieve by instance."""
    why = error.message if error is not None else "it sent nothing"
    return (
        f"{service} at IMAGE level was refused ({why.rstrip('.')}); the rest of the series was "
        "asked for at SERIES level."
    )


def _execute(
    node: Node,
    study_uid: str,
    *,
    store: LocalStore,
    plan: list[_Request],
    inventory: StudyInventory | None,
    total: int | None,
    method: Method,
    progress: Callable[[RetrieveProgress], None] | None,
    cancel: threading.Event | None,
    trace: AssociationTrace | None,
    on_series_done: Callable[[str], None] | None,
    deflate: bool = False,
    focus: ReaderFocus | None = None,
    associations: int = 1,
    writer: InstanceWriter | None = None,
) -> RetrieveResult:
    """The retrieve of ``plan``; ``writer``: one that already holds instances (the lead's),
    which this retrieve does not ask for again and counts as received."""
    run = _Run(study_uid, total, progress)
    run.inventory = inventory
    notes: list[str] = []
    first_in = threading.Event()

    def written(path: Path, size: int) -> None:
        first_in.set()
        run.report(path)

    have: set[str] = set()
    if writer is None:
        writer = InstanceWriter(store, study_uid, on_written=written)
    else:
        writer.flush()
        have = set(writer.skip)
        writer.on_written = written
        if writer.received:
            first_in.set()
    run.writer = writer
    lane = _Lane(run, writer, study_uid)
    trace = trace if trace is not None else AssociationTrace()
    series_done: list[str] = []
    cancelled = False
    error: NetError | None = None
    model = GET_MODEL if method == "get" else MOVE_MODEL

    if method == "get":
        series = [r.series_uid for r in plan if r.series_uid]
        storage = _storage_contexts(inventory, series, MAX_CONTEXTS - 1, deflate)
        contexts: list[tuple[str, list[str]]] = [(model, _QR_SYNTAXES), *storage]
        roles = scp_roles(uid for uid, _ in storage)
        handlers: list[tuple[Any, ...]] = [(evt.EVT_C_STORE, lane.handle)]
    else:
        contexts, roles, handlers = [(model, _QR_SYNTAXES)], [], []

    with store.in_use(study_uid):
        scp: StorageScp | None = None
        if method == "move":
            scp = StorageScp(
                node.calling_aet,
                node.move_port,
                lane.handle,
                host=listen_address(node),
                # The PACS calls back with the PHI: over TLS too when we call it over TLS.
                ssl_context=server_ssl_context(node.tls) if node.tls is not None else None,
                trace=trace,
                network_timeout=node.network_timeout,
                dimse_timeout=node.dimse_timeout,
                acse_timeout=node.acse_timeout,
                # Only the PACS we move from may deliver: its AE title, from its address.
                peer_aets=[node.ae_title],
                peer_addresses=peer_addresses(node),
                accept_deflated=deflate,
            )
            scp.start()
        source = _Source(plan, inventory, focus, have)
        extras: list[tuple[threading.Thread, _Lane]] = []
        try:
            with associate(node, contexts, trace=trace, roles=roles, handlers=handlers) as assoc:
                require_context(assoc, [model])
                parallel = len(plan) > 1 or any(r.follow for r in plan)
                for _ in range(associations - 1 if method == "get" and parallel else 0):
                    extra = _Lane(_Run(study_uid, total, progress), writer, study_uid)
                    extra.run.writer = writer
                    thread = threading.Thread(
                        target=extra.drive_own,
                        args=(node, contexts, roles, source, cancel, on_series_done, first_in),
                        name="tuiviewer-retrieve-lane",
                        daemon=True,
                    )
                    thread.start()
                    extras.append((thread, extra))
                lane.drive(assoc, source, node, method, cancel, on_series_done)
                first_in.set()  # nothing came, or all was handed out: the others need not wait
                for thread, _extra in extras:
                    thread.join()
        finally:
            first_in.set()
            for thread, _extra in extras:
                thread.join()
            cancelled = lane.cancelled or any(extra.cancelled for _, extra in extras)
            error = lane.error or next((e.error for _, e in extras if e.error), None)
            for _thread, extra in extras:
                run.final.completed += extra.run.final.completed
                run.final.failed += extra.run.final.failed
                run.final.warning += extra.run.final.warning
                run.failed_sops.extend(extra.run.failed_sops)
            series_done.extend(source.series_done)
            notes.extend(source.notes)
            if scp is not None:
                scp.stop()
            writer.close()

    received = list(writer.received)
    if error is not None and scp is not None and scp.tls_failures:
        error = _tls_hint(error, node, scp)
    if error is not None and not received and run.final.completed == 0:
        # Nothing arrived: there is no partial result to hand back, only the failure.
        if method == "move" and isinstance(error, DimseStatusError):
            raise _move_hint(error, node) from None
        raise error
    return RetrieveResult(
        study_uid=study_uid,
        series_done=series_done,
        completed=run.final.completed,
        failed=run.final.failed,
        warning=run.final.warning,
        failed_sops=list(dict.fromkeys(run.failed_sops)),
        received=received,
        cancelled=cancelled,
        error=error,
        method=method,
        total=total,
        bytes=writer.bytes,
        elapsed_s=time.monotonic() - run.started,
        refused=list(writer.refused),
        rejected_calls=list(scp.rejections) if scp is not None else [],
        inventory_used=inventory is not None,
        notes=notes,
    )


def _asked(request: _Request, inventory: StudyInventory | None) -> tuple[str, ...]:
    """The instances a request asks for: named ones, else the series' from the C-FIND."""
    if request.sop_uids:
        return request.sop_uids
    if inventory is not None and request.series_uid:
        return tuple(item.sop_uid for item in inventory.series.get(request.series_uid, []))
    return ()


def _tls_hint(error: NetError, node: Node, scp: StorageScp) -> TlsFailed:
    """The C-MOVE failed after the PACS could not connect back over TLS: say that first.

    OpenSSL's reason tells who refused whom: "wrong version number" is a plain DICOM
    A-ASSOCIATE-RQ where a ClientHello belongs; an "alert" is the PACS refusing our
    certificate (Orthanc answers "unsupported certificate" when it lacks serverAuth); a
    failed verification or a missing certificate is us refusing the PACS's.
    """
    failure = scp.tls_failures[0]
    ours = str(node.tls.cert_file) if node.tls is not None and node.tls.cert_file else "ours"
    if "wrong version number" in failure or "http request" in failure:
        advice = (
            f"the PACS connected without TLS: configure {node.calling_aet!r} there as a "
            "C-MOVE destination with DICOM TLS"
        )
    elif " alert " in failure:
        advice = (
            f"the PACS refused our certificate {ours!r}: it must be signed by a CA the PACS "
            "trusts and, if it lists extended key usages, allow serverAuth as well as "
            "clientAuth"
        )
    elif "verify failed" in failure or "did not return a certificate" in failure:
        advice = (
            "we refused the PACS's client certificate: it must be signed by the CA in the "
            "node's ca_file"
        )
    else:
        advice = (
            f"configure {node.calling_aet!r} on the PACS as a C-MOVE destination with DICOM "
            "TLS and a client certificate signed by the CA in the node's ca_file"
        )
    return TlsFailed(
        f"{node.describe()} could not deliver the C-MOVE to our storage SCP on "
        f"{scp.where}, which accepts DICOM TLS only: {failure}; {advice}. {error.message}"
    )


def _move_hint(error: DimseStatusError, node: Node) -> DimseStatusError:
    """Say what a refused C-MOVE usually means: the PACS does not know us as a destination.

    pynetdicom's qrscp answers 0xA801 (Move destination unknown); Orthanc 1.10 answers a bare
    0xC000 for the same mistake, so the hint is given for any failure with nothing moved.
    """
    where = f"this computer's address and port {node.move_port}"
    if error.code == 0xA801:
        hint = (
            f" The PACS does not know {node.calling_aet!r} as a C-MOVE destination: add it "
            f"there with {where}, where tuiviewer listens during the retrieve."
        )
    else:
        hint = (
            f" If the PACS does not know {node.calling_aet!r} as a C-MOVE destination (some "
            f"PACS, Orthanc for one, answer 0xC000 then), add it there with {where}."
        )
    return DimseStatusError(
        error.message + hint, code=error.code, meaning=error.meaning, category=error.category
    )


def _inventory_or_none(
    node: Node,
    study_uid: str,
    cancel: threading.Event | None,
    trace: AssociationTrace | None,
    on_match: Callable[[str, InstanceInfo], None] | None = None,
) -> StudyInventory | None:
    """The inventory, or None when the PACS will not answer an image-level C-FIND (or finds
    nothing: some PACS answer image-level queries only within a series).

    Connection-level failures are raised: the retrieve would fail the same way.
    """
    try:
        return study_inventory(node, study_uid, cancel=cancel, trace=trace, on_match=on_match)
    except (DimseStatusError, NoAcceptedContext):
        return None


# --- the lead: the first instances while the C-FIND still answers ---------------------------

#: Instances per request of the lead after its first (which asks for one alone, the reader's
#: first pixel): a few, so that the follower takes over soon after the list is whole.
LEAD_PER_REQUEST = 4


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
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._drive, name="tuiviewer-lead", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def on_match(self, series_uid: str, info: InstanceInfo) -> None:
        """The C-FIND answered ``info`` (of ``series_uid``)."""
        with self._changed:
            if self.series_uid is None:
                self.series_uid = series_uid
            self._listed.setdefault(series_uid, []).append(info)
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
                # In the order listed, until the reader is somewhere (then from there).
                at = self.focus.at(self.series_uid or "")
                if not self.focus.placed:
                    order = [item.sop_uid for item in items]
                elif at is not None and at not in self._asked:
                    order = self.focus.order(self.series_uid or "", items)
                    order = order if order[:1] == [at] else []  # not listed yet: wait for it
                else:
                    order = self.focus.order(self.series_uid or "", items)
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

    def _drive(self) -> None:
        self.trace.up.wait(self.node.acse_timeout or 30)
        if self._ended or (self.cancel is not None and self.cancel.is_set()):
            return
        storage = _storage_contexts(None, [], MAX_CONTEXTS - 1, self.deflate)
        contexts: list[tuple[str, list[str]]] = [(GET_MODEL, _QR_SYNTAXES), *storage]
        lane = _Lane(self.run, self.writer, self.study_uid)
        handlers = [(evt.EVT_C_STORE, lane.handle)]
        roles = scp_roles(uid for uid, _ in storage)
        try:
            with (
                self.store.in_use(self.study_uid),
                associate(self.node, contexts, roles=roles, handlers=handlers) as assoc,
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


def retrieve_study(
    node: Node,
    study_uid: str,
    *,
    store: LocalStore,
    series_uids: Sequence[str] | None = None,
    first_series: str | None = None,
    method: Method | None = None,
    progress: Callable[[RetrieveProgress], None] | None = None,
    cancel: threading.Event | None = None,
    trace: AssociationTrace | None = None,
    find_trace: AssociationTrace | None = None,
    on_series_done: Callable[[str], None] | None = None,
    accept_deflated: bool | None = None,
    focus: ReaderFocus | None = None,
    associations: int = 1,
    inventory: StudyInventory | None = None,
) -> RetrieveResult:
    """Retrieve a study (or some of its series) into ``store``, series by series.

    Args:
        node: the PACS.
        study_uid: Study Instance UID.
        store: where instances are written (``<study>/<series>/<sop>.dcm``, 0600 in 0700).
        series_uids: only these series (default: every series of the study).
        first_series: retrieved before the others (e.g. the one the user opened).
        method: ``"get"`` (C-GET) or ``"move"`` (C-MOVE to our storage SCP on
            ``node.move_port``, with our calling AE title as destination; the SCP accepts
            only DICOM TLS when the node has TLS settings, and listens on loopback when the
            PACS is on this computer); default ``node.retrieve``.
        progress: called after every instance written and every pending response that changes
            the failure counts, from the store's commit thread or the retrieving thread.
        cancel: set it to send C-CANCEL; the result then says ``cancelled`` and keeps what
            arrived.
        trace: filled with the C-GET/C-MOVE association (and for C-MOVE our storage SCP's
            incoming associations and C-STOREs).
        find_trace: filled with the image-level C-FIND association.
        on_series_done: called with each series' UID once its request finished.
        accept_deflated: offer (C-GET) or accept (C-MOVE) Deflated Explicit VR Little Endian;
            default ``node.accept_deflated``. Deflated instances are inflated within the
            reading limits as they arrive, and refused (and quarantined) beyond them.
        focus: the first series comes by image-level requests of
            :data:`FOLLOW_PER_REQUEST` instances, each starting where the reader is (set it
            from the viewer); a PACS that refuses them gets the series level for the rest
            (``result.notes`` says so). Needs the image-level C-FIND's list.
        associations: C-GET on up to this many associations at once, each taking the next
            request (a PACS that refuses the second leaves one; ``result.notes`` says so).
        inventory: the study's image-level C-FIND, asked for moments ago (while the reader
            rested on its row): not asked again, so the first C-GET goes out at once.

    Returns:
        What arrived, the PACS's sub-operation counts and failed instances, and the error
        (``result.error``) if the association died or a request failed mid-way.

    Raises:
        InvalidUIDError: ``study_uid`` (or a series UID) is empty or not an identifier.
        NetError: the retrieve could not start (connection, association, TLS, no Q/R
            context), or it failed before any instance arrived (e.g. 0xA801 "Move
            destination unknown", an abort before the first instance).
        TlsFailed: (a NetError) also when the PACS could not connect back to our storage
            SCP over TLS for a C-MOVE; the message gives the handshake's reason.
    """
    foreign_uid(study_uid, "Study Instance UID")
    for uid in [*(series_uids or ()), *([first_series] if first_series else [])]:
        foreign_uid(uid, "Series Instance UID")
    chosen = _resolve_method(node, method)
    deflate = node.accept_deflated if accept_deflated is None else accept_deflated
    lead: _Lead | None = None
    listed = inventory
    if listed is not None:
        pass  # asked for moments ago
    elif focus is not None and not focus.placed and chosen == "get" and not series_uids:
        # Nobody reads yet (the viewer waits for its first slice): no need to wait for the
        # whole list before fetching the first instance.
        lead = _Lead(node, study_uid, store, first_series, focus, progress, cancel, deflate)
        lead.start()
    try:
        inventory = listed or _inventory_or_none(
            node,
            study_uid,
            cancel,
            find_trace or (lead.trace if lead is not None else None),
            on_match=lead.on_match if lead is not None else None,
        )
    finally:
        writer = lead.finish() if lead is not None else None
        if writer is not None and sys.exc_info()[0] is not None:
            writer.close()  # the C-FIND failed: what the lead brought stays on disk
    found_nothing = inventory is not None and not inventory.series
    if found_nothing:
        inventory = None
    plan = _plan(inventory, series_uids, first_series)
    refused = lead.refused if lead is not None else None
    if focus is not None and plan and plan[0].series_uid and refused is None:
        plan[0] = replace(plan[0], follow=True)
    total: int | None = None
    if inventory is not None:
        total = sum(len(inventory.series.get(r.series_uid or "", [])) for r in plan)
    try:
        result = _execute(
            node,
            study_uid,
            store=store,
            plan=plan,
            inventory=inventory,
            total=total,
            method=chosen,
            progress=progress,
            cancel=cancel,
            trace=trace,
            on_series_done=on_series_done,
            deflate=deflate,
            focus=focus,
            associations=associations,
            writer=writer,
        )
        if refused is not None:
            result.notes.insert(0, refused)
        if lead is not None:  # what it brought counts; what it missed was asked for again
            done = lead.run.final
            result = replace(
                result,
                completed=result.completed + done.completed,
                warning=result.warning + done.warning,
            )
        return result
    except DimseStatusError as exc:
        if not found_nothing:
            raise
        # Orthanc answers a bare 0xC000 for a study it does not hold; say what we know.
        raise DimseStatusError(
            f"{exc.message} Its image-level C-FIND found no instance of study {study_uid} "
            "either: the PACS probably does not hold that study.",
            code=exc.code,
            meaning=exc.meaning,
            category=exc.category,
        ) from None


def resume_study(
    node: Node,
    study_uid: str,
    *,
    store: LocalStore,
    series_uids: Sequence[str] | None = None,
    method: Method | None = None,
    progress: Callable[[RetrieveProgress], None] | None = None,
    cancel: threading.Event | None = None,
    trace: AssociationTrace | None = None,
    find_trace: AssociationTrace | None = None,
    on_series_done: Callable[[str], None] | None = None,
    accept_deflated: bool | None = None,
) -> RetrieveResult:
    """Fetch only the instances of a study that are not in ``store`` yet.

    An image-level C-FIND lists the study; what ``store.instance_uids`` lacks is requested
    with image-level C-GETs (or C-MOVEs) naming the missing SOP Instance UIDs, at most
    :data:`MAX_UIDS_PER_REQUEST` per request, one series after the other. ``total`` in the
    result and progress is the number of missing instances. ``accept_deflated`` as for
    :func:`retrieve_study`.

    Raises:
        NetError: as :func:`retrieve_study`; also when the PACS does not answer the
            image-level C-FIND, since then nothing tells what is missing.
    """
    foreign_uid(study_uid, "Study Instance UID")
    chosen = _resolve_method(node, method)
    try:
        inventory = study_inventory(node, study_uid, cancel=cancel, trace=find_trace)
    except (DimseStatusError, NoAcceptedContext) as exc:
        raise type(exc)(
            f"Cannot resume study {study_uid}: {exc.message} Without an image-level C-FIND "
            "nothing tells which instances are missing; retrieve the whole study again.",
            *_error_args(exc),
        ) from exc
    have = store.instance_uids(study_uid)
    wanted = list(series_uids) if series_uids else list(inventory.series)
    plan: list[_Request] = []
    for series in wanted:
        missing = [
            i.sop_uid for i in inventory.series.get(series, []) if uid_name(i.sop_uid) not in have
        ]
        chunks = [
            missing[start : start + MAX_UIDS_PER_REQUEST]
            for start in range(0, len(missing), MAX_UIDS_PER_REQUEST)
        ]
        for index, chunk in enumerate(chunks):
            plan.append(_Request(series, tuple(chunk), ends_series=index == len(chunks) - 1))
    total = sum(len(r.sop_uids) for r in plan)
    if not plan:
        return RetrieveResult(
            study_uid=study_uid,
            series_done=[],
            completed=0,
            failed=0,
            warning=0,
            failed_sops=[],
            received=[],
            cancelled=False,
            error=None,
            method=chosen,
            total=0,
        )
    return _execute(
        node,
        study_uid,
        store=store,
        plan=plan,
        inventory=inventory,
        total=total,
        method=chosen,
        progress=progress,
        cancel=cancel,
        trace=trace,
        on_series_done=on_series_done,
        deflate=node.accept_deflated if accept_deflated is None else accept_deflated,
    )


def _error_args(exc: NetError) -> tuple[Any, ...]:
    if isinstance(exc, DimseStatusError):
        return (exc.code, exc.meaning, exc.category)
    if isinstance(exc, NoAcceptedContext):
        return (exc.abstract_syntaxes,)
    return ()


class _Switch:
    """The C-STORE handler of an association that retrieves several studies: each instance
    goes to the writer of the study it was asked for (which checks it belongs there)."""

    def __init__(self, owner: dict[str, str]) -> None:
        self.owner = owner
        self.writers: dict[str, InstanceWriter] = {}

    def handle(self, event: Any) -> int | Dataset:
        sop_uid = str(event.request.AffectedSOPInstanceUID or "").strip()
        writer = self.writers.get(self.owner.get(sop_uid, ""))
        if writer is None:
            return 0xA700  # Out of resources: an instance nobody asked for
        return writer.handle(event)


#: Studies per C-GET when several are asked for in one request (a writer thread each).
STUDIES_PER_REQUEST = 100


def retrieve_instances(
    node: Node,
    wanted: dict[str, dict[str, list[InstanceInfo]]],
    *,
    store: LocalStore,
    cancel: threading.Event | None = None,
    trace: AssociationTrace | None = None,
    accept_deflated: bool | None = None,
) -> dict[str, RetrieveResult]:
    """C-GET the instances ``wanted`` (study → series → instances) on one association.

    For callers that need a few small instances of many studies (the worklist's report
    documents). First one image-level C-GET lists the instances of up to
    :data:`STUDIES_PER_REQUEST` studies (their Study, Series and SOP Instance UIDs as lists:
    relational, which Orthanc and our demo PACS answer); what that did not bring is asked for
    study by study, one request per series, on the same association. Each study is written
    by its own :class:`~tuiviewer.net.move.InstanceWriter`, which refuses an instance of
    another study.

    Returns:
        A result per study asked for: what arrived, and the error that stopped it (a failure
        status; an association that dies gives it to every study not finished by then).

    Raises:
        NetError: the association could not be set up.
    """
    deflate = node.accept_deflated if accept_deflated is None else accept_deflated
    keyed = {
        f"{study}/{series}": items
        for study, by_series in wanted.items()
        for series, items in by_series.items()
    }
    storage = _storage_contexts(StudyInventory("", keyed), list(keyed), MAX_CONTEXTS - 1, deflate)
    owner = {
        item.sop_uid: study
        for study, by_series in wanted.items()
        for items in by_series.values()
        for item in items
    }
    switch = _Switch(owner)
    started = time.monotonic()
    errors: dict[str, NetError] = {}
    done: dict[str, list[str]] = {uid: [] for uid in wanted}
    trace = trace if trace is not None else AssociationTrace()
    with ExitStack() as stack:
        for study_uid in wanted:
            stack.enter_context(store.in_use(study_uid))
            writer = InstanceWriter(store, study_uid)
            switch.writers[study_uid] = writer
            stack.callback(writer.close)
        assoc = stack.enter_context(
            associate(
                node,
                [(GET_MODEL, _QR_SYNTAXES), *storage],
                trace=trace,
                roles=scp_roles(uid for uid, _ in storage),
                handlers=[(evt.EVT_C_STORE, switch.handle)],
            )
        )
        require_context(assoc, [GET_MODEL])
        getter = _Getter(assoc, cancel)
        studies = list(wanted)
        lost: NetError | None = None
        for start in range(0, len(studies), STUDIES_PER_REQUEST):
            chunk = studies[start : start + STUDIES_PER_REQUEST]
            sops = [i.sop_uid for uid in chunk for items in wanted[uid].values() for i in items]
            if len(sops) > MAX_UIDS_PER_REQUEST or getter.cancelled():
                break
            ds = Dataset()
            ds.QueryRetrieveLevel = "IMAGE"
            ds.StudyInstanceUID = chunk
            ds.SeriesInstanceUID = list(dict.fromkeys(s for uid in chunk for s in wanted[uid]))
            ds.SOPInstanceUID = sops
            for uid in chunk:
                switch.writers[uid].expect(None, [i for i in sops if owner[i] == uid])
            try:
                getter.get(ds)
            except (AssociationAborted, NetTimeout, ConnectionFailed) as exc:
                lost = exc
                break
            except NetError:
                break  # asked study by study below
        for study_uid in studies:
            writer = switch.writers[study_uid]
            writer.flush()
            have = {p.stem for p in writer.received}
            for series_uid, items in wanted[study_uid].items():
                if lost is not None:
                    errors[study_uid] = lost
                    break
                if getter.cancelled():
                    break
                missing = tuple(i.sop_uid for i in items if uid_name(i.sop_uid) not in have)
                if missing:
                    writer.expect(series_uid, missing)
                    try:
                        getter.get(_identifier(study_uid, _Request(series_uid, missing)))
                    except (AssociationAborted, NetTimeout, ConnectionFailed) as exc:
                        errors[study_uid] = lost = exc
                        break
                    except NetError as exc:
                        errors[study_uid] = exc
                        break
                    writer.flush()
                done[study_uid].append(series_uid)
    results: dict[str, RetrieveResult] = {}
    for study_uid, writer in switch.writers.items():
        asked = sum(len(items) for items in wanted[study_uid].values())
        results[study_uid] = RetrieveResult(
            study_uid=study_uid,
            series_done=done[study_uid],
            completed=len(writer.received),
            failed=asked - len(writer.received),
            warning=0,
            failed_sops=[],
            received=list(writer.received),
            cancelled=getter.cancelled(),
            error=errors.get(study_uid),
            method="get",
            total=asked,
            bytes=writer.bytes,
            elapsed_s=time.monotonic() - started,
            refused=list(writer.refused),
        )
    return results


class _Getter:
    """C-GETs one after the other on one association; raises the failure of each."""

    def __init__(self, assoc: Any, cancel: threading.Event | None) -> None:
        self._assoc = assoc
        self._cancel = cancel
        self._msg_id = 0

    def cancelled(self) -> bool:
        return self._cancel is not None and self._cancel.is_set()

    def get(self, identifier: Dataset) -> None:
        """Send one C-GET and wait for its end.

        Raises:
            DimseStatusError: it ended with a failure status.
            NetError: the association died or timed out.
        """
        self._msg_id += 1
        responses = self._assoc.send_c_get(identifier, GET_MODEL, msg_id=self._msg_id)
        watcher = _CancelWatcher(self._assoc, GET_MODEL, self._msg_id, self._cancel)
        try:
            outcome = _run_request(self._assoc, "C-GET", responses, _Run("", None, None), watcher)
        finally:
            watcher.stop()
        if outcome.error is not None:
            raise outcome.error
