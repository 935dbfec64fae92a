"""The files a C-GET writes: Part 10 files whose data set is byte for byte what the PACS sent,
with a file meta written by hand (pydicom's writer cost a sixth of a retrieve's CPU time)
that is the one pydicom writes, and that dcmtk reads as a DICOM file."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

from pydicom import dcmread
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid
from pynetdicom.dsutils import create_file_meta, encode

from tests.support.scps_retrieve import running_qr_scp
from tuiviewer.dicom.datagen import write_ct_series
from tuiviewer.net.move import file_meta_bytes
from tuiviewer.net.retrieve import ReaderFocus, retrieve_study
from tuiviewer.store import LocalStore


def _pydicoms(sop_class: str, sop_instance: str, syntax: str) -> bytes:
    meta = create_file_meta(
        sop_class_uid=sop_class, sop_instance_uid=sop_instance, transfer_syntax=syntax
    )
    out = DicomBytesIO()
    write_file_meta_info(out, meta, enforce_standard=True)
    return b"\x00" * 128 + b"DICM" + out.getvalue()


def test_the_hand_written_file_meta_is_the_one_pydicom_writes() -> None:
    # Odd and even lengths, so both paddings are exercised.
    for sop in (generate_uid(), "1.2.3.4", "1.2.3.45"):
        for syntax in (str(ExplicitVRLittleEndian), str(ImplicitVRLittleEndian)):
            ours = file_meta_bytes("1.2.840.10008.5.1.4.1.1.2", sop, syntax)
            assert ours == _pydicoms("1.2.840.10008.5.1.4.1.1.2", sop, syntax)
    with_source = file_meta_bytes("1.2.840.10008.5.1.4.1.1.2", "1.2.3", "1.2.840.10008.1.2", "PACS")
    assert dcmread(DicomBytesIO(with_source + b"")).file_meta.SourceApplicationEntityTitle == "PACS"


def _data_set_bytes(path: Path) -> tuple[bytes, str]:
    raw = path.read_bytes()
    assert raw[128:132] == b"DICM"
    (group_length,) = struct.unpack("<I", raw[140:144])  # (0002,0000) UL, explicit VR
    meta = dcmread(path, stop_before_pixels=True).file_meta
    return raw[144 + group_length :], str(meta.TransferSyntaxUID)


def test_every_file_a_retrieve_writes_holds_what_the_pacs_sent(tmp_path: Path) -> None:
    files = write_ct_series(tmp_path / "ct", slices=6, rows=16, cols=16, seed=77)
    datasets = [dcmread(p) for p in files]
    study = str(datasets[0].StudyInstanceUID)
    store = LocalStore(tmp_path / "store")
    with running_qr_scp(datasets) as (scp, _log):
        result = retrieve_study(scp.node(), study, store=store, focus=ReaderFocus())
    assert result.error is None and not result.partial
    assert len(result.received) == len(datasets)
    sent = {str(ds.SOPInstanceUID): ds for ds in datasets}
    for path in result.received:
        data, syntax = _data_set_bytes(path)
        original = sent[dcmread(path, stop_before_pixels=True).SOPInstanceUID]
        implicit = syntax == str(ImplicitVRLittleEndian)
        assert data == encode(original, implicit, True)  # the bytes pynetdicom sent
        assert path.stat().st_mode & 0o777 == 0o600
        checked = subprocess.run(["dcmftest", str(path)], capture_output=True, text=True)
        assert checked.stdout.startswith("yes:"), checked.stdout
        dumped = subprocess.run(["dcmdump", "-M", str(path)], capture_output=True, text=True)
        assert dumped.returncode == 0 and "E:" not in dumped.stderr, dumped.stderr
        assert str(original.SOPInstanceUID) in dumped.stdout
