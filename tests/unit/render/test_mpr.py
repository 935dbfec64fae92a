"""Reformats and slabs: numpy slicing of the same volume, an independent trilinear reference
(written here from the DICOM affine, no shared code), a sphere that must measure right in every
plane, orientation letters, W/L, and the pane geometry the viewer will use."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from tests.support import imagegen
from tuiviewer.render.lut import Window, apply_window
from tuiviewer.render.mpr import (
    Plane,
    PlaneRequest,
    Projection,
    extract_plane,
    mpr_planes,
    step_crosshair,
)
from tuiviewer.render.volume import Volume, VolumeBuilder, VolumeError
from tuiviewer.services.viewer.geometry import edge_labels

RNG = np.random.default_rng(13)


def build(**kwargs: object) -> tuple[Volume, list]:
    series = imagegen.sphere_series(**kwargs)  # type: ignore[arg-type]
    builder = VolumeBuilder()
    for ds in series:
        builder.add_dataset(ds)
    return builder.volume(), series


def plane(volume: Volume, name: str, at: tuple[float, float, float] | None = None, **kw: object):
    image = extract_plane(volume, PlaneRequest(Plane.standard(name), at=at, **kw))  # type: ignore[arg-type]
    assert image is not None
    return image


@pytest.fixture(scope="module")
def random_volume() -> tuple[Volume, np.ndarray]:
    values = RNG.integers(-1000, 1000, size=(10, 12, 14))
    volume, _ = build(slices=10, rows=12, cols=14, values=values)
    return volume, values


def test_standard_planes_are_numpy_slices_of_the_volume(
    random_volume: tuple[Volume, np.ndarray],
) -> None:
    volume, values = random_volume
    k, i, j = 4, 7, 3
    at = volume.geometry.voxel_centre(k, i, j)
    np.testing.assert_array_equal(plane(volume, "axial", at).values, values[k])
    # Coronal and sagittal: the head (highest slice) at the top.
    np.testing.assert_array_equal(plane(volume, "coronal", at).values, values[::-1, i, :])
    np.testing.assert_array_equal(plane(volume, "sagittal", at).values, values[::-1, :, j])


def test_anisotropic_voxels_give_square_pixels_interpolated_between_slices() -> None:
    values = RNG.integers(-1000, 1000, size=(6, 8, 10))
    volume, _ = build(slices=6, rows=8, cols=10, spacing=0.5, slice_spacing=1.0, values=values)
    at = volume.geometry.voxel_centre(2, 5, 4)
    coronal = plane(volume, "coronal", at)
    assert coronal.pixel_mm == pytest.approx(0.5)
    assert coronal.values.shape == (11, 10)  # 5 mm of slices at 0.5 mm, 10 columns
    column = values[::-1, 5, :].astype(np.float32)
    np.testing.assert_array_equal(coronal.values[::2], column)
    np.testing.assert_allclose(coronal.values[1::2], (column[:-1] + column[1:]) / 2, atol=1e-4)


def _reference(series: list, points: np.ndarray) -> np.ndarray:
    """Trilinear values at patient points, from the DICOM affine of the first and last slice
    (PS3.3 C.7.6.2.1.1; the NIfTI-style 4x4 matrix), written without the code under test."""
    first, last = series[0], series[-1]
    row = np.asarray(first.ImageOrientationPatient[:3], dtype=float)
    col = np.asarray(first.ImageOrientationPatient[3:], dtype=float)
    spacing = float(first.PixelSpacing[0])
    p0 = np.asarray(first.ImagePositionPatient, dtype=float)
    step = (np.asarray(last.ImagePositionPatient, dtype=float) - p0) / (len(series) - 1)
    affine = np.eye(4)
    affine[:3, 0] = row * spacing  # column index j
    affine[:3, 1] = col * spacing  # row index i
    affine[:3, 2] = step  # slice index k
    affine[:3, 3] = p0
    inverse = np.linalg.inv(affine)
    data = np.stack(
        [ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for ds in series]
    )
    size = data.shape
    out = []
    for point in points:
        j, i, k = (inverse @ np.append(point, 1.0))[:3]
        corners = 0.0
        ok = True
        for dk in (0, 1):
            for di in (0, 1):
                for dj in (0, 1):
                    kk, ii, jj = math.floor(k) + dk, math.floor(i) + di, math.floor(j) + dj
                    weight = (1 - abs(k - kk)) * (1 - abs(i - ii)) * (1 - abs(j - jj))
                    if weight <= 1e-9:
                        continue
                    if not (0 <= kk < size[0] and 0 <= ii < size[1] and 0 <= jj < size[2]):
                        ok = False
                        continue
                    corners += weight * data[kk, ii, jj]
        out.append(corners if ok else np.nan)
    return np.asarray(out)


@pytest.mark.parametrize("tilt", [0.0, 15.0])
@pytest.mark.parametrize(
    ("axis", "degrees"), [((0, 0, 1), 30.0), ((1, 0, 0), 25.0), ((1, 1, 1), 40.0)]
)
def test_oblique_planes_match_an_independent_trilinear_reference(
    tilt: float, axis: tuple[int, int, int], degrees: float
) -> None:
    values = RNG.integers(-1000, 1000, size=(12, 14, 16))
    volume, series = build(slices=12, rows=14, cols=16, values=values, tilt_degrees=tilt)
    oblique = Plane.standard("coronal").rotated(axis, degrees)
    image = extract_plane(volume, PlaneRequest(oblique, at=(0.3, -0.2, 0.4)))
    assert image is not None and image.fidelity.reformatted
    ys, xs = np.nonzero(~np.isnan(image.values))
    pick = RNG.choice(len(ys), size=min(300, len(ys)), replace=False)
    points = np.asarray([image.patient_at(float(xs[n]), float(ys[n])) for n in pick])
    expected = _reference(series, points)
    got = image.values[ys[pick], xs[pick]]
    inside = ~np.isnan(expected)
    assert inside.sum() > 100  # the reference leaves out the outer half-voxel shell
    np.testing.assert_allclose(got[inside], expected[inside], atol=0.05)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"spacing": 1.0, "slice_spacing": 1.0},
        {"spacing": 0.7, "slice_spacing": 2.5, "rows": 50, "cols": 50, "slices": 16},
        {"orientation": "sagittal"},
        {"tilt_degrees": 12.0, "slices": 50},
    ],
)
def test_a_sphere_measures_right_in_every_plane(kwargs: dict[str, object]) -> None:
    radius = 10.0
    volume, _ = build(radius=radius, **kwargs)  # type: ignore[arg-type]
    for name in ("axial", "coronal", "sagittal"):
        image = plane(volume, name, at=(0.0, 0.0, 0.0))
        inside = image.values >= -450
        coarsest = max(
            volume.geometry.slice_spacing, volume.geometry.row_spacing, volume.geometry.col_spacing
        )
        for axis in (0, 1):
            ys, xs = np.nonzero(inside)
            line = inside[round(float(ys.mean()))] if axis else inside[:, round(float(xs.mean()))]
            diameter = float(np.count_nonzero(line)) * image.pixel_mm
            assert abs(diameter - 2 * radius) <= coarsest + 1e-6, (name, axis, diameter)
        # An ROI well inside the sphere reads exactly the sphere's HU (here on native voxels
        # or between equal ones, so no interpolation error).
        cx, cy = image.pixel_of((0.0, 0.0, 0.0))
        yy, xx = np.mgrid[0 : image.values.shape[0], 0 : image.values.shape[1]]
        roi = np.hypot((xx - cx) * image.pixel_mm, (yy - cy) * image.pixel_mm) <= radius - 3
        assert roi.sum() > 10
        assert float(image.values[roi].mean()) == 100.0


def test_orientation_letters_of_each_plane() -> None:
    volume, _ = build(slices=10)
    expected = {
        "axial": ("R", "L", "A", "P"),
        "coronal": ("R", "L", "H", "F"),
        "sagittal": ("A", "P", "H", "F"),
    }
    for name, letters in expected.items():
        labels = edge_labels(plane(volume, name).orientation)
        assert labels is not None
        assert (labels.left, labels.right, labels.top, labels.bottom) == letters
    turned = Plane.standard("axial").rotated((0, 0, 1), 30.0)
    labels = edge_labels(turned.orientation)
    assert labels is not None and (labels.left, labels.right) == ("RA", "LP")


def test_rotating_coronal_by_90_degrees_about_the_vertical_is_sagittal() -> None:
    volume, _ = build(slices=20)
    at = volume.geometry.voxel_centre(10, 24, 20)
    turned = Plane.standard("coronal").rotated((0, 0, 1), 90.0)
    a = extract_plane(volume, PlaneRequest(turned, at=at))
    b = plane(volume, "sagittal", at)
    assert a is not None
    np.testing.assert_allclose(a.values, b.values, atol=1e-3)
    tilted = Plane.standard("axial").tilted(horizontal=10.0)
    assert np.dot(tilted.normal, (0, 0, 1)) == pytest.approx(math.cos(math.radians(10)))


def test_slabs_are_projections_of_the_layers_within_the_thickness(
    random_volume: tuple[Volume, np.ndarray],
) -> None:
    volume, values = random_volume
    k, i, j = 5, 6, 7
    at = volume.geometry.voxel_centre(k, i, j)
    # 4.2 mm of 1 mm voxels: the 5 layers within ±2.1 mm.
    expected = {
        Projection.MIP: values[3:8].max(axis=0),
        Projection.MINIP: values[3:8].min(axis=0),
        Projection.MEAN: values[3:8].mean(axis=0),
    }
    for projection, axial in expected.items():
        image = plane(volume, "axial", at, slab=4.2, projection=projection)
        np.testing.assert_allclose(image.values, axial, atol=1e-3)
        assert image.fidelity.slab == f"{projection.name} 4.2 mm"
    coronal = plane(volume, "coronal", at, slab=4.2, projection=Projection.MIP)
    np.testing.assert_allclose(coronal.values, values[::-1, 4:9, :].max(axis=1))
    sagittal = plane(volume, "sagittal", at, slab=2.0, projection=Projection.MEAN)
    np.testing.assert_allclose(sagittal.values, values[::-1, :, 6:9].mean(axis=2), atol=1e-3)


def test_oblique_slab_mip_finds_a_bright_voxel_only_within_its_thickness() -> None:
    values = np.full((20, 20, 20), -1000)
    values[10, 10, 13] = 2000  # 3 mm along +x from the crosshair column
    volume, _ = build(slices=20, rows=20, cols=20, values=values)
    at = volume.geometry.voxel_centre(10, 10, 10)
    oblique = Plane.standard("sagittal").rotated((0, 0, 1), 5.0)  # normal ≈ +x
    thin = extract_plane(volume, PlaneRequest(oblique, at=at))
    thick = extract_plane(volume, PlaneRequest(oblique, at=at, slab=8.0))
    assert thin is not None and thick is not None
    assert np.nanmax(thin.values) < 0
    assert np.nanmax(thick.values) > 500


def test_window_goes_through_the_lut_code_and_holes_are_black(
    random_volume: tuple[Volume, np.ndarray],
) -> None:
    volume, _ = random_volume
    window = Window(100.0, 800.0)
    image = plane(volume, "coronal", window=window)
    np.testing.assert_array_equal(image.pixels, apply_window(image.values, window))
    assert image.window == volume.windows[0] or plane(volume, "coronal").window.center == 40.0
    inverted = plane(volume, "coronal", window=window, invert=True)
    np.testing.assert_array_equal(inverted.pixels, 255 - image.pixels)


def test_pane_geometry_fits_the_box_and_maps_pixels_back_to_the_patient() -> None:
    volume, _ = build(slices=40, spacing=0.7, slice_spacing=2.5, rows=60, cols=60)
    at = volume.geometry.voxel_centre(20, 30, 30)
    image = plane(volume, "coronal", at, size=(80, 60))
    height, width = image.pixels.shape
    assert width <= 80 and height <= 60 and max(width / 80, height / 60) > 0.97
    # Physical aspect: 100 mm of slices over 42 mm of columns.
    assert (height * image.pixel_mm) / (width * image.pixel_mm) == pytest.approx(
        (40 * 2.5) / (60 * 0.7), rel=0.05
    )
    assert image.fidelity.downsampled > 1.0 and "↓" in image.fidelity.badge
    x, y = image.crosshair
    assert image.patient_at(x, y) == pytest.approx(at, abs=1e-6)
    zoomed = plane(volume, "coronal", at, size=(80, 60), zoom=2.0)
    assert zoomed.pixel_mm == pytest.approx(image.pixel_mm / 2)


def test_three_planes_and_crosshair_steps() -> None:
    volume, _ = build(slices=20, slice_spacing=2.0)
    at = volume.geometry.centre()
    images = mpr_planes(volume, at, size=(40, 40))
    assert images is not None and [i.plane.name for i in images] == ["axial", "coronal", "sagittal"]
    up = step_crosshair(volume, at, Plane.standard("axial"), 1)
    assert np.subtract(up, at) == pytest.approx((0.0, 0.0, 2.0))
    far = step_crosshair(volume, at, Plane.standard("axial"), 1000)
    assert far[2] == pytest.approx(volume.geometry.voxel_centre(19, 0, 0)[2])
    cancel = threading.Event()
    cancel.set()
    assert mpr_planes(volume, at, cancel=cancel) is None


def test_a_crosshair_outside_the_volume_is_refused() -> None:
    volume, _ = build(slices=10)
    with pytest.raises(VolumeError, match=r"The point \(0.0, 0.0, 500.0\) mm lies outside"):
        plane(volume, "axial", (0.0, 0.0, 500.0))


def test_a_slab_between_voxel_layers_interpolates_each_sample(
    random_volume: tuple[Volume, np.ndarray],
) -> None:
    volume, values = random_volume
    centre = np.add(volume.geometry.voxel_centre(5, 6, 7), volume.geometry.voxel_centre(5, 7, 7))
    at = tuple(float(c) / 2 for c in centre)  # halfway between rows 6 and 7
    image = plane(volume, "coronal", at, slab=2.0, projection=Projection.MEAN)  # type: ignore[arg-type]
    rows = values[::-1].astype(np.float64)
    expected = (0.5 * rows[:, 5] + rows[:, 6] + rows[:, 7] + 0.5 * rows[:, 8]) / 3
    np.testing.assert_allclose(image.values, expected, atol=1e-3)


def test_a_step_recomputes_only_the_plane_it_moves() -> None:
    volume, _ = build(slices=20, slice_spacing=2.0)
    at = volume.geometry.centre()
    first = mpr_planes(volume, at, size=(40, 40))
    assert first is not None
    moved = step_crosshair(volume, at, Plane.standard("axial"), 1)
    second = mpr_planes(volume, moved, size=(40, 40), previous=first)
    assert second is not None
    assert second[0].pixels is not first[0].pixels  # the axial image moved
    assert second[1].pixels is first[1].pixels and second[2].pixels is first[2].pixels
    assert second[1].at == moved and second[1].crosshair != first[1].crosshair
    fresh = mpr_planes(volume, moved, size=(40, 40))
    assert fresh is not None
    for a, b in zip(second, fresh, strict=True):
        np.testing.assert_array_equal(a.pixels, b.pixels)
    other_window = mpr_planes(volume, moved, size=(40, 40), window=Window(0, 100), previous=second)
    assert other_window is not None
    assert all(a.pixels is not b.pixels for a, b in zip(other_window, second, strict=True))


@pytest.mark.parametrize("name", ["axial", "coronal", "sagittal"])
@pytest.mark.parametrize("offset", [(0.0, 0.0, 0.0), (0.3, -0.45, 0.8)])
def test_a_small_pane_reads_only_its_voxels_and_shows_the_same_values(
    name: str, offset: tuple[float, float, float], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pane much smaller than the section is built from the voxels it samples only; its
    values are those of the whole section resampled, to the last bit (on voxels and between
    them, with a slice missing: NaN where there is no data)."""
    import tuiviewer.render.mpr as mpr

    values = RNG.integers(-1000, 1000, size=(40, 48, 56))
    volume, _ = build(slices=40, rows=48, cols=56, values=values)
    volume.slots[17] = -1  # a slice not loaded (yet)
    at = tuple(c + d for c, d in zip(volume.geometry.centre(), offset, strict=True))
    read: list[tuple[int, ...]] = []
    original = mpr._voxels

    def counted(*args: object) -> np.ndarray:
        out = original(*args)  # type: ignore[arg-type]
        read.append(out.shape)
        return out

    monkeypatch.setattr(mpr, "_voxels", counted)
    small = plane(volume, name, at, size=(9, 11))  # type: ignore[arg-type]
    assert read and all(math.prod(s) <= 4 * 9 * 11 for s in read), read
    monkeypatch.setattr(mpr, "SPARSE_FROM", 10**9)  # the whole section, then resampled
    whole = plane(volume, name, at, size=(9, 11))  # type: ignore[arg-type]
    np.testing.assert_array_equal(small.values, whole.values)
    np.testing.assert_array_equal(small.pixels, whole.pixels)
