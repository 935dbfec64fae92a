"""The bounded reading path: what pydicom reads, within limits, with a message at each limit."""

from __future__ import annotations

import io
import json
import struct
import sys
import warnings
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, ImplicitVRLittleEndian

from tests.support.hostile import (
    MEMORY_TARGET,
    deflate_bomb,
    depth_bomb,
    element_bomb,
    run_with_memory_limit,
)
from tuiviewer.config.limits import ReadLimits
from tuiviewer.dicom.loading import load_file
from tuiviewer.dicom.reading import ReadLimitError, read_dicom
from tuiviewer.exceptions import ConfigError

TEST_FILES = Path(str(get_testdata_file("CT_small.dcm", download=False))).parent
ROOT = Path(__file__).resolve().parents[2]


def _samples() -> list[Path]:
    return sorted(p for p in TEST_FILES.rglob("*") if p.is_file())


def test_read_dicom_reads_every_sample_as_dcmread_does() -> None:
    compared = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in _samples():
            for options in ({"force": True}, {"force": True, "stop_before_pixels": True}):
                theirs: object
                try:
                    theirs = pydicom.dcmread(path, **options)
                except Exception as exc:  # noqa: BLE001 - the same failure is expected of ours
                    with pytest.raises(type(exc)):
                        read_dicom(path, **options)
                    continue
                ours = read_dicom(path, **options)
                assert ours == theirs and ours.file_meta == theirs.file_meta, path.name
                compared += 1
    assert compared > 300


#: A header read as the scan, the listener and sending ask for it: a few UIDs, a sequence, a
#: private tag, and one tag that is usually absent.
HEADER_TAGS = [0x00080016, 0x00080018, 0x0020000D, 0x0020000E, 0x00081140, 0x00091001, 0x00280011]


def test_a_read_of_a_few_tags_gives_what_dcmread_gives() -> None:
    compared = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in _samples():
            for extra in ({}, {"stop_before_pixels": True}):
                options = {"force": True, "specific_tags": HEADER_TAGS, **extra}
                try:
                    theirs = pydicom.dcmread(path, **options)  # type: ignore[arg-type]
                except Exception as exc:  # noqa: BLE001 - the same failure is expected of ours
                    with pytest.raises(type(exc)):
                        read_dicom(path, **options)  # type: ignore[arg-type]
                    continue
                ours = read_dicom(path, **options)  # type: ignore[arg-type]
                assert ours == theirs, path.name
                assert ours.file_meta == theirs.file_meta, path.name
                compared += 1
    assert compared > 300


def test_a_few_tags_behind_many_elements_are_read_without_pydicom_walking_them(
    tmp_path: Path,
) -> None:
    path = tmp_path / "wide.dcm"
    element_bomb(path, 300_000)
    with open(path, "ab") as out:  # a tag after the private groups, as Rows would be
        out.write(struct.pack("<HH2sHH", 0x0051, 0x0010, b"US", 2, 7))
    reads: list[int] = []

    class Counted(io.FileIO):
        def read(self, size: int = -1) -> bytes:
            reads.append(size)
            return super().read(size)

    with Counted(path, "rb") as fh:
        ds = read_dicom(fh, specific_tags=[0x00080018, 0x00510010])
    assert ds[0x00510010].value == 7
    assert ds.SOPInstanceUID == pydicom.dcmread(path, specific_tags=[0x00080018]).SOPInstanceUID
    assert len(reads) < 100  # the file meta, not the 300,000 element headers in between


@pytest.mark.parametrize("inflated_mb", [270, 1536, 4095], ids=["262KB", "1.5MB", "4MB"])
def test_deflate_bombs_stop_at_the_cap_with_a_message(tmp_path: Path, inflated_mb: int) -> None:
    bomb = deflate_bomb(tmp_path / "bomb.dcm", inflated_mb)
    size = bomb.path.stat().st_size
    assert size < 5_000_000, f"a {size}-byte file"
    with pytest.raises(ReadLimitError) as info:
        read_dicom(bomb.path, stop_before_pixels=True)
    message = info.value.message
    assert str(bomb.path) in message and "256 MiB" in message
    assert "raise [limits] max_inflated_mb (now 256) in config.toml" in message
    assert info.value.limit == "max_inflated_mb"


def test_a_deflated_report_within_the_cap_reads(tmp_path: Path) -> None:
    made = deflate_bomb(tmp_path / "big.dcm", 20)
    ds = read_dicom(made.path)
    assert len(ds.TextValue) == 20 << 20
    assert ds.SOPInstanceUID == made.sop_uid
    assert ds.file_meta.TransferSyntaxUID == DeflatedExplicitVRLittleEndian


def test_the_cap_follows_the_configuration(tmp_path: Path) -> None:
    made = deflate_bomb(tmp_path / "big.dcm", 20)
    with pytest.raises(ReadLimitError, match=r"now 8\)"):
        read_dicom(made.path, limits=ReadLimits(max_inflated_mb=8))


def test_declared_pixel_data_raises_the_cap_but_only_so_far(tmp_path: Path) -> None:
    source = get_testdata_file("image_dfl.dcm", download=False)
    ds = pydicom.dcmread(source)
    rows, columns = int(ds.Rows), int(ds.Columns)
    need = rows * columns * int(ds.BitsAllocated) // 8
    small = ReadLimits(max_inflated_mb=1)
    assert need < small.inflation_cap(need)
    assert small.inflation_cap(10**12) == 2 * small.max_inflated_bytes


@pytest.mark.parametrize(
    "syntax",
    [
        "1.2.840.10008.1.2.1",
        str(ImplicitVRLittleEndian),
        str(ExplicitVRBigEndian),
        "1.2.840.10008.1.2.1.99",
    ],
    ids=["explicit", "implicit", "big-endian", "deflated"],
)
def test_ten_thousand_levels_of_nesting_hit_the_depth_limit(tmp_path: Path, syntax: str) -> None:
    made = depth_bomb(tmp_path / "deep.dcm", 10_000, syntax=syntax)
    with pytest.raises(ReadLimitError) as info:
        read_dicom(made.path)
    assert "nested more than 64 levels deep" in info.value.message
    assert "raise [limits] max_depth (now 64)" in info.value.message
    loaded = load_file(made.path)  # the tag tree: what could be read, and why it stopped
    assert any("nested more than 64 levels deep" in p.message for p in loaded.problems)
    assert any("max_depth" in p.message for p in loaded.problems)


def test_too_many_elements_stop_with_the_limit_named(tmp_path: Path) -> None:
    made = element_bomb(tmp_path / "wide.dcm", 3000)
    limits = ReadLimits(max_elements=2000)
    with pytest.raises(ReadLimitError, match=r"more than 2,000 data elements.*max_elements"):
        read_dicom(made.path, limits=limits)
    assert len(read_dicom(made.path, limits=ReadLimits(max_elements=4000))) > 3000


def test_limits_are_checked_when_the_configuration_is_read() -> None:
    with pytest.raises(ConfigError, match="max_depth"):
        ReadLimits(max_depth=10_000)
    with pytest.raises(ConfigError, match="max_elements"):
        ReadLimits(max_elements=0)


_CHILD = """
import json, sys
from tuiviewer.dicom.reading import ReadLimitError, read_dicom
from tuiviewer.dicom.loading import load_file
from tuiviewer.dicom.scanning import read_record
from tuiviewer.exceptions import TuiviewerError
path, how = sys.argv[1], sys.argv[2]
try:
    if how == "read":
        read_dicom(path)
    elif how == "header":
        read_dicom(path, stop_before_pixels=True)
    elif how == "load":
        loaded = load_file(path)
        print(json.dumps([p.message for p in loaded.problems]))
    elif how == "scan":
        read_record(__import__("pathlib").Path(path))
    print("READ")
except TuiviewerError as exc:
    print("REFUSED", exc.message)
"""


@pytest.mark.parametrize("inflated_mb", [1536, 4095], ids=["1.5MB", "4MB"])
@pytest.mark.parametrize("how", ["read", "header", "load", "scan", "dump"])
def test_bombs_stay_within_the_memory_bound(tmp_path: Path, inflated_mb: int, how: str) -> None:
    bomb = deflate_bomb(tmp_path / "bomb.dcm", inflated_mb)
    if how == "dump":
        args = [sys.executable, "-m", "tuiviewer", "dump", str(bomb.path)]
    else:
        args = [sys.executable, "-c", _CHILD, str(bomb.path), how]
    env = {"TUIVIEWER_CONFIG_DIR": str(tmp_path), "TUIVIEWER_LOG_DIR": str(tmp_path / "log")}
    result = run_with_memory_limit(args, env=env)
    assert result.returncode in (0, 1), result.stderr[-2000:]
    assert "MemoryError" not in result.stderr and "Traceback" not in result.stderr
    assert result.peak_rss <= MEMORY_TARGET, f"{result.peak_rss / 2**20:.0f} MiB for {how}"
    said = result.stdout + result.stderr
    if how == "scan":
        # The scan stops at (0028,0011): the bomb's text lies beyond, never inflated.
        assert "READ" in said
    elif how in ("read", "header"):
        assert "REFUSED" in said and "max_inflated_mb" in said
    else:
        assert "max_inflated_mb" in said, said[-500:]


def test_a_million_elements_load_within_the_memory_bound(tmp_path: Path) -> None:
    made = element_bomb(tmp_path / "wide.dcm", 1_000_000)
    assert 9_000_000 < made.path.stat().st_size < 11_000_000
    env = {"TUIVIEWER_CONFIG_DIR": str(tmp_path), "TUIVIEWER_LOG_DIR": str(tmp_path / "log")}
    result = run_with_memory_limit(
        [sys.executable, "-c", _CHILD, str(made.path), "load"], env=env, timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.splitlines()[0]) == []
    assert result.peak_rss <= MEMORY_TARGET, f"{result.peak_rss / 2**20:.0f} MiB"


def test_dump_of_many_elements_streams(tmp_path: Path) -> None:
    made = element_bomb(tmp_path / "wide.dcm", 300_000)
    env = {"TUIVIEWER_CONFIG_DIR": str(tmp_path), "TUIVIEWER_LOG_DIR": str(tmp_path / "log")}
    out = tmp_path / "dump.txt"
    code = (
        "import sys; from tuiviewer.dicom.dump import run_dump\n"
        f"out = open({str(out)!r}, 'w')\n"
        "sys.exit(run_dump([sys.argv[1]], as_json=False, stdout=out, stderr=sys.stderr))"
    )
    result = run_with_memory_limit(
        [sys.executable, "-c", code, str(made.path)], env=env, timeout=900
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = out.read_text().count("\n")
    assert lines > 300_000
    # Streaming: far below what the elements take when all are kept (~250 MiB for these,
    # ~800 MiB for a million; benchmarks/hostile.py measures both).
    assert result.peak_rss < 160 << 20, f"{result.peak_rss / 2**20:.0f} MiB"


def test_dump_text_of_a_small_file_is_what_stream_writes() -> None:
    from tuiviewer.dicom.dump import dump_text, stream_text

    for name in (
        "CT_small.dcm",
        "rtplan.dcm",
        "image_dfl.dcm",
        "test-SR.dcm",
        "MR_small_bigendian.dcm",
    ):
        path = TEST_FILES / name
        out = io.StringIO()
        stream_text(str(path), out)
        assert out.getvalue() == dump_text(load_file(path)), name
