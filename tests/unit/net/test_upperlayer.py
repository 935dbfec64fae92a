"""The lean C-FIND client (net/upperlayer.py, net/leanfind.py) against a raw-socket peer that
misbehaves: every fault is a typed error with a clear message, memory stays bounded whatever
length the peer claims, fragments are reassembled both ways, C-CANCEL stops a query, and the
command line says what happened without a traceback or a partial table."""

from __future__ import annotations

import io
import socket
import struct
import threading
import time
import tracemalloc

import pytest

from tests.support import rawscp, scps
from tests.support.rawscp import RawLog
from tuiviewer.commands.find import run_find
from tuiviewer.config.nodes import Node
from tuiviewer.dicom.rows import StudyRow
from tuiviewer.net.errors import AssociationAborted, AssociationRejected, NetTimeout
from tuiviewer.net.findquery import FindQuery, QueryModel
from tuiviewer.net.leanfind import Dictionary, encode_identifier, find_rows, query_elements
from tuiviewer.net.upperlayer import UnsupportedPeer


def _node(port: int, **overrides: object) -> Node:
    values: dict[str, object] = {
        "name": "raw",
        "ae_title": "RAWSCP",
        "host": "127.0.0.1",
        "port": port,
        "connect_timeout": 2,
        "acse_timeout": 1,
        "dimse_timeout": 1,
        "network_timeout": 2,
    }
    values.update(overrides)
    return Node(**values)  # type: ignore[arg-type]


def _cli(port: int) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = run_find("raw", "study", [], stdout=out, stderr=err, nodes={"raw": _node(port)})
    return status, out.getvalue(), err.getvalue()


def _ok_then(fault: bytes) -> rawscp.Script:
    """Accept, read the C-FIND, send one good answer, then ``fault``."""

    def script(conn: socket.socket, log: RawLog) -> None:
        rawscp.accept(conn, log)
        rawscp.read_message(conn, log)
        rawscp.answer(conn, scps.match(0))
        conn.sendall(fault)
        time.sleep(0.3)

    return script


def test_rejection_is_worded_from_its_result_source_and_reason() -> None:
    def script(conn: socket.socket, log: RawLog) -> None:
        rawscp.read_pdu(conn, log)
        conn.sendall(rawscp.pdu(0x03, bytes([0, 1, 1, 7])))

    with rawscp.raw_scp([script]) as (port, _):
        with pytest.raises(AssociationRejected) as info:
            list(find_rows(_node(port), FindQuery()))
    assert "Rejected Permanent, Service User: Called AE title not recognised" in (
        info.value.message
    )
    assert info.value.reason == "Called AE title not recognised"


def test_a_peer_that_never_answers_the_association_is_an_acse_timeout() -> None:
    def script(conn: socket.socket, log: RawLog) -> None:
        rawscp.read_pdu(conn, log)
        rawscp.read_pdu(conn, log)  # until the client gives up

    with rawscp.raw_scp([script]) as (port, _):
        started = time.monotonic()
        with pytest.raises(NetTimeout) as info:
            list(find_rows(_node(port), FindQuery()))
    assert info.value.which == "ACSE" and time.monotonic() - started < 2.5
    assert "did not answer the association request within 1 s" in info.value.message


def test_a_peer_that_never_answers_the_query_is_a_dimse_timeout_and_is_aborted() -> None:
    def script(conn: socket.socket, log: RawLog) -> None:
        rawscp.accept(conn, log)
        rawscp.read_message(conn, log)
        rawscp.read_pdu(conn, log)  # what the client sends next

    with rawscp.raw_scp([script]) as (port, log):
        with pytest.raises(NetTimeout) as info:
            list(find_rows(_node(port), FindQuery()))
    assert info.value.which == "DIMSE"
    assert "did not answer the C-FIND request within 1 s" in info.value.message
    assert log.pdu_types[-1] == 0x07  # A-ABORT


@pytest.mark.parametrize(
    ("fault", "said"),
    [
        (rawscp.pdu(0x09, b"\x00" * 8), "unknown PDU type 0x09"),
        (rawscp.pdu(0x02, b"\x00" * 8), "unexpected PDU of type 0x02"),
        (struct.pack(">BxI", 0x04, 0xFFFFFFF0), "claiming 4,294,967,280 bytes"),
        (rawscp.pdu(0x04, struct.pack(">IBB", 0x7FFFFFFF, 1, 3)), "impossible length"),
        (rawscp.pdu(0x04, b"\x00\x00"), "cut short"),
        (rawscp.pdu(0x04, rawscp.pdv(1, 0x02, b"\x00" * 10)), "no command announced"),
        (rawscp.pdu(0x04, rawscp.pdv(1, 0x03, b"\x08\x00\x00\x01\xff\xff")), "malformed"),
        (rawscp.pdu(0x07, bytes(4)), "aborted the association during C-FIND"),
        (b"", "was lost during C-FIND, before it answered"),
    ],
)
def test_a_malformed_or_hostile_pdu_mid_answer_is_a_clear_abort(fault: bytes, said: str) -> None:
    tracemalloc.start()
    try:
        with rawscp.raw_scp([_ok_then(fault)]) as (port, log):
            rows = []
            with pytest.raises(AssociationAborted) as info:
                for row in find_rows(_node(port), FindQuery()):
                    rows.append(row)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert said in info.value.message
    assert len(rows) == 1  # the answer before the fault arrived
    assert peak < 8 << 20  # nothing sized by what the peer claims


def test_the_command_line_says_what_happened_without_traceback_or_partial_table() -> None:
    with rawscp.raw_scp([_ok_then(struct.pack(">BxI", 0x04, 0xFFFFFFF0))]) as (port, _):
        status, out, err = _cli(port)
    assert status == 1 and out == ""
    assert "RAWSCP at 127.0.0.1" in err and "claiming" in err and "Traceback" not in err


def test_fragments_are_cut_to_the_peers_maximum_and_reassembled_from_it() -> None:
    names = [f"FRAG^{n}" for n in range(3)]

    def script(conn: socket.socket, log: RawLog) -> None:
        rawscp.accept(conn, log, max_pdu=64)
        rawscp.read_message(conn, log)
        for n, name in enumerate(names):
            rawscp.answer(conn, scps.match(n, name), split=7)
        rawscp.send_message(conn, rawscp.find_rsp(0x0000), split=5)
        rawscp.release(conn, log)

    with rawscp.raw_scp([script]) as (port, log):
        rows = list(find_rows(_node(port), FindQuery()))
    assert [row.patient_name for row in rows if isinstance(row, StudyRow)] == names
    assert 0 < log.max_pdu_seen <= 64
    expected = encode_identifier(
        query_elements(FindQuery(), QueryModel.STUDY_ROOT, Dictionary()), implicit=False
    )
    assert log.datasets[0] == expected
    assert log.pdu_types[-1] == 0x05  # released, not aborted
    assert not log.errors


def test_several_messages_in_one_pdu_are_all_read() -> None:
    def script(conn: socket.socket, log: RawLog) -> None:
        rawscp.accept(conn, log)
        rawscp.read_message(conn, log)
        body = b""
        for n in range(3):
            body += rawscp.pdv(1, 0x03, rawscp.find_rsp(0xFF00, with_dataset=True))
            body += rawscp.pdv(1, 0x02, rawscp.encode(scps.match(n, f"ONE^PDU{n}")))
        body += rawscp.pdv(1, 0x03, rawscp.find_rsp(0x0000))
        conn.sendall(rawscp.pdu(0x04, body))
        rawscp.release(conn, log)

    with rawscp.raw_scp([script]) as (port, log):
        rows = list(find_rows(_node(port), FindQuery()))
    assert [row.patient_name for row in rows if isinstance(row, StudyRow)] == [
        "ONE^PDU0",
        "ONE^PDU1",
        "ONE^PDU2",
    ]
    assert not log.errors


def test_the_identifier_is_what_pydicom_would_encode_in_either_syntax() -> None:
    from tuiviewer.net.find import build_identifier

    query = FindQuery(patient_name="Müller*", study_date="20240101-", modality="CT")
    elements = query_elements(query, QueryModel.STUDY_ROOT, Dictionary())
    for implicit in (False, True):
        assert encode_identifier(elements, implicit=implicit) == rawscp.encode(
            build_identifier(query), implicit=implicit
        )


def test_cancel_sends_c_cancel_and_ends_quietly() -> None:
    cancel = threading.Event()

    def script(conn: socket.socket, log: RawLog) -> None:
        rawscp.accept(conn, log)
        rawscp.read_message(conn, log)
        conn.settimeout(0.1)
        for n in range(50):
            rawscp.answer(conn, scps.match(n))
            try:
                values, _ = rawscp.read_message(conn, log)
            except TimeoutError:
                continue
            if values.get(0x0100) == struct.pack("<H", 0x0FFF):
                break
        conn.settimeout(5)
        rawscp.send_message(conn, rawscp.find_rsp(0xFE00))
        rawscp.release(conn, log)

    with rawscp.raw_scp([script]) as (port, log):
        rows = []
        for row in find_rows(_node(port), FindQuery(), cancel=cancel):
            rows.append(row)
            cancel.set()
    cancelled = [c for c in log.commands if c.get(0x0100) == struct.pack("<H", 0x0FFF)]
    assert len(cancelled) == 1 and cancelled[0][0x0120] == struct.pack("<H", 1)
    assert 1 <= len(rows) < 50
    assert not log.errors


def test_an_unproposed_transfer_syntax_falls_back_to_pynetdicom_before_any_output() -> None:
    def odd(conn: socket.socket, log: RawLog) -> None:
        rawscp.accept(conn, log, syntax="1.2.840.10008.1.2.4.50")

    def honest(conn: socket.socket, log: RawLog) -> None:
        rawscp.accept(conn, log)
        rawscp.read_message(conn, log)
        rawscp.answer(conn, scps.match(0, "FALLBACK^PATIENT"))
        rawscp.send_message(conn, rawscp.find_rsp(0x0000))
        rawscp.release(conn, log)

    with rawscp.raw_scp([odd]) as (port, _):
        with pytest.raises(UnsupportedPeer):
            list(find_rows(_node(port), FindQuery()))
    with rawscp.raw_scp([odd, honest]) as (port, _):
        status, out, err = _cli(port)
    assert status == 0, err
    assert out.count("FALLBACK^PATIENT") == 1 and err.strip() == "1 match."
