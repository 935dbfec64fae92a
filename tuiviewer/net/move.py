"""Receiving instances: the C-STORE handler that streams each one to the local store, and our
own storage SCP for C-MOVE.

C-GET brings instances back over our own association; C-MOVE makes the PACS open a second
association to a storage SCP it knows by AE title. Both end in :class:`InstanceWriter`, which
writes each instance to disk the moment it arrives (file meta + the bytes as received, never
decoded, never a whole study in memory) through the store's temporary-file-then-rename path.
"""

from __future__ import annotations

import logging
import queue
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from types import TracebackType
from typing import Any

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import UID
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, evt

from tuiviewer.net.association import disable_nagle
from tuiviewer.net.errors import NetError
from tuiviewer.net.sopclasses import RANKED_STORAGE_CLASSES
from tuiviewer.net.trace import AssociationTrace
from tuiviewer.store import InvalidUIDError, LocalStore, StoreError

logger = logging.getLogger(__name__)

#: C-STORE statuses (PS3.4 Table B.2-1) we answer when we cannot keep an instance.
STATUS_OUT_OF_RESOURCES = 0xA700
STATUS_CANNOT_UNDERSTAND = 0xC000

_PREAMBLE = b"\x00" * 128 + b"DICM"
_LAST_IDENTIFYING_TAG = 0x0020000E  # Series Instance UID
# A deflated data set is inflated only this far to find its UIDs.
_INFLATE_PEEK = 256 * 1024


def identifying_uids(raw: bytes, transfer_syntax: str) -> tuple[str, str]:
    """``(study_uid, series_uid)`` from an encoded data set, parsing only its first elements.

    Either is ``""`` when absent or unreadable; the pixel data is never touched.
    """
    ts = UID(transfer_syntax)
    data = raw
    if ts.is_deflated:
        try:
            data = zlib.decompressobj(-zlib.MAX_WBITS).decompress(raw, _INFLATE_PEEK)
        except zlib.error:
            return "", ""
    try:
        ds = read_dataset(
            BytesIO(data),
            ts.is_implicit_VR,
            ts.is_little_endian,
            stop_when=lambda tag, vr, length: int(tag) > _LAST_IDENTIFYING_TAG,
            specific_tags=[0x0020000D, 0x0020000E],
        )
        return str(ds.get("StudyInstanceUID", "") or ""), str(ds.get("SeriesInstanceUID", "") or "")
    except Exception:  # pydicom raises many types on a malformed stream; the caller decides
        return "", ""


def _refusal(code: int, comment: str) -> Dataset:
    status = Dataset()
    status.Status = code
    status.ErrorComment = comment[:64]  # LO: at most 64 characters
    return status


@dataclass(frozen=True)
class _Written:
    """An instance fully written to its temporary file, waiting to be committed."""

    temp: Path
    series_uid: str
    sop_uid: str
    size: int


class InstanceWriter:
    """EVT_C_STORE handler: write every incoming instance of one study into a :class:`LocalStore`.

    The data set is written to a temporary file before the C-STORE is answered, so a full disk
    or a bad UID is reported to the PACS in the status. The commit (fsync and rename, a third
    of the time per instance) runs in a background thread while the next instance arrives;
    call :meth:`flush` before relying on ``received`` and :meth:`close` at the end.

    Thread-safe: pynetdicom calls :meth:`handle` from the thread that sent the C-GET, or from
    one thread per incoming association (C-MOVE).
    """

    def __init__(
        self,
        store: LocalStore,
        study_uid: str,
        *,
        on_written: Callable[[Path, int], None] | None = None,
    ) -> None:
        """Args:
        store: where to write.
        study_uid: the study being retrieved; instances of other studies are refused.
        on_written: called with the final path and the data set's size after each commit,
            from the writer's background thread.
        """
        self.store = store
        self.study_uid = study_uid
        self.on_written = on_written
        self.fallback_series: str | None = None
        """Series being retrieved, used when an instance does not carry its Series UID."""
        self.skip: set[str] = set()
        """SOP Instance UIDs already received in this retrieve: acknowledged, not rewritten."""
        self.received: list[Path] = []
        """Committed instance files, in arrival order."""
        self.bytes = 0
        self.requests = 0
        """C-STORE requests handled, written or not."""
        self.refused: list[tuple[str, str]] = []
        """``(sop_instance_uid, reason)`` of instances we could not keep."""
        self._lock = threading.Lock()
        self._queue: queue.Queue[_Written | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def handle(self, event: Any) -> int | Dataset:
        """Write the instance; return 0x0000, or a failure status with an ErrorComment."""
        with self._lock:
            self.requests += 1
        sop_uid = str(event.request.AffectedSOPInstanceUID or "")
        try:
            meta = event.file_meta
            raw = event.encoded_dataset(include_meta=False)
            study, series = identifying_uids(raw, str(meta.TransferSyntaxUID))
            if study and study != self.study_uid:
                return self._refuse(
                    sop_uid,
                    STATUS_CANNOT_UNDERSTAND,
                    f"Instance {sop_uid} belongs to study {study}, not to the study "
                    f"{self.study_uid} being retrieved.",
                    "not part of the study being retrieved",
                )
            series = series or self.fallback_series or ""
            with self._lock:
                if sop_uid in self.skip:
                    return 0x0000
                self.skip.add(sop_uid)
            handle, temp = self.store.open_temp(self.study_uid, series, sop_uid)
            try:
                meta_bytes = DicomBytesIO()
                write_file_meta_info(meta_bytes, meta, enforce_standard=True)
                with handle:
                    handle.write(_PREAMBLE)
                    handle.write(meta_bytes.getvalue())
                    handle.write(raw)
            except BaseException:
                temp.unlink(missing_ok=True)
                raise
        except InvalidUIDError as exc:
            return self._refuse(sop_uid, STATUS_CANNOT_UNDERSTAND, exc.message, "invalid UID")
        except (StoreError, OSError) as exc:
            reason = exc.message if isinstance(exc, StoreError) else str(exc)
            return self._refuse(sop_uid, STATUS_OUT_OF_RESOURCES, reason, "cannot write to disk")
        self._start()
        self._queue.put(_Written(temp, series, sop_uid, len(raw)))
        return 0x0000

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._commit_loop, name="tuiviewer-store-commit", daemon=True
                )
                self._thread.start()

    def _commit_loop(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._commit(item)
            finally:
                self._queue.task_done()

    def _commit(self, item: _Written) -> None:
        try:
            path = self.store.commit(item.temp, self.study_uid, item.series_uid, item.sop_uid)
        except StoreError as exc:
            item.temp.unlink(missing_ok=True)
            with self._lock:
                self.skip.discard(item.sop_uid)
                self.refused.append((item.sop_uid, exc.message))
            return
        with self._lock:
            self.received.append(path)
            self.bytes += item.size
        if self.on_written is not None:
            try:
                self.on_written(path, item.size)
            except Exception:  # a broken progress callback must not lose later instances
                logger.exception("Progress callback failed for a received instance")

    def flush(self) -> None:
        """Wait until every instance answered so far is committed (or refused)."""
        self._queue.join()

    def close(self) -> None:
        """Commit what is pending and stop the background thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def _refuse(self, sop_uid: str, code: int, reason: str, comment: str) -> Dataset:
        with self._lock:
            self.refused.append((sop_uid, reason))
        return _refusal(code, comment)


class StorageScp:
    """Our storage SCP, listening while a C-MOVE runs (``with StorageScp(...) as scp:``).

    It accepts every storage SOP class pynetdicom knows in every transfer syntax it knows,
    so the PACS sends each instance as stored, and hands each C-STORE to ``handler``.
    """

    def __init__(
        self,
        ae_title: str,
        port: int,
        handler: Callable[[Any], int | Dataset],
        *,
        host: str = "",
        trace: AssociationTrace | None = None,
        network_timeout: float = 60,
        dimse_timeout: float = 60,
        acse_timeout: float = 30,
    ) -> None:
        """Args:
        ae_title: our AE title, the C-MOVE destination the PACS knows us by.
        port: TCP port to listen on (the node's ``move_port``).
        handler: the EVT_C_STORE handler, usually :meth:`InstanceWriter.handle`.
        host: address to bind; all interfaces by default, since the PACS calls us back.
        trace: incoming associations and C-STORE requests are noted in it.
        """
        self.ae_title = ae_title
        self.port = port
        self.host = host
        self.trace = trace
        self._handler = handler
        self._timeouts = (network_timeout, dimse_timeout, acse_timeout)
        self._server: Any = None
        self.associations = 0

    def __enter__(self) -> StorageScp:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start listening in pynetdicom's server thread.

        Raises:
            NetError: the port cannot be bound (in use, or privileged).
        """
        ae = AE(ae_title=self.ae_title)
        ae.network_timeout, ae.dimse_timeout, ae.acse_timeout = self._timeouts
        # An SCP may support any number of contexts; the 128 limit binds the requestor.
        for uid in RANKED_STORAGE_CLASSES:
            ae.add_supported_context(uid, ALL_TRANSFER_SYNTAXES)
        ae.maximum_associations = 4
        handlers: list[tuple[Any, ...]] = [
            (evt.EVT_C_STORE, self._handler),
            (evt.EVT_CONN_OPEN, disable_nagle),
            (evt.EVT_ACCEPTED, self._on_accepted),
        ]
        if self.trace is not None:
            trace = self.trace
            handlers.append((evt.EVT_DIMSE_RECV, lambda event: trace.on_dimse_recv(event.message)))
            handlers.append((evt.EVT_DIMSE_SENT, lambda event: trace.on_dimse_sent(event.message)))
        try:
            self._server = ae.start_server(
                (self.host, self.port), block=False, evt_handlers=handlers
            )
        except OSError as exc:
            where = f"{self.host or 'all interfaces'} port {self.port}"
            raise NetError(
                f"Cannot listen for C-MOVE sub-operations on {where}: "
                f"{exc.strerror or exc}; choose another move port for the node."
            ) from exc

    def _on_accepted(self, event: Any) -> None:
        self.associations += 1
        if self.trace is not None:
            requestor = event.assoc.requestor
            self.trace.note(
                f"storage association from {str(requestor.ae_title)!r} "
                f"({requestor.address}) accepted on port {self.port}"
            )

    def stop(self) -> None:
        """Stop listening and close any association still open."""
        if self._server is not None:
            self._server.shutdown()
            self._server = None
