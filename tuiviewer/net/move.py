"""Receiving instances: the C-STORE handler that streams each one to the local store, and our
own storage SCP for C-MOVE.

C-GET brings instances back over our own association; C-MOVE makes the PACS open a second
association to a storage SCP it knows by AE title. Both end in :class:`InstanceWriter`, which
writes each instance to disk the moment it arrives (file meta + the bytes as received, never
decoded, never a whole study in memory) through the store's temporary-file-then-rename path.

The storage SCP receives PHI from whoever connects, so it listens only while a C-MOVE runs,
on loopback when the PACS is on this computer, and over DICOM TLS (the PACS's certificate
required) when the node uses TLS.
"""

from __future__ import annotations

import ipaddress
import logging
import queue
import socket
import ssl
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
from pynetdicom.transport import ThreadedAssociationServer
from pynetdicom.utils import make_target

from tuiviewer.config.nodes import Node
from tuiviewer.net.association import disable_nagle
from tuiviewer.net.errors import NetError
from tuiviewer.net.sopclasses import RANKED_STORAGE_CLASSES
from tuiviewer.net.tls import ssl_reason
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


def listen_address(node: Node) -> str:
    """The address our C-MOVE storage SCP binds for ``node``.

    ``node.move_bind`` when set; the loopback address when the PACS is on this computer (no
    one else needs to reach us then); otherwise every interface (``"0.0.0.0"``, or ``"::"``
    when the PACS is reached over IPv6), since the PACS calls back to an address we do not
    know.
    """
    if node.move_bind:
        return node.move_bind
    try:
        infos = socket.getaddrinfo(node.host, node.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return "0.0.0.0"  # the association will fail and say why; listen as before meanwhile
    # The address family association.py dials: IPv4 first.
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    family, address = infos[0][0], str(infos[0][4][0])
    if ipaddress.ip_address(address.split("%", 1)[0]).is_loopback:
        return "127.0.0.1" if family == socket.AF_INET else "::1"
    return "0.0.0.0" if family == socket.AF_INET else "::"


class _StorageServer(ThreadedAssociationServer):
    """pynetdicom's server with the TLS handshake moved off the accepting thread.

    pynetdicom shakes hands inside ``accept``, in the one thread that accepts every
    connection, without a timeout and without a word when it fails: a peer that connects and
    stays silent would block the SCP for good, and a PACS speaking plain DICOM would be turned
    away unexplained. Here each connection shakes hands in its own thread, within
    ``handshake_timeout``, and a failure is reported to ``on_tls_failure``.
    """

    handshake_timeout: float = 30
    on_tls_failure: Callable[[str, BaseException], None] | None = None

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        assert self.socket is not None
        client, address = self.socket.accept()
        if self.ssl_context is not None:
            client = self.ssl_context.wrap_socket(
                client, server_side=True, do_handshake_on_connect=False
            )
        return client, address

    def process_request_thread(
        self,
        request: socket.socket | tuple[bytes, socket.socket],
        client_address: tuple[str, int] | str,
    ) -> None:
        if isinstance(request, ssl.SSLSocket):
            try:
                request.settimeout(self.handshake_timeout)
                request.do_handshake()
                request.settimeout(None)
            except OSError as exc:  # ssl.SSLError and TimeoutError are OSErrors
                peer = client_address[0] if isinstance(client_address, tuple) else client_address
                if self.on_tls_failure is not None:
                    self.on_tls_failure(str(peer), exc)
                self.shutdown_request(request)
                return
        super().process_request_thread(request, client_address)


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
        ssl_context: ssl.SSLContext | None = None,
        trace: AssociationTrace | None = None,
        network_timeout: float = 60,
        dimse_timeout: float = 60,
        acse_timeout: float = 30,
    ) -> None:
        """Args:
        ae_title: our AE title, the C-MOVE destination the PACS knows us by.
        port: TCP port to listen on (the node's ``move_port``).
        handler: the EVT_C_STORE handler, usually :meth:`InstanceWriter.handle`.
        host: address to bind (see :func:`listen_address`); ``""`` is every IPv4
            interface, ``"::"`` every interface.
        ssl_context: a server context (:func:`tuiviewer.net.tls.server_ssl_context`) to
            accept only DICOM TLS connections; plain TCP when None.
        trace: incoming associations, TLS handshake failures and C-STORE requests are noted
            in it.
        acse_timeout: also the time a connecting PACS has to finish the TLS handshake.
        """
        self.ae_title = ae_title
        self.port = port
        self.host = host
        self.ssl_context = ssl_context
        self.trace = trace
        self._handler = handler
        self._timeouts = (network_timeout, dimse_timeout, acse_timeout)
        self._server: Any = None
        self._lock = threading.Lock()
        self.associations = 0
        self.tls_failures: list[str] = []
        """One sentence per connection refused at the TLS handshake (address and reason)."""

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

    @property
    def where(self) -> str:
        """``127.0.0.1 port 11113`` or ``all interfaces port 11113``, for messages."""
        host = self.host if self.host not in ("", "0.0.0.0", "::") else "all interfaces"
        return f"{host} port {self.port}"

    def start(self) -> None:
        """Start listening in a background server thread.

        Raises:
            NetError: the port cannot be bound (in use, or privileged) or the address is not
                one of this computer's.
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
            server = ae.make_server(
                (self.host, self.port),
                ssl_context=self.ssl_context,
                evt_handlers=handlers,
                server_class=_StorageServer,
            )
        except OSError as exc:
            raise NetError(
                f"Cannot listen for C-MOVE sub-operations on {self.where}: "
                f"{exc.strerror or exc}; choose another move port (or move_bind address) "
                "for the node."
            ) from exc
        assert isinstance(server, _StorageServer)
        server.handshake_timeout = self._timeouts[2]
        server.on_tls_failure = self._on_tls_failure
        # AssociationServer.shutdown() removes itself from this list, as start_server() fills it.
        ae._servers.append(server)
        thread = threading.Thread(
            target=make_target(server.serve_forever),
            name=f"tuiviewer-storage-scp-{self.port}",
            daemon=True,
        )
        thread.start()
        self._server = server
        if self.trace is not None:
            if self.ssl_context is None:
                security = "plain TCP"
            elif self.ssl_context.verify_mode == ssl.CERT_REQUIRED:
                security = "DICOM TLS, PACS certificate required"
            else:
                security = "DICOM TLS, PACS certificate not checked"
            self.trace.note(f"storage SCP listening on {self.where} ({security})")

    def _on_accepted(self, event: Any) -> None:
        with self._lock:
            self.associations += 1
        if self.trace is not None:
            requestor = event.assoc.requestor
            over = " over TLS" if self.ssl_context is not None else ""
            self.trace.note(
                f"storage association from {str(requestor.ae_title)!r} "
                f"({requestor.address}) accepted{over} on port {self.port}"
            )

    def _on_tls_failure(self, peer: str, exc: BaseException) -> None:
        if isinstance(exc, TimeoutError):
            reason = f"no TLS handshake within {self._timeouts[2]:g} s"
        else:
            reason = ssl_reason(exc)
        text = f"a connection from {peer} to port {self.port} failed the TLS handshake ({reason})"
        with self._lock:
            self.tls_failures.append(text)
        logger.warning("Storage SCP: %s", text)
        if self.trace is not None:
            self.trace.note(f"storage SCP: {text}")

    def stop(self) -> None:
        """Stop listening and close any association still open."""
        if self._server is not None:
            self._server.shutdown()
            self._server = None
