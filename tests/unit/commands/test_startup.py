"""The text-only commands start without what they never use: ``tuiviewer dump`` run as its own
process loads neither numpy, pydicom's pixel decoders nor the network layer, and prints exactly
what the same dump prints in a process that has all of them (issue 10, start-up)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from tuiviewer.dicom.dump import run_dump

#: Files with plain, compressed (JPEG, JPEG 2000, RLE), deflated and big-endian data sets.
FILES = (
    "CT_small.dcm",
    "JPEG2000.dcm",
    "SC_rgb_rle.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",
    "image_dfl.dcm",
    "MR_small_bigendian.dcm",
    "rtplan.dcm",
)

#: Run the CLI as the console script does (``main()`` reads sys.argv), then say what was loaded.
_PROBE = (
    "import sys\n"
    "from tuiviewer.cli import main\n"
    "sys.argv = ['tuiviewer', *sys.argv[1:]]\n"
    "status = main()\n"
    "sys.stdout.flush()\n"
    "loaded = sorted({m.split('.')[0] for m in sys.modules})\n"
    "print('LOADED', ' '.join(loaded), file=sys.__stderr__)\n"
    "raise SystemExit(status)\n"
)


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    for name in ("CONFIG", "DATA", "LOG", "CACHE"):
        env[f"TUIVIEWER_{name}_DIR"] = str(tmp_path / name.lower())
    return subprocess.run(
        [sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, env=env
    )


def _loaded(result: subprocess.CompletedProcess[str]) -> set[str]:
    line = next(x for x in result.stderr.splitlines() if x.startswith("LOADED "))
    return set(line.split()[1:])


def _path(name: str) -> str:
    path = get_testdata_file(name, download=False)
    assert path is not None, name
    return str(path)


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_dump_as_a_process_prints_what_a_full_pydicom_prints(tmp_path: Path, as_json: bool) -> None:
    paths = [_path(name) for name in FILES]
    result = _run(tmp_path, "dump", *paths, *(["--json"] if as_json else []))
    expected, errors = io.StringIO(), io.StringIO()
    status = run_dump(paths, as_json=as_json, stdout=expected, stderr=errors)
    assert result.returncode == status
    assert result.stdout == expected.getvalue()
    assert "Traceback" not in result.stderr


def test_dump_as_a_process_loads_no_pixel_decoder_and_no_network(tmp_path: Path) -> None:
    result = _run(tmp_path, "dump", _path("CT_small.dcm"))
    assert result.returncode == 0, result.stderr
    assert "(0010,0010) PN [CompressedSamples^CT1]" in result.stdout
    loaded = _loaded(result)
    unwanted = {"numpy", "gdcm", "pylibjpeg", "PIL", "requests", "pynetdicom", "textual"}
    assert not loaded & unwanted, sorted(loaded & unwanted)


def test_dump_of_a_plain_slice_does_not_import_pydicom(tmp_path: Path) -> None:
    """Once its dictionary cache is made, a dump of a well-formed slice reads the file itself;
    a deflated one still goes through pydicom, without its pixel decoders."""
    first = _run(tmp_path, "dump", _path("CT_small.dcm"))  # makes the cache
    again = _run(tmp_path, "dump", _path("CT_small.dcm"))
    assert again.returncode == 0 and again.stdout == first.stdout
    loaded = _loaded(again)
    # dataclasses too: it costs a tenth of the 120 ms budget (with no config.toml, as here).
    unwanted = {"pydicom", "numpy", "pynetdicom", "tomlkit", "dataclasses"}
    assert not loaded & unwanted, sorted(loaded & unwanted)
    assert (tmp_path / "cache").is_dir()
    deflated = _run(tmp_path, "dump", _path("image_dfl.dcm"))
    assert deflated.returncode == 0, deflated.stderr
    assert "pydicom" in _loaded(deflated) and "numpy" not in _loaded(deflated)


def test_echo_and_find_load_no_pixel_decoder(tmp_path: Path) -> None:
    # Nothing listens on port 9 of the loopback: the commands fail fast, after their imports.
    for command in (["echo", "X@127.0.0.1:9"], ["find", "X@127.0.0.1:9"]):
        if command[0] == "find":
            _run(tmp_path, *command)  # the first run makes the dictionary cache with pydicom
        result = _run(tmp_path, *command)
        assert result.returncode == 1, result.stderr
        loaded = _loaded(result)
        # find's table comes from the lean C-FIND client (net/leanfind.py): no pydicom at all.
        assert ("pynetdicom" in loaded) == (command[0] == "echo"), command
        assert ("pydicom" in loaded) == (command[0] == "echo"), command
        assert not loaded & {"numpy", "gdcm", "pylibjpeg", "PIL", "textual"}, command
