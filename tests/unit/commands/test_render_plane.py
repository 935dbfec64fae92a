"""``tuiviewer render DIR --plane ...``: the PNG is the plane at the volume's resolution, head at
the top, windowed as asked, checked against numpy slicing of the generated values; failures are
one line with exit status 1."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from tests.support import imagegen
from tuiviewer.commands.render import run_render_plane
from tuiviewer.render.lut import Window, apply_window

VALUES = np.random.default_rng(7).integers(-300, 300, size=(8, 10, 12))


def _series(folder: Path, **kwargs: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for n, ds in enumerate(imagegen.sphere_series(**kwargs)):  # type: ignore[arg-type]
        imagegen.save(ds, folder / f"{n:03d}.dcm")
    return folder


def _run(path: Path, out: Path, **kwargs: object) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    rc = run_render_plane(path, out, stdout=stdout, stderr=stderr, **kwargs)  # type: ignore[arg-type]
    return rc, stdout.getvalue(), stderr.getvalue()


def test_coronal_png_is_the_numpy_slice_with_the_head_at_the_top(tmp_path: Path) -> None:
    folder = _series(tmp_path / "ct", slices=8, rows=10, cols=12, values=VALUES)
    out = tmp_path / "coronal.png"
    # Voxel centres are at half-millimetres: row i = 6 is y = 1.5 mm (rows span ±4.5 mm).
    rc, stdout, stderr = _run(folder, out, plane="coronal", at=(0.5, 1.5, 0.5), window=(0, 600))
    assert rc == 0, stderr
    assert stderr == ""
    assert "Wrote" in stdout and "(12x8 L, window 0/600, coronal at (0.5, 1.5, 0.5) mm" in stdout
    png = np.asarray(Image.open(out))
    expected = apply_window(VALUES[::-1, 6, :].astype(np.float32), Window(0.0, 600.0))
    np.testing.assert_array_equal(png, expected)


def test_slab_projection_and_default_centre(tmp_path: Path) -> None:
    folder = _series(tmp_path / "ct", slices=8, rows=10, cols=12, values=VALUES)
    out = tmp_path / "mip.png"
    rc, stdout, _ = _run(folder, out, plane="sagittal", slab=2.0, projection="mip", window=(0, 600))
    assert rc == 0
    assert "MIP slab of 3 samples over 2.0 mm" in stdout
    png = np.asarray(Image.open(out))
    centre_column = 12 // 2  # the default crosshair is the centre voxel
    expected = VALUES[::-1, :, centre_column - 1 : centre_column + 2].max(axis=2)
    np.testing.assert_array_equal(png, apply_window(expected.astype(np.float32), Window(0, 600)))


def test_gaps_tilt_and_left_out_images_are_listed(tmp_path: Path) -> None:
    folder = _series(tmp_path / "ct", slices=20, tilt_degrees=10.0, missing=(8,))
    scout = imagegen.sphere_series(slices=1)[0]
    scout.SeriesInstanceUID = pydicom.dcmread(next(folder.glob("*.dcm"))).SeriesInstanceUID
    scout.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    scout.InstanceNumber = 99
    imagegen.save(scout, folder / "scout.dcm")
    rc, stdout, _ = _run(folder, tmp_path / "c.png", plane="coronal")
    assert rc == 0
    assert "1 slice missing between" in stdout
    assert "Gantry tilt 10.0° resampled." in stdout
    assert "1 image(s) left out of the volume:" in stdout
    assert "instance 99 is a localizer." in stdout


@pytest.mark.parametrize(
    ("setup", "kwargs", "fragment"),
    [
        (lambda d: _series(d / "one", slices=1), {}, "at least 2 parallel slices"),
        (lambda d: d / "absent", {}, "does not exist"),
        (lambda d: _series(d / "ct", slices=4), {"at": (0.0, 0.0, 99.0)}, "lies outside"),
        (lambda d: _series(d / "ct", slices=4), {"projection": "max"}, "not one of mip"),
        (lambda d: _two_series(d), {}, "holds 2 series"),
    ],
)
def test_failures_are_one_line(tmp_path: Path, setup: object, kwargs: dict, fragment: str) -> None:
    path = setup(tmp_path)  # type: ignore[operator]
    rc, stdout, stderr = _run(path, tmp_path / "x.png", plane="axial", **kwargs)
    assert rc == 1 and stdout == ""
    assert fragment in stderr and stderr.count("\n") == 1 and "Traceback" not in stderr
    assert not (tmp_path / "x.png").exists()


def _two_series(folder: Path) -> Path:
    _series(folder / "mixed", slices=2)
    _series(folder / "mixed" / "b", slices=2)
    return folder / "mixed"


def test_the_command_line_takes_a_folder_and_a_plane(tmp_path: Path) -> None:
    folder = _series(tmp_path / "ct", slices=6, rows=10, cols=12, values=VALUES[:6])
    out = tmp_path / "a.png"
    env = {**os.environ, "TUIVIEWER_LOG_DIR": str(tmp_path / "log")}
    done = subprocess.run(
        [sys.executable, "-m", "tuiviewer", "render", str(folder), "--plane", "axial",
         "--at", "0.5,0.5,0.5", "--window=0,600", "-o", str(out)],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert np.asarray(Image.open(out)).shape == (10, 12)
    without = subprocess.run(
        [sys.executable, "-m", "tuiviewer", "render", str(folder), "-o", str(out)],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert without.returncode == 1 and "add --plane axial, coronal or sagittal" in without.stderr


def test_an_enhanced_multiframe_file_is_reformatted_too(tmp_path: Path) -> None:
    src = imagegen.save(imagegen.enhanced_sphere(frames=20, rows=24, cols=28), tmp_path / "e.dcm")
    out = tmp_path / "sag.png"
    rc, stdout, stderr = _run(src, out, plane="sagittal")
    assert rc == 0, stderr
    png = np.asarray(Image.open(out))
    assert png.shape == (20, 24)  # 20 frames of 1 mm, head at the top; 24 rows along y
    assert "(24x20 L, window 40/400, sagittal" in stdout
