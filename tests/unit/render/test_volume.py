"""Volumes from stacks: geometry from positions, gaps, tilt, rescale, enhanced objects, bad
input, streaming and the memory budget, checked on generated series whose answer is known."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from pydicom.dataset import Dataset

from tests.support import imagegen
from tuiviewer.render.lut import ModalityParams, parse_lut
from tuiviewer.render.mpr import Plane, PlaneRequest, extract_plane
from tuiviewer.render.volume import (
    Volume,
    VolumeBuilder,
    VolumeError,
    headers_of,
    plan_volume,
)


def build(datasets: list[Dataset], **kwargs: object) -> Volume:
    builder = VolumeBuilder(**kwargs)  # type: ignore[arg-type]
    for ds in datasets:
        builder.add_dataset(ds)
    return builder.volume()


def extent_mm(mask: np.ndarray, axis: int, pixel_mm: float) -> float:
    """Length of the True run through the mask's centre of mass along ``axis``."""
    ys, xs = np.nonzero(mask)
    if axis == 1:
        row = round(float(ys.mean()))
        cols = np.nonzero(mask[row])[0]
        return float(cols.max() - cols.min() + 1) * pixel_mm
    col = round(float(xs.mean()))
    rows = np.nonzero(mask[:, col])[0]
    return float(rows.max() - rows.min() + 1) * pixel_mm


def test_spacing_comes_from_positions_not_slice_thickness() -> None:
    series = imagegen.sphere_series(slices=12, slice_spacing=2.5)
    assert {str(ds.SliceThickness) for ds in series} == {"5"}
    volume = build(series)
    assert volume.geometry.slice_spacing == pytest.approx(2.5)
    assert volume.geometry.offsets == pytest.approx([2.5 * k for k in range(12)])
    assert volume.geometry.gaps == () and not volume.geometry.irregular
    assert volume.complete and volume.notes() == []


def test_missing_slices_are_a_gap_that_is_never_interpolated_across() -> None:
    series = imagegen.sphere_series(slices=40, missing=(20, 21))
    volume = build(series)
    (gap,) = volume.geometry.gaps
    assert gap.missing == 2 and gap.end - gap.start == pytest.approx(3.0)
    assert "2 slices missing" in volume.notes()[0]
    coronal = extract_plane(volume, PlaneRequest(Plane.standard("coronal")))
    assert coronal is not None
    # Rows whose z falls strictly inside the gap hold no data (NaN) and are shown black;
    # rows on the slices either side are real.
    z = np.asarray([coronal.patient_at(0, y)[2] for y in range(coronal.values.shape[0])])
    low = volume.geometry.voxel_centre(gap.after, 0, 0)[2]
    high = volume.geometry.voxel_centre(gap.after + 1, 0, 0)[2]
    inside = (z > low + 1e-6) & (z < high - 1e-6)
    assert inside.sum() == 2
    assert np.isnan(coronal.values[inside]).all()
    assert (coronal.pixels[inside] == 0).all()
    assert not np.isnan(coronal.values[~inside]).any()
    assert coronal.fidelity.holes and "gaps" in coronal.fidelity.badge


def test_a_tilted_stack_is_resampled_where_the_patient_is() -> None:
    series = imagegen.sphere_series(slices=60, tilt_degrees=20.0, radius=12.0)
    volume = build(series)
    g = volume.geometry
    assert g.tilt_degrees == pytest.approx(20.0, abs=0.01)
    assert g.slice_spacing == pytest.approx(np.cos(np.radians(20.0)), abs=1e-6)
    for name in ("axial", "coronal", "sagittal"):
        image = extract_plane(volume, PlaneRequest(Plane.standard(name), at=(0.0, 0.0, 0.0)))
        assert image is not None and image.fidelity.reformatted
        inside = image.values >= -450  # halfway between the two HU values
        # Round, centred on the origin: a reader ignoring the shear would see an ellipse
        # displaced by z·tan(20°) along y.
        for axis in (0, 1):
            assert extent_mm(inside, axis, image.pixel_mm) == pytest.approx(24.0, abs=1.0)
        ys, xs = np.nonzero(inside)
        centre = image.patient_at(float(xs.mean()), float(ys.mean()))
        assert np.allclose(centre, (0.0, 0.0, 0.0), atol=0.5), (name, centre)


def test_straight_stacks_only_a_table_shift_is_refused_with_the_slice_named() -> None:
    series = imagegen.sphere_series(slices=10)
    shifted = series[6]
    x, y, z = (float(v) for v in shifted.ImagePositionPatient)
    shifted.ImagePositionPatient = [x + 5.0, y, z]
    plan = plan_volume(h for ds in series for h in headers_of(ds)[0])
    assert plan.geometry is None
    assert plan.problem is not None and "instance 7 is 5.00 mm off" in plan.problem
    builder = VolumeBuilder()
    for ds in series:
        builder.add_dataset(ds)
    with pytest.raises(VolumeError, match="do not lie on one straight line"):
        builder.volume()


def test_per_slice_rescale_is_applied() -> None:
    plain = build(imagegen.sphere_series(slices=20))
    mixed = build(
        imagegen.sphere_series(slices=20, rescales=((1.0, -1024.0), (2.0, -2048.0), (0.5, -1000.0)))
    )
    assert set(mixed.slope.tolist()) == {1.0, 2.0, 0.5}
    for name in ("axial", "coronal", "sagittal"):
        a = extract_plane(plain, PlaneRequest(Plane.standard(name)))
        b = extract_plane(mixed, PlaneRequest(Plane.standard(name)))
        assert a is not None and b is not None
        np.testing.assert_array_equal(a.values, b.values)


def test_enhanced_ct_uses_per_frame_position_and_rescale() -> None:
    ds = imagegen.enhanced_sphere(frames=30, radius=10.0)
    headers, rejected = headers_of(ds)
    assert len(headers) == 30 and not rejected
    volume = build([ds])
    g = volume.geometry
    assert g.slices == 30 and g.slice_spacing == pytest.approx(1.0)
    # Frames were stored in reverse z order; the volume runs feet to head.
    assert [h.frame for h in volume.plan.slices][:3] == [29, 28, 27]
    assert set(volume.slope.tolist()) == {1.0, 2.0}
    centre = imagegen_centre_voxel(volume)
    for name in ("axial", "coronal", "sagittal"):
        image = extract_plane(volume, PlaneRequest(Plane.standard(name), at=centre))
        assert image is not None
        inside = image.values > 0
        assert set(np.unique(image.values).tolist()) == {-1000.0, 100.0}
        for axis in (0, 1):
            assert extent_mm(inside, axis, image.pixel_mm) == pytest.approx(20.0, abs=1.0)


def imagegen_centre_voxel(volume: Volume) -> tuple[float, float, float]:
    """The voxel centre nearest the patient origin (where the generated spheres are)."""
    o, i, j = volume.geometry.to_index(np.zeros((1, 3)))
    k = int(np.argmin(np.abs(np.asarray(volume.geometry.offsets) - o[0])))
    return volume.geometry.voxel_centre(k, round(float(i[0])), round(float(j[0])))


def test_not_a_volume_keeps_the_stack_that_is_one_and_says_why_for_the_rest() -> None:
    axial = imagegen.sphere_series(slices=8)
    coronal = imagegen.sphere_series(slices=3)
    for ds in coronal:  # same positions, another plane
        ds.ImageOrientationPatient = ["1", "0", "0", "0", "0", "-1"]
        ds.InstanceNumber = 100 + int(ds.InstanceNumber)
    scout = imagegen.sphere_series(slices=1)[0]
    scout.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    scout.InstanceNumber = 99
    again = imagegen.sphere_series(slices=1)[0]
    again.ImagePositionPatient = axial[3].ImagePositionPatient
    again.InstanceNumber = 50
    small = imagegen.sphere_series(slices=1, rows=24, cols=24)[0]
    small.InstanceNumber = 60
    volume = build([*axial, *coronal, scout, again, small])
    assert volume.geometry.slices == 8
    reasons = sorted(r.reason for r in volume.plan.rejected)
    assert "instance 99 is a localizer." in reasons
    assert any(
        r.startswith("instance 101 is left out: its orientation differs") and "90.0°" in r
        for r in reasons
    )
    assert any("instance 50 lies at the same position as instance 4" in r for r in reasons)
    assert any("instance 60 is left out: its matrix 24x24 differs" in r for r in reasons)
    assert len(reasons) == 6


def test_one_slice_or_no_geometry_is_not_a_volume() -> None:
    with pytest.raises(VolumeError, match="at least 2 parallel slices .* has 1"):
        build(imagegen.sphere_series(slices=1))
    flat = imagegen.ct_slice()
    headers, rejected = headers_of(flat)
    assert headers == [] and "no usable Image Position (Patient)" in rejected[0].reason
    with pytest.raises(VolumeError, match="no image that can be placed"):
        build([flat])


def test_streaming_knows_what_is_missing_and_shows_holes_not_guesses() -> None:
    series = imagegen.sphere_series(slices=20)
    full = build(series)
    builder = VolumeBuilder(expected=len(series))
    builder.announce(h for ds in series for h in headers_of(ds)[0])
    for ds in series[::2]:
        builder.add_dataset(ds)
    partial = builder.volume()
    assert partial.loaded == 10 and not partial.complete
    assert [h.label for h in partial.missing()][:2] == ["instance 2", "instance 4"]
    assert "10 of 20 slices loaded" in partial.notes()
    coronal = extract_plane(partial, PlaneRequest(Plane.standard("coronal")))
    assert coronal is not None and coronal.fidelity.holes
    on_missing = np.isnan(coronal.values).all(axis=1)
    assert on_missing.sum() == 10  # one output row per slice at native resolution
    for ds in series[1::2]:
        builder.add_dataset(ds)
    done = builder.volume()
    assert done.complete
    for name in ("axial", "coronal", "sagittal"):
        a = extract_plane(done, PlaneRequest(Plane.standard(name)))
        b = extract_plane(full, PlaneRequest(Plane.standard(name)))
        assert a is not None and b is not None
        np.testing.assert_array_equal(a.values, b.values)


def test_a_volume_over_budget_is_averaged_and_says_so() -> None:
    series = imagegen.sphere_series(slices=30, rows=64, cols=64, radius=16.0)
    budget = 30 * 64 * 64 * 2 // 3  # a third of what full resolution needs
    volume = build(series, budget_bytes=budget, expected=len(series))
    assert volume.downsample == 2
    assert volume.data.nbytes <= budget
    assert volume.geometry.rows == 32 and volume.geometry.row_spacing == pytest.approx(2.0)
    assert any("averaged 2×2" in n for n in volume.notes())
    image = extract_plane(volume, PlaneRequest(Plane.standard("axial"), at=(0.0, 0.0, 0.5)))
    assert image is not None and "↓2.0×" in image.fidelity.badge
    inside = image.values >= -450
    assert extent_mm(inside, 1, image.pixel_mm) == pytest.approx(32.0, abs=2.0)


def test_growing_past_the_budget_without_a_count_doubles_the_averaging() -> None:
    series = imagegen.sphere_series(slices=40, rows=32, cols=32)
    budget = 20 * 32 * 32 * 2
    volume = build(series, budget_bytes=budget)
    assert volume.downsample == 2 and volume.complete
    assert volume.data.nbytes <= budget


def test_a_modality_lut_is_applied_and_mixed_signedness_is_refused() -> None:
    series = imagegen.sphere_series(slices=3)
    headers = [headers_of(ds)[0][0] for ds in series]
    lut_source = imagegen.modality_lut_sequence()
    lut = ModalityParams(lut=parse_lut(lut_source.ModalityLUTSequence[0], lut_source))
    builder = VolumeBuilder()
    for header in headers[:2]:
        stored = np.full((header.rows, header.cols), 10, dtype=np.uint16)
        assert builder.add(header, stored, lut) is None
    volume = builder.volume()
    assert (volume.slice_values(1) == 4 * 10 + 100).all()  # the LUT's entry 10
    unsigned = VolumeBuilder()
    assert unsigned.add(headers[0], np.zeros((48, 48), np.uint16), ModalityParams()) is None
    refused = unsigned.add(headers[1], np.full((48, 48), -5, np.int16), ModalityParams())
    assert refused is not None and "values -5..-5 that the volume's uint16 store" in refused.reason
    assert refused in unsigned.plan.rejected


def test_cancel_stops_adding_frames() -> None:
    ds = imagegen.enhanced_sphere(frames=10)
    cancel = threading.Event()
    cancel.set()
    builder = VolumeBuilder()
    builder.add_dataset(ds, cancel=cancel)
    with pytest.raises(VolumeError, match="No slice"):
        builder.volume()
