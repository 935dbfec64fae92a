"""The raw listing (``tuiviewer dump`` without pydicom) prints exactly what the pydicom listing
prints, or leaves the file to it: over every pydicom sample file, generated series in every
native encoding, hostile files and files cut short (issue 10, start-up)."""

from __future__ import annotations

import io
import marshal
import os
import random
import re
import stat
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file, get_testdata_files
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from tests.support import hostile, imagegen
from tuiviewer.config import limits
from tuiviewer.dicom import datagen, dictcache, rawdump
from tuiviewer.dicom.dump import run_dump


def _pydicom_listing(path: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = run_dump([path], as_json=False, stdout=out, stderr=err)
    return status, out.getvalue(), err.getvalue()


def _compare(paths: list[str]) -> tuple[list[str], dict[str, str]]:
    """(files the raw listing printed, reason per file it left to pydicom); a file it printed
    must be printed identically by the pydicom listing, with no problem and status 0."""
    printed: list[str] = []
    left: dict[str, str] = {}
    for path in paths:
        try:
            raw = rawdump.listing(path)
        except rawdump.Unhandled as exc:
            left[path] = str(exc)
            continue
        status, text, errors = _pydicom_listing(path)
        assert raw == text, path
        assert (status, errors) == (0, ""), path
        printed.append(path)
    return printed, left


def _samples() -> list[str]:
    return sorted(p for p in get_testdata_files() if os.path.isfile(p))


def _sample(name: str) -> str:
    path = get_testdata_file(name, download=False)
    assert path is not None, name
    return str(path)


def test_every_pydicom_sample_prints_the_same_or_goes_to_pydicom() -> None:
    paths = _samples()
    printed, left = _compare(paths)
    names = {Path(p).name for p in printed}
    # The common encodings are read here: explicit and implicit VR, big endian, encapsulated
    # (JPEG, JPEG 2000, RLE), sequences of both lengths, private dictionaries.
    for name in (
        "CT_small.dcm",
        "MR_small.dcm",
        "MR_small_implicit.dcm",
        "MR_small_bigendian.dcm",
        "JPEG2000.dcm",
        "SC_rgb_rle.dcm",
        "rtplan.dcm",
        "SC_rgb_jpeg_dcmtk.dcm",
    ):
        assert name in names, (name, left.get(_sample(name)))
    assert len(printed) >= 0.75 * len(paths), sorted(left.values())
    # A deflated data set and a file with problems to report are pydicom's.
    assert "deflated" in left[_sample("image_dfl.dcm")]


@pytest.mark.parametrize(
    "syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian]
)
def test_generated_images_print_the_same_in_every_native_encoding(
    tmp_path: Path, syntax: str
) -> None:
    made = [
        imagegen.ct_slice(),
        imagegen.monochrome1(),
        imagegen.signed16(),
        imagegen.rgb(),
        imagegen.with_overlays(),
        imagegen.voi_lut_sequence(),
        imagegen.modality_lut_sequence(),
        imagegen.enhanced_ct(),
        imagegen.ultrasound_rgb(16, 16),
    ]
    paths = []
    for index, ds in enumerate(made):
        ds.file_meta.TransferSyntaxUID = syntax
        path = tmp_path / f"{index}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(str(path))
    printed, left = _compare(paths)
    # Only the LUT descriptors of implicit VR files (US or SS, resolved by pydicom from the
    # first value) are left to pydicom.
    assert all("00283002" in reason for reason in left.values()), left
    assert len(printed) >= len(paths) - 2


def test_generated_series_print_the_same(tmp_path: Path) -> None:
    paths = [str(p) for p in datagen.write_ct_series(tmp_path / "ct", slices=3)]
    for group in datagen.write_mixed_series(tmp_path / "mixed").values():
        paths += [str(p) for p in group]
    printed, left = _compare(paths)
    assert len(printed) == len(paths), left


def test_hostile_files_go_to_pydicom_or_print_the_same(tmp_path: Path) -> None:
    paths = [
        str(hostile.deflate_bomb(tmp_path / "deflate.dcm", 2).path),
        str(hostile.element_bomb(tmp_path / "elements.dcm", 3000).path),
        str(hostile.depth_bomb(tmp_path / "deep.dcm", 80).path),
        str(hostile.depth_bomb(tmp_path / "deep-image.dcm", 10, image=True).path),
        str(hostile.depth_bomb(tmp_path / "deep-be.dcm", 10, syntax=str(ExplicitVRBigEndian)).path),
    ]
    escape = tmp_path / "escape.dcm"
    hostile.escape_image(escape)
    paths.append(str(escape))
    printed, left = _compare(paths)
    assert left[paths[0]] == "a deflated data set"
    assert "max_depth" in left[paths[2]]
    assert "ASCII" in left[paths[5]]  # its text is UTF-8 with C1 controls: pydicom's
    assert paths[1] in printed and paths[3] in printed


def test_limits_of_the_configuration_send_the_file_to_pydicom(tmp_path: Path) -> None:
    path = str(hostile.element_bomb(tmp_path / "elements.dcm", 300).path)
    assert rawdump.listing(path)
    limits.configure(limits.ReadLimits(max_elements=100))
    try:
        with pytest.raises(rawdump.Unhandled, match="max_elements"):
            rawdump.listing(path)
        status, text, _ = _pydicom_listing(path)
        assert status == 1 and "max_elements" in text
    finally:
        limits.configure(limits.ReadLimits())


def test_the_quick_bounds_are_below_the_default_limits() -> None:
    """Without a configuration the raw listing checks against its quick bounds and reads
    [limits] only past them; that is right only while the defaults are above them."""
    defaults = limits.ReadLimits()
    assert defaults.max_elements >= rawdump._QUICK_ELEMENTS
    assert defaults.max_depth >= rawdump._QUICK_DEPTH


def test_a_file_cut_short_goes_to_pydicom_which_says_why(tmp_path: Path) -> None:
    data = Path(_sample("rtplan.dcm")).read_bytes()
    rng = random.Random(7)
    cuts = sorted(rng.sample(range(140, len(data) - 1), 25))
    for cut in cuts:
        path = tmp_path / f"cut{cut}.dcm"
        path.write_bytes(data[:cut])
        try:
            raw = rawdump.listing(str(path))
        except rawdump.Unhandled:
            status, text, _ = _pydicom_listing(str(path))
            assert status == 1 and "# Problem" in text, cut
            continue
        # Only a cut on an element boundary at the top level leaves a well-formed file.
        assert raw == _pydicom_listing(str(path))[1], cut


def test_a_file_that_cannot_be_read_goes_to_pydicom(tmp_path: Path) -> None:
    for path in (tmp_path / "missing.dcm", tmp_path, tmp_path / "empty.dcm"):
        if path.name == "empty.dcm":
            path.write_bytes(b"")
        with pytest.raises(rawdump.Unhandled):
            rawdump.listing(str(path))


def test_the_dictionary_cache_is_private_and_made_again_when_stale(tmp_path: Path) -> None:
    dictcache._loaded = None
    path = dictcache.cache_path()
    assert path.parent == Path(os.environ["TUIVIEWER_CACHE_DIR"])
    path.unlink(missing_ok=True)
    tables = dictcache.dictionaries()
    assert tables.entry(0x00100010) == ("PN", "PatientName", "Patient's Name")
    assert tables.entry(0x60020010) == ("US", "OverlayRows", "Overlay Rows")  # repeater 60xx
    assert tables.private_entry(0x00091001, "GEMS_IDEN_01") == ("LO", "Full fidelity")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    # Another pydicom (its dictionary files changed): the stored key no longer matches.
    stored = marshal.loads(path.read_bytes())
    stored["key"][2] = ("_dicom_dict.py", 0, 0)
    stored["tables"]["public"][0x00100010] = "PN\tStale\tStale"
    path.write_bytes(marshal.dumps(stored))
    dictcache._loaded = None
    assert dictcache.dictionaries().entry(0x00100010) == ("PN", "PatientName", "Patient's Name")
    path.write_bytes(b"not marshal")
    dictcache._loaded = None
    assert dictcache.dictionaries().entry(0x00100010) is not None
    assert marshal.loads(path.read_bytes())["key"] == dictcache._key()
    dictcache._loaded = None


def test_quick_checks_take_only_values_the_patterns_take() -> None:
    rng = random.Random(3)
    alphabets = {
        "AE": " AZaz09.^_~-",
        "AS": "0123DWMYx",
        "CS": "AZ09 _az-",
        "DA": "0123456789-. ",
        "TM": "0123456789. -",
        "UI": "0123456789.a ",
        "IS": "0123456789 +-.",
        "DS": "0123456789 +-.eE",
    }
    for vr, alphabet in alphabets.items():
        pattern = re.compile(rawdump._PATTERNS[vr], re.ASCII)
        for _ in range(20000):
            value = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
            if vr == "DA" and rng.random() < 0.5:
                value = f"{rng.randint(1900, 2100)}{rng.randint(0, 13):02d}{rng.randint(0, 32):02d}"
            if vr == "TM" and rng.random() < 0.5:
                value = f"{rng.randint(0, 25):02d}{rng.randint(0, 61):02d}{rng.randint(0, 61):02d}"
            if rawdump._QUICK[vr](value):
                assert pattern.match(value), (vr, value)
