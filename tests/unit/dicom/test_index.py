"""The study browser's hierarchy: patients, studies, series split into sorted stacks."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import numpy as np
import pydicom.data
import pytest
from pydicom import dcmread

from tuiviewer.dicom.datagen import write_ct_series, write_mixed_series
from tuiviewer.dicom.index import SeriesNode, StudyIndex, slice_location
from tuiviewer.dicom.scanning import InstanceRecord, scan

DICOMDIR_TESTS = Path(pydicom.data.__file__).parent / "test_files" / "dicomdirtests"


def _index(*folders: Path) -> StudyIndex:
    index = StudyIndex()
    for batch in scan(list(folders)):
        index.add(batch)
    return index


def _all_series(index: StudyIndex) -> list[SeriesNode]:
    return [se for p in index.patients() for st in p.studies for se in st.series]


def _series_of(index: StudyIndex, path: Path) -> SeriesNode:
    uid = dcmread(path, stop_before_pixels=True).SeriesInstanceUID
    return next(se for se in _all_series(index) if se.uid == uid)


def _distance_along_normal(path: Path) -> float:
    """Independent of tuiviewer: pydicom's values, PS3.3 C.7.6.2.1.1 geometry."""
    ds = dcmread(path, stop_before_pixels=True)
    cosines = np.array([float(v) for v in ds.ImageOrientationPatient])
    normal = np.cross(cosines[:3], cosines[3:])
    return float(np.dot(normal, [float(v) for v in ds.ImagePositionPatient]))


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> tuple[StudyIndex, dict[str, list[Path]]]:
    folder = tmp_path_factory.mktemp("mixed")
    written = write_mixed_series(folder, seed=3)
    return _index(folder), written


def test_mixed_series_splits_into_localizer_and_two_acquisitions(
    mixed: tuple[StudyIndex, dict[str, list[Path]]],
) -> None:
    index, written = mixed
    series = _series_of(index, written["axial1"][0])

    stacks = {frozenset(r.path for r in s.instances): s for s in series.stacks}

    assert len(series.stacks) == 3
    assert series.instance_count == 10
    localizer = stacks[frozenset(written["localizer"])]
    first = stacks[frozenset(written["axial1"])]
    second = stacks[frozenset(written["axial2"])]
    assert localizer.label == "coronal 1 image (localizer)"
    assert first.label.startswith("axial 5 images") and "acquisition 1" in first.label
    assert second.label.startswith("axial 4 images") and "acquisition 2" in second.label
    assert series.stacks[0] is localizer  # the scout was acquired first


def test_echoes_become_separate_stacks(
    mixed: tuple[StudyIndex, dict[str, list[Path]]],
) -> None:
    index, written = mixed
    series = _series_of(index, written["echo1"][0])

    assert [frozenset(r.path for r in s.instances) for s in series.stacks] == [
        frozenset(written["echo1"]),
        frozenset(written["echo2"]),
    ]
    assert [s.label for s in series.stacks] == ["axial 3 images, echo 1", "axial 3 images, echo 2"]


def test_stacks_are_ordered_along_the_normal_despite_shuffled_names(
    mixed: tuple[StudyIndex, dict[str, list[Path]]],
) -> None:
    index, _ = mixed
    shuffled = False
    for series in _all_series(index):
        for stack in series.stacks:
            distances = [_distance_along_normal(r.path) for r in stack.instances]
            assert all(a < b for a, b in zip(distances, distances[1:], strict=False))
            names = [r.path.name for r in stack.instances]
            shuffled |= names != sorted(names)
    assert shuffled  # otherwise the file names could have produced the order


def test_study_lists_both_modalities_and_series_by_number(
    mixed: tuple[StudyIndex, dict[str, list[Path]]],
) -> None:
    index, written = mixed
    ds = dcmread(written["echo1"][0], stop_before_pixels=True)

    study = index.study(ds.StudyInstanceUID)

    assert study.modalities == ("CT", "MR")
    assert [s.number for s in study.series] == [2, 3]
    assert study.date == ds.StudyDate


def test_slices_each_with_their_own_acquisition_number_stay_one_stack(tmp_path: Path) -> None:
    paths = write_ct_series(tmp_path, slices=6, rows=4, cols=4, seed=5)
    for number, path in enumerate(paths, start=1):
        ds = dcmread(path)
        ds.AcquisitionNumber = number  # what many CT scanners write
        ds.save_as(path)

    (series,) = _all_series(_index(tmp_path))

    assert len(series.stacks) == 1
    assert series.stacks[0].label == "axial 6 images"
    assert [r.path for r in series.stacks[0].instances] == paths


def test_without_positions_instance_number_orders_the_stack(tmp_path: Path) -> None:
    paths = write_ct_series(tmp_path, slices=5, rows=4, cols=4, seed=6)
    numbers = [3, 5, 1, 4, 2]
    for number, path in zip(numbers, paths, strict=True):
        ds = dcmread(path)
        del ds.ImagePositionPatient
        del ds.ImageOrientationPatient
        ds.InstanceNumber = number
        ds.save_as(path)

    (series,) = _all_series(_index(tmp_path))

    (stack,) = series.stacks
    read_back = [dcmread(r.path).InstanceNumber for r in stack.instances]
    assert read_back == sorted(numbers)
    assert stack.label == "5 images"


def test_orientation_jitter_does_not_split_a_stack(tmp_path: Path) -> None:
    paths = write_ct_series(tmp_path, slices=4, rows=4, cols=4, seed=7)
    jitter = random.Random(7)
    for path in paths:
        ds = dcmread(path)
        ds.ImageOrientationPatient = [
            f"{float(v) + jitter.uniform(-2e-4, 2e-4):.6f}" for v in ds.ImageOrientationPatient
        ]
        ds.save_as(path)

    (series,) = _all_series(_index(tmp_path))

    assert len(series.stacks) == 1


def test_same_patient_id_with_two_names_gives_two_patients(tmp_path: Path) -> None:
    write_ct_series(tmp_path / "a", slices=2, rows=4, cols=4, seed=1, patient_name="Doe^Jane")
    write_ct_series(tmp_path / "b", slices=2, rows=4, cols=4, seed=2, patient_name="Roe^Rita")

    patients = _index(tmp_path).patients()

    assert [(p.name, p.patient_id) for p in patients] == [
        ("Doe^Jane", "DEMO001"),
        ("Roe^Rita", "DEMO001"),
    ]


def test_add_reports_only_the_studies_it_changed(tmp_path: Path) -> None:
    a = write_ct_series(tmp_path / "a", slices=2, rows=4, cols=4, seed=11)
    b = write_ct_series(tmp_path / "b", slices=2, rows=4, cols=4, seed=12)
    records_a = [r for batch in scan([tmp_path / "a"]) for r in batch]
    records_b = [r for batch in scan([tmp_path / "b"]) for r in batch]
    index = StudyIndex()

    assert index.add(records_a) == {dcmread(a[0]).StudyInstanceUID}
    assert index.add(records_b) == {dcmread(b[0]).StudyInstanceUID}
    assert index.add(records_a) == set()  # a rescan changes nothing
    assert len(index) == 4
    sop = dcmread(b[1]).SOPInstanceUID
    found = index.find(sop)
    assert found is not None and found.path == b[1]


def test_studies_are_listed_newest_first(tmp_path: Path) -> None:
    write_ct_series(tmp_path, slices=1, rows=4, cols=4, seed=21)
    (record,) = [r for batch in scan([tmp_path]) for r in batch]
    dates = ["20190101", "20240101", "", "20210101"]
    records: list[InstanceRecord] = [
        dataclasses.replace(
            record,
            path=tmp_path / f"{i}.dcm",
            study_uid=f"1.2.3.{i}",
            sop_instance_uid=f"1.2.4.{i}",
            study_date=d,
        )
        for i, d in enumerate(dates)
    ]
    index = StudyIndex()
    index.add(records)

    (patient,) = index.patients()

    assert [s.date for s in patient.studies] == ["20240101", "20210101", "20190101", ""]


def test_dicomdir_hierarchy_matches_its_directory_records() -> None:
    dicomdir = dcmread(DICOMDIR_TESTS / "DICOMDIR")
    kinds = [r.DirectoryRecordType for r in dicomdir.DirectoryRecordSequence]
    series_uids = {
        r.SeriesInstanceUID
        for r in dicomdir.DirectoryRecordSequence
        if r.DirectoryRecordType == "SERIES"
    }

    index = _index(DICOMDIR_TESTS / "DICOMDIR")

    assert len(index) == kinds.count("IMAGE")
    assert {s.uid for s in _all_series(index)} == series_uids
    assert sum(len(p.studies) for p in index.patients()) == kinds.count("STUDY")


def test_position_wins_over_instance_number(tmp_path: Path) -> None:
    paths = write_ct_series(tmp_path, slices=5, rows=4, cols=4, seed=8)
    for number, path in enumerate(reversed(paths), start=1):
        ds = dcmread(path)
        ds.InstanceNumber = number  # numbered head to feet, positions feet to head
        ds.save_as(path)

    (series,) = _all_series(_index(tmp_path))

    distances = [_distance_along_normal(r.path) for r in series.stacks[0].instances]
    assert distances == sorted(distances)
    assert [r.instance_number for r in series.stacks[0].instances] == [5, 4, 3, 2, 1]


def test_files_sharing_a_sop_instance_uid_are_all_listed(tmp_path: Path) -> None:
    """An original and its edited copy hold the same SOP Instance UID: the browser shows both."""
    write_ct_series(tmp_path, slices=1, rows=4, cols=4, seed=22)
    (record,) = [r for batch in scan([tmp_path]) for r in batch]
    copy = dataclasses.replace(record, path=tmp_path / "copy.dcm")
    index = StudyIndex()
    index.add([record, copy, record])

    assert len(index) == 2
    assert index.duplicates == 1
    (stack,) = index.study(record.study_uid).series[0].stacks
    assert {r.path for r in stack.instances} == {record.path, copy.path}
    assert index.find(record.sop_instance_uid) == record


def test_slice_location_is_the_position_along_the_normal(tmp_path: Path) -> None:
    paths = write_ct_series(tmp_path, slices=3, rows=4, cols=4, seed=23, orientation="sagittal")
    records = [r for batch in scan(paths) for r in batch]
    for record in records:
        ds = dcmread(record.path)
        row, col = ds.ImageOrientationPatient[:3], ds.ImageOrientationPatient[3:]
        # For a sagittal slice the normal is ±x: the location is ±x of the position.
        normal_x = row[1] * col[2] - row[2] * col[1]
        assert slice_location(record) == pytest.approx(normal_x * float(ds.ImagePositionPatient[0]))
