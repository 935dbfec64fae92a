"""The tag-tree row model: what each row shows, search, and the expanded value."""

from __future__ import annotations

import warnings
from pathlib import Path

import pydicom
import pytest
from pydicom.datadict import get_private_entry
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from tuiviewer.dicom.elements import (
    HEX_DUMP_LIMIT,
    SUMMARY_WIDTH,
    ElementRow,
    dataset_rows,
    element_at,
    full_value,
    meta_rows,
    search,
    walk,
)
from tuiviewer.dicom.loading import LoadedFile, load_file

TEST_FILES = Path(str(pydicom.data.get_testdata_file("CT_small.dcm", download=False))).parent


def _load(name: str) -> LoadedFile:
    return load_file(TEST_FILES / name)


def _rows(loaded: LoadedFile) -> tuple[ElementRow, ...]:
    return meta_rows(loaded.dataset) + dataset_rows(loaded.dataset, loaded.problems)


def _by_tag(rows: tuple[ElementRow, ...]) -> dict[int, ElementRow]:
    return {row.tag: row for row in walk(rows) if len(row.path) == 1}


@pytest.mark.parametrize("name", ["CT_small.dcm", "rtplan.dcm", "test-SR.dcm", "MR_small.dcm"])
def test_rows_follow_pydicom_document_order_with_keyword_vr_and_vm(name: str) -> None:
    reference = pydicom.dcmread(TEST_FILES / name)
    expected = list(reference.file_meta.iterall()) + list(reference.iterall())
    rows = list(walk(_rows(_load(name))))
    assert [r.tag for r in rows] == [int(e.tag) for e in expected]
    for row, elem in zip(rows, expected, strict=True):
        assert row.vr == elem.VR
        assert row.vm == elem.VM
        if not elem.tag.is_private:
            assert row.keyword == elem.keyword
            assert row.tag_text == f"({elem.tag.group:04X},{elem.tag.element:04X})"
        assert row.is_meta == (elem.tag.group == 2)


def test_paths_address_the_elements_they_came_from() -> None:
    loaded = _load("rtplan.dcm")
    for row in walk(_rows(loaded)):
        assert len(row.path) % 2 == 1
        assert int(element_at(loaded.dataset, row.path).tag) == row.tag
        for item in row.items:
            assert item.path == (*row.path, item.index)
            assert all(child.path[:-1] == item.path for child in item.rows)


def test_private_rows_name_their_creator_and_dictionary_entry() -> None:
    reference = pydicom.dcmread(TEST_FILES / "CT_small.dcm")
    creator = reference[0x00190010].value
    rows = _by_tag(_rows(_load("CT_small.dcm")))
    creator_row = rows[0x00190010]
    assert creator_row.is_private and creator_row.private_creator is None
    assert creator_row.value == creator
    private = rows[0x00191002]
    assert private.is_private and private.private_creator == creator
    entry_name = get_private_entry(0x00191002, creator)[2]
    assert private.name == entry_name and private.keyword == entry_name


def test_unknown_private_tag_and_group_length_names() -> None:
    ds = Dataset()
    ds.add_new(0x00080000, "UL", 20)
    ds.add_new(0x00290010, "LO", "NOBODY_KNOWS_ME")
    ds.add_new(0x00291001, "OB", b"\x01\x02")
    rows = _by_tag(dataset_rows(ds))
    assert rows[0x00080000].name == "Group Length"
    assert rows[0x00291001].name == "Private tag data"
    assert rows[0x00291001].keyword == ""
    assert rows[0x00291001].private_creator == "NOBODY_KNOWS_ME"


def test_long_and_multi_valued_text_is_summarised_and_expandable() -> None:
    ds = Dataset()
    long_text = "A long comment " * 20
    ds.ImageComments = long_text
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.AdditionalPatientHistory = "line one\nline two"
    rows = _by_tag(dataset_rows(ds))

    comment = rows[0x00204000]
    assert comment.summarised and len(comment.value) <= SUMMARY_WIDTH
    assert comment.value.endswith("…") and long_text.startswith(comment.value[:-1])
    assert full_value(ds, (0x00204000,)) == long_text

    image_type = rows[0x00080008]
    assert image_type.value == "ORIGINAL\\PRIMARY\\AXIAL" and not image_type.summarised
    assert image_type.vm == 3

    history = rows[0x001021B0]
    assert "\n" not in history.value and history.summarised
    assert full_value(ds, (0x001021B0,)) == "line one\nline two"


def test_binary_values_show_length_and_first_bytes() -> None:
    reference = pydicom.dcmread(TEST_FILES / "CT_small.dcm")
    padding = reference[0xFFFCFFFC].value
    rows = _by_tag(_rows(_load("CT_small.dcm")))
    row = rows[0xFFFCFFFC]
    expected_head = " ".join(f"{b:02x}" for b in padding[:8])
    assert row.value == f"<{len(padding)} bytes> {expected_head} …"
    assert row.summarised and row.length == len(padding)


def test_pixel_data_is_summarised_without_decoding() -> None:
    reference = pydicom.dcmread(TEST_FILES / "rtdose.dcm")
    rows = _by_tag(_rows(_load("rtdose.dcm")))
    pixel = rows[0x7FE00010]
    assert pixel.value.startswith(f"<{len(reference.PixelData)} bytes {reference['PixelData'].VR}>")
    assert f"{reference.NumberOfFrames} frames" in pixel.value
    assert pixel.summarised


def test_full_value_hex_dump_is_capped() -> None:
    ds = Dataset()
    data = bytes(range(256)) * 400  # 102400 bytes
    ds.add_new(0x00420011, "OB", data)  # Encapsulated Document
    text = full_value(ds, (0x00420011,))
    lines = text.splitlines()
    assert len(lines) == HEX_DUMP_LIMIT // 16 + 1
    assert lines[0].startswith("00000000  00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f")
    assert lines[1].startswith("00000010  10 11")
    assert str(len(data) - HEX_DUMP_LIMIT) in lines[-1] and "not shown" in lines[-1]


def test_full_value_of_meta_element_through_a_file_dataset() -> None:
    loaded = _load("CT_small.dcm")
    reference = pydicom.dcmread(TEST_FILES / "CT_small.dcm")
    assert full_value(loaded.dataset, (0x00020010,)) == str(reference.file_meta.TransferSyntaxUID)
    with pytest.raises(KeyError):
        full_value(loaded.dataset, (0x00191234,))


@pytest.mark.parametrize(
    "query",
    [
        "HFS",
        "hfs",
        "patientposition",
        "PatientPos",
        "patient position",
        "0018,5100",
        "(0018,5100)",
        "00185100",
        "0018 5100",
    ],
)
def test_search_finds_patient_position_inside_the_rtplan_sequence(query: str) -> None:
    loaded = _load("rtplan.dcm")
    reference = pydicom.dcmread(TEST_FILES / "rtplan.dcm")
    assert reference.PatientSetupSequence[0].PatientPosition == "HFS"
    hits = search(_rows(loaded), query)
    assert (0x300A0180, 0, 0x00185100) in hits
    for path in hits:
        elem = element_at(loaded.dataset, path)
        assert (
            elem.tag == 0x00185100
            or "hfs" in str(elem.value).lower()
            or query.lower().replace(" ", "") in elem.keyword.lower()
        )


def test_search_by_group_returns_every_element_of_it_depth_first() -> None:
    loaded = _load("rtplan.dcm")
    reference = pydicom.dcmread(TEST_FILES / "rtplan.dcm")
    expected = [e.tag for e in reference.iterall() if e.tag.group == 0x300A]
    hits = search(_rows(loaded), "300a")
    assert [path[-1] for path in hits] == expected


def test_search_looks_into_the_whole_text_not_just_the_summary() -> None:
    ds = Dataset()
    ds.ImageComments = "x" * 200 + " needle"
    assert search(dataset_rows(ds), "NEEDLE") == [(0x00204000,)]
    assert search(dataset_rows(ds), "") == []


def test_problems_attach_to_the_element_they_concern() -> None:
    loaded = _load("badVR.dcm")
    rows = list(walk(dataset_rows(loaded.dataset, loaded.problems)))
    flagged = [row for row in rows if row.problem]
    assert flagged
    problem_tags = {p.tag for p in loaded.problems}
    assert {row.tag for row in flagged} <= problem_tags


def test_sequence_rows_carry_items() -> None:
    inner = Dataset()
    inner.CodeValue = "121"
    ds = Dataset()
    ds.ConceptNameCodeSequence = Sequence([inner, Dataset()])
    (row,) = dataset_rows(ds)
    assert row.vr == "SQ" and row.value == "2 items" and len(row.items) == 2
    assert row.items[0].rows[0].path == (0x0040A043, 0, 0x00080100)
    assert row.items[1].rows == ()


def test_rows_do_not_leak_warnings() -> None:
    loaded = _load("badVR.dcm")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = _by_tag(_rows(loaded))
        full_value(loaded.dataset, (0x00280008,))
    assert caught == []
    assert rows[0x00280008].value == str(loaded.dataset[0x00280008].value)
