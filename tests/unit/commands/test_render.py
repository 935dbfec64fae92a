"""``run_render``: the PNG it writes and the one-line errors with exit status 1."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import testdata as sample
from tests.support import imagegen
from tuiviewer.commands.render import run_render


def _run(path: Path | str, out: Path, **kwargs: object) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    rc = run_render(path, out, stdout=stdout, stderr=stderr, **kwargs)  # type: ignore[arg-type]
    return rc, stdout.getvalue(), stderr.getvalue()


def test_grey_image_is_written_as_an_8_bit_grey_png_at_native_size(tmp_path: Path) -> None:
    out = tmp_path / "mr.png"
    rc, stdout, stderr = _run(sample("MR_small.dcm"), out, window=(600.0, 1600.0))
    assert rc == 0 and stderr == ""
    assert f"Wrote {out} (64x64 L, window 600/1600)." in stdout
    png = Image.open(out)
    assert png.mode == "L" and png.size == (64, 64)


def test_colour_image_is_written_as_rgb(tmp_path: Path) -> None:
    out = tmp_path / "rgb.png"
    src = imagegen.save(imagegen.rgb(planar=1), tmp_path / "rgb.dcm")
    assert _run(src, out)[0] == 0
    png = Image.open(out)
    assert png.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(png), imagegen.rgb_expected(8, 12))


def test_frame_is_one_based_and_size_fits_the_box(tmp_path: Path) -> None:
    src = imagegen.save(imagegen.many_frames(frames=3, rows=20, cols=40), tmp_path / "mf.dcm")
    out = tmp_path / "f3.png"
    rc, _, _ = _run(src, out, frame=3, window=(2.0, 2.0), size=(20, 20))
    assert rc == 0
    png = np.asarray(Image.open(out))
    assert png.shape == (10, 20)
    # Frame 3 is filled with 2; window 2/2: x = 2 > c - 0.5 + (w-1)/2 = 2 → 255.
    assert (png == 255).all()


@pytest.mark.parametrize(
    ("make", "kwargs", "fragment"),
    [
        (lambda d: d / "missing.dcm", {}, "does not exist"),
        (lambda d: _text_file(d), {}, "is not DICOM"),
        (lambda d: Path(sample("MR_small.dcm")), {"frame": 2}, "Frame 2 does not exist"),
        (lambda d: Path(sample("MR_small.dcm")), {"frame": 0}, "must be 1 or more"),
        (lambda d: Path(sample("rtplan.dcm")), {}, "no (7FE0,0010) Pixel Data"),
        (lambda d: Path(sample("MR_small.dcm")), {"window": (1.0, 0.0)}, "Window width 0"),
    ],
)
def test_errors_are_one_line_with_exit_status_1(
    tmp_path: Path, make: object, kwargs: dict, fragment: str
) -> None:
    src = make(tmp_path)  # type: ignore[operator]
    rc, stdout, stderr = _run(src, tmp_path / "out.png", **kwargs)
    assert rc == 1 and stdout == ""
    assert stderr.count("\n") == 1 and stderr.startswith("tuiviewer render: ")
    assert fragment in stderr
    assert not (tmp_path / "out.png").exists()


def test_unwritable_output_is_reported(tmp_path: Path) -> None:
    rc, _, stderr = _run(sample("MR_small.dcm"), tmp_path / "no" / "such" / "dir.png")
    assert rc == 1 and "Cannot write" in stderr and stderr.count("\n") == 1


def _text_file(folder: Path) -> Path:
    path = folder / "notes.txt"
    path.write_text("not a DICOM file\n")
    return path
