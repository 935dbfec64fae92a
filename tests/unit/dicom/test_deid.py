"""De-identified export (PS3.15 Basic Profile): what a vendor receives must not name the patient."""

from __future__ import annotations

import copy
import shutil
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import UID_dictionary

from tests.conftest import testdata as sample_file
from tuiviewer.dicom.deid.export import UIDMap, default_map_path, deidentify, export_deidentified
from tuiviewer.exceptions import ExportError

SAMPLES = ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "rtstruct.dcm")
IDENTIFYING = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "InstitutionName",
    "OperatorsName",
    "ReferringPhysicianName",
    "NameOfPhysiciansReadingStudy",
)
KEPT_BY_PROFILE = ("Manufacturer", "ManufacturerModelName")

needs_dciodvfy = pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="needs dicom3tools")


def read(path: Path) -> Dataset:
    return pydicom.dcmread(path, force=True)


@pytest.fixture
def sources(tmp_path: Path) -> list[Path]:
    """The four samples, the structure set rewritten to reference the CT like a real one."""
    folder = tmp_path / "in"
    folder.mkdir()
    paths = []
    for name in SAMPLES:
        target = folder / name
        shutil.copy(sample_file(name), target)
        paths.append(target)
    ct = read(paths[0])
    rs = read(paths[3])
    rs.StudyInstanceUID = ct.StudyInstanceUID
    frame = rs.ReferencedFrameOfReferenceSequence[0]
    frame.FrameOfReferenceUID = ct.FrameOfReferenceUID
    study = frame.RTReferencedStudySequence[0]
    study.ReferencedSOPInstanceUID = ct.StudyInstanceUID
    series = study.RTReferencedSeriesSequence[0]
    series.SeriesInstanceUID = ct.SeriesInstanceUID
    image = Dataset()
    image.ReferencedSOPClassUID = ct.SOPClassUID
    image.ReferencedSOPInstanceUID = ct.SOPInstanceUID
    series.ContourImageSequence = [image]
    for roi in rs.StructureSetROISequence:
        roi.ReferencedFrameOfReferenceUID = ct.FrameOfReferenceUID
    rs.save_as(paths[3])  # written like the original: implicit VR, no File Meta
    return paths


@pytest.fixture
def exported(sources: list[Path], tmp_path: Path) -> tuple[list[Path], list[Path], Path]:
    junk = tmp_path / "in" / "notes.txt"
    junk.write_text("not DICOM\n")
    out = tmp_path / "out"
    summary = export_deidentified([*sources[:2], junk, *sources[2:]], out)
    assert [(path.name, "not DICOM" in reason) for path, reason in summary.failed] == [
        ("notes.txt", True)
    ]
    assert len(summary.written) == len(sources)
    return sources, summary.written, out


def identifying_values(ds: Dataset) -> Iterator[str]:
    for keyword in IDENTIFYING:
        yield from str(ds.get(keyword, "") or "").split("\\")
    for item in ds.get("OtherPatientIDsSequence", []):
        yield str(item.PatientID)


def uid_positions(
    ds: Dataset, prefix: tuple[object, ...] = ()
) -> Iterator[tuple[tuple[object, ...], str]]:
    for elem in ds:
        if elem.VR == "SQ":
            for index, item in enumerate(elem.value):
                yield from uid_positions(item, (*prefix, elem.tag, index))
        elif elem.VR == "UI" and not elem.is_empty:
            values = elem.value if isinstance(elem.value, list) else [elem.value]
            for index, value in enumerate(values):
                yield (*prefix, elem.tag, index), str(value)


def all_uids(ds: Dataset) -> dict[tuple[object, ...], str]:
    found = dict(uid_positions(ds))
    found.update(uid_positions(getattr(ds, "file_meta", Dataset()), ("meta",)))
    return found


def test_no_identifying_value_is_left_in_any_written_byte(
    exported: tuple[list[Path], list[Path], Path],
) -> None:
    sources, written, _out = exported
    originals = [read(path) for path in sources]
    kept = " ".join(str(ds.get(k, "")) for ds in originals for k in KEPT_BY_PROFILE)
    needles = {
        value
        for ds in originals
        for value in identifying_values(ds)
        if len(value) >= 4 and any(ch.isalnum() for ch in value) and value not in kept
    }
    assert {"CompressedSamples^CT1", "1CT1", "JFK IMAGING CENTER", "19691231"} <= needles
    blobs = {path: path.read_bytes() for path in written}
    for needle in sorted(needles):
        for path, blob in blobs.items():
            assert needle.encode() not in blob, f"{needle!r} found in {path.name}"


def test_profile_is_recorded_and_private_tags_are_gone(
    exported: tuple[list[Path], list[Path], Path],
) -> None:
    _sources, written, _out = exported
    for path in written:
        ds = pydicom.dcmread(path)  # a proper Part 10 file, even from the meta-less source
        assert ds.PatientIdentityRemoved == "YES"
        assert ds.PatientName == "ANONYMOUS" and ds.PatientID == "ANON"
        code = ds.DeidentificationMethodCodeSequence[0]
        assert (code.CodeValue, code.CodingSchemeDesignator) == ("113100", "DCM")
        assert "OtherPatientIDsSequence" not in ds
        odd = [elem.tag for elem in ds.iterall() if elem.tag.group % 2]
        assert odd == [], f"private tags left in {path.name}: {odd[:3]}"
        assert "SourceApplicationEntityTitle" not in ds.file_meta


def test_uids_are_replaced_consistently_across_files(
    exported: tuple[list[Path], list[Path], Path],
) -> None:
    sources, written, _out = exported
    new_for: dict[str, set[str]] = {}
    files_with: dict[str, set[int]] = {}
    for number, (source, target) in enumerate(zip(sources, written, strict=True)):
        before, after = all_uids(read(source)), all_uids(pydicom.dcmread(target))
        for position, uid in before.items():
            files_with.setdefault(uid, set()).add(number)
            if position in after:
                new_for.setdefault(uid, set()).add(after[position])

    shared = [uid for uid, files in files_with.items() if len(files) > 1]
    assert len(shared) >= 4  # CT study/series/frame/instance, and the CT/MR creator UID
    for uid, news in new_for.items():
        assert len(news) == 1, f"{uid} became {news}"
        if uid in UID_dictionary:
            assert news == {uid}  # SOP classes and other well-known UIDs stay
        else:
            assert news != {uid}

    ct, rs = pydicom.dcmread(written[0]), pydicom.dcmread(written[3])
    frame = rs.ReferencedFrameOfReferenceSequence[0]
    series = frame.RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
    assert frame.FrameOfReferenceUID == ct.FrameOfReferenceUID
    assert series.SeriesInstanceUID == ct.SeriesInstanceUID
    assert series.ContourImageSequence[0].ReferencedSOPInstanceUID == ct.SOPInstanceUID
    assert rs.StudyInstanceUID == ct.StudyInstanceUID
    for source, target in zip(sources, written, strict=True):
        assert pydicom.dcmread(target).SOPClassUID == read(source).SOPClassUID


def test_layout_modes_and_saved_uid_map(exported: tuple[list[Path], list[Path], Path]) -> None:
    sources, written, out = exported
    for path in written:
        ds = pydicom.dcmread(path)
        assert path.relative_to(out).parts == (
            ds.StudyInstanceUID,
            ds.SeriesInstanceUID,
            f"{ds.SOPInstanceUID}.dcm",
        )
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700
    # The map links new UIDs to the originals: it must not travel with the export.
    assert not [p for p in out.rglob("*") if p.is_file() and p.suffix != ".dcm"]
    map_file = default_map_path(out)
    assert stat.S_IMODE(map_file.stat().st_mode) == 0o600
    saved = UIDMap.from_json(map_file.read_text())
    for source, target in zip(sources, written, strict=True):
        assert saved.map(read(source).SOPInstanceUID) == pydicom.dcmread(target).SOPInstanceUID


@needs_dciodvfy
def test_dciodvfy_finds_no_new_errors(exported: tuple[list[Path], list[Path], Path]) -> None:
    def errors(path: Path) -> list[str]:
        run = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
        return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]

    sources, written, _out = exported
    for source, target in zip(sources, written, strict=True):
        assert len(errors(target)) <= len(errors(source)), (source.name, errors(target))


def test_second_export_reuses_the_saved_map(sources: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "vendor"
    first = export_deidentified([sources[0]], out)
    second = export_deidentified([sources[1]], out)  # a later session, same destination
    ct, mr = pydicom.dcmread(first.written[0]), pydicom.dcmread(second.written[0])
    # CT_small and MR_small share their Instance Creator UID.
    assert read(sources[0]).InstanceCreatorUID == read(sources[1]).InstanceCreatorUID
    assert ct.InstanceCreatorUID == mr.InstanceCreatorUID
    assert ct.InstanceCreatorUID != read(sources[0]).InstanceCreatorUID


def test_deidentify_leaves_the_input_untouched() -> None:
    ds = pydicom.dcmread(sample_file("CT_small.dcm"))
    before = copy.deepcopy(ds)
    clean = deidentify(ds, UIDMap())
    assert ds == before
    assert ds.file_meta == before.file_meta
    assert clean.PatientName == "ANONYMOUS" and ds.PatientName == before.PatientName


def test_uid_map_round_trip_and_validation() -> None:
    uids = UIDMap(prefix="1.2.826.0.1.3680043.10.999.")
    first = uids.map("1.2.3.4")
    assert first.startswith("1.2.826.0.1.3680043.10.999.")
    assert uids.map("1.2.3.4") == first
    assert uids.map("1.2.3.5") != first
    again = UIDMap.from_json(uids.to_json())
    assert again.map("1.2.3.4") == first and again.prefix == uids.prefix
    with pytest.raises(ExportError, match="'1.2.3'"):
        UIDMap(prefix="1.2.3")  # a root must end with a dot
    with pytest.raises(ExportError, match="not valid JSON"):
        UIDMap.from_json("{")


def test_burned_in_annotation_is_reported(tmp_path: Path) -> None:
    ds = pydicom.dcmread(sample_file("CT_small.dcm"))
    ds.BurnedInAnnotation = "YES"
    source = tmp_path / "burned.dcm"
    ds.save_as(source)
    summary = export_deidentified([source], tmp_path / "out")
    assert len(summary.written) == 1
    assert any(
        "'burned.dcm'" in text and "Burned In Annotation" in text for text in summary.warnings
    )


def test_cancel_and_progress(sources: list[Path], tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    summary = export_deidentified(sources[:2], tmp_path / "a", progress=lambda *p: seen.append(p))
    assert seen == [(1, 2), (2, 2)]
    assert len(summary.written) == 2

    stop = threading.Event()
    stop.set()
    cancelled = export_deidentified(sources, tmp_path / "b", cancel=stop)
    assert cancelled.written == []
    assert any("cancelled" in text for text in cancelled.warnings)
