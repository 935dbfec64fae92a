"""Scanning folders and DICOMDIRs: every instance found once, non-DICOM skipped, cancellable."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pydicom.data
import pytest
from pydicom import dcmread
from pydicom.errors import InvalidDicomError
from pydicom.fileset import FileSet
from pydicom.uid import MediaStorageDirectoryStorage

from tuiviewer.dicom.datagen import write_ct_series, write_many
from tuiviewer.dicom.scanning import (
    InstanceRecord,
    ScanProgress,
    iter_candidate_files,
    read_record,
    scan,
)
from tuiviewer.exceptions import DicomReadError

TEST_FILES = Path(pydicom.data.__file__).parent / "test_files"
DICOMDIR_TESTS = TEST_FILES / "dicomdirtests"

# pydicom warns about the odd files it is shipped to exercise; that is not our concern here.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _all_files(root: Path) -> list[Path]:
    return [Path(d) / f for d, _, files in os.walk(root) for f in files]


def _records(batches: object) -> list[InstanceRecord]:
    return [r for batch in batches for r in batch]  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def five_hundred(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("many")
    write_many(folder, count=500, studies=2, rows=4, cols=4)
    return folder


# --- pydicom's own test files ----------------------------------------------------------------


def test_scan_finds_every_dicom_file_of_pydicoms_test_files() -> None:
    accepted: set[Path] = set()  # what pydicom itself reads as a Part 10 instance
    rejected: set[Path] = set()
    dicomdirs: set[Path] = set()
    files = _all_files(TEST_FILES)
    for path in files:
        try:
            ds = dcmread(path, force=False, stop_before_pixels=True)
        except InvalidDicomError:
            rejected.add(path)
            continue
        if ds.file_meta.get("MediaStorageSOPClassUID") == MediaStorageDirectoryStorage:
            dicomdirs.add(path)
        else:
            accepted.add(path)
    reports: list[ScanProgress] = []

    found = {r.path for r in _records(scan([TEST_FILES], progress=reports.append))}

    assert accepted <= found
    # Anything else found is an old-style data set without preamble that a forced read parses
    # into a real instance.
    for extra in found - accepted:
        assert extra in rejected
        assert "SOPInstanceUID" in dcmread(extra, force=True, stop_before_pixels=True)
    final = reports[-1]
    assert final.done
    assert final.files_seen == len(files)  # each file once, though DICOMDIRs point at some
    assert final.instances == len(found)
    assert final.unreadable == 0
    assert final.skipped_not_dicom == len(rejected - found)
    assert final.skipped_not_dicom + final.instances + len(dicomdirs) == len(files)
    for name in ("README.txt", "crayons.icc", "test1.json", "test_PN.json", "zipMR.gz"):
        assert TEST_FILES / name in rejected - found


def test_record_holds_the_header_values_pydicom_reads() -> None:
    path = TEST_FILES / "CT_small.dcm"
    ds = dcmread(path)

    record = read_record(path)

    assert record is not None
    assert record.path == path
    assert record.sop_instance_uid == ds.SOPInstanceUID
    assert record.sop_class_uid == ds.SOPClassUID
    assert record.patient_name == str(ds.PatientName)
    assert record.patient_id == ds.PatientID
    assert record.study_uid == ds.StudyInstanceUID
    assert record.series_uid == ds.SeriesInstanceUID
    assert record.study_date == ds.StudyDate
    assert record.modality == ds.Modality
    assert record.series_number == ds.SeriesNumber
    assert record.instance_number == ds.InstanceNumber
    assert record.image_position == tuple(float(v) for v in ds.ImagePositionPatient)
    assert record.image_orientation == tuple(float(v) for v in ds.ImageOrientationPatient)
    assert (record.rows, record.columns) == (ds.Rows, ds.Columns)
    assert record.frames == 1
    assert record.problem is None


def test_missing_uids_get_placeholders_and_a_problem(tmp_path: Path) -> None:
    path = write_ct_series(tmp_path, slices=1, rows=4, cols=4)[0]
    ds = dcmread(path)
    del ds.StudyInstanceUID
    ds.save_as(path)

    record = read_record(path)

    assert record is not None
    assert record.study_uid == "(no Study Instance UID)"
    assert record.problem is not None and "StudyInstanceUID" in record.problem


def test_non_dicom_file_is_not_a_record() -> None:
    assert read_record(TEST_FILES / "README.txt") is None
    assert read_record(TEST_FILES / "crayons.icc") is None


# --- DICOMDIR ------------------------------------------------------------------------------


def _fileset_paths(dicomdir: Path) -> set[Path]:
    return {Path(instance.path) for instance in FileSet(dcmread(dicomdir))}


@pytest.mark.parametrize(
    "name", ["DICOMDIR", "DICOMDIR-reordered", "DICOMDIR-nooffset", "DICOMDIR-implicit"]
)
def test_scanning_a_dicomdir_yields_exactly_its_referenced_instances(name: str) -> None:
    expected = _fileset_paths(DICOMDIR_TESTS / name)
    assert expected  # the fixture must mean something

    found = [r.path for r in _records(scan([DICOMDIR_TESTS / name]))]

    assert sorted(found) == sorted(expected)  # each once, and not the DICOMDIR itself
    assert sorted(iter_candidate_files([DICOMDIR_TESTS / name])) == sorted(expected)


def test_dicomdir_with_an_unknown_record_type_still_yields_its_references() -> None:
    # pydicom's FileSet refuses this one; the references are the same as the valid DICOMDIR's.
    with pytest.raises(ValueError):
        FileSet(dcmread(DICOMDIR_TESTS / "DICOMDIR-nopatient"))
    expected = _fileset_paths(DICOMDIR_TESTS / "DICOMDIR")

    found = {r.path for r in _records(scan([DICOMDIR_TESTS / "DICOMDIR-nopatient"]))}

    assert found == expected


def test_dicomdir_on_a_lower_case_copy_is_resolved(tmp_path: Path) -> None:
    # CDs mounted or copied on Linux often come out lower case while the File IDs stay upper.
    copy = tmp_path / "cd"
    shutil.copytree(DICOMDIR_TESTS / "98892001", copy / "98892001")
    shutil.copy(DICOMDIR_TESTS / "DICOMDIR", copy / "DICOMDIR")
    for folder in (copy / "98892001" / "CT2N", copy / "98892001" / "CT5N"):
        folder.rename(folder.with_name(folder.name.lower()))
    on_disk = set(_all_files(copy / "98892001"))
    errors: list[DicomReadError] = []

    found = {r.path for r in _records(scan([copy / "DICOMDIR"], on_error=errors.append))}

    assert found == on_disk
    # The other patients' folders were not copied: reported as unreadable, by name.
    assert errors
    assert all("does not exist" in e.message for e in errors)


def test_folder_with_a_dicomdir_reads_every_file_once() -> None:
    reports: list[ScanProgress] = []

    records = _records(scan([DICOMDIR_TESTS], progress=reports.append))

    paths = [r.path for r in records]
    assert len(paths) == len(set(paths))
    instance_files = {
        p for p in _all_files(DICOMDIR_TESTS) if "DICOMDIR" not in p.name and "README" not in p.name
    }
    assert set(paths) == instance_files
    assert reports[-1].files_seen == len(_all_files(DICOMDIR_TESTS))


# --- errors ----------------------------------------------------------------------------------


def test_truncated_file_is_counted_unreadable_and_named(tmp_path: Path) -> None:
    good = write_ct_series(tmp_path / "ok", slices=2, rows=4, cols=4)
    broken = tmp_path / "ok" / "broken.dcm"
    # Cut right after the file meta: the 'DICM' prefix promises DICOM, nothing follows.
    meta_end = 132 + 12 + int.from_bytes(good[0].read_bytes()[140:144], "little")
    broken.write_bytes(good[0].read_bytes()[:meta_end])
    errors: list[DicomReadError] = []
    reports: list[ScanProgress] = []

    records = _records(scan([tmp_path], on_error=errors.append, progress=reports.append))

    assert sorted(r.path for r in records) == sorted(good)
    assert reports[-1].unreadable == 1
    assert reports[-1].skipped_not_dicom == 0
    assert len(errors) == 1 and "broken.dcm" in errors[0].message
    with pytest.raises(DicomReadError, match="broken.dcm"):
        read_record(broken)


def test_file_cut_inside_its_header_is_flagged_truncated(tmp_path: Path) -> None:
    path = write_ct_series(tmp_path, slices=1, rows=4, cols=4)[0]
    ds = dcmread(path)
    value_offset = ds["ImagePositionPatient"].file_tell
    assert value_offset is not None
    cut = value_offset + 4  # inside the value
    path.write_bytes(path.read_bytes()[:cut])

    record = read_record(path)

    assert record is not None
    assert record.sop_instance_uid == ds.SOPInstanceUID
    assert record.problem is not None and "truncated" in record.problem


def test_missing_path_is_reported_not_raised(tmp_path: Path) -> None:
    errors: list[DicomReadError] = []

    records = _records(scan([tmp_path / "nope.dcm"], on_error=errors.append))

    assert records == []
    assert "nope.dcm" in errors[0].message


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_symlink_loop_terminates_and_files_count_once(tmp_path: Path) -> None:
    written = write_ct_series(tmp_path / "a", slices=3, rows=4, cols=4)
    (tmp_path / "a" / "loop").symlink_to(tmp_path, target_is_directory=True)
    (tmp_path / "again.dcm").symlink_to(written[0])

    found = [r.path for r in _records(scan([tmp_path, tmp_path / "a"]))]

    assert len(found) == 3
    assert {p.resolve() for p in found} == {p.resolve() for p in written}


# --- batching, progress, cancel -------------------------------------------------------------


def test_batches_arrive_before_the_scan_finishes(five_hundred: Path) -> None:
    batches = list(scan([five_hundred], batch_size=10_000, max_interval=0.005))

    # batch_size alone would give one batch of 500: the time limit flushed earlier ones.
    assert len(batches) > 1
    assert len(batches[0]) < 500
    assert sum(len(b) for b in batches) == 500


def test_progress_reports_done_at_the_end(five_hundred: Path) -> None:
    reports: list[ScanProgress] = []

    records = _records(scan([five_hundred], progress=reports.append, max_interval=0.02))

    assert len(records) == 500
    assert [r.done for r in reports].count(True) == 1
    final = reports[-1]
    assert final.done
    assert (final.files_seen, final.instances, final.skipped_not_dicom) == (500, 500, 0)
    seen = [r.files_seen for r in reports]
    assert seen == sorted(seen)


def test_cancel_after_first_batch_stops_the_scan(five_hundred: Path) -> None:
    cancel = threading.Event()
    reports: list[ScanProgress] = []
    received: list[list[InstanceRecord]] = []

    for batch in scan([five_hundred], cancel=cancel, progress=reports.append, batch_size=20):
        received.append(batch)
        cancel.set()

    assert len(received) == 1
    assert reports[-1].done
    assert reports[-1].files_seen < 500


def test_cancel_set_before_start_reads_nothing(five_hundred: Path) -> None:
    cancel = threading.Event()
    cancel.set()

    assert list(scan([five_hundred], cancel=cancel)) == []
    assert list(iter_candidate_files([five_hundred], cancel=cancel)) == []
