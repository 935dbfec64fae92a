"""Editing values with VR validation and saving as a new file, checked with dcmtk and pydicom."""

from __future__ import annotations

import difflib
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from tests.conftest import testdata as sample_file
from tuiviewer.dicom.editing import (
    add_element,
    add_item,
    delete_element,
    edited_copy_name,
    get_element,
    parse_tag,
    parse_value,
    save_as,
    set_value,
)
from tuiviewer.exceptions import EditError, SaveError, ValueValidationError

PATIENT_SETUP = 0x300A0180
PATIENT_POSITION = 0x00185100
POSITION_PATH = (PATIENT_SETUP, 0, PATIENT_POSITION)

needs_dcmdump = pytest.mark.skipif(shutil.which("dcmdump") is None, reason="needs dcmtk")


@pytest.fixture
def rtplan(tmp_path: Path) -> Path:
    copy = tmp_path / "rtplan.dcm"
    shutil.copy(sample_file("rtplan.dcm"), copy)
    return copy


def dcmdump(path: Path) -> list[str]:
    result = subprocess.run(["dcmdump", str(path)], capture_output=True, text=True, check=True)
    return result.stdout.splitlines()


# --- the example ------------------------------------------------------------------


@needs_dcmdump
@pytest.mark.dcmtk
def test_patient_position_edit_changes_exactly_one_dcmdump_line(rtplan: Path) -> None:
    ds = pydicom.dcmread(rtplan)
    assert get_element(ds, POSITION_PATH).value == "HFS"

    set_value(ds, POSITION_PATH, "HFP")
    new = save_as(ds, edited_copy_name(rtplan), source=rtplan)

    assert new.name == "rtplan-edited.dcm"
    before, after = dcmdump(rtplan), dcmdump(new)
    removed = [line for line in difflib.ndiff(before, after) if line.startswith("- ")]
    added = [line for line in difflib.ndiff(before, after) if line.startswith("+ ")]
    assert len(removed) == 1 and len(added) == 1, (removed, added)
    assert removed[0].split("#")[0].split() == ["-", "(0018,5100)", "CS", "[HFS]"]
    assert added[0].split("#")[0].split() == ["+", "(0018,5100)", "CS", "[HFP]"]


# --- save_as safety -----------------------------------------------------------------------


def test_save_as_refuses_to_overwrite_an_existing_file(rtplan: Path, tmp_path: Path) -> None:
    ds = pydicom.dcmread(rtplan)
    existing = tmp_path / "taken.dcm"
    existing.write_bytes(b"precious bytes")

    with pytest.raises(SaveError, match="'taken.dcm' already exists"):
        save_as(ds, existing)

    assert existing.read_bytes() == b"precious bytes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rtplan.dcm", "taken.dcm"]


def test_save_as_refuses_to_overwrite_the_source_unless_confirmed(rtplan: Path) -> None:
    original = rtplan.read_bytes()
    ds = pydicom.dcmread(rtplan)
    set_value(ds, POSITION_PATH, "HFP")

    with pytest.raises(SaveError, match="rtplan.dcm"):
        save_as(ds, rtplan)
    # A different spelling of the same path is still the source.
    with pytest.raises(SaveError):
        save_as(ds, rtplan.parent / "." / "rtplan.dcm", source=rtplan)
    assert rtplan.read_bytes() == original

    save_as(ds, rtplan, overwrite=True)
    assert pydicom.dcmread(rtplan).PatientSetupSequence[0].PatientPosition == "HFP"


def test_new_file_is_private_to_the_user(rtplan: Path, tmp_path: Path) -> None:
    new = save_as(pydicom.dcmread(rtplan), tmp_path / "copy.dcm")
    assert stat.S_IMODE(new.stat().st_mode) == 0o600


def test_failed_write_leaves_destination_and_no_temp_file(rtplan: Path, tmp_path: Path) -> None:
    dest = tmp_path / "dest.dcm"
    dest.write_bytes(b"old content")
    ds = pydicom.dcmread(rtplan)
    broken = DataElement(0x00280010, "US", 1)
    broken._value = "not a number"  # bypasses validation, so the encoder fails mid-write
    ds[0x00280010] = broken

    with pytest.raises(SaveError, match="dest.dcm"):
        save_as(ds, dest, overwrite=True)

    assert dest.read_bytes() == b"old content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dest.dcm", "rtplan.dcm"]


def test_dataset_without_sop_instance_uid_is_not_written(tmp_path: Path) -> None:
    ds = Dataset()
    ds.PatientName = "Nobody"
    with pytest.raises(SaveError, match="SOP Instance UID"):
        save_as(ds, tmp_path / "x.dcm")
    assert not (tmp_path / "x.dcm").exists()


def test_file_read_without_meta_is_saved_as_part10(tmp_path: Path) -> None:
    source = sample_file("rtstruct.dcm")  # implicit VR, no preamble and no File Meta
    ds = pydicom.dcmread(source, force=True)

    new = save_as(ds, tmp_path / "rtstruct.dcm")

    raw = new.read_bytes()
    assert raw[128:132] == b"DICM"
    back = pydicom.dcmread(new)  # no force needed any more
    assert back.file_meta.TransferSyntaxUID == pydicom.uid.ImplicitVRLittleEndian
    assert back.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert back.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID
    assert back.StructureSetLabel == ds.StructureSetLabel


def test_original_file_meta_is_kept(rtplan: Path, tmp_path: Path) -> None:
    ds = pydicom.dcmread(rtplan)
    new = pydicom.dcmread(save_as(ds, tmp_path / "copy.dcm"))
    # rtplan's meta deliberately differs from its SOP Instance UID; an edit that does not
    # touch the UID must not "repair" it.
    assert new.file_meta.MediaStorageSOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID
    assert new.file_meta.ImplementationClassUID == ds.file_meta.ImplementationClassUID
    assert new.preamble == ds.preamble


def test_changed_sop_instance_uid_updates_the_meta(rtplan: Path, tmp_path: Path) -> None:
    ds = pydicom.dcmread(rtplan)
    set_value(ds, (0x00080018,), "1.2.3.4.5")
    new = pydicom.dcmread(save_as(ds, tmp_path / "copy.dcm"))
    assert new.file_meta.MediaStorageSOPInstanceUID == "1.2.3.4.5"


def test_edited_copy_name_skips_taken_names(tmp_path: Path) -> None:
    source = tmp_path / "rtplan.dcm"
    source.write_bytes(b"")
    assert edited_copy_name(source) == tmp_path / "rtplan-edited.dcm"
    (tmp_path / "rtplan-edited.dcm").write_bytes(b"")
    assert edited_copy_name(source) == tmp_path / "rtplan-edited-2.dcm"
    # UID-named files have no real extension: the last UID component is not a suffix.
    assert edited_copy_name(tmp_path / "1.2.3").name == "1.2.3-edited"


# --- value validation ---------------------------------------------------------------------

GOOD: list[tuple[str, str, Any]] = [
    ("AE", "STORESCP", "STORESCP"),
    ("AS", "045Y", "045Y"),
    ("CS", "HFP", "HFP"),
    ("CS", "ORIGINAL\\PRIMARY", ["ORIGINAL", "PRIMARY"]),
    ("DA", "20240229", "20240229"),  # leap day
    ("DA", "", ""),
    ("TM", "235960.123456", "235960.123456"),  # leap second
    ("TM", "1345", "1345"),
    ("DT", "20240131134501.5+0100", "20240131134501.5+0100"),
    ("DT", "2024", "2024"),
    ("DS", " 1.5e3 ", "1.5e3"),
    ("DS", "-.5", "-.5"),
    ("IS", "-2147483648", "-2147483648"),
    ("UI", "1.2.840.10008.1.2", "1.2.840.10008.1.2"),
    ("UI", "2.25.0", "2.25.0"),
    ("LO", "a\\b", ["a", "b"]),
    ("LT", "first line\r\nback\\slash", "first line\r\nback\\slash"),
    ("SH", "x" * 16, "x" * 16),
    ("PN", "Doe^John^^Dr^Jr=Doe^John", "Doe^John^^Dr^Jr=Doe^John"),
    ("UR", "https://example.org/a?b=c", "https://example.org/a?b=c"),
    ("US", "65535", 65535),
    ("SS", "-32768", -32768),
    ("UL", "4294967295", 4294967295),
    ("FD", "1.5", 1.5),
    ("FL", "-2.5\\3", [-2.5, 3.0]),
    ("AT", "(0010,0010)", 0x00100010),
    ("AT", "0020000d", 0x0020000D),
    ("OB", "00 ff 1a", b"\x00\xff\x1a"),
    ("OW", "0100 ff00", b"\x01\x00\xff\x00"),
    ("OF", "0000803f", b"\x00\x00\x80\x3f"),
]

BAD: list[tuple[str, str]] = [
    ("DA", "2024-13-01"),
    ("DA", "20240230"),
    ("DA", "20231301"),
    ("IS", "12.5"),
    ("IS", "2147483648"),
    ("UI", "1.02.3"),
    ("UI", "1.2."),
    ("UI", "1." + "2" * 63),
    ("CS", "A" * 17),
    ("CS", "hfs"),
    ("DS", "abc"),
    ("DS", "1" * 17),
    ("DS", "nan"),
    ("US", "70000"),
    ("US", "-1"),
    ("SS", "40000"),
    ("OW", "00 f"),
    ("OW", "00"),
    ("OL", "00 01"),
    ("OB", "zz"),
    ("AS", "45Y"),
    ("AS", "045y"),
    ("TM", "240000"),
    ("TM", "1261"),
    ("DT", "20240101+1500"),
    ("AE", "A" * 17),
    ("AE", "   "),
    ("SH", "x" * 17),
    ("LO", "bell\x07"),
    ("PN", "a^b^c^d^e^f"),
    ("FD", "inf"),
    ("FL", "1e39"),
    ("AT", "(0010,001G)"),
    ("UR", " http://x"),
]


@pytest.mark.parametrize(("vr", "text", "expected"), GOOD)
def test_valid_text_gives_the_value_to_store(vr: str, text: str, expected: Any) -> None:
    assert parse_value(vr, text) == expected


@pytest.mark.parametrize(("vr", "text"), BAD)
def test_invalid_text_is_refused_with_a_message_quoting_it(vr: str, text: str) -> None:
    with pytest.raises(ValueValidationError) as caught:
        parse_value(vr, text)
    assert repr(text) in str(caught.value)
    assert f"not a valid {vr} value" in str(caught.value)


def test_message_names_the_element_and_the_rule() -> None:
    with pytest.raises(ValueValidationError) as caught:
        parse_value("CS", "hfs", tag=PATIENT_POSITION)
    message = str(caught.value)
    assert message.startswith("'hfs' is not a valid CS value for Patient Position (0018,5100):")
    assert "A–Z" in message


def test_bad_component_of_a_multi_value_is_quoted() -> None:
    with pytest.raises(ValueValidationError) as caught:
        parse_value("UI", "1.2\\1.02")
    assert str(caught.value).startswith(f"'1.02' (in {'1.2' + chr(92) + '1.02'!r})")


def test_value_count_follows_the_dictionary_vm() -> None:
    with pytest.raises(ValueValidationError, match="takes 1"):
        parse_value("CS", "HFS\\HFP", tag=PATIENT_POSITION)
    assert parse_value("DS", "1\\2\\3", tag=0x00200032) == ["1", "2", "3"]  # ImagePositionPatient


def test_sequences_are_not_text() -> None:
    with pytest.raises(ValueValidationError, match="sequence"):
        parse_value("SQ", "x")


def test_invalid_set_value_changes_nothing(rtplan: Path) -> None:
    ds = pydicom.dcmread(rtplan)
    with pytest.raises(ValueValidationError, match="'hfp'"):
        set_value(ds, POSITION_PATH, "hfp")
    assert ds.PatientSetupSequence[0].PatientPosition == "HFS"


def test_set_value_on_missing_path_says_where(rtplan: Path) -> None:
    ds = pydicom.dcmread(rtplan)
    with pytest.raises(EditError, match=r"PatientSetupSequence.*item \[5\]"):
        set_value(ds, (PATIENT_SETUP, 5, PATIENT_POSITION), "HFS")
    with pytest.raises(EditError, match="PatientComments"):
        get_element(ds, (0x00104000,))


# --- adding and deleting ------------------------------------------------------------------


@pytest.mark.parametrize("spelling", [0x00104000, "(0010,4000)", "00104000", "PatientComments"])
def test_tag_spellings(spelling: int | str) -> None:
    assert parse_tag(spelling) == 0x00104000


def test_add_and_delete_at_the_root(rtplan: Path, tmp_path: Path) -> None:
    ds = pydicom.dcmread(rtplan)
    path = add_element(ds, (), "PatientComments", "consented")
    assert path == (0x00104000,)
    assert ds[0x00104000].VR == "LT"  # from the dictionary

    with pytest.raises(EditError, match="already exists"):
        add_element(ds, (), 0x00104000, "again")

    back = pydicom.dcmread(save_as(ds, tmp_path / "added.dcm"))
    assert back.PatientComments == "consented"

    delete_element(ds, path)
    assert "PatientComments" not in ds
    with pytest.raises(EditError):
        delete_element(ds, path)


def test_add_and_delete_inside_a_sequence_item(rtplan: Path, tmp_path: Path) -> None:
    ds = pydicom.dcmread(rtplan)
    item = (PATIENT_SETUP, 0)
    path = add_element(ds, item, "SetupTechnique", "ISOCENTRIC")
    assert path == (PATIENT_SETUP, 0, 0x300A01B0)

    back = pydicom.dcmread(save_as(ds, tmp_path / "added.dcm"))
    assert back.PatientSetupSequence[0].SetupTechnique == "ISOCENTRIC"

    delete_element(ds, path)
    assert "SetupTechnique" not in ds.PatientSetupSequence[0]


def test_add_and_delete_items(rtplan: Path) -> None:
    ds = pydicom.dcmread(rtplan)
    count = len(ds.PatientSetupSequence)
    new_item = add_item(ds, (PATIENT_SETUP,))
    assert new_item == (PATIENT_SETUP, count)
    add_element(ds, new_item, "PatientPosition", "FFS")
    assert ds.PatientSetupSequence[count].PatientPosition == "FFS"

    delete_element(ds, new_item)
    assert len(ds.PatientSetupSequence) == count
    with pytest.raises(EditError, match="not a sequence"):
        add_item(ds, (0x00100010,))


def test_new_sequence_starts_empty(rtplan: Path) -> None:
    ds = pydicom.dcmread(rtplan)
    path = add_element(ds, (), "ReferencedStudySequence")
    assert len(ds.ReferencedStudySequence) == 0
    assert add_item(ds, path) == (path[0], 0)


def test_private_element_needs_its_creator(rtplan: Path) -> None:
    ds = pydicom.dcmread(rtplan)
    with pytest.raises(EditError, match=r"\(0029,0010\)"):
        add_element(ds, (), 0x00291010, "x", vr="LO")
    assert 0x00291010 not in ds

    add_element(ds, (), 0x00290010, "ACME 1.0")
    with pytest.raises(EditError, match="give its VR"):
        add_element(ds, (), 0x00291010, "x")  # unknown creator: VR must be given
    add_element(ds, (), 0x00291010, "x", vr="LO")
    assert ds[0x00291010].value == "x"

    with pytest.raises(EditError, match="delete those first"):
        delete_element(ds, (0x00290010,))


def test_unknown_public_tag_needs_a_vr_and_dictionary_vr_wins(rtplan: Path) -> None:
    ds = pydicom.dcmread(rtplan)
    with pytest.raises(EditError, match="give its VR"):
        add_element(ds, (), 0x00109999, "x")  # an even group, but not in the dictionary
    with pytest.raises(EditError, match="VR LT"):
        add_element(ds, (), "PatientComments", "x", vr="CS")


def test_invalid_value_for_a_new_element_adds_nothing(rtplan: Path) -> None:
    ds = pydicom.dcmread(rtplan)
    with pytest.raises(ValueValidationError, match="'25:00'"):
        add_element(ds, (), "PatientBirthTime", "25:00")
    assert "PatientBirthTime" not in ds
