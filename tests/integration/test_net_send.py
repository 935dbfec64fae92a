"""C-STORE of files and folders: to a real Orthanc (it ends up holding them, compressed files
as they were), over several associations past 128 contexts, and to an SCP that refuses one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid
from pynetdicom import evt

from tests.conftest import testdata as sample_file
from tests.support import scps
from tests.support.orthanc import Orthanc
from tuiviewer.config.nodes import Node
from tuiviewer.net.send import SendProgress, send_files
from tuiviewer.net.sopclasses import RANKED_STORAGE_CLASSES
from tuiviewer.net.trace import AssociationTrace

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"


def _node(orthanc: Orthanc) -> Node:
    return Node(name="orthanc", ae_title=orthanc.aet, host=orthanc.host, port=orthanc.dicom_port)


def _relabel(source: Path, dest: Path) -> str:
    """Copy ``source`` to ``dest`` with fresh UIDs (keeping its encoding); return the SOP UID."""
    ds = dcmread(source, force=True)
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = generate_uid()
    has_meta = "TransferSyntaxUID" in getattr(ds, "file_meta", {})
    if has_meta:
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    dest.parent.mkdir(parents=True, exist_ok=True)
    # No file meta in, none out: such headless files exist and must be sendable too.
    ds.save_as(dest, enforce_file_format=has_meta, implicit_vr=None if has_meta else True)
    return str(ds.SOPInstanceUID)


@pytest.fixture
def folder(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """CT, JPEG 2000 MR (nested), headless RT plan, a text file: SOP UID -> source name."""
    root = tmp_path / "to-send"
    uids = {
        _relabel(sample_file("CT_small.dcm"), root / "ct.dcm"): "CT_small.dcm",
        _relabel(
            sample_file("MR_small_jp2klossless.dcm"), root / "a" / "b" / "mr.dcm"
        ): "MR_small_jp2klossless.dcm",
        _relabel(sample_file("rtplan.dcm"), root / "plan"): "rtplan.dcm",
    }
    (root / "a" / "notes.txt").write_text("not DICOM\n")
    return root, uids


def _orthanc_instance(orthanc: Orthanc, sop_uid: str) -> str | None:
    found = orthanc.rest("POST", "/tools/lookup", sop_uid.encode())
    ids = [item["ID"] for item in found if item["Type"] == "Instance"]
    return ids[0] if ids else None


@pytest.mark.orthanc
def test_send_folder_stores_every_dicom_file(
    orthanc: Orthanc, folder: tuple[Path, dict[str, str]]
) -> None:
    if not orthanc.is_running:
        orthanc.start()
    root, uids = folder
    before = orthanc.instance_count()
    reports: list[SendProgress] = []
    result = send_files(_node(orthanc), [root], progress=reports.append)

    assert orthanc.instance_count() == before + len(uids)
    assert sorted(p.name for p in result.sent) == ["ct.dcm", "mr.dcm", "plan"]
    assert [p.name for p in result.skipped_not_dicom] == ["notes.txt"]
    assert result.failed == [] and not result.partial
    assert reports[-1].done == reports[-1].total == len(uids)
    for sop_uid, source in uids.items():
        instance = _orthanc_instance(orthanc, sop_uid)
        assert instance is not None, source
        stored_ts = orthanc.rest("GET", f"/instances/{instance}/metadata/TransferSyntax")
        original = dcmread(sample_file(source), force=True)
        original_ts = original.file_meta.get("TransferSyntaxUID") if original.file_meta else None
        if original_ts is not None and original_ts.is_compressed:
            # Sent as it is on disk, not decompressed.
            assert stored_ts.decode() == original_ts


def _tiny(sop_class: str, folder: Path, index: int) -> Path:
    ds = Dataset()
    ds.SOPClassUID = UID(sop_class)
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID = "MANY-CLASSES"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = UID(sop_class)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{index:03d}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.orthanc
def test_more_than_128_contexts_use_several_associations(orthanc: Orthanc, tmp_path: Path) -> None:
    if not orthanc.is_running:
        orthanc.start()
    classes = RANKED_STORAGE_CLASSES[:130]
    paths = [_tiny(uid, tmp_path, i) for i, uid in enumerate(classes)]
    before = orthanc.instance_count()
    trace = AssociationTrace()
    result = send_files(_node(orthanc), paths, trace=trace)
    assert len(result.sent) == 130 and result.failed == []
    assert orthanc.instance_count() == before + 130
    assert len(result.traces) == 2 and result.traces[0] is trace
    assert [len(t.contexts) for t in result.traces] == [128, 2]


def test_refused_file_is_reported_and_the_others_still_go(tmp_path: Path) -> None:
    paths = [_tiny(CT_IMAGE, tmp_path, i) for i in range(3)]
    refused = str(dcmread(paths[1]).SOPInstanceUID)
    received: list[str] = []

    def on_store(event: Any) -> int:
        uid = str(event.request.AffectedSOPInstanceUID)
        if uid == refused:
            return 0xA700
        received.append(uid)
        return 0x0000

    with scps.running_scp(contexts=[CT_IMAGE], handlers=[(evt.EVT_C_STORE, on_store)]) as scp:
        result = send_files(scp.node(), paths)
    assert [p.name for p in result.sent] == ["000.dcm", "002.dcm"]
    assert len(received) == 2
    [(path, reason)] = result.failed
    assert path == paths[1]
    assert "0xA700: Refused: Out of Resources" in reason and "001.dcm" in reason


def test_class_the_peer_does_not_accept_fails_without_stopping(tmp_path: Path) -> None:
    ct = _tiny(CT_IMAGE, tmp_path / "ct", 0)
    mr = _tiny("1.2.840.10008.5.1.4.1.1.4", tmp_path / "mr", 0)
    with scps.running_scp(contexts=[CT_IMAGE], handlers=[(evt.EVT_C_STORE, lambda e: 0)]) as scp:
        result = send_files(scp.node(), [ct.parent, mr.parent])
    assert result.sent == [ct]
    [(path, reason)] = result.failed
    assert path == mr
    assert "accepted no presentation context for MR Image Storage" in reason


def test_files_that_are_not_dicom_are_skipped_without_connecting(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hello")
    (tmp_path / "b.bin").write_bytes(bytes(range(256)) * 4)
    trace = AssociationTrace()
    with scps.running_scp(contexts=[CT_IMAGE]) as scp:
        result = send_files(scp.node(), [tmp_path], trace=trace)
    assert result.sent == [] and result.failed == []
    assert sorted(p.name for p in result.skipped_not_dicom) == ["a.txt", "b.bin"]
    assert trace.contexts == []
