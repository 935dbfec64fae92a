"""load_file: every sample file loads, damaged files show what could be read and where it broke.

Expectations come from pydicom's own reading of intact files and from dcmtk's dcmdump, never
from our own output.
"""

from __future__ import annotations

import io
import json
import random
import re
import shutil
import subprocess
import time
import tracemalloc
import warnings
from pathlib import Path

import pydicom
import pytest
from pydicom.datadict import dictionary_has_tag, dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRLittleEndian

from tests.support.mutants import cut_points, random_byte_flips
from tuiviewer.dicom.dump import dump_json, dump_text
from tuiviewer.dicom.elements import dataset_rows, meta_rows, walk
from tuiviewer.dicom.loading import LoadedFile, load_file
from tuiviewer.exceptions import DicomReadError, NotDicomError

TEST_FILES = Path(str(pydicom.data.get_testdata_file("CT_small.dcm", download=False))).parent
NOT_DICOM = {"README.txt", "crayons.icc", "test1.json"}
DICOM_SAMPLES = sorted(TEST_FILES.glob("*.dcm")) + sorted(
    (TEST_FILES / "dicomdirtests").glob("DICOMDIR*")
)
ALL_SAMPLES = DICOM_SAMPLES + [TEST_FILES / name for name in sorted(NOT_DICOM)]
DCMDUMP = shutil.which("dcmdump")
_DCMDUMP_TAG = re.compile(r"^\s*\(([0-9a-f]{4}),([0-9a-f]{4})\)")


def _ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def _dcmdump(path: Path) -> subprocess.CompletedProcess[str]:
    if DCMDUMP is None:
        pytest.skip("dcmdump (dcmtk) is not installed")
    return subprocess.run(
        [DCMDUMP, str(path)], capture_output=True, text=True, errors="replace", timeout=30
    )


def _load_quietly(path: Path) -> LoadedFile:
    """Load and fail if any warning escaped load_file (they must become LoadProblems)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = load_file(path)
    assert [str(w.message) for w in caught] == []
    return loaded


@pytest.mark.parametrize("path", ALL_SAMPLES, ids=_ids(ALL_SAMPLES))
def test_every_sample_loads_and_dumps_without_traceback(path: Path) -> None:
    try:
        loaded = _load_quietly(path)
    except NotDicomError as exc:
        assert path.name in NOT_DICOM, f"{path.name} is DICOM but was refused: {exc}"
        assert repr(path.name) in exc.message
        return
    assert path.name not in NOT_DICOM
    assert isinstance(loaded.dataset.file_meta, FileMetaDataset)
    text = dump_text(loaded)
    assert "# Dicom-Data-Set" in text
    document = dump_json(loaded)
    json.dumps(document)


def _nested_count(elem: DataElement) -> int:
    return sum(
        len(item) + sum(_nested_count(e) for e in item if e.VR == "SQ") for item in elem.value
    )


@pytest.mark.parametrize("path", DICOM_SAMPLES, ids=_ids(DICOM_SAMPLES))
def test_element_count_matches_dcmdump(path: Path) -> None:
    result = _dcmdump(path)
    if result.returncode != 0:
        pytest.skip(f"dcmdump cannot read {path.name} either (exit {result.returncode})")
    lines = [(m, line) for line in result.stdout.splitlines() if (m := _DCMDUMP_TAG.match(line))]
    expected = sum(1 for m, _ in lines if m.group(1) != "fffe")
    # A public sequence written with VR UN (rtdose_rle.dcm) stays one opaque UN element in
    # dcmdump, while pydicom (and so tuiviewer) decodes it as the SQ the dictionary says it is
    # (config.replace_un_with_known_vr). Add the elements pydicom finds inside those.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = pydicom.dcmread(path, force=True)
        for m, line in lines:
            tag = int(m.group(1) + m.group(2), 16)
            if line.startswith("(") and line[12:14] == "UN" and dictionary_has_tag(tag):
                if dictionary_VR(tag) == "SQ" and reference[tag].VR == "SQ":
                    expected += _nested_count(reference[tag])
    loaded = load_file(path)
    ds = loaded.dataset
    rows = list(walk(meta_rows(ds) + dataset_rows(ds, loaded.problems)))
    assert len(rows) == expected
    assert loaded.element_count == expected


@pytest.mark.parametrize("path", DICOM_SAMPLES, ids=_ids(DICOM_SAMPLES))
def test_intact_files_read_exactly_as_pydicom_reads_them(path: Path) -> None:
    if path.name in {"no_meta.dcm", "MR_truncated.dcm", "rtplan_truncated.dcm"}:
        pytest.skip("damaged file: pydicom's reading is not the reference (tested below)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = pydicom.dcmread(path, force=True)
        loaded = load_file(path)
        assert loaded.dataset == reference
        assert loaded.dataset.file_meta == reference.file_meta


def test_rtplan_truncated_names_the_element_and_offset_dcmdump_reports() -> None:
    path = TEST_FILES / "rtplan_truncated.dcm"
    result = _dcmdump(path)
    match = re.search(
        r"\((300a,012c)\) larger \((\d+)\) than remaining bytes \((\d+)\)", result.stderr
    )
    assert match, result.stderr
    declared, remaining = int(match.group(2)), int(match.group(3))
    size = path.stat().st_size

    loaded = load_file(path)

    first = loaded.problems[0]
    assert first.tag == 0x300A012C
    assert "(300A,012C)" in first.message
    assert f"{declared} bytes" in first.message and f"only {remaining} remain" in first.message
    # The value starts `remaining` bytes before the end of the file.
    assert first.offset == size - remaining
    assert loaded.banner is not None and "(300A,012C) IsocenterPosition" in loaded.banner
    assert f"byte {size}" in loaded.banner


def test_mr_truncated_pixel_data_is_reported_like_dcmdump() -> None:
    path = TEST_FILES / "MR_truncated.dcm"
    result = _dcmdump(path)
    match = re.search(r"PixelData \(7fe0,0010\) larger \((\d+)\)", result.stderr)
    assert match, result.stderr
    loaded = load_file(path)
    assert loaded.problems[0].tag == 0x7FE00010
    assert f"declares {match.group(1)} bytes" in loaded.problems[0].message
    # Everything before the pixel data is still there.
    reference = pydicom.dcmread(path, stop_before_pixels=True)
    for elem in reference:
        assert loaded.dataset[elem.tag] == elem


TRUNCATED_SOURCES = [
    "rtplan.dcm",
    "CT_small.dcm",
    "MR_small.dcm",
    "image_dfl.dcm",
    "MR_small_bigendian.dcm",
]


@pytest.mark.parametrize("name", TRUNCATED_SOURCES)
def test_truncated_files_report_where_they_end(name: str, tmp_path: Path) -> None:
    source = TEST_FILES / name
    data = source.read_bytes()
    rng = random.Random(name)
    cuts = cut_points(source, rng)
    assert len(cuts) >= 30
    refused = 0
    for cut in cuts:
        target = tmp_path / f"{cut}.dcm"
        target.write_bytes(data[:cut])
        started = time.perf_counter()
        try:
            loaded = _load_quietly(target)
        except NotDicomError:
            refused += 1
            continue
        finally:
            assert time.perf_counter() - started < 1.0
        assert loaded.problems, f"cut at {cut} went unnoticed"
        offsets = [p.offset for p in loaded.problems if p.offset is not None]
        assert offsets and all(0 <= o <= cut for o in offsets), (cut, loaded.problems)
        assert loaded.banner is not None
    # Only cuts inside the preamble or the first meta element can leave nothing to show.
    assert refused <= sum(1 for c in cuts if c < 144)


def test_byte_flips_never_crash_or_hang(tmp_path: Path) -> None:
    rng = random.Random(1234)
    for mutant in random_byte_flips(rng):
        label = mutant.name
        target = tmp_path / "mutant.dcm"
        target.write_bytes(mutant.data)
        started = time.perf_counter()
        try:
            loaded = _load_quietly(target)
        except (NotDicomError, DicomReadError):
            continue
        assert time.perf_counter() - started < 1.0, label
        dump_text(loaded)
        json.dumps(dump_json(loaded))


def _small_file(**elements: object) -> bytes:
    ds = Dataset()
    ds.PatientName = "Test^Patient"
    ds.PatientID = "ID1"
    for key, value in elements.items():
        setattr(ds, key, value)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = UID("1.2.840.10008.5.1.4.1.1.7")
    ds.file_meta.MediaStorageSOPInstanceUID = UID("1.2.3.4")
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_huge_declared_length_is_bounded(tmp_path: Path) -> None:
    # (0010,0030) declared as OB with a length of 0xFFFFFFF0 bytes, followed by 16 bytes.
    data = _small_file() + b"\x10\x00\x30\x00OB\x00\x00\xf0\xff\xff\xff" + b"\x00" * 16
    target = tmp_path / "huge.dcm"
    target.write_bytes(data)
    tracemalloc.start()
    started = time.perf_counter()
    loaded = load_file(target)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 1.0
    assert peak < 20 * 1024 * 1024
    assert loaded.dataset.PatientName == "Test^Patient"
    problem = loaded.problems[0]
    assert problem.tag == 0x00100030
    assert str(0xFFFFFFF0) in problem.message and "only 16 remain" in problem.message


def test_garbage_after_a_valid_prefix_keeps_what_came_before(tmp_path: Path) -> None:
    source = TEST_FILES / "CT_small.dcm"
    data = source.read_bytes()
    reference = pydicom.dcmread(source)
    cut = int(reference["PixelData"].file_tell or 0) - 12  # the start of the pixel data element
    junk = bytes(random.Random(7).randrange(256) for _ in range(4000))
    target = tmp_path / "garbage.dcm"
    target.write_bytes(data[:cut] + junk)
    loaded = _load_quietly(target)
    assert loaded.problems
    assert any(p.offset is not None and p.offset >= cut for p in loaded.problems)
    for elem in reference:
        if elem.tag < 0x7FE00010:
            assert loaded.dataset[elem.tag] == elem


def test_empty_file_is_not_dicom(tmp_path: Path) -> None:
    target = tmp_path / "empty.dcm"
    target.write_bytes(b"")
    with pytest.raises(NotDicomError, match="'empty.dcm'.*empty"):
        load_file(target)


def test_text_file_is_not_dicom_and_says_what_was_found(tmp_path: Path) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("This is a plain text file, not an image.\n" * 10)
    with pytest.raises(NotDicomError) as info:
        load_file(target)
    assert "'notes.txt'" in info.value.message
    assert "no 'DICM' prefix at offset 128" in info.value.message


def test_missing_and_unreadable_paths_raise_read_errors(tmp_path: Path) -> None:
    with pytest.raises(DicomReadError, match="no such file") as info:
        load_file(tmp_path / "absent.dcm")
    assert not isinstance(info.value, NotDicomError)
    assert "absent.dcm" in info.value.message
    with pytest.raises(DicomReadError, match="directory"):
        load_file(tmp_path)


@pytest.mark.parametrize(
    "name", ["ExplVR_LitEndNoMeta.dcm", "ExplVR_BigEndNoMeta.dcm", "rtstruct.dcm"]
)
def test_missing_preamble_is_read_and_reported(name: str) -> None:
    path = TEST_FILES / name
    loaded = _load_quietly(path)
    reference = pydicom.dcmread(path, force=True)
    assert not loaded.has_preamble
    assert loaded.dataset == reference
    assert any("DICM" in p.message for p in loaded.problems)


def test_no_meta_with_a_stray_leading_byte_is_read_from_the_next_byte() -> None:
    path = TEST_FILES / "no_meta.dcm"
    data = path.read_bytes()
    reference = pydicom.dcmread(io.BytesIO(data[1:]), force=True)
    loaded = _load_quietly(path)
    assert len(reference) > 100
    assert loaded.dataset == reference
    assert loaded.problems[0].offset == 0 and "1 unexpected byte" in loaded.problems[0].message


def test_missing_transfer_syntax_is_guessed_and_reported() -> None:
    path = TEST_FILES / "meta_missing_tsyntax.dcm"
    loaded = _load_quietly(path)
    assert "TransferSyntaxUID" not in loaded.dataset.file_meta
    reference = pydicom.dcmread(path)
    implicit, little = reference.original_encoding
    assert loaded.transfer_syntax == ("1.2.840.10008.1.2" if implicit else "1.2.840.10008.1.2.1")
    assert any("Transfer Syntax" in p.message for p in loaded.problems)


def test_deflated_file_is_inflated() -> None:
    path = TEST_FILES / "image_dfl.dcm"
    loaded = _load_quietly(path)
    assert loaded.ok and loaded.banner is None
    assert loaded.transfer_syntax == "1.2.840.10008.1.2.1.99"
    assert loaded.dataset.PixelData == pydicom.dcmread(path).PixelData


def test_bad_vr_values_become_problems_and_stay_visible() -> None:
    path = TEST_FILES / "badVR.dcm"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reference = pydicom.dcmread(path)
        for _ in reference.iterall():
            pass
    bad = {str(w.message).split("'")[1] for w in caught if "Invalid value" in str(w.message)}
    assert bad  # pydicom itself complains about these values

    loaded = _load_quietly(path)
    rows = {row.tag: row for row in walk(dataset_rows(loaded.dataset, loaded.problems))}
    # Each bad value gets a problem on its element, and the element still shows the value;
    # the message names the element but does not quote the value (it could be a patient's
    # name read with the wrong VR, and messages reach logs).
    flagged = [row for row in rows.values() if row.problem and "Invalid value" in row.problem]
    assert {row.value for row in flagged} >= bad
    messages = " ".join(p.message for p in loaded.problems)
    assert not [value for value in bad if value in messages]
    frames = rows[0x00280008]
    assert frames.value == str(reference.NumberOfFrames)
    assert frames.problem is not None and "NumberOfFrames" in frames.problem


def test_private_and_undefined_length_sequences_match_dcmdump_structure() -> None:
    for name in ["priv_SQ.dcm", "nested_priv_SQ.dcm", "UN_sequence.dcm"]:
        path = TEST_FILES / name
        result = _dcmdump(path)
        items = sum(1 for line in result.stdout.splitlines() if "(fffe,e000)" in line)
        loaded = _load_quietly(path)

        def count_items(ds: Dataset) -> int:
            total = 0
            for elem in ds:
                if elem.VR == "SQ":
                    total += len(elem.value) + sum(count_items(i) for i in elem.value)
            return total

        pixel_items = 0
        if "PixelData" in loaded.dataset and loaded.dataset["PixelData"].is_undefined_length:
            pixel_items = sum(1 for line in result.stdout.splitlines() if "(fffe,e000) pi" in line)
        assert count_items(loaded.dataset) == items - pixel_items, name


def test_absurd_nesting_stops_with_a_problem(tmp_path: Path) -> None:
    inner = Dataset()
    inner.CodeValue = "X"
    for _ in range(100):
        outer = Dataset()
        outer.ContentSequence = Sequence([inner])
        inner = outer
    ds = Dataset()
    ds.PatientID = "deep"
    ds.ContentSequence = inner.ContentSequence
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = UID("1.2.840.10008.5.1.4.1.1.88.11")
    ds.file_meta.MediaStorageSOPInstanceUID = UID("1.2.3.4.5")
    target = tmp_path / "deep.dcm"
    ds.save_as(target, enforce_file_format=True)
    started = time.perf_counter()
    loaded = _load_quietly(target)
    assert time.perf_counter() - started < 1.0
    assert loaded.dataset.PatientID == "deep"
    assert any("nested more than" in p.message for p in loaded.problems)


def test_stop_before_pixels_reads_everything_else_cleanly() -> None:
    path = TEST_FILES / "CT_small.dcm"
    reference = pydicom.dcmread(path, stop_before_pixels=True)
    loaded = load_file(path, stop_before_pixels=True)
    assert loaded.ok
    assert "PixelData" not in loaded.dataset
    assert loaded.dataset == reference
