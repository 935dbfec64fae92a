"""A scripted DICOM peer on a raw socket, for what no honest SCP sends: malformed PDUs, lengths
that lie, odd negotiation, an abort or a dropped connection at a chosen point.

Each accepted connection runs one script (a function of the socket and a :class:`RawLog`) in a
server thread; scripts are written with the helpers here, which speak PS3.8 PDUs and PS3.7
command sets with pydicom doing the data set encoding (the test side may use pydicom freely).
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from tests.support.ports import LOOPBACK

EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"


@dataclass
class RawLog:
    """What the raw peer saw."""

    pdu_types: list[int] = field(default_factory=list)
    """Type of every PDU received, in order."""
    commands: list[dict[int, bytes]] = field(default_factory=list)
    """Every command set received (tag → raw value)."""
    datasets: list[bytes] = field(default_factory=list)
    """Every data set received."""
    max_pdu_seen: int = 0
    """Length of the longest P-DATA-TF received."""
    errors: list[str] = field(default_factory=list)


Script = Callable[[socket.socket, RawLog], None]


@contextmanager
def raw_scp(scripts: Sequence[Script]) -> Iterator[tuple[int, RawLog]]:
    """Listen on a free loopback port; run ``scripts[n]`` on the n-th connection."""
    log = RawLog()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((LOOPBACK, 0))
    listener.listen(4)
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        for script in scripts:
            conn = None
            while conn is None and not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    continue
            if conn is None:
                return
            conn.settimeout(10)
            try:
                script(conn, log)
            except Exception as exc:  # noqa: BLE001 - the test reads log.errors
                log.errors.append(f"{type(exc).__name__}: {exc}")
            finally:
                conn.close()

    thread = threading.Thread(target=serve, name="raw-scp", daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], log
    finally:
        stop.set()
        thread.join(15)
        listener.close()


def recv_exact(conn: socket.socket, count: int) -> bytes:
    data = bytearray()
    while len(data) < count:
        chunk = conn.recv(count - len(data))
        if not chunk:
            raise EOFError("the client closed the connection")
        data += chunk
    return bytes(data)


def read_pdu(conn: socket.socket, log: RawLog) -> tuple[int, bytes]:
    kind, length = struct.unpack(">BxI", recv_exact(conn, 6))
    log.pdu_types.append(kind)
    if kind == 0x04:
        log.max_pdu_seen = max(log.max_pdu_seen, length)
    return kind, recv_exact(conn, length)


def pdu(kind: int, body: bytes) -> bytes:
    return struct.pack(">BxI", kind, len(body)) + body


def _item(kind: int, body: bytes) -> bytes:
    return struct.pack(">BxH", kind, len(body)) + body


def proposed_context(rq_body: bytes) -> int:
    """The first presentation context ID of an A-ASSOCIATE-RQ body."""
    offset = 68
    while offset < len(rq_body):
        kind, length = struct.unpack_from(">BxH", rq_body, offset)
        if kind == 0x20:
            return rq_body[offset + 4]
        offset += 4 + length
    raise ValueError("no presentation context proposed")


def associate_ac(rq_body: bytes, *, syntax: str = EXPLICIT_LE, max_pdu: int = 16384) -> bytes:
    """An A-ASSOCIATE-AC accepting the first proposed context with ``syntax``."""
    context = proposed_context(rq_body)
    items = _item(0x10, b"1.2.840.10008.3.1.1.1")
    items += _item(0x21, struct.pack(">BxBx", context, 0) + _item(0x40, syntax.encode()))
    items += _item(0x50, _item(0x51, struct.pack(">I", max_pdu)))
    return pdu(0x02, rq_body[:68] + items)


def accept(conn: socket.socket, log: RawLog, **kwargs: object) -> None:
    """Read the A-ASSOCIATE-RQ and accept it."""
    kind, body = read_pdu(conn, log)
    assert kind == 0x01
    conn.sendall(associate_ac(body, **kwargs))  # type: ignore[arg-type]


def read_message(conn: socket.socket, log: RawLog) -> tuple[dict[int, bytes], bytes | None]:
    """Read one DIMSE message (and its data set, if announced) from P-DATA-TF PDUs."""
    command = bytearray()
    dataset = bytearray()
    command_done = False
    while True:
        kind, body = read_pdu(conn, log)
        if kind != 0x04:
            raise EOFError(f"expected P-DATA-TF, got PDU type 0x{kind:02X}")
        offset = 0
        while offset < len(body):
            (length,) = struct.unpack_from(">I", body, offset)
            control = body[offset + 5]
            fragment = body[offset + 6 : offset + 4 + length]
            offset += 4 + length
            if control & 1:
                command += fragment
                command_done = bool(control & 2)
            else:
                dataset += fragment
                if control & 2:
                    values = command_values(bytes(command))
                    log.commands.append(values)
                    log.datasets.append(bytes(dataset))
                    return values, bytes(dataset)
        if command_done:
            values = command_values(bytes(command))
            if values.get(0x0800) == b"\x01\x01":
                log.commands.append(values)
                return values, None


def command_values(command: bytes) -> dict[int, bytes]:
    values: dict[int, bytes] = {}
    offset = 0
    while offset < len(command):
        _, element, length = struct.unpack_from("<HHI", command, offset)
        values[element] = command[offset + 8 : offset + 8 + length]
        offset += 8 + length
    return values


def find_rsp(status: int, *, msg_id: int = 1, with_dataset: bool = False) -> bytes:
    """A C-FIND-RSP command set (implicit VR little endian)."""
    elements = [
        (0x0002, b"1.2.840.10008.5.1.4.1.2.2.1\x00"),
        (0x0100, struct.pack("<H", 0x8020)),
        (0x0120, struct.pack("<H", msg_id)),
        (0x0800, struct.pack("<H", 0x0000 if with_dataset else 0x0101)),
        (0x0900, struct.pack("<H", status)),
    ]
    body = b"".join(struct.pack("<HHI", 0, tag, len(v)) + v for tag, v in elements)
    return struct.pack("<HHII", 0, 0, 4, len(body)) + body


def encode(ds: Dataset, *, implicit: bool = False) -> bytes:
    """``ds`` as pydicom writes it, little endian, implicit or explicit VR."""
    buffer = DicomBytesIO()
    buffer.is_little_endian = True
    buffer.is_implicit_VR = implicit
    write_dataset(buffer, ds)
    return buffer.getvalue()


def pdv(context: int, control: int, data: bytes) -> bytes:
    return struct.pack(">IBB", len(data) + 2, context, control) + data


def send_message(
    conn: socket.socket, command: bytes, dataset: bytes | None = None, *, split: int = 0
) -> None:
    """Send a message in P-DATA-TF PDUs (context 1); ``split`` > 0 cuts every part into
    fragments of that many bytes, each in its own PDU."""
    for data, flag in ((command, 1), (dataset, 0)):
        if data is None:
            continue
        size = split or len(data)
        for start in range(0, len(data), size):
            last = 2 if start + size >= len(data) else 0
            conn.sendall(pdu(0x04, pdv(1, flag | last, data[start : start + size])))


def answer(conn: socket.socket, ds: Dataset, *, split: int = 0) -> None:
    send_message(conn, find_rsp(0xFF00, with_dataset=True), encode(ds), split=split)


def release(conn: socket.socket, log: RawLog) -> None:
    """Wait for A-RELEASE-RQ and answer it."""
    kind, _ = read_pdu(conn, log)
    if kind == 0x05:
        conn.sendall(pdu(0x06, bytes(4)))
