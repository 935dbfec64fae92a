"""A small in-process Query/Retrieve SCP (pynetdicom) for retrieve fault tests.

It serves in-memory datasets over C-FIND (image level), C-GET and C-MOVE, and can misbehave
on purpose: abort the association after N instances, end a C-GET with a failure status and a
Failed SOP Instance UID List, refuse image-level C-FIND, or know no C-MOVE destination (then
pynetdicom itself answers 0xA801). Real peer, no mocks: the client under test cannot tell it
from a PACS.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE, evt

from tests.support.ports import LOOPBACK, free_port
from tests.support.scps import STUDY_ROOT_FIND, TRANSFER_SYNTAXES, Scp

STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"
STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"


@dataclass
class QrLog:
    """What the SCP was asked and did."""

    get_levels: list[str] = field(default_factory=list)
    """Query/Retrieve Level of each C-GET/C-MOVE, in order."""
    requested_sops: list[list[str]] = field(default_factory=list)
    """SOP Instance UIDs named by each image-level request."""
    yielded: int = 0
    """Instances handed to pynetdicom for C-STORE sub-operations."""
    accepted: int = 0
    """Associations accepted so far."""
    live: set[int] = field(default_factory=set)
    """Associations accepted and not closed yet (their ids)."""
    released: int = 0
    """Associations the peer released (A-RELEASE), rather than aborted or dropped."""
    lock: threading.Lock = field(default_factory=threading.Lock)


def _uids(ds: Dataset, keyword: str) -> list[str]:
    value = ds.get(keyword)
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [v for v in value.split("\\") if v]
    return [str(v) for v in value]


def _matches(datasets: Sequence[Dataset], identifier: Dataset) -> list[Dataset]:
    study = _uids(identifier, "StudyInstanceUID")
    series = _uids(identifier, "SeriesInstanceUID")
    sops = _uids(identifier, "SOPInstanceUID")
    return [
        ds
        for ds in datasets
        if (not study or ds.StudyInstanceUID in study)
        and (not series or ds.SeriesInstanceUID in series)
        and (not sops or ds.SOPInstanceUID in sops)
    ]


@contextmanager
def running_qr_scp(
    datasets: Sequence[Dataset],
    *,
    abort_after: int | None = None,
    fail_after: int | None = None,
    refuse_find: bool = False,
    refuse_image_get: bool = False,
    max_associations: int = 10,
    move_destinations: dict[str, tuple[str, int]] | None = None,
    ae_title: str = "FAULTQR",
    log: QrLog | None = None,
) -> Iterator[tuple[Scp, QrLog]]:
    """Start the SCP; yield its address and its log.

    Args:
        datasets: instances served (each with ``file_meta.TransferSyntaxUID``).
        abort_after: abort the association once this many instances were sent in total.
        fail_after: after this many instances of a request, end it with 0xA702 and a Failed
            SOP Instance UID List naming the instances not sent.
        refuse_find: answer every C-FIND with 0xA700 (out of resources).
        max_associations: associations at once; more are rejected (pynetdicom's limit).
        refuse_image_get: answer image-level C-GETs with 0xC000 (unable to process), as a PACS
            that retrieves only whole series does.
        move_destinations: AE title -> (host, port) C-MOVE may send to.
    """
    qr_log = log if log is not None else QrLog()
    destinations = move_destinations or {}

    def on_find(event: Any) -> Iterator[tuple[int, Dataset | None]]:
        if refuse_find:
            yield 0xA700, None
            return
        for ds in _matches(datasets, event.identifier):
            answer = Dataset()
            answer.QueryRetrieveLevel = "IMAGE"
            answer.StudyInstanceUID = ds.StudyInstanceUID
            answer.SeriesInstanceUID = ds.SeriesInstanceUID
            answer.SOPInstanceUID = ds.SOPInstanceUID
            answer.SOPClassUID = ds.SOPClassUID
            if "InstanceNumber" in ds:
                answer.InstanceNumber = ds.InstanceNumber
            yield 0xFF00, answer
        yield 0x0000, None

    def serve(event: Any, matches: list[Dataset]) -> Iterator[Any]:
        yield len(matches)
        for index, ds in enumerate(matches):
            with qr_log.lock:
                total = qr_log.yielded
            if abort_after is not None and total >= abort_after:
                # Let the last C-STORE response reach the client before the A-ABORT.
                time.sleep(0.05)
                event.assoc.abort()
                yield 0xFF00, ds
                return
            if fail_after is not None and index >= fail_after:
                failed = Dataset()
                failed.FailedSOPInstanceUIDList = [d.SOPInstanceUID for d in matches[index:]]
                yield 0xA702, failed
                return
            with qr_log.lock:
                qr_log.yielded += 1
            yield 0xFF00, ds

    def record(identifier: Dataset) -> list[Dataset]:
        with qr_log.lock:
            qr_log.get_levels.append(str(identifier.get("QueryRetrieveLevel", "")))
            if identifier.get("QueryRetrieveLevel") == "IMAGE":
                qr_log.requested_sops.append(_uids(identifier, "SOPInstanceUID"))
        return _matches(datasets, identifier)

    def on_get(event: Any) -> Iterator[Any]:
        matches = record(event.identifier)
        if refuse_image_get and event.identifier.get("QueryRetrieveLevel") == "IMAGE":
            yield len(matches)  # (with 0 sub-operations pynetdicom would answer success)
            yield 0xC000, None
            return
        yield from serve(event, matches)

    def on_move(event: Any) -> Iterator[Any]:
        destination = destinations.get(str(event.move_destination).strip())
        if destination is None:
            yield None, None  # pynetdicom answers 0xA801 Move destination unknown
            return
        yield destination
        yield from serve(event, record(event.identifier))

    def on_accepted(event: Any) -> None:
        with qr_log.lock:
            qr_log.accepted += 1
            qr_log.live.add(id(event.assoc))

    def on_closed(event: Any) -> None:
        with qr_log.lock:
            qr_log.live.discard(id(event.assoc))

    def on_released(event: Any) -> None:
        with qr_log.lock:
            qr_log.released += 1

    ae = AE(ae_title=ae_title)
    for uid in (STUDY_ROOT_FIND, STUDY_ROOT_GET, STUDY_ROOT_MOVE):
        ae.add_supported_context(uid, TRANSFER_SYNTAXES)
    for sop_class in dict.fromkeys(str(ds.SOPClassUID) for ds in datasets):
        ae.add_supported_context(sop_class, TRANSFER_SYNTAXES, scu_role=True, scp_role=True)
        ae.add_requested_context(sop_class, TRANSFER_SYNTAXES)
    ae.network_timeout = 5
    ae.maximum_associations = max_associations
    ae.dimse_timeout = 5
    port = free_port()
    server = ae.start_server(
        (LOOPBACK, port),
        block=False,
        evt_handlers=[
            (evt.EVT_C_FIND, on_find),
            (evt.EVT_C_GET, on_get),
            (evt.EVT_C_MOVE, on_move),
            (evt.EVT_ACCEPTED, on_accepted),
            (evt.EVT_CONN_CLOSE, on_closed),
            (evt.EVT_RELEASED, on_released),
        ],
    )
    assert server is not None
    try:
        yield Scp(ae_title=ae_title, port=port), qr_log
    finally:
        server.shutdown()
