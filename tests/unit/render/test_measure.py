"""ROI statistics, lengths and angles: on arrays whose answer is written down, and on the
reformats of a generated sphere (mean HU exact, diameter within a voxel, in every plane)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.support import imagegen
from tuiviewer.exceptions import RenderError
from tuiviewer.render.measure import (
    angle_degrees,
    ellipse_mask,
    ellipse_stats,
    length_mm,
    rectangle_stats,
)
from tuiviewer.render.mpr import Plane, PlaneRequest, extract_plane
from tuiviewer.render.volume import VolumeBuilder


def test_rectangle_statistics_are_those_of_the_pixels_inside() -> None:
    values = np.arange(100, dtype=np.float32).reshape(10, 10)
    stats = rectangle_stats(values, (0.5, 2.0), (2, 3), (4, 5))
    picked = values[3:6, 2:5]
    assert stats.pixels == 9
    assert stats.mean == pytest.approx(float(picked.mean()))
    assert stats.sd == pytest.approx(float(picked.std()))
    assert (stats.minimum, stats.maximum) == (32.0, 54.0)
    assert stats.area_mm2 == pytest.approx(2 * 2.0 * 2 * 0.5)  # 2 columns × 2 rows of spacing


def test_nan_samples_are_left_out_and_counted() -> None:
    values = np.full((5, 5), 7.0, dtype=np.float32)
    values[2, 2] = np.nan
    stats = rectangle_stats(values, None, (1, 1), (3, 3))
    assert (stats.pixels, stats.excluded, stats.mean) == (8, 1, 7.0)
    with pytest.raises(RenderError, match="holds no pixel with a value"):
        rectangle_stats(np.full((3, 3), np.nan), None, (0, 0), (2, 2))


def test_ellipse_mask_counts_pixel_centres_and_area_is_the_shapes() -> None:
    mask = ellipse_mask((9, 9), (4, 4), (2, 1))
    assert mask.sum() == 7  # (±2, 0), (±1, 0), (0, 0), (0, ±1)
    stats = ellipse_stats(np.ones((9, 9)), (0.5, 0.5), (4, 4), (2, 1))
    assert stats.area_mm2 == pytest.approx(math.pi * 1.0 * 0.5)


def test_length_and_angle_use_millimetres() -> None:
    assert length_mm((0, 0), (3, 4), None) == pytest.approx(5.0)
    assert length_mm((0, 0), (10, 0), (0.5, 2.0)) == pytest.approx(20.0)
    # 45° in pixels is not 45° on anisotropic pixels: arms (1, 0) and (1, 1) in pixels.
    assert angle_degrees((1, 0), (0, 0), (0, 1), None) == pytest.approx(90.0)
    assert angle_degrees((1, 0), (0, 0), (1, 1), (2.0, 1.0)) == pytest.approx(
        math.degrees(math.atan2(2.0, 1.0))
    )
    with pytest.raises(RenderError, match="non-zero length"):
        angle_degrees((0, 0), (0, 0), (1, 1), None)


@pytest.mark.parametrize("tilt", [0.0, 15.0])
def test_a_sphere_measures_right_on_every_reformat(tilt: float) -> None:
    radius = 9.0
    builder = VolumeBuilder()
    for ds in imagegen.sphere_series(slices=44, radius=radius, tilt_degrees=tilt):
        builder.add_dataset(ds)
    volume = builder.volume()
    for name in ("axial", "coronal", "sagittal"):
        image = extract_plane(volume, PlaneRequest(Plane.standard(name), at=(0.0, 0.0, 0.0)))
        assert image is not None
        cx, cy = image.pixel_of((0.0, 0.0, 0.0))
        inner = (radius - 2.5) / image.pixel_mm
        stats = ellipse_stats(image.values, image.spacing, (cx, cy), (inner, inner))
        assert stats.mean == 100.0 and stats.sd == 0.0, name
        assert stats.area_mm2 == pytest.approx(math.pi * (radius - 2.5) ** 2)
        # The ruler across the sphere: from the first to the last pixel above half-way.
        row = image.values[round(cy)]
        inside = np.nonzero(row >= -450)[0]
        across = length_mm((inside[0], cy), (inside[-1], cy), image.spacing) + image.pixel_mm
        assert across == pytest.approx(2 * radius, abs=1.0 + 1e-6), name
