"""A small DICOM upper-layer client (PS3.8 section 9), for the command line's lean C-FIND.

pynetdicom costs a ``tuiviewer find`` about 0.4 s of imports and 1 ms per answer (its DUL
thread, PDU and primitive objects, events, a pydicom parse of every command set); dcmtk's
``findscu`` does a 1,000-study query in a third of that. This module speaks just what one
SCU association needs, on the calling thread and without pydicom or pynetdicom:
A-ASSOCIATE-RQ and its AC/RJ, P-DATA-TF with fragmentation both ways, A-RELEASE, A-ABORT,
the node's four timeouts and DICOM TLS through :func:`tuiviewer.net.tls.ssl_context`.

Everything it cannot vouch for becomes a typed error from :mod:`tuiviewer.net.errors` (never
a traceback or an unbounded read): a malformed or oversized PDU, an unexpected PDU type, an
A-ABORT, a dropped connection, silence past a timeout. Lengths from the peer are checked
before anything is allocated, so memory stays bounded whatever the peer claims.
"""

from __future__ import annotations

import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from tuiviewer.config.nodes import Node
from tuiviewer.net.errors import (
    AssociationAborted,
    AssociationRejected,
    ConnectionFailed,
    NetError,
    NetTimeout,
    TlsFailed,
)

#: PS3.7 Annex A.2.1: the DICOM Application Context Name.
APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"
#: What we announce as implementation (PS3.7 D.3.3.2); the same as the pynetdicom path's, so a
#: PACS sees one client whichever path the command took.
IMPLEMENTATION_UID = "1.2.826.0.1.3680043.9.3811.3.0.4"
IMPLEMENTATION_VERSION = "PYNETDICOM_304"
#: Our maximum P-DATA-TF length (as the pynetdicom path announces).
MAX_PDU = 16382 * 16
#: Longest P-DATA-TF we read from a peer that ignores our maximum (some do, a little).
_PDATA_LIMIT = 4 * MAX_PDU
#: Longest other PDU: an A-ASSOCIATE-AC with 128 contexts and user items fits many times over.
_OTHER_LIMIT = 1 << 16
#: Longest DIMSE message (command or data set) assembled from fragments.
MESSAGE_LIMIT = 64 << 20
#: Bytes asked of the socket per read.
_CHUNK = 1 << 16
#: How often a blocked read looks at the cancel event.
_POLL = 0.05
_RESULTS = {1: "Rejected Permanent", 2: "Rejected Transient"}
_SOURCES = {1: "Service User", 2: "Service Provider (ACSE)", 3: "Service Provider (Presentation)"}
# PS3.8 Table 9-21.
_REASONS = {
    1: {
        1: "No reason given",
        2: "Application context name not supported",
        3: "Calling AE title not recognised",
        7: "Called AE title not recognised",
    },
    2: {1: "No reason given", 2: "Protocol version not supported"},
    3: {1: "Temporary congestion", 2: "Local limit exceeded"},
}


def address_infos(node: Node) -> list[Any]:
    """``getaddrinfo`` for ``node``'s host and port, IPv4 first (pynetdicom picks the socket
    family from the address text).

    Raises:
        ConnectionFailed: the host name does not resolve.
    """
    try:
        # An ASCII name as bytes: a str goes through the idna codec (stringprep and
        # unicodedata, a few ms) even for an address.
        host: str | bytes = node.host.encode("ascii") if node.host.isascii() else node.host
        infos = socket.getaddrinfo(host, node.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConnectionFailed(
            f"Cannot connect to {node.describe()}: host name {node.host!r} does not resolve "
            f"({reason})."
        ) from exc
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    return infos


#: When we last closed an association to a peer (host, port). A peer that takes few
#: associations may count one we closed for a moment longer (pynetdicom's counts it until
#: its thread ends) and refuse the next with "Rejected Transient".
_CLOSED: dict[tuple[str, int], float] = {}
_CLOSED_LOCK = threading.Lock()
#: A transient rejection this soon after we closed one of ours is asked again...
BUSY_WINDOW_S = 2.0
#: ...after this pause.
BUSY_PAUSE_S = 0.25


def note_closed(node: Node) -> None:
    """We released or aborted an association to ``node`` just now."""
    with _CLOSED_LOCK:
        _CLOSED[(node.host, node.port)] = time.monotonic()


def busy_with_ours(node: Node, error: AssociationRejected) -> bool:
    """``error`` is a transient rejection and we closed an association to ``node`` less
    than :data:`BUSY_WINDOW_S` ago: the peer may still count it, so asking again after
    :data:`BUSY_PAUSE_S` may succeed."""
    if error.result != _RESULTS[2]:
        return False
    with _CLOSED_LOCK:
        closed = _CLOSED.get((node.host, node.port))
    return closed is not None and time.monotonic() - closed < BUSY_WINDOW_S


class _Dropped(AssociationAborted):
    """The connection closed or failed under us (no A-ABORT)."""


def _is_ssl_error(exc: BaseException) -> bool:
    # ssl is imported only for TLS nodes (it costs a plain query ~10 ms), and only then can
    # one of its errors arise.
    module = sys.modules.get("ssl")
    return module is not None and isinstance(exc, module.SSLError)


class UnsupportedPeer(NetError):
    """The peer accepted something this client does not speak (e.g. another transfer syntax).

    Raised before anything was shown, so that the caller can take the pynetdicom path.
    """


def _item(kind: int, body: bytes) -> bytes:
    return struct.pack(">BxH", kind, len(body)) + body


def _ae(title: str) -> bytes:
    return title.encode("ascii").ljust(16)[:16]


def associate_rq(
    called: str, calling: str, contexts: Sequence[tuple[int, str, Sequence[str]]]
) -> bytes:
    """The A-ASSOCIATE-RQ PDU (PS3.8 9.3.2) proposing ``(context id, abstract, [syntaxes])``."""
    items = _item(0x10, APPLICATION_CONTEXT.encode())
    for context_id, abstract, syntaxes in contexts:
        body = struct.pack(">B3x", context_id) + _item(0x30, abstract.encode())
        body += b"".join(_item(0x40, uid.encode()) for uid in syntaxes)
        items += _item(0x20, body)
    user = _item(0x51, struct.pack(">I", MAX_PDU))
    user += _item(0x52, IMPLEMENTATION_UID.encode())
    user += _item(0x55, IMPLEMENTATION_VERSION.encode())
    items += _item(0x50, user)
    body = struct.pack(">H2x", 1) + _ae(called) + _ae(calling) + bytes(32) + items
    return struct.pack(">BxI", 0x01, len(body)) + body


class Accepted:
    """What the A-ASSOCIATE-AC said: each context's result and syntax, the peer's max PDU."""

    def __init__(self) -> None:
        self.contexts: dict[int, tuple[int, str]] = {}
        """Context ID → (result, transfer syntax UID); result 0 is acceptance (PS3.8 9.3.3.2)."""
        self.max_pdu = 0
        """The peer's maximum P-DATA-TF length; 0 is no limit."""


def parse_associate_ac(body: bytes) -> Accepted:
    """Read an A-ASSOCIATE-AC's variable items (PS3.8 9.3.3).

    Raises:
        ValueError: an item runs past the PDU or is too short for its kind.
    """
    accepted = Accepted()
    if len(body) < 68:
        raise ValueError("the A-ASSOCIATE-AC is shorter than its fixed fields")
    offset = 68
    while offset < len(body):
        kind, length = _item_header(body, offset)
        value = body[offset + 4 : offset + 4 + length]
        offset += 4 + length
        if kind == 0x21:
            if length < 4:
                raise ValueError("a presentation context item is too short")
            syntax = ""
            sub = 4
            while sub < length:
                sub_kind, sub_length = _item_header(value, sub)
                if sub_kind == 0x40:
                    syntax = _uid(value[sub + 4 : sub + 4 + sub_length])
                sub += 4 + sub_length
            accepted.contexts[value[0]] = (value[2], syntax)
        elif kind == 0x50:
            sub = 0
            while sub < length:
                sub_kind, sub_length = _item_header(value, sub)
                if sub_kind == 0x51:
                    if sub_length != 4:
                        raise ValueError("the maximum length item is not 4 bytes")
                    (accepted.max_pdu,) = struct.unpack_from(">I", value, sub + 4)
                sub += 4 + sub_length
    return accepted


def _item_header(data: bytes, offset: int) -> tuple[int, int]:
    if offset + 4 > len(data):
        raise ValueError("an item header runs past the end of its PDU")
    kind, length = struct.unpack_from(">BxH", data, offset)
    if offset + 4 + length > len(data):
        raise ValueError(f"an item of type 0x{kind:02X} runs past the end of its PDU")
    return kind, length


def _uid(data: bytes) -> str:
    return data.decode("ascii", "replace").rstrip("\x00 ")


def rejection(node: Node, body: bytes) -> AssociationRejected:
    """The error for an A-ASSOCIATE-RJ body (PS3.8 9.3.4), worded as the pynetdicom path's."""
    result, source, reason = (body[1], body[2], body[3]) if len(body) >= 4 else (0, 0, 0)
    result_text = _RESULTS.get(result, "(no value available)")
    source_text = _SOURCES.get(source, "(no value available)")
    reason_text = _REASONS.get(source, {}).get(reason, "(no value available)")
    return AssociationRejected(
        f"{node.describe()} rejected the association from {node.calling_aet!r} "
        f"({result_text}, {source_text}: {reason_text}).",
        result=result_text,
        source=source_text,
        reason=reason_text,
    )


class UpperLayer:
    """One association as a requestor: :meth:`open`, then messages, then :meth:`release`.

    Not thread-safe except :meth:`abort`, which another thread may call to stop a read.
    """

    def __init__(self, node: Node) -> None:
        self.node = node
        self.where = node.describe()
        self.peer_max_pdu = 0
        self.contexts: dict[int, tuple[int, str]] = {}
        self._sock: socket.socket | None = None
        self._pending: dict[int, bytearray] = {}
        self._received = bytearray()
        self._body = b""
        self._offset = 0
        self._lock = threading.Lock()
        self.phase = "negotiation"
        """What the association is doing, for messages: "negotiation", a DIMSE service
        ("C-FIND") or "release"."""

    # ---------------------------------------------------------------- connection
    def open(self, contexts: Sequence[tuple[int, str, Sequence[str]]]) -> None:
        """Connect (TLS if the node says so) and negotiate ``contexts``; a transient
        rejection just after we closed one of ours is asked again (:func:`busy_with_ours`).

        Raises:
            ConnectionFailed, TlsFailed, NetTimeout, AssociationRejected, AssociationAborted.
        """
        while True:
            try:
                self._open_once(contexts)
                return
            except AssociationRejected as exc:
                if not busy_with_ours(self.node, exc):
                    raise
            time.sleep(BUSY_PAUSE_S)

    def _open_once(self, contexts: Sequence[tuple[int, str, Sequence[str]]]) -> None:
        node = self.node
        verb = "over TLS " if node.tls is not None else ""
        family, socktype, proto, _, address = address_infos(node)[0]
        sock = socket.socket(family, socktype, proto)
        try:
            sock.settimeout(node.connect_timeout)
            sock.connect(address)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if node.tls is not None:
                from tuiviewer.net.tls import ssl_context

                sock = ssl_context(node.tls).wrap_socket(
                    sock, server_hostname=node.tls.server_hostname
                )
        except TimeoutError as exc:
            sock.close()
            raise NetTimeout(
                f"Connecting {verb}to {self.where} timed out after {node.connect_timeout:g} s "
                "(connect timeout).",
                "connect",
            ) from exc
        except OSError as exc:
            sock.close()
            from tuiviewer.net.tls import handshake_failed, handshake_reset, ssl_reason

            reason = ssl_reason(exc)
            if _is_ssl_error(exc):
                raise handshake_failed(self.where, reason) from exc
            if isinstance(exc, ConnectionResetError) and node.tls is not None:
                raise handshake_reset(self.where) from exc
            raise ConnectionFailed(f"Cannot connect {verb}to {self.where}: {reason}.") from exc
        self._sock = sock
        try:
            self._send(associate_rq(node.ae_title, node.calling_aet, contexts))
            kind, body = self._read_pdu(node.acse_timeout, "ACSE", "the association request")
        except _Dropped as exc:
            if node.tls is not None:
                raise TlsFailed(
                    f"{self.where} closed the TLS connection during association negotiation "
                    "(it may have refused our client certificate)."
                ) from exc
            name = node.name or "NAME"
            raise AssociationAborted(
                f"{self.where} closed the connection during association negotiation; the port "
                "may accept DICOM TLS only: if so, give the node TLS settings "
                f"([nodes.{name}.tls] in nodes.toml)."
            ) from exc
        if kind == 0x03:
            self._close(established=False)
            raise rejection(node, body)
        if kind != 0x02:
            self.protocol_error(f"answered the association request with a PDU of type 0x{kind:02X}")
        try:
            accepted = parse_associate_ac(body)
        except ValueError as exc:
            self.protocol_error(f"sent a malformed A-ASSOCIATE-AC ({exc})")
        self.contexts = accepted.contexts
        self.peer_max_pdu = accepted.max_pdu

    def release(self) -> None:
        """A-RELEASE-RQ, wait for the RP (ACSE timeout), close; abort if the peer does not."""
        if self._sock is None:
            return
        self.phase = "release"
        try:
            self._send(struct.pack(">BxI4x", 0x05, 4))
            while True:
                kind, _ = self._read_pdu(self.node.acse_timeout, "ACSE", "the release request")
                if kind == 0x06:
                    break
                if kind == 0x05:  # a release collision: answer it (PS3.8 7.2.2)
                    self._send(struct.pack(">BxI4x", 0x06, 4))
                    break
        except NetError:
            self.abort()
            return
        self._close()

    def abort(self) -> None:
        """Send A-ABORT (source: service user) and close; quiet if the link is gone."""
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is None:
            return
        try:
            sock.settimeout(1.0)
            sock.sendall(struct.pack(">BxI4B", 0x07, 4, 0, 0, 0, 0))
        except OSError:
            pass
        finally:
            sock.close()
            note_closed(self.node)

    def _close(self, *, established: bool = True) -> None:
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
            if established:
                note_closed(self.node)

    # ---------------------------------------------------------------- messages
    def send_message(self, context_id: int, command: bytes, dataset: bytes | None) -> None:
        """Send one DIMSE message as P-DATA-TF PDUs, fragmented to the peer's maximum."""
        limit = self.peer_max_pdu - 6 if self.peer_max_pdu > 6 else MAX_PDU - 6
        out = bytearray()
        for data, flags in ((command, 0x01), (dataset, 0x00)):
            if data is None:
                continue
            view = memoryview(data)
            for start in range(0, max(len(data), 1), limit):
                chunk = view[start : start + limit]
                last = 0x02 if start + limit >= len(data) else 0x00
                out += struct.pack(
                    ">BxIIBB", 0x04, len(chunk) + 6, len(chunk) + 2, context_id, flags | last
                )
                out += chunk
        self._send(bytes(out))

    def receive_message(
        self,
        service: str,
        cancel: threading.Event | None = None,
        on_cancel: Callable[[], None] | None = None,
    ) -> tuple[int, bytes, bytes | None]:
        """Wait (DIMSE timeout) for one message of ``service``: ``(context id, command, data
        set or None)``.

        The data set is the one that follows the command, when the command says it has one
        (CommandDataSetType, PS3.7 E.1-1). While waiting, ``on_cancel`` is called (from this
        thread) whenever ``cancel`` is set; it may send a message.

        Raises:
            NetTimeout, AssociationAborted: as for every read.
        """
        command: bytes | None = None
        context = 0
        while True:
            if self._offset >= len(self._body):
                kind, body = self._read_pdu(
                    self.node.dimse_timeout, "DIMSE", f"the {service} request", cancel, on_cancel
                )
                if kind != 0x04:
                    self._unexpected(kind, body)
                self._body, self._offset = body, 0
            # One PDU may end one message and begin the next: the rest of it is kept in
            # _body from _offset for the next call.
            body = self._body
            while self._offset < len(body):
                offset = self._offset
                if offset + 6 > len(body):
                    self.protocol_error("sent a P-DATA-TF whose last PDV item is cut short")
                (length,) = struct.unpack_from(">I", body, offset)
                if length < 2 or offset + 4 + length > len(body):
                    self.protocol_error(f"sent a PDV item of impossible length {length}")
                context, control = body[offset + 4], body[offset + 5]
                fragment = body[offset + 6 : offset + 4 + length]
                self._offset = offset + 4 + length
                is_command = bool(control & 0x01)
                key = context * 2 + is_command
                buffer = self._pending.setdefault(key, bytearray())
                if len(buffer) + len(fragment) > MESSAGE_LIMIT:
                    self.protocol_error(
                        f"sent a DIMSE message longer than {MESSAGE_LIMIT >> 20} MiB"
                    )
                buffer += fragment
                if not control & 0x02:
                    continue
                whole = bytes(self._pending.pop(key))
                if is_command:
                    if command is not None:
                        self.protocol_error("sent a command while the data set of another was due")
                    try:
                        announced = has_dataset(whole)
                    except ValueError as exc:
                        self.protocol_error(f"sent a malformed command set ({exc})")
                    if not announced:
                        return context, whole, None
                    command = whole
                elif command is None:
                    self.protocol_error("sent a data set that no command announced")
                else:
                    return context, command, whole

    # ---------------------------------------------------------------- PDUs
    def _send(self, data: bytes) -> None:
        sock = self._sock
        if sock is None:
            raise AssociationAborted(f"The association with {self.where} is closed.")
        try:
            sock.settimeout(self.node.network_timeout)
            sock.sendall(data)
        except TimeoutError as exc:
            self.abort()
            raise NetTimeout(
                f"{self.where} took no data for {self.node.network_timeout:g} s "
                "(network timeout); the association was aborted.",
                "network",
            ) from exc
        except OSError as exc:
            self._close()
            raise self._dropped() from exc

    def _dropped(self) -> _Dropped:
        if self.phase == "negotiation":
            return _Dropped(f"The connection to {self.where} was lost during negotiation.")
        return _Dropped(
            f"The connection to {self.where} was lost during {self.phase}, before it answered."
        )

    def _read_pdu(
        self,
        timeout: float,
        which: str,
        awaited: str,
        cancel: threading.Event | None = None,
        on_cancel: Callable[[], None] | None = None,
    ) -> tuple[int, bytes]:
        """Read one PDU within ``timeout`` (the ``which`` timeout; ``awaited`` names what we
        wait for, for the message)."""
        header = self._read(6, timeout, which, awaited, cancel, on_cancel)
        kind, length = struct.unpack(">BxI", header)
        limit = _PDATA_LIMIT if kind == 0x04 else _OTHER_LIMIT
        if kind not in range(1, 8):
            self.protocol_error(f"sent an unknown PDU type 0x{kind:02X}")
        if length > limit:
            self.protocol_error(
                f"sent a PDU of type 0x{kind:02X} claiming {length:,} bytes "
                f"(at most {limit:,} are accepted)"
            )
        body = self._read(length, timeout, which, awaited, cancel, on_cancel)
        if kind == 0x07:
            # Worded as the pynetdicom path words it (its source and reason say little).
            self._close()
            raise AssociationAborted(f"{self.where} aborted the association during {self.phase}.")
        return kind, body

    def _read(
        self,
        count: int,
        timeout: float,
        which: str,
        awaited: str,
        cancel: threading.Event | None,
        on_cancel: Callable[[], None] | None,
    ) -> bytes:
        sock = self._sock
        if sock is None:
            raise AssociationAborted(f"The association with {self.where} is closed.")
        buffer = self._received
        deadline = time.monotonic() + timeout
        while len(buffer) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                self.abort()
                after = "" if which == "ACSE" else "; the association was aborted"
                raise NetTimeout(
                    f"{self.where} did not answer {awaited} within {timeout:g} s "
                    f"({which} timeout){after}.",
                    which,
                )
            if cancel is not None and on_cancel is not None and cancel.is_set():
                on_cancel()
            try:
                sock.settimeout(min(left, _POLL) if cancel is not None else left)
                # What has arrived, up to a chunk: several PDUs per call when answers
                # come fast, instead of two calls per PDU. Never more than a chunk
                # beyond what was asked for is held.
                chunk = sock.recv(max(count - len(buffer), _CHUNK))
            except TimeoutError:
                continue
            except OSError as exc:  # ssl.SSLError too
                self._close()
                raise self._dropped() from exc
            if not chunk:
                self._close()
                raise self._dropped()
            buffer += chunk
        data = bytes(buffer[:count])
        del buffer[:count]
        return data

    def _unexpected(self, kind: int, body: bytes) -> None:
        if kind == 0x05:
            self.protocol_error("asked to release the association before answering")
        self.protocol_error(f"sent an unexpected PDU of type 0x{kind:02X}")

    def protocol_error(self, what: str) -> NoReturn:
        self.abort()
        raise AssociationAborted(
            f"{self.where} {what}; the association was aborted (PS3.8 protocol error)."
        )


def has_dataset(command: bytes) -> bool:
    """Whether a command set (implicit VR little endian) announces a data set (PS3.7 E.1-1)."""
    value = command_values(command).get(0x00000800)
    return value is not None and value != b"\x01\x01"


def command_values(command: bytes) -> dict[int, bytes]:
    """The elements of a command set (group 0000, always implicit VR little endian, PS3.7 6.3.1)
    as tag → raw value.

    Raises:
        ValueError: an element runs past the end.
    """
    values: dict[int, bytes] = {}
    offset = 0
    end = len(command)
    while offset + 8 <= end:
        group, element, length = struct.unpack_from("<HHI", command, offset)
        offset += 8
        if offset + length > end:
            raise ValueError(f"element ({group:04X},{element:04X}) runs past the command set")
        values[group << 16 | element] = command[offset : offset + length]
        offset += length
    if offset != end:
        raise ValueError("the command set ends inside an element header")
    return values
