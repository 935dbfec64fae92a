"""``tuiviewer dump``: dcmdump-like text, DICOM JSON, exit status and error lines."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import warnings
from pathlib import Path
from urllib.parse import parse_qs, urlparse
from urllib.request import url2pathname

import pydicom
import pytest
from pydicom.dataset import Dataset

from tuiviewer.dicom.dump import BULK_DATA_THRESHOLD, dump_json, dump_text, run_dump
from tuiviewer.dicom.loading import load_file

TEST_FILES = Path(str(pydicom.data.get_testdata_file("CT_small.dcm", download=False))).parent
DCMDUMP = shutil.which("dcmdump")
_TAG_LINE = re.compile(r"^\s*\(([0-9a-f]{4}),([0-9a-f]{4})\) (\S\S) ")


def _element_tags(text: str) -> list[tuple[str, str]]:
    return [
        (m.group(1), m.group(2))
        for line in text.splitlines()
        if (m := _TAG_LINE.match(line)) and m.group(1) != "fffe"
    ]


@pytest.mark.parametrize("name", ["CT_small.dcm", "rtplan.dcm", "JPEG2000.dcm", "test-SR.dcm"])
def test_text_dump_lists_the_same_elements_as_dcmdump(name: str) -> None:
    if DCMDUMP is None:
        pytest.skip("dcmdump (dcmtk) is not installed")
    path = TEST_FILES / name
    expected = subprocess.run(
        [DCMDUMP, str(path)], capture_output=True, text=True, errors="replace", check=True
    ).stdout
    ours = dump_text(load_file(path))
    assert _element_tags(ours) == _element_tags(expected)
    assert "# Dicom-Meta-Information-Header" in ours and "# Dicom-Data-Set" in ours


def test_text_dump_shows_values_and_sequence_markers() -> None:
    reference = pydicom.dcmread(TEST_FILES / "rtplan.dcm")
    text = dump_text(load_file(TEST_FILES / "rtplan.dcm"))
    patient_line = next(line for line in text.splitlines() if line.startswith("(0010,0010)"))
    assert f"[{reference.PatientName}]" in patient_line and patient_line.endswith("PatientName")
    setup_items = len(reference.PatientSetupSequence)
    assert f"(Sequence with explicit length #={setup_items})" in text
    assert "(fffe,e000) na (Item with explicit length" in text
    position = next(line for line in text.splitlines() if "(0018,5100)" in line)
    assert position.startswith("    (0018,5100) CS [HFS]")  # nested one sequence deep


def test_text_dump_appends_problems_with_offsets() -> None:
    path = TEST_FILES / "rtplan_truncated.dcm"
    loaded = load_file(path)
    text = dump_text(loaded)
    first = loaded.problems[0]
    assert f"# Problem at byte {first.offset}: {first.message}" in text


def test_json_round_trip_of_ct_small() -> None:
    path = TEST_FILES / "CT_small.dcm"
    document = dump_json(load_file(path))
    restored = Dataset.from_json(json.loads(json.dumps(document)))
    reference = pydicom.dcmread(path)
    assert len(reference.PixelData) <= BULK_DATA_THRESHOLD  # so it travels inline
    assert restored == reference


def test_large_pixel_data_becomes_a_bulk_data_uri_into_the_file() -> None:
    path = TEST_FILES / "examples_overlay.dcm"
    reference = pydicom.dcmread(path)
    assert len(reference.PixelData) > BULK_DATA_THRESHOLD
    document = dump_json(load_file(path))
    pixel = document["7FE00010"]
    assert pixel["vr"] == reference["PixelData"].VR and "InlineBinary" not in pixel
    uri = urlparse(pixel["BulkDataURI"])
    assert uri.scheme == "file" and Path(url2pathname(uri.path)) == path.resolve()
    query = parse_qs(uri.query)
    offset, length = int(query["offset"][0]), int(query["length"][0])
    assert path.read_bytes()[offset : offset + length] == reference.PixelData
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no bulk data handler: pydicom warns and skips it
        restored = Dataset.from_json(document)
    del reference.PixelData
    del restored.PixelData
    assert restored == reference


def test_json_of_a_file_with_invalid_values_still_loads() -> None:
    document = dump_json(load_file(TEST_FILES / "badVR.dcm"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        restored = Dataset.from_json(json.dumps(document))
    assert restored.PatientName == pydicom.dcmread(TEST_FILES / "badVR.dcm").PatientName


def test_run_dump_on_a_non_dicom_file(tmp_path: Path) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("hello, this is not an image\n" * 20)
    stdout, stderr = io.StringIO(), io.StringIO()
    status = run_dump([str(junk)], as_json=False, stdout=stdout, stderr=stderr)
    assert status == 1
    assert stdout.getvalue() == ""
    lines = stderr.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"tuiviewer dump: {junk}: ") and "not DICOM" in lines[0]


def test_run_dump_keeps_going_after_a_bad_file(tmp_path: Path) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("not dicom at all\n" * 20)
    good = TEST_FILES / "CT_small.dcm"
    stdout, stderr = io.StringIO(), io.StringIO()
    status = run_dump([str(junk), str(good)], as_json=False, stdout=stdout, stderr=stderr)
    assert status == 1
    out = stdout.getvalue()
    assert f"# File: {good}" in out and f"# File: {junk}" not in out
    assert "(0010,0010)" in out
    assert len(stderr.getvalue().splitlines()) == 1


def test_run_dump_exit_status_reflects_problems() -> None:
    clean = io.StringIO()
    assert (
        run_dump(
            [str(TEST_FILES / "MR_small.dcm")], as_json=False, stdout=clean, stderr=io.StringIO()
        )
        == 0
    )
    damaged = io.StringIO()
    status = run_dump(
        [str(TEST_FILES / "MR_truncated.dcm")], as_json=False, stdout=damaged, stderr=io.StringIO()
    )
    assert status == 1
    assert "# Problem at byte" in damaged.getvalue()


def test_run_dump_json_one_object_or_an_array() -> None:
    one = io.StringIO()
    assert (
        run_dump([str(TEST_FILES / "MR_small.dcm")], as_json=True, stdout=one, stderr=io.StringIO())
        == 0
    )
    assert isinstance(json.loads(one.getvalue()), dict)

    several, errors = io.StringIO(), io.StringIO()
    paths = [str(TEST_FILES / "MR_small.dcm"), str(TEST_FILES / "rtplan_truncated.dcm")]
    status = run_dump(paths, as_json=True, stdout=several, stderr=errors)
    documents = json.loads(several.getvalue())
    assert status == 1
    assert isinstance(documents, list) and len(documents) == 2
    assert "(300A,012C)" in errors.getvalue()  # problems go to stderr, stdout stays JSON
