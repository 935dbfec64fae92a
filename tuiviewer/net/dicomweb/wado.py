"""WADO-RS retrieve (PS3.18 10.4) into the local store, as :mod:`tuiviewer.net.retrieve` does
over C-GET: series by series, each instance on disk the moment its part has arrived.

1. A QIDO-RS instance search lists the study (the inventory): the progress total, the series
   order, and for a resume what is missing.
2. One ``GET /studies/{study}/series/{series}`` per series (the one the user opened first), a
   ``multipart/related`` answer read by :class:`~tuiviewer.net.dicomweb.multipart.
   MultipartReader`: a part's first bytes are held until its UIDs can be read from the file
   meta and the first elements, then the part streams into a 0600 temporary file in its series
   folder, and is fsynced and renamed once its last byte is in. Never a whole part in memory.
3. A cut stream leaves every complete instance on disk and says so (``result.error``);
   :func:`resume_study` fetches only what is missing: whole series where none is there, else
   one ``GET .../instances/{sop}`` per missing instance.

``Accept`` lists every transfer syntax pydicom has a working decoder for, then ``*`` (the
syntax the server stores, for servers that read only one entry of the header).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any, BinaryIO

import requests
import urllib3
from pydicom.filereader import read_dataset
from pydicom.uid import UID

from tuiviewer.config.dicomweb import DicomWebNode
from tuiviewer.dicom.rows import QueryLevel
from tuiviewer.net.dicomweb.client import WebSession
from tuiviewer.net.dicomweb.errors import HttpStatusError
from tuiviewer.net.dicomweb.multipart import MultipartError, MultipartReader, boundary_of
from tuiviewer.net.dicomweb.qido import search
from tuiviewer.net.errors import AssociationAborted, NetError
from tuiviewer.net.find import FindQuery
from tuiviewer.net.move import Expected, Identity, Refusal, identity_problem, instance_identity
from tuiviewer.net.retrieve import (
    InstanceInfo,
    RetrieveProgress,
    RetrieveResult,
    StudyInventory,
    instance_number,
)
from tuiviewer.net.trace import AssociationTrace
from tuiviewer.net.transport import nothing_to_fetch
from tuiviewer.safetext import clean
from tuiviewer.store import InvalidUIDError, LocalStore, StoreError, validate_uid

logger = logging.getLogger(__name__)

CHUNK = 256 * 1024
#: A part's head is held in memory until its UIDs can be read; beyond this it is refused.
_HEAD_LIMIT = 8 * 1024 * 1024
_PREFIX = 132  # preamble + "DICM"
_LAST_IDENTIFYING_TAG = 0x0020000E  # Series Instance UID


def accept_header() -> str:
    """The ``Accept`` of a WADO-RS retrieve: decodable transfer syntaxes, then ``*``."""
    from pydicom.pixels import get_decoder
    from pydicom.pixels.decoders.base import _PIXEL_DATA_DECODERS

    syntaxes = [str(uid) for uid in _PIXEL_DATA_DECODERS if get_decoder(uid).is_available]
    ranges = [
        f'multipart/related; type="application/dicom"; transfer-syntax={ts}' for ts in syntaxes
    ]
    ranges.append('multipart/related; type="application/dicom"; transfer-syntax=*')
    return ", ".join(ranges)


@dataclass
class _Head:
    """What the first bytes of a part say about the instance."""

    study: str
    series: str
    sop: str
    """The SOP Instance UID the file meta announces."""
    data_sop: str = ""
    """The SOP Instance UID the data set itself says (checked against ``sop``)."""


def read_head(head: bytes, complete: bool) -> _Head | None:
    """The UIDs of a PS3.10 file from its first bytes; None when more bytes are needed.

    Raises:
        ValueError: it is not a PS3.10 file (no ``DICM``, no file meta), or it lacks a SOP
            Instance UID.
    """
    if len(head) < _PREFIX + 12:
        if complete:
            raise ValueError("the part is too short to be a DICOM file")
        return None
    if head[128:132] != b"DICM":
        raise ValueError("the part is not a DICOM file (no 'DICM' at offset 128)")
    group_length = int.from_bytes(head[_PREFIX + 8 : _PREFIX + 12], "little")
    if head[_PREFIX : _PREFIX + 4] != b"\x02\x00\x00\x00" or group_length > _HEAD_LIMIT:
        raise ValueError("the part's file meta information has no group length")
    meta_end = _PREFIX + 12 + group_length
    if len(head) < meta_end:
        if complete:
            raise ValueError("the part ends inside its file meta information")
        return None
    try:
        meta = read_dataset(BytesIO(head[_PREFIX:meta_end]), False, True)
    except Exception as exc:  # pydicom raises many types on malformed meta
        raise ValueError(f"the part's file meta information cannot be read: {exc}") from None
    sop = str(meta.get("MediaStorageSOPInstanceUID", "") or "")
    ts = str(meta.get("TransferSyntaxUID", "") or "")
    if not sop or not ts:
        raise ValueError("the part's file meta names no SOP Instance UID or transfer syntax")
    syntax = UID(ts)
    if syntax.is_deflated:
        if not complete and len(head) < _HEAD_LIMIT:
            return None  # inflating a part of the stream could cut a UID short
        found = instance_identity(head[meta_end:], ts)
        return _Head(found.study_uid, found.series_uid, sop, found.sop_uid)
    passed: list[bool] = []

    def stop(tag: Any, vr: Any, length: Any) -> bool:
        if int(tag) > _LAST_IDENTIFYING_TAG:
            passed.append(True)
            return True
        return False

    try:
        ds = read_dataset(
            BytesIO(head[meta_end:]),
            syntax.is_implicit_VR,
            syntax.is_little_endian,
            stop_when=stop,
            specific_tags=[0x00080018, 0x0020000D, 0x0020000E],
        )
    except Exception:  # a malformed or cut stream; decide below
        ds = None
    if not passed and not complete and len(head) < _HEAD_LIMIT:
        return None  # an element past the Series UID proves both UIDs arrived whole
    if ds is None:
        return _Head("", "", sop)
    return _Head(
        str(ds.get("StudyInstanceUID", "") or "").strip(),
        str(ds.get("SeriesInstanceUID", "") or "").strip(),
        sop,
        str(ds.get("SOPInstanceUID", "") or "").strip(),
    )


@dataclass
class _Run:
    """One retrieve's counters, shared with the progress callback."""

    study_uid: str
    total: int | None
    progress: Callable[[RetrieveProgress], None] | None
    started: float = field(default_factory=time.monotonic)
    series_uid: str = ""
    received: list[Path] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    bytes: int = 0
    inventory: StudyInventory | None = None
    _queue: queue.Queue[tuple[LocalStore, Path, str, str, int] | None] = field(
        default_factory=queue.Queue
    )
    _thread: threading.Thread | None = None

    def commit_later(self, store: LocalStore, temp: Path, series: str, sop: str, size: int) -> None:
        """fsync and rename ``temp`` in a background thread while the next part streams in
        (a third of the time per instance); :meth:`flush` before relying on ``received``."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._commits, name="tuiviewer-wado-commit", daemon=True
            )
            self._thread.start()
        self._queue.put((store, temp, series, sop, size))

    def _commits(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                store, temp, series, sop, size = item
                try:
                    path = store.commit(temp, self.study_uid, series, sop, touch=False)
                except StoreError as exc:
                    store.discard(temp)
                    self.refused.append(Refusal(sop, exc.message))
                    continue
                self.received.append(path)
                self.bytes += size
                try:
                    self.report(path)
                except Exception:  # a broken progress callback must not lose instances
                    logger.exception("Progress callback failed for a retrieved instance")
            finally:
                self._queue.task_done()

    def flush(self) -> None:
        """Wait until every part written so far is committed (or refused)."""
        self._queue.join()

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def report(self, path: Path | None = None) -> None:
        if self.progress is not None:
            self.progress(
                RetrieveProgress(
                    study_uid=self.study_uid,
                    series_uid=self.series_uid,
                    done=len(self.received),
                    total=self.total,
                    failed=0,
                    warning=0,
                    bytes=self.bytes,
                    elapsed_s=time.monotonic() - self.started,
                    path=path,
                    inventory=self.inventory,
                )
            )


class _Cancelled(Exception):
    pass


def _store_part(
    chunks: Iterator[bytes],
    store: LocalStore,
    run: _Run,
    expected: Expected,
    cancel: threading.Event | None,
) -> None:
    """Write one part into the store, or record why not; a cut stream raises MultipartError."""
    head = bytearray()
    info: _Head | None = None
    handle: BinaryIO | None = None
    temp: Path | None = None
    size = 0
    try:
        for chunk in chunks:
            if cancel is not None and cancel.is_set():
                raise _Cancelled
            size += len(chunk)
            if handle is not None:
                handle.write(chunk)
                continue
            head += chunk
            info = read_head(bytes(head), complete=False)
            if info is None:
                continue
            handle, temp = _open(store, run, info, expected)
            if handle is None:
                break  # refused: the rest of the part is skipped by the reader
            handle.write(head)
        else:
            if handle is None:  # the whole part was shorter than the head we wanted
                info = read_head(bytes(head), complete=True)
                assert info is not None
                handle, temp = _open(store, run, info, expected)
                if handle is not None:
                    handle.write(head)
        if handle is None or temp is None or info is None:
            return
        handle.close()
        handle = None
        run.commit_later(store, temp, info.series, info.sop, size)
        temp = None
    except ValueError as exc:
        if isinstance(exc, MultipartError):
            raise
        run.refused.append(Refusal("", f"A part of the answer was not kept: {exc}."))
    except StoreError as exc:
        run.refused.append(Refusal(clean(info.sop) if info else "", exc.message))
    finally:
        if handle is not None:
            handle.close()
        if temp is not None:
            store.discard(temp)


def _open(
    store: LocalStore, run: _Run, info: _Head, expected: Expected
) -> tuple[BinaryIO | None, Path | None]:
    # As over C-GET: the part must be the instance its file meta names, of what was asked for.
    found = Identity(info.data_sop, info.study, info.series)
    problem = identity_problem(info.sop, found, expected, by="its file meta")
    if problem is not None:
        logger.warning("Refused a received instance: %s", problem)
        run.refused.append(Refusal(clean(info.sop), problem))
        return None, None
    try:
        handle, temp = store.open_temp(run.study_uid, info.series, info.sop)
    except InvalidUIDError as exc:
        run.refused.append(Refusal(clean(info.sop), exc.message))
        return None, None
    return handle, temp


@dataclass(frozen=True)
class _Request:
    series_uid: str | None
    sop_uid: str | None = None
    ends_series: bool = True


def _url(node: DicomWebNode, study: str, request: _Request) -> str:
    url = f"{node.service_url('wado')}/studies/{study}"
    if request.series_uid:
        url += f"/series/{request.series_uid}"
        if request.sop_uid:
            url += f"/instances/{request.sop_uid}"
    return url


def _fetch(
    web: WebSession,
    study: str,
    request: _Request,
    store: LocalStore,
    run: _Run,
    cancel: threading.Event | None,
) -> None:
    """One WADO-RS GET, streamed part by part into the store.

    Raises:
        NetError: the request failed, or the answer broke off (AssociationAborted).
        _Cancelled: ``cancel`` was set.
    """
    node = web.node
    what = "the WADO-RS retrieve of " + (
        f"instance {request.sop_uid}"
        if request.sop_uid
        else f"series {request.series_uid}"
        if request.series_uid
        else f"study {study}"
    )
    url = _url(node, study, request)
    asked = frozenset({request.sop_uid}) if request.sop_uid else frozenset()
    expected = Expected(study, request.series_uid, asked)
    # DICOM data gains little from gzip and costs both sides CPU: ask for it as it is.
    headers = {"Accept": accept_header(), "Accept-Encoding": "identity"}
    response = web.get(url, what, headers=headers, stream=True)
    record = web.last_record()
    started = time.monotonic()
    before = len(run.received)
    try:
        content_type = response.headers.get("Content-Type", "")
        boundary = boundary_of(content_type)
        with _counting(run, before, web.errors(what, url)):
            chunks = _arriving(response)
            if boundary is None:
                if not content_type.lower().startswith("application/dicom"):
                    raise HttpStatusError(
                        f"{node.describe()} answered {what} with {content_type!r}, not "
                        "multipart/related DICOM.",
                        response.status_code,
                        "unexpected content type",
                    )
                # Not standard (PS3.18 8.6.1.2), but some servers send one instance bare.
                _store_part(chunks, store, run, expected, cancel)
                return
            reader = MultipartReader(chunks, boundary)
            try:
                for part in reader.parts():
                    _store_part(part.chunks(), store, run, expected, cancel)
            except MultipartError as exc:
                raise AssociationAborted(
                    f"The answer of {node.describe()} to {what} broke off: {exc}"
                ) from None
            finally:
                if record is not None:
                    record.received = reader.bytes
    finally:
        response.close()
        if record is not None:
            record.elapsed_ms = (record.elapsed_ms or 0) + (time.monotonic() - started) * 1000


@contextmanager
def _counting(run: _Run, before: int, inner: AbstractContextManager[None]) -> Iterator[None]:
    """``inner``, and a lost connection's message says how many instances arrived whole."""
    try:
        with inner:
            yield
    except AssociationAborted as exc:
        run.flush()
        got = len(run.received) - before
        noun = "instance" if got == 1 else "instances"
        raise AssociationAborted(f"{exc.message} {got} complete {noun} of it are kept.") from None


def _arriving(response: requests.Response) -> Iterator[bytes]:
    """The body's bytes as they come off the socket (``read1``), so that a stream cut short
    still delivers everything before the cut; urllib3's errors become requests' ones."""
    raw = response.raw
    try:
        while True:
            # read1 may come back empty before the end while a decoder waits for input.
            data = raw.read1(CHUNK) or raw.read(CHUNK)
            if not data:
                return
            yield data
    except urllib3.exceptions.ReadTimeoutError as exc:
        raise requests.exceptions.ReadTimeout(exc, request=response.request) from exc
    except (urllib3.exceptions.ProtocolError, urllib3.exceptions.DecodeError, OSError) as exc:
        raise requests.exceptions.ChunkedEncodingError(exc, request=response.request) from exc


def study_inventory(
    node: DicomWebNode,
    study_uid: str,
    *,
    cancel: threading.Event | None = None,
    trace: AssociationTrace | None = None,
) -> StudyInventory:
    """The study's series and instances from a QIDO-RS instance search.

    Raises:
        NetError: the search failed.
    """
    query = FindQuery(
        level=QueryLevel.IMAGE, study_uid=study_uid, extra={"AvailableTransferSyntaxUID": ""}
    )
    series: dict[str, list[InstanceInfo]] = {}
    seen: set[str] = set()
    for match in search(node, query, cancel=cancel, trace=trace):
        sop = str(match.get("SOPInstanceUID", "") or "")
        series_uid = str(match.get("SeriesInstanceUID", "") or "")
        if not sop or not series_uid or sop in seen:
            continue
        seen.add(sop)
        syntaxes = match.get("AvailableTransferSyntaxUID")
        series.setdefault(series_uid, []).append(
            InstanceInfo(
                sop_uid=sop,
                sop_class_uid=str(match.get("SOPClassUID", "") or ""),
                transfer_syntaxes=tuple(str(s) for s in syntaxes) if syntaxes else (),
                number=instance_number(match),
            )
        )
    return StudyInventory(study_uid=study_uid, series=series)


def _execute(
    node: DicomWebNode,
    study_uid: str,
    plan: list[_Request],
    *,
    store: LocalStore,
    total: int | None,
    progress: Callable[[RetrieveProgress], None] | None,
    cancel: threading.Event | None,
    trace: AssociationTrace | None,
    on_series_done: Callable[[str], None] | None,
    inventory: StudyInventory | None = None,
) -> RetrieveResult:
    run = _Run(study_uid, total, progress, inventory=inventory)
    series_done: list[str] = []
    cancelled = False
    error: NetError | None = None
    with store.in_use(study_uid), WebSession(node, trace) as web:
        try:
            for request in plan:
                if cancel is not None and cancel.is_set():
                    cancelled = True
                    break
                run.series_uid = request.series_uid or ""
                try:
                    _fetch(web, study_uid, request, store, run, cancel)
                except _Cancelled:
                    cancelled = True
                    break
                except NetError as exc:
                    run.flush()
                    if not run.received:
                        raise
                    error = exc
                    break
                run.flush()  # the series is on disk before anyone is told
                if request.ends_series and request.series_uid:
                    series_done.append(request.series_uid)
                    if on_series_done is not None:
                        on_series_done(request.series_uid)
        finally:
            run.close()
            store.flush()
        if store.study_dir(study_uid).is_dir():
            store.touch(study_uid)
        web.trace.set_outcome(
            "cancelled" if cancelled else (f"failed: {error.message}" if error else "done")
        )
    return RetrieveResult(
        study_uid=study_uid,
        series_done=series_done,
        completed=len(run.received),
        failed=0,
        warning=0,
        failed_sops=[],
        received=list(run.received),
        cancelled=cancelled,
        error=error,
        method="get",  # one request per series on one connection, as a C-GET
        total=total,
        bytes=run.bytes,
        elapsed_s=time.monotonic() - run.started,
        refused=list(run.refused),
        inventory_used=total is not None,
    )


def _validate(study_uid: str, series: Sequence[str]) -> None:
    validate_uid(study_uid, "Study Instance UID")
    for uid in series:
        validate_uid(uid, "Series Instance UID")


def retrieve_study(
    node: DicomWebNode,
    study_uid: str,
    *,
    store: LocalStore,
    series_uids: Sequence[str] | None = None,
    first_series: str | None = None,
    progress: Callable[[RetrieveProgress], None] | None = None,
    cancel: threading.Event | None = None,
    trace: AssociationTrace | None = None,
    find_trace: AssociationTrace | None = None,
    on_series_done: Callable[[str], None] | None = None,
) -> RetrieveResult:
    """Retrieve a study (or some series) into ``store`` over WADO-RS, series by series.

    Arguments, result and errors as :func:`tuiviewer.net.retrieve.retrieve_study`; a server
    that will not list the study's instances gets one study-level request.

    Raises:
        InvalidUIDError: a UID is not valid.
        NetError: the retrieve failed before any instance arrived (e.g. HTTP 404).
    """
    _validate(study_uid, [*(series_uids or ()), *([first_series] if first_series else [])])
    try:
        inventory: StudyInventory | None = study_inventory(
            node, study_uid, cancel=cancel, trace=find_trace
        )
    except HttpStatusError:
        inventory = None
    if inventory is not None and not inventory.series:
        inventory = None
    order = list(series_uids) if series_uids else list(inventory.series) if inventory else []
    if first_series:
        order = [first_series, *[uid for uid in order if uid != first_series]]
    plan = [_Request(uid) for uid in dict.fromkeys(order)] or [_Request(None)]
    total = (
        sum(len(inventory.series.get(uid, [])) for uid in dict.fromkeys(order))
        if inventory is not None
        else None
    )
    try:
        return _execute(
            node,
            study_uid,
            plan,
            store=store,
            total=total,
            progress=progress,
            cancel=cancel,
            trace=trace,
            on_series_done=on_series_done,
            inventory=inventory,
        )
    except HttpStatusError as exc:
        if inventory is not None or exc.status != 404:
            raise
        raise HttpStatusError(
            f"{exc.message} Its QIDO-RS search found no instance of study {study_uid} either: "
            "the server probably does not hold that study.",
            exc.status,
            exc.meaning,
        ) from None


def resume_study(
    node: DicomWebNode,
    study_uid: str,
    *,
    store: LocalStore,
    series_uids: Sequence[str] | None = None,
    progress: Callable[[RetrieveProgress], None] | None = None,
    cancel: threading.Event | None = None,
    trace: AssociationTrace | None = None,
    find_trace: AssociationTrace | None = None,
    on_series_done: Callable[[str], None] | None = None,
) -> RetrieveResult:
    """Fetch only the instances of a study that are not in ``store`` yet (WADO-RS).

    Raises:
        NetError: as :func:`retrieve_study`; also when the QIDO-RS instance search fails,
            since then nothing tells what is missing.
    """
    _validate(study_uid, series_uids or ())
    try:
        inventory = study_inventory(node, study_uid, cancel=cancel, trace=find_trace)
    except HttpStatusError as exc:
        raise HttpStatusError(
            f"Cannot resume study {study_uid}: {exc.message} Without the instance list nothing "
            "tells which instances are missing; retrieve the whole study again.",
            exc.status,
            exc.meaning,
        ) from exc
    have = store.instance_uids(study_uid)
    plan: list[_Request] = []
    for series in list(series_uids) if series_uids else list(inventory.series):
        items = inventory.series.get(series, [])
        missing = [item.sop_uid for item in items if item.sop_uid not in have]
        if not missing:
            continue
        if len(missing) == len(items):
            plan.append(_Request(series))
            continue
        for index, sop in enumerate(missing):
            plan.append(_Request(series, sop, ends_series=index == len(missing) - 1))
    total = sum(
        len(inventory.series.get(r.series_uid or "", [])) if r.sop_uid is None else 1 for r in plan
    )
    if not plan:
        return nothing_to_fetch(study_uid)
    return _execute(
        node,
        study_uid,
        plan,
        store=store,
        total=total,
        progress=progress,
        cancel=cancel,
        trace=trace,
        on_series_done=on_series_done,
        inventory=inventory,
    )
