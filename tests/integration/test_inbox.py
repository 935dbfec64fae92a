"""The Inbox end to end, without the screens: Orthanc pushes a study to our listener, the Inbox
lists it with its sender and report state, and the signed report goes back to Orthanc (over
DIMSE, and over DICOMweb); a send that fails is recorded and a retry from the queue sends it."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import generate_uid

from tests.support.orthanc import Orthanc, OrthancConfig, OrthancPool, store_files
from tests.support.ports import LOOPBACK, free_port
from tests.unit.services.test_worklist import report_sr
from tuiviewer.config.dicomweb import DicomWebNode
from tuiviewer.config.listen import ListenConfig
from tuiviewer.config.nodes import Node
from tuiviewer.dicom.datagen import write_ct_series
from tuiviewer.dicom.rows import QueryLevel, StudyRow, to_row
from tuiviewer.net.errors import NetError
from tuiviewer.net.find import FindQuery
from tuiviewer.net.listen import Listener, Received
from tuiviewer.net.transport import find, send_files
from tuiviewer.services.inbox import (
    InboxNode,
    inbox_node,
    replies,
    reply_node,
    send_back_job,
)
from tuiviewer.services.worklist import ReportState, report_states
from tuiviewer.store import LocalStore

pytestmark = pytest.mark.orthanc


def _push(orthanc: Orthanc, store: LocalStore, tmp_path: Path, port: int) -> tuple[str, Path]:
    study = generate_uid()
    paths = write_ct_series(
        tmp_path / "ct", slices=3, rows=16, cols=16, seed=201, study_uid=study,
        patient_name="Inbox^Patient", patient_id="INBOX-1",
    )  # fmt: skip
    assert store_files(orthanc.host, orthanc.dicom_port, orthanc.aet, paths) == 3
    [orthanc_study] = orthanc.rest("GET", "/studies")
    arrived: list[Received] = []
    config = ListenConfig(ae_title="READER", port=port, bind=LOOPBACK, allow=(orthanc.aet,))
    with Listener(config, store, on_study=arrived.append):
        orthanc.rest("POST", "/modalities/reader/store", orthanc_study.encode())
        deadline = time.monotonic() + 10
        while not arrived and time.monotonic() < deadline:
            time.sleep(0.02)
    assert arrived and arrived[0].instances == 3
    # Orthanc's own copy goes, so that what arrives back later is the report alone.
    orthanc.clear()
    return study, paths[0]


def _report(store: LocalStore, study: str, final: bool) -> Path:
    at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    sr = report_sr(study, final=final, at=at, patient_id="INBOX-1")
    return store.write_dataset(sr)


def test_a_pushed_study_is_read_and_its_report_goes_back_to_the_sender(
    orthanc_factory: OrthancPool, tmp_path: Path
) -> None:
    port = free_port()
    orthanc = orthanc_factory.start(
        OrthancConfig(aet="CLINICPACS", modalities={"reader": ("READER", LOOPBACK, port)})
    )
    store = LocalStore(tmp_path / "store")
    study, _ = _push(orthanc, store, tmp_path, port)

    inbox = inbox_node(store)
    rows = [to_row(QueryLevel.STUDY, ds) for ds in find(inbox, FindQuery())]
    assert [r.uid for r in rows if isinstance(r, StudyRow)] == [study]
    row = rows[0]
    assert isinstance(row, StudyRow)
    assert (row.patient_id, row.modalities, row.instance_count) == ("INBOX-1", ("CT",), 3)
    assert [s.state for s in report_states(inbox, [study], store)] == [ReportState.UNREPORTED]

    # The sender maps to the node with its AE title.
    nodes = {"clinic": Node("clinic", orthanc.aet, orthanc.host, orthanc.dicom_port)}
    node = reply_node(store, study, None, nodes)
    assert isinstance(node, InboxNode) and node.reply_to == nodes["clinic"]
    assert node.sender == "CLINICPACS" and node.name == "clinic"

    sr = _report(store, study, final=True)
    assert [s.state for s in report_states(node, [study], store)] == [ReportState.FINAL]
    result = send_files(node, [sr])
    assert result.sent == [sr]
    arrived = orthanc.rest("GET", "/instances")
    assert len(arrived) == 1
    tags = orthanc.rest("GET", f"/instances/{arrived[0]}/simplified-tags")
    assert tags["SOPInstanceUID"] == str(dcmread(sr).SOPInstanceUID)
    assert replies(store)[study].state == "sent"


def test_a_failed_send_back_is_recorded_and_the_queue_retries_it(
    orthanc_factory: OrthancPool, tmp_path: Path
) -> None:
    port = free_port()
    orthanc = orthanc_factory.start(
        OrthancConfig(
            aet="CLINICPACS", dicomweb=True, modalities={"reader": ("READER", LOOPBACK, port)}
        )
    )
    store = LocalStore(tmp_path / "store")
    study, _ = _push(orthanc, store, tmp_path, port)
    sr = _report(store, study, final=True)

    # No node maps to the sender: nothing is sent, and the Inbox says why.
    lost = reply_node(store, study, None, {})
    with pytest.raises(NetError, match="maps to no node"):
        send_files(lost, [sr])
    assert replies(store)[study].state == "failed"

    # Configured to report over DICOMweb; the server is down at first.
    web = DicomWebNode(
        name="clinic-web", ae_title="", host=orthanc.host, port=orthanc.http_port,
        url=orthanc.dicomweb_url, connect_timeout=2,
    )  # fmt: skip
    listen = ListenConfig(allow=("CLINICPACS",), reply={"CLINICPACS": "clinic-web"})
    node = reply_node(store, study, listen, {"clinic-web": web})
    assert node.reply_to == web
    job = send_back_job(node, sr, study, "Inbox^Patient")
    orthanc.stop()
    job.run(store)
    assert job.state == "failed" and job.error
    assert replies(store)[study].state == "failed"
    orthanc.start()
    job.run(store)  # what the queue's retry does
    assert job.state == "done", job.error
    assert replies(store)[study].state == "sent"
    assert len(orthanc.rest("GET", "/instances")) == 1
