"""Network failures against small in-process pynetdicom SCPs: each surfaces as a typed error
whose message says what happened, and C-FIND streams and cancels."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from pynetdicom import evt

from tests.support import scps
from tests.support.ports import free_port
from tuiviewer.net import (
    AssociationAborted,
    AssociationRejected,
    ConnectionFailed,
    DimseStatusError,
    FindQuery,
    NetTimeout,
    NoAcceptedContext,
    Node,
    echo,
    find,
)
from tuiviewer.net.association import associate


def _find_scp(handler: Callable[..., Any]) -> AbstractContextManager[scps.Scp]:
    return scps.running_scp(contexts=[scps.STUDY_ROOT_FIND], handlers=[(evt.EVT_C_FIND, handler)])


def test_nothing_listening_is_connection_failed_naming_host_and_port() -> None:
    port = free_port()
    node = Node(name="gone", ae_title="NOBODY", host="127.0.0.1", port=port, connect_timeout=2)
    with pytest.raises(ConnectionFailed) as info:
        echo(node)
    assert f"127.0.0.1:{port}" in info.value.message
    assert "refused" in info.value.message.lower()


def test_unresolvable_host_is_connection_failed() -> None:
    node = Node(name="x", ae_title="X", host="no-such-host.invalid", port=104)
    with pytest.raises(ConnectionFailed, match="no-such-host.invalid.*does not resolve"):
        echo(node)


def test_rejected_calling_aet_gives_reason_in_words() -> None:
    with scps.running_scp(require_calling_aet=["SOMEONE"]) as scp:
        with pytest.raises(AssociationRejected) as info:
            echo(scp.node(calling_aet="INTRUDER"))
    message = info.value.message
    assert f"127.0.0.1:{scp.port}" in message and "'INTRUDER'" in message
    # PS3.8 Table 9-21: result 1 (permanent), source 1 (service-user), reason 3 (calling AE).
    assert "Rejected Permanent" in message
    assert "Calling AE title not recognised" in message
    assert info.value.source == "Service User"


def test_silent_scp_gives_dimse_timeout() -> None:
    with _find_scp(scps.sleeping_find_handler(1.5)) as scp:
        started = time.monotonic()
        with pytest.raises(NetTimeout) as info:
            list(find(scp.node(dimse_timeout=0.4), FindQuery(patient_name="X*")))
    assert time.monotonic() - started < 1.4
    assert info.value.which == "DIMSE"
    assert "within 0.4 s (DIMSE timeout)" in info.value.message


def test_out_of_resources_status_is_explained() -> None:
    with _find_scp(scps.failing_find_handler(0xA700)) as scp:
        with pytest.raises(DimseStatusError) as info:
            list(find(scp.node(), FindQuery()))
    assert info.value.code == 0xA700
    assert info.value.category == "Failure"
    # PS3.4 Table C.4-1: A700 is "Refused: Out of resources".
    assert "0xA700: Refused: Out of Resources" in info.value.message
    assert f"TESTSCP at 127.0.0.1:{scp.port}" in info.value.message


def test_abort_mid_find_keeps_earlier_matches_and_raises_aborted() -> None:
    rows = []
    with _find_scp(scps.aborting_find_handler(2)) as scp:
        with pytest.raises(AssociationAborted) as info:
            for row in find(scp.node(), FindQuery()):
                rows.append(row)
    assert [r.PatientID for r in rows] == ["ID000", "ID001"]
    assert "aborted the association during C-FIND" in info.value.message


def test_scp_without_query_context_gives_no_accepted_context() -> None:
    with scps.running_scp(contexts=[scps.VERIFICATION]) as scp:
        with pytest.raises(NoAcceptedContext) as info:
            list(find(scp.node(), FindQuery()))
    assert "Study Root Query/Retrieve Information Model - FIND" in info.value.message
    assert info.value.abstract_syntaxes == (scps.STUDY_ROOT_FIND,)


def test_more_than_128_contexts_is_refused_before_connecting() -> None:
    node = Node(name="x", ae_title="X", host="127.0.0.1", port=free_port())
    contexts = [(f"1.2.3.{i}", ["1.2.840.10008.1.2"]) for i in range(129)]
    with pytest.raises(Exception, match="129 presentation contexts.*at most 128"):
        with associate(node, contexts):
            pass


def test_find_streams_first_match_before_scp_is_half_done_and_cancel_stops_it() -> None:
    log = scps.StreamLog()
    cancel = threading.Event()
    arrivals: list[float] = []
    with _find_scp(scps.streaming_find_handler(log, count=10, interval=0.2)) as scp:
        for _ in find(scp.node(), FindQuery(), cancel=cancel):
            arrivals.append(time.monotonic())
            if len(arrivals) == 1:
                produced_when_first_arrived = len(log.produced)
            if len(arrivals) == 3:
                cancel.set()
        assert log.finished.wait(3)
    assert produced_when_first_arrived < 5
    assert 3 <= len(arrivals) < 10
    # The SCP saw the C-CANCEL (event.is_cancelled) and stopped producing.
    assert log.cancelled_after is not None and log.cancelled_after < 10
    assert len(log.produced) < 10


def test_cancel_while_waiting_is_sent_at_once() -> None:
    log = scps.StreamLog()
    cancel = threading.Event()
    with _find_scp(scps.streaming_find_handler(log, count=10, interval=0.3)) as scp:
        threading.Timer(0.4, cancel.set).start()
        started = time.monotonic()
        rows = list(find(scp.node(), FindQuery(), cancel=cancel))
        elapsed = time.monotonic() - started
        assert log.finished.wait(3)
    assert len(rows) < 3
    assert log.cancelled_after is not None
    assert elapsed < 1.5


def test_echo_trace_shows_context_status_and_no_phi_from_find() -> None:
    with scps.running_scp() as scp:
        result = echo(scp.node())
    text = result.trace.format()
    assert result.status == 0 and result.rtt_ms > 0
    assert "Verification SOP Class (1.2.840.10008.1.1)" in text
    assert "accepted: Explicit VR Little Endian (1.2.840.10008.1.2.1)" in text
    assert "C-ECHO (message 1); final status 0x0000 (Success)" in text
    assert "Outcome: released" in text

    from tuiviewer.net.trace import AssociationTrace

    trace = AssociationTrace()
    log = scps.StreamLog()
    with _find_scp(scps.streaming_find_handler(log, count=2, interval=0.01)) as scp:
        rows = list(find(scp.node(), FindQuery(patient_name="Doe^Secret*"), trace=trace))
    text = trace.format()
    assert len(rows) == 2
    assert "C-FIND (message 1): 2 pending; final status 0x0000" in text
    for phi in ("Doe", "Secret", "STREAM", "PATIENT", "ID000"):
        assert phi not in text
