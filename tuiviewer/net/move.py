"""Receiving instances: the C-STORE handler that streams each one to the local store, and our
own storage SCP for C-MOVE.

C-GET brings instances back over our own association; C-MOVE makes the PACS open a second
association to a storage SCP it knows by AE title. Both end in :class:`InstanceWriter`, which
writes each instance to disk the moment it arrives (file meta + the bytes as received, never
decoded, never a whole study in memory) through the store's temporary-file-then-rename path.

The storage SCP receives PHI from whoever connects, so it listens only while a C-MOVE runs,
on the address through which the PACS reaches this computer (loopback when the PACS is on it),
over DICOM TLS (the PACS's certificate required) when the node uses TLS, and it accepts only
the PACS: the called AE title we announced, the PACS's calling AE title, from the PACS's
address; anyone else gets an A-ASSOCIATE-RJ with the reason.

Every instance received, by C-GET or C-MOVE, is checked before it is kept: its SOP Instance
UID must be the one its C-STORE announced, its study and series the ones asked for (and, for
a list of instances, one of them); a deflated data set is inflated through the capped reader
of :mod:`tuiviewer.dicom.reading` first. Anything else is refused with a failure status and
recorded as a :class:`Refusal` (which instance, and why) in the retrieve's result.
"""

from __future__ import annotations

import ipaddress
import logging
import queue
import socket
import ssl
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple

from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pydicom.uid import UID
from pynetdicom import (
    AE,
    ALL_TRANSFER_SYNTAXES,
    PYNETDICOM_IMPLEMENTATION_UID,
    PYNETDICOM_IMPLEMENTATION_VERSION,
    evt,
)
from pynetdicom.transport import ThreadedAssociationServer
from pynetdicom.utils import make_target

from tuiviewer.config.limits import current as current_limits
from tuiviewer.config.nodes import Node
from tuiviewer.dicom.reading import InflatingReader, ReadLimitError, check_structure
from tuiviewer.net.association import disable_nagle
from tuiviewer.net.errors import NetError
from tuiviewer.net.sopclasses import RANKED_STORAGE_CLASSES
from tuiviewer.net.tls import ssl_reason
from tuiviewer.net.trace import AssociationTrace
from tuiviewer.safetext import clean
from tuiviewer.store import InvalidUIDError, LocalStore, StoreError

logger = logging.getLogger(__name__)

#: C-STORE statuses (PS3.4 Table B.2-1) we answer when we cannot keep an instance.
STATUS_OUT_OF_RESOURCES = 0xA700
STATUS_CANNOT_UNDERSTAND = 0xC000

#: PS3.8 7.1.1.9 / Table 9-21: A-ASSOCIATE-RJ result "rejected-permanent", source
#: "DICOM UL service-user", reasons "calling AE title not recognized" and "called AE title
#: not recognized".
_RJ_PERMANENT, _RJ_SERVICE_USER = 0x01, 0x01
_RJ_CALLING_AET, _RJ_CALLED_AET = 0x03, 0x07

_PREAMBLE = b"\x00" * 128 + b"DICM"
_LAST_IDENTIFYING_TAG = 0x0020000E  # Series Instance UID
_DEFLATED = "1.2.840.10008.1.2.1.99"
# A deflated data set is inflated only this far to find its UIDs.
_INFLATE_PEEK = 256 * 1024


class Identity(NamedTuple):
    """The UIDs an instance's data set says it has ("" when absent or unreadable)."""

    sop_uid: str
    study_uid: str
    series_uid: str


class Refusal(NamedTuple):
    """An instance we did not keep, and why (shown in the retrieve queue and by ``get``)."""

    sop_uid: str
    """The SOP Instance UID the C-STORE announced (cleaned: it came from the peer)."""
    reason: str
    """A full sentence: which rule it broke, quoting the values."""


@dataclass(frozen=True)
class Expected:
    """What the running request asked for: received instances must fit it."""

    study_uid: str
    series_uid: str | None = None
    """The series asked for; None for a study-level request."""
    sop_uids: frozenset[str] = frozenset()
    """The instances asked for (image level, or a series known from the C-FIND); empty: any
    instance of the series or study."""


def instance_identity(raw: bytes, transfer_syntax: str) -> Identity:
    """The SOP Instance, Study and Series UIDs of an encoded data set, parsing only its first
    elements (the pixel data is never touched; a deflated one is inflated 256 KiB at most)."""
    ts = UID(transfer_syntax)
    try:
        if ts.is_deflated:
            reader = InflatingReader(BytesIO(raw), cap=_INFLATE_PEEK, name="received data set")
            try:
                data = reader.read(_INFLATE_PEEK)
            except ReadLimitError:
                data = bytes(reader._buf)
        else:
            data = raw
        ds = read_dataset(
            BytesIO(data),
            ts.is_implicit_VR,
            ts.is_little_endian,
            stop_when=lambda tag, vr, length: int(tag) > _LAST_IDENTIFYING_TAG,
            specific_tags=[0x00080018, 0x0020000D, 0x0020000E],
        )
        return Identity(
            str(ds.get("SOPInstanceUID", "") or "").strip(),
            str(ds.get("StudyInstanceUID", "") or "").strip(),
            str(ds.get("SeriesInstanceUID", "") or "").strip(),
        )
    except Exception:  # pydicom raises many types on a malformed stream; the caller decides
        return Identity("", "", "")


def identifying_uids(raw: bytes, transfer_syntax: str) -> tuple[str, str]:
    """``(study_uid, series_uid)`` from an encoded data set (see :func:`instance_identity`)."""
    found = instance_identity(raw, transfer_syntax)
    return found.study_uid, found.series_uid


def identity_problem(
    announced: str, found: Identity, expected: Expected | None, *, by: str = "its C-STORE"
) -> str | None:
    """Why an instance does not belong to the request, as a sentence; None when it does.

    ``announced`` is the SOP Instance UID ``by`` named (the C-STORE request, a WADO-RS part's
    file meta); ``expected`` None (a pushed study) checks only that the data set names that
    instance, a study and a series.
    """
    sop = clean(announced)
    if not found.sop_uid:
        return f"Instance {sop} was refused: its data set has no SOP Instance UID (0008,0018)."
    if found.sop_uid != announced:
        return (
            f"Instance {sop} was refused: its data set says SOP Instance UID "
            f"{clean(found.sop_uid)!r}, not the {sop!r} {by} announced."
        )
    if not found.study_uid:
        return f"Instance {sop} was refused: its data set has no Study Instance UID (0020,000D)."
    if expected is not None and found.study_uid != expected.study_uid:
        return (
            f"Instance {sop} was refused: it belongs to study {clean(found.study_uid)!r}, not "
            f"to study {expected.study_uid} being retrieved."
        )
    if not found.series_uid:
        return f"Instance {sop} was refused: its data set has no Series Instance UID (0020,000E)."
    if expected is None:
        return None
    if expected.series_uid is not None and found.series_uid != expected.series_uid:
        return (
            f"Instance {sop} was refused: it belongs to series {clean(found.series_uid)!r}, "
            f"not to series {expected.series_uid} asked for."
        )
    if expected.sop_uids and announced not in expected.sop_uids:
        return f"Instance {sop} was refused: it is not one of the instances asked for."
    return None


def deflated_problem(raw: bytes, sop_uid: str) -> ReadLimitError | None:
    """Inflate a received deflated data set through the capped reader (keeping nothing):
    the :class:`ReadLimitError` if it goes beyond the reading limits."""
    limits = current_limits()
    name = f"instance {clean(sop_uid)}"
    reader = InflatingReader(BytesIO(raw), cap=limits.inflation_cap(), name=name, limits=limits)

    def pixel_size(declared: int) -> None:
        reader.declared = declared
        reader.cap = max(reader.produced, limits.inflation_cap(declared))

    try:
        check_structure(
            reader,
            0,
            implicit=False,
            little=True,
            limits=limits,
            name=name,
            inflated=True,
            on_pixel_size=pixel_size,
        )
        reader.seek(0, 2)  # inflate to the end: the cap holds for what the walk skipped too
    except ReadLimitError as exc:
        return exc
    return None


def _element(tag: int, vr: bytes, value: bytes) -> bytes:
    """One explicit VR little endian element of the file meta (PS3.5 7.1.2)."""
    group, element = tag >> 16, tag & 0xFFFF
    head = group.to_bytes(2, "little") + element.to_bytes(2, "little") + vr
    if vr == b"OB":
        return head + b"\x00\x00" + len(value).to_bytes(4, "little") + value
    return head + len(value).to_bytes(2, "little") + value


def _padded(text: str, pad: bytes) -> bytes:
    data = text.encode("ascii")
    return data + pad if len(data) % 2 else data


def file_meta_bytes(
    sop_class: str, sop_instance: str, transfer_syntax: str, source: str = ""
) -> bytes:
    """Preamble, ``DICM`` and the file meta information (PS3.10 7.1) for a received instance;
    ``source``: the Source Application Entity Title (0002,0016), left out when "".

    Written by hand: pydicom's file meta writer costs more per instance than the fsync (a
    sixth of a C-GET's CPU time). Without ``source`` the bytes are those pydicom writes for
    pynetdicom's ``event.file_meta``.
    """
    elements = [
        _element(0x00020001, b"OB", b"\x00\x01"),
        _element(0x00020002, b"UI", _padded(sop_class, b"\x00")),
        _element(0x00020003, b"UI", _padded(sop_instance, b"\x00")),
        _element(0x00020010, b"UI", _padded(transfer_syntax, b"\x00")),
        _element(0x00020012, b"UI", _padded(str(PYNETDICOM_IMPLEMENTATION_UID), b"\x00")),
        _element(0x00020013, b"SH", _padded(PYNETDICOM_IMPLEMENTATION_VERSION, b" ")),
    ]
    if source:
        elements.append(_element(0x00020016, b"AE", _padded(source, b" ")))
    body = b"".join(elements)
    length = _element(0x00020000, b"UL", len(body).to_bytes(4, "little"))
    return _PREAMBLE + length + body


def _meta_of(event: Any) -> tuple[str, bytes]:
    """A C-STORE's transfer syntax and the Part 10 head of its file."""
    request = event.request
    syntax = str(event.context.transfer_syntax)
    sop_class = str(request.AffectedSOPClassUID or "").strip()
    sop_instance = str(request.AffectedSOPInstanceUID or "").strip()
    return syntax, file_meta_bytes(sop_class, sop_instance, syntax)


def _aet(value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return str(value or "").strip()


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
        self.expected = Expected(study_uid)
        """What the running request asked for (see :meth:`expect`)."""
        self.skip: set[str] = set()
        """SOP Instance UIDs already received in this retrieve: acknowledged, not rewritten."""
        self.received: list[Path] = []
        """Committed instance files, in arrival order."""
        self.bytes = 0
        self.requests = 0
        """C-STORE requests handled, written or not."""
        self.refused: list[Refusal] = []
        """Instances we did not keep, and why."""
        self._lock = threading.Lock()
        self._queue: queue.Queue[_Written | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def expect(self, series_uid: str | None, sop_uids: Collection[str] = ()) -> None:
        """The next request asks for this series (None: the whole study) and, if given,
        these instances only; anything else that arrives is refused."""
        self.expected = Expected(self.study_uid, series_uid, frozenset(sop_uids))

    def handle(self, event: Any, expected: Expected | None = None) -> int | Dataset:
        """Check and write the instance; return 0x0000, or a failure status with a comment.

        ``expected``: what the request it answers asked for (default :attr:`expected`), for
        a retrieve running several requests at once on several associations."""
        with self._lock:
            self.requests += 1
        sop_uid = str(event.request.AffectedSOPInstanceUID or "").strip()
        try:
            syntax, head = _meta_of(event)
            raw = event.request.DataSet.getvalue()  # as received, never decoded
            found = instance_identity(raw, syntax)
            problem = identity_problem(sop_uid, found, expected or self.expected)
            if problem is not None:
                return self._refuse(sop_uid, STATUS_CANNOT_UNDERSTAND, problem, "identity mismatch")
            series = found.series_uid
            if syntax == _DEFLATED:
                over = deflated_problem(raw, sop_uid)
                if over is not None:
                    # Kept aside, never stored as an instance: no start reads or fetches it again.
                    self.store.quarantine(
                        self.study_uid, series, sop_uid, over.message, data=head + raw
                    )
                    return self._refuse(
                        sop_uid, STATUS_OUT_OF_RESOURCES, over.message, "beyond our reading limits"
                    )
            with self._lock:
                if sop_uid in self.skip:
                    return 0x0000
                self.skip.add(sop_uid)
            handle, temp = self.store.open_temp(self.study_uid, series, sop_uid)
            try:
                with handle:
                    handle.write(head)
                    handle.write(raw)
            except BaseException:
                self.store.discard(temp)
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
            self.store.discard(item.temp)
            with self._lock:
                self.skip.discard(item.sop_uid)
                self.refused.append(Refusal(item.sop_uid, exc.message))
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
        """Commit what is pending, stop the background thread and fsync the folders."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        self.store.flush()

    def _refuse(self, sop_uid: str, code: int, reason: str, comment: str) -> Dataset:
        logger.warning("Refused a received instance: %s", reason)
        with self._lock:
            self.refused.append(Refusal(clean(sop_uid), reason))
        return _refusal(code, comment)


def peer_addresses(node: Node) -> frozenset[str]:
    """Every address ``node.host`` resolves to: where its C-MOVE sub-operations may come from."""
    try:
        infos = socket.getaddrinfo(node.host, node.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return frozenset()
    return frozenset(_plain(str(info[4][0])) for info in infos)


def _plain(address: str) -> str:
    """``::ffff:10.0.0.1`` and ``fe80::1%eth0`` as the peer's address compares with them."""
    address = address.split("%", 1)[0]
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def listen_address(node: Node) -> str:
    """The address our C-MOVE storage SCP binds for ``node``: never every interface.

    ``node.move_bind`` when set; the loopback address when the PACS is on this computer;
    otherwise the address of this computer on the route to the PACS (what the kernel would
    use as source address to reach it), so only that network can reach the SCP.

    Raises:
        NetError: the PACS's host does not resolve or no route leads to it; set move_bind.
    """
    if node.move_bind:
        return node.move_bind
    try:
        infos = socket.getaddrinfo(node.host, node.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise NetError(
            f"Cannot choose the address our C-MOVE storage SCP listens on: {node.host!r} does "
            f"not resolve ({exc}); set move_bind for node {node.name!r}."
        ) from exc
    # The address family association.py dials: IPv4 first.
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    family, address = infos[0][0], str(infos[0][4][0])
    if ipaddress.ip_address(address.split("%", 1)[0]).is_loopback:
        return "127.0.0.1" if family == socket.AF_INET else "::1"
    probe = socket.socket(family, socket.SOCK_DGRAM)
    try:
        probe.connect((address, node.port))  # UDP: chooses the route, sends nothing
        return _plain(str(probe.getsockname()[0]))
    except OSError as exc:
        raise NetError(
            f"Cannot choose the address our C-MOVE storage SCP listens on: no route from this "
            f"computer to {node.describe()} ({exc.strerror or exc}); set move_bind for node "
            f"{node.name!r}."
        ) from exc
    finally:
        probe.close()


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
        peer_aets: Collection[str] = (),
        peer_addresses: Collection[str] = (),
        accept_deflated: bool = False,
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
        peer_aets: the calling AE titles accepted (the PACS's); empty accepts any.
        peer_addresses: the addresses accepted (the PACS's, see :func:`peer_addresses`);
            empty accepts any. Whoever else calls, or calls another AE title than
            ``ae_title``, gets an A-ASSOCIATE-RJ (PS3.8 9.3.4) with the reason.
        accept_deflated: also accept Deflated Explicit VR Little Endian.
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
        self.peer_aets = frozenset(a.strip() for a in peer_aets)
        self.peer_addresses = frozenset(_plain(a) for a in peer_addresses)
        self.accept_deflated = accept_deflated
        self.associations = 0
        self.tls_failures: list[str] = []
        """One sentence per connection refused at the TLS handshake (address and reason)."""
        self.rejections: list[str] = []
        """One sentence per association we rejected (who called, from where, why)."""

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
        syntaxes = [
            ts for ts in ALL_TRANSFER_SYNTAXES if self.accept_deflated or str(ts) != _DEFLATED
        ]
        for uid in RANKED_STORAGE_CLASSES:
            ae.add_supported_context(uid, syntaxes)
        ae.maximum_associations = 4
        handlers: list[tuple[Any, ...]] = [
            (evt.EVT_C_STORE, self._handler),
            (evt.EVT_CONN_OPEN, disable_nagle),
            (evt.EVT_CONN_OPEN, self._guard),
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

    def _refusal_reason(self, calling: str, called: str, address: str) -> tuple[int, str] | None:
        """The A-ASSOCIATE-RJ reason and its sentence for a caller we do not accept."""
        who = f"{clean(calling)!r} at {clean(address)}"
        if called != self.ae_title.strip():
            return _RJ_CALLED_AET, (
                f"rejected an association from {who} to port {self.port}: it called AE title "
                f"{clean(called)!r}, not ours ({self.ae_title!r})"
            )
        if self.peer_aets and calling not in self.peer_aets:
            known = ", ".join(repr(a) for a in sorted(self.peer_aets))
            return _RJ_CALLING_AET, (
                f"rejected an association from {who} to port {self.port}: only {known} may "
                "send us the instances of this retrieve"
            )
        if self.peer_addresses and _plain(address) not in self.peer_addresses:
            known = ", ".join(sorted(self.peer_addresses))
            return _RJ_CALLING_AET, (
                f"rejected an association from {who} to port {self.port}: it does not come "
                f"from the PACS's address ({known})"
            )
        return None

    def _guard(self, event: Any) -> None:
        """Before the association is negotiated: reject callers other than the PACS."""
        assoc = event.assoc
        acse = assoc.acse
        negotiate = acse._negotiate_as_acceptor
        address = str(event.address[0]) if isinstance(event.address, tuple) else str(event.address)

        def checked() -> None:
            request = assoc.requestor.primitive
            calling = _aet(getattr(request, "calling_ae_title", ""))
            called = _aet(getattr(request, "called_ae_title", ""))
            refused = self._refusal_reason(calling, called, address)
            if refused is None:
                negotiate()
                return
            reason, text = refused
            with self._lock:
                self.rejections.append(text)
            logger.warning("Storage SCP %s", text)
            if self.trace is not None:
                self.trace.note(f"storage SCP {text}")
            acse.send_reject(_RJ_PERMANENT, _RJ_SERVICE_USER, reason)
            evt.trigger(assoc, evt.EVT_REJECTED, {})
            assoc.kill()

        # pynetdicom checks AE titles only against fixed lists, and addresses not at all: the
        # acceptor's negotiation of this one association is wrapped instead.
        acse._negotiate_as_acceptor = checked

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
