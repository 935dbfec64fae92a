"""Dataset diff: the rows a user sees after comparing two versions of a file."""

from __future__ import annotations

import copy
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset

from tests.conftest import testdata as sample_file
from tuiviewer.dicom.diff import diff_datasets

PATIENT_NAME = 0x00100010
STATION_NAME = 0x00081010
PATIENT_COMMENTS = 0x00104000
OTHER_IDS_SEQ = 0x00101002
PATIENT_ID = 0x00100020
PIXEL_DATA = 0x7FE00010


@pytest.fixture
def ct() -> Dataset:
    return pydicom.dcmread(sample_file("CT_small.dcm"))


def test_identical_files_have_no_rows() -> None:
    left = pydicom.dcmread(sample_file("CT_small.dcm"))
    right = pydicom.dcmread(sample_file("CT_small.dcm"))
    assert diff_datasets(left, right) == []
    rtplan = sample_file("rtplan.dcm")
    assert diff_datasets(pydicom.dcmread(rtplan), pydicom.dcmread(rtplan)) == []


def test_changed_removed_added_and_nested_rows(ct: Dataset, tmp_path: Path) -> None:
    right = copy.deepcopy(ct)
    right.PatientName = "Changed^Name"
    del right.StationName
    right.PatientComments = "new comment"
    right.OtherPatientIDsSequence[1].PatientID = "ZZZ999"
    # Compare against the saved file, as the diff screen does after "save as".
    saved = tmp_path / "right.dcm"
    right.save_as(saved)

    rows = diff_datasets(ct, pydicom.dcmread(saved))

    # Document order is tag order, nested rows where their sequence is.
    assert [(row.path, row.kind) for row in rows] == [
        ((STATION_NAME,), "removed"),
        ((PATIENT_NAME,), "changed"),
        ((OTHER_IDS_SEQ, 1, PATIENT_ID), "changed"),
        ((PATIENT_COMMENTS,), "added"),
    ]
    by_path = {row.path: row for row in rows}
    station = by_path[(STATION_NAME,)]
    assert (station.tag_text, station.keyword) == ("(0008,1010)", "StationName")
    assert (station.left, station.right) == (ct.StationName, None)
    name = by_path[(PATIENT_NAME,)]
    assert (name.left, name.right) == (str(ct.PatientName), "Changed^Name")
    nested = by_path[(OTHER_IDS_SEQ, 1, PATIENT_ID)]
    assert (nested.left, nested.right) == (ct.OtherPatientIDsSequence[1].PatientID, "ZZZ999")
    assert by_path[(PATIENT_COMMENTS,)].right == "new comment"


def test_file_meta_rows_come_first_and_can_be_left_out(ct: Dataset) -> None:
    right = copy.deepcopy(ct)
    right.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.UID("1.2.3")
    right.PatientName = "Other"

    rows = diff_datasets(ct, right)
    assert [row.path for row in rows] == [(0x00020003,), (PATIENT_NAME,)]
    assert [row.path for row in diff_datasets(ct, right, include_meta=False)] == [(PATIENT_NAME,)]


def test_ignored_tags_are_skipped_at_every_level(ct: Dataset) -> None:
    right = copy.deepcopy(ct)
    right.PatientID = "X"
    right.OtherPatientIDsSequence[0].PatientID = "Y"
    right.PatientName = "Z"
    rows = diff_datasets(ct, right, ignore={PATIENT_ID})
    assert [row.path for row in rows] == [(PATIENT_NAME,)]


def test_items_added_and_removed_are_item_rows() -> None:
    left = pydicom.dcmread(sample_file("rtplan.dcm"))
    right = copy.deepcopy(left)
    count = len(left.DoseReferenceSequence)
    extra = Dataset()
    extra.DoseReferenceNumber = "9"
    right.DoseReferenceSequence.append(extra)

    rows = diff_datasets(left, right)
    assert [(row.path, row.kind, row.keyword) for row in rows] == [
        ((0x300A0010, count), "added", "Item")
    ]
    assert rows[0].left is None and rows[0].right is not None

    reverse = diff_datasets(right, left)
    assert [(row.path, row.kind) for row in reverse] == [((0x300A0010, count), "removed")]


def test_pixel_data_is_compared_by_content(ct: Dataset) -> None:
    right = copy.deepcopy(ct)
    pixels = bytearray(right.PixelData)
    pixels[1000] ^= 0xFF
    right.PixelData = bytes(pixels)

    rows = diff_datasets(ct, right)
    assert [(row.path, row.kind) for row in rows] == [((PIXEL_DATA,), "changed")]
    row = rows[0]
    assert row.left is not None and row.right is not None
    assert row.left != row.right
    assert row.left.startswith(f"{len(ct.PixelData)} bytes")  # summarised, not dumped


def test_vr_change_is_a_change(ct: Dataset) -> None:
    right = copy.deepcopy(ct)
    right[STATION_NAME].VR = "LO"  # same text, different VR
    rows = diff_datasets(ct, right)
    assert [(row.path, row.kind) for row in rows] == [((STATION_NAME,), "changed")]


def test_private_elements_are_compared(ct: Dataset) -> None:
    right = copy.deepcopy(ct)
    right[0x00091002].value = "CT99"
    rows = diff_datasets(ct, right)
    assert [(row.path, row.kind, row.keyword) for row in rows] == [((0x00091002,), "changed", "")]


def test_decimal_strings_written_differently_are_a_change(ct: Dataset) -> None:
    right = copy.deepcopy(ct)
    right.SliceThickness = "5.0"  # CT_small has "5.000000": same number, different file bytes
    rows = diff_datasets(ct, right)
    assert [(row.left, row.right) for row in rows] == [("5.000000", "5.0")]
