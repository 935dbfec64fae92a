"""The volume screen's rules without a terminal: the crosshair, the panes' slices and texts, slabs,
and measurements of a sphere whose answer is known (radius, HU) in every plane.

Expected values come from the generated geometry (tests/support/imagegen.sphere_series) and
numpy slicing of the same voxels, not from the code under test.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.support import imagegen
from tuiviewer.dicom.scanning import InstanceRecord, scan
from tuiviewer.exceptions import RenderError
from tuiviewer.render.mpr import Plane, Projection
from tuiviewer.render.volume import Volume, load_volume
from tuiviewer.reports.measurements import MeasurementKind
from tuiviewer.services.viewer import volume_view as vv
from tuiviewer.services.viewer.volume_view import Drawing, Layout, VolumeView

RADIUS = 12.0
INSIDE, OUTSIDE = 100, -1000


@pytest.fixture(scope="module")
def sphere(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[pydicom.Dataset]]:
    folder = tmp_path_factory.mktemp("vv-sphere")
    series = imagegen.sphere_series(radius=RADIUS, inside=INSIDE, outside=OUTSIDE)
    for n, ds in enumerate(series):
        imagegen.save(ds, folder / f"{n:03}.dcm")
    return folder, series


@pytest.fixture(scope="module")
def volume(sphere: tuple[Path, list[pydicom.Dataset]]) -> Volume:
    built, rejected = load_volume(sorted(sphere[0].iterdir()))
    assert rejected == ()
    return built


@pytest.fixture(scope="module")
def records(sphere: tuple[Path, list[pydicom.Dataset]]) -> list[InstanceRecord]:
    return [r for batch in scan([sphere[0]]) for r in batch]


def walk_to_edge(volume: Volume, view: VolumeView, dx: int, dy: int) -> VolumeView:
    """From inside the sphere, step (dx, dy) while the next voxel is still inside, as a reader
    does watching the value under the crosshair."""
    while True:
        ahead = vv.moved_in_plane(volume, view, dx, dy)
        if ahead.at == view.at or vv.value_at(volume, ahead.at) != INSIDE:
            return view
        view = ahead


def test_the_crosshair_starts_on_the_viewers_slice_and_moves_in_voxel_steps(
    volume: Volume, sphere: tuple[Path, list[pydicom.Dataset]]
) -> None:
    ds = sphere[1][5]
    view = VolumeView(at=vv.start_point(volume, f"{ds.SOPInstanceUID}#0"))
    assert view.at[2] == pytest.approx(float(ds.ImagePositionPatient[2]))
    assert vv.pane_slice(volume, view.plane, view.at) == 6  # slices run from the feet: z ascending
    moved = vv.moved_in_plane(volume, view, 3, -2)  # axial: right = +x (patient left), up = -y
    assert np.allclose(np.subtract(moved.at, view.at), (3.0, -2.0, 0.0))
    through = vv.moved_through(volume, view, 4)
    assert np.allclose(np.subtract(through.at, view.at), (0.0, 0.0, 4.0))
    assert vv.pane_slice(volume, view.plane, through.at) == 10
    # The coronal pane steps along y; its right is still +x, its down is the feet (-z).
    coronal = vv.moved_in_plane(volume, vv.moved_through(volume, replace_active(view, 1), 2), 0, 1)
    assert np.allclose(np.subtract(coronal.at, view.at), (0.0, 2.0, -1.0))
    # Never outside the volume: 1000 steps stop on the last voxel.
    far = vv.moved_through(volume, view, 1000)
    assert far.at[2] == pytest.approx(max(float(d.ImagePositionPatient[2]) for d in sphere[1]))
    assert vv.moved_to_end(volume, view, False).at[2] == pytest.approx(
        min(float(d.ImagePositionPatient[2]) for d in sphere[1])
    )


def replace_active(view: VolumeView, pane: int) -> VolumeView:
    from dataclasses import replace

    return replace(view, active=pane)


def test_pane_texts_name_plane_slice_position_and_edges(volume: Volume) -> None:
    g = volume.geometry
    view = VolumeView(at=g.centre())
    titles = [vv.pane_title(volume, view, p, None) for p in range(3)]
    assert titles[0].startswith(f"Axial {g.slices // 2 + 1}/{g.slices} · z ")
    assert titles[1].startswith(f"Coronal {g.rows // 2 + 1}/{g.rows} · y ")
    assert titles[2].startswith("Sagittal ") and f"/{g.cols} · x " in titles[2]
    assert [vv.pane_edges(view.plane_of(p)) for p in range(3)] == [
        ("R", "L", "A", "P"),
        ("R", "L", "H", "F"),
        ("A", "P", "H", "F"),
    ]
    assert vv.crosshair_text(volume, view).endswith(f"mm · {INSIDE} HU")


def test_slab_keys_step_thickness_and_projection() -> None:
    view = VolumeView(at=(0.0, 0.0, 0.0))
    assert vv.slab_text(view) == "thin"
    mip = vv.next_projection(view)
    assert (mip.slab, mip.projection) == (10.0, Projection.MIP)
    assert vv.next_projection(mip).projection is Projection.MINIP
    assert vv.next_projection(vv.next_projection(mip)).projection is Projection.MEAN
    assert vv.thicker(mip, 1).slab == 15.0 and vv.thicker(mip, -1).slab == 5.0
    assert vv.thicker(VolumeView(at=(0, 0, 0), slab=2.0), -1).slab == 0.0
    assert vv.slab_text(vv.thicker(mip, 1)) == "MIP 15 mm"


def test_panes_fit_their_boxes_with_square_pixels_and_reuse_unmoved_planes(
    volume: Volume,
) -> None:
    view = VolumeView(at=volume.geometry.centre())
    boxes = {0: (40, 60), 1: (40, 60), 2: (40, 60)}
    first = vv.render_panes(volume, view, boxes)
    assert first is not None and [f.pane for f in first] == [0, 1, 2]
    for frame in first:
        height, width = frame.pixels.shape[:2]
        assert width <= 40 and height <= 60 and frame.pixels.shape[2] == 3
    # 48 × 48 mm axial, 48 × 40 mm coronal in a 40-pixel wide box: one pixel is 1.2 mm.
    assert first[0].pixels.shape[:2] == (40, 40)
    assert first[1].pixels.shape[:2] == (33, 40)
    # A step through the axial pane moves the crosshair on the others, not their plane.
    step = vv.moved_through(volume, view, 1)
    second = vv.render_panes(volume, step, boxes, previous=[f.image for f in first])
    assert second is not None
    assert second[0].image.values is not first[0].image.values
    assert second[1].image.values is first[1].image.values
    assert second[2].image.values is first[2].image.values
    assert all(a.key != b.key for a, b in zip(first, second, strict=True))  # crosshair redrawn
    # The crosshair line in the coronal pane moved up by one slice (1 mm, < 1 pixel of 1.2).
    assert second[1].image.crosshair[1] == pytest.approx(first[1].image.crosshair[1] - 1 / 1.2)
    # Half-blocks on cells that are not 1:2 (a pixel 0.8 as tall as wide): 40 square rows
    # become 50, so the 48 × 48 mm section still looks square.
    tall = vv.render_panes(volume, view, {0: (40, 60)}, aspect=0.8)
    assert tall is not None and tall[0].pixels.shape[:2] == (50, 40)


def test_a_slab_is_the_projection_of_the_voxels_it_spans(volume: Volume) -> None:
    g = volume.geometry
    at = g.voxel_centre(g.slices // 2, g.rows // 2, g.cols // 2)
    view = VolumeView(at=at, slab=10.0, projection=Projection.MIP)
    frame = vv.render_panes(volume, view, {0: (48, 48)})
    assert frame is not None
    assert frame[0].image.fidelity.slab == "MIP 10 mm"
    # Numpy: the max over the 11 slices within ±5 mm of the crosshair.
    k = g.slices // 2
    hu = np.stack([volume.slice_values(n) for n in range(k - 5, k + 6)])
    assert np.array_equal(frame[0].image.values, hu.max(axis=0))


@pytest.mark.parametrize("pane", [0, 1, 2])
def test_the_sphere_measures_its_diameter_and_hu_in_every_plane(
    volume: Volume, records: list[InstanceRecord], pane: int
) -> None:
    view = VolumeView(at=volume.geometry.centre(), active=pane)
    left = walk_to_edge(volume, view, -1, 0)
    right = walk_to_edge(volume, view, 1, 0)
    ruler = vv.measure(
        volume, Drawing(MeasurementKind.LENGTH, pane, left.at), right.at, view, records
    )
    # Voxel centres at ±0.5 mm off the sphere's centre: a chord of 2·√(r² − 0.5²) mm, and
    # a ruler from the first to the last voxel inside spans one voxel less, ±1 voxel.
    chord = 2 * math.sqrt(RADIUS**2 - 2 * 0.5**2)
    assert ruler.length_mm is not None and abs(ruler.length_mm + 1 - chord) <= 1.0
    corner = vv.moved_in_plane(volume, view, 6, 6)
    ellipse = vv.measure(
        volume, Drawing(MeasurementKind.ELLIPSE, pane, view.at), corner.at, view, records
    )
    assert ellipse.stats is not None
    assert (ellipse.stats.mean, ellipse.stats.sd) == (INSIDE, 0.0)
    assert (ellipse.stats.minimum, ellipse.stats.maximum) == (INSIDE, INSIDE)
    assert ellipse.stats.area_mm2 == pytest.approx(math.pi * 36)
    assert ellipse.units == "HU"
    box = vv.measure(
        volume,
        Drawing(MeasurementKind.RECTANGLE, pane, vv.moved_in_plane(volume, view, -20, -3).at),
        vv.moved_in_plane(volume, view, 20, 3).at,
        view,
        records,
    )
    assert box.stats is not None and box.stats.minimum == OUTSIDE and box.stats.maximum == INSIDE
    assert box.stats.area_mm2 == pytest.approx(40 * 6)
    if pane == 0:  # the acquired plane: the measurement is on a stored image, in its pixels
        assert ellipse.image is not None and ellipse.where == ""
        k = vv.pane_slice(volume, view.plane, view.at) - 1
        assert ellipse.image.sop_instance_uid == volume.plan.slices[k].sop_instance_uid
        assert ellipse.points[1] == (6.0, 6.0)
        drawn = vv.drawn_of(ellipse, volume)
        assert drawn is not None and np.allclose(drawn.start, view.at)
        assert np.allclose(drawn.end, corner.at)
    else:  # a reformat: no stored image; its plane and position in words
        assert ellipse.image is None
        assert ellipse.where.startswith(f"{vv.PANES[pane]} at (")
        assert vv.drawn_of(ellipse, volume) is None


def test_a_slab_measurement_is_a_reformat_and_says_so(
    volume: Volume, records: list[InstanceRecord]
) -> None:
    view = VolumeView(at=volume.geometry.centre(), slab=5.0, projection=Projection.MEAN)
    m = vv.measure(
        volume,
        Drawing(MeasurementKind.ELLIPSE, 0, view.at),
        vv.moved_in_plane(volume, view, 3, 3).at,
        view,
        records,
    )
    assert m.image is None and m.where.endswith("MEAN 5 mm slab")


def test_shapes_without_size_are_refused(volume: Volume, records: list[InstanceRecord]) -> None:
    view = VolumeView(at=volume.geometry.centre())
    with pytest.raises(RenderError, match="two different points"):
        vv.measure(volume, Drawing(MeasurementKind.LENGTH, 0, view.at), view.at, view, records)
    flat = vv.moved_in_plane(volume, view, 4, 0).at
    with pytest.raises(RenderError, match="width and a height"):
        vv.measure(volume, Drawing(MeasurementKind.ELLIPSE, 0, view.at), flat, view, records)


def test_a_series_that_cannot_be_a_volume_says_why(
    sphere: tuple[Path, list[pydicom.Dataset]], records: list[InstanceRecord]
) -> None:
    assert vv.why_not_a_volume(records) is None
    one = vv.why_not_a_volume(records[:1])
    assert one is not None and "1 image" in one and "at least 2" in one


def test_layout_one_shows_the_active_pane_only() -> None:
    view = VolumeView(at=(0, 0, 0), active=2)
    assert view.visible == (0, 1, 2)
    from dataclasses import replace

    assert replace(view, layout=Layout.ONE).visible == (2,)
    assert view.plane == Plane.standard("sagittal")


def test_an_oblique_pane_turns_about_the_crosshair_and_still_measures_the_sphere(
    volume: Volume, records: list[InstanceRecord]
) -> None:
    view = VolumeView(at=volume.geometry.centre(), active=1)
    turned = vv.tilted(vv.tilted(view, 1, 0), 1, 2)  # coronal: +10° about x, then +10° about z
    assert turned.tilts == ((0.0, 0.0), (10.0, 10.0), (0.0, 0.0))
    plane = turned.plane
    standard = Plane.standard("coronal")
    cosine = float(np.dot(plane.normal, standard.normal))
    assert plane.name == "oblique" and 0.9 < cosine < 0.99
    assert vv.pane_title(volume, turned, 1, None).startswith("Coronal ∠+10°/+10° ")
    assert vv.pane_title(volume, turned, 0, None).startswith("Axial ")  # the others keep theirs
    left, right, top, bottom = vv.pane_edges(plane)
    assert left.startswith("R") and right.startswith("L") and top.startswith("H")
    frames = vv.render_panes(volume, turned, {1: (48, 48)})
    assert frames is not None and frames[0].image.plane == plane
    assert frames[0].image.fidelity.reformatted
    # The plane passes through the crosshair: the sphere's centre stays at the pane's crosshair.
    x, y = frames[0].image.crosshair
    assert frames[0].image.values[round(y), round(x)] == INSIDE
    # A 5 mm ellipse about the centre is all sphere, whatever the angle.
    corner = vv.moved_in_plane(volume, turned, 5, 5)
    m = vv.measure(
        volume,
        Drawing(MeasurementKind.ELLIPSE, 1, turned.at, turned.plane),
        corner.at,
        turned,
        records,
    )
    assert m.stats is not None and m.stats.minimum == INSIDE and m.image is None
    assert m.where.startswith("oblique (normal ")
    assert vv.straightened(turned).plane == standard
    assert vv.tilted(VolumeView(at=(0, 0, 0), tilts=((180.0, 0.0),) * 3), 1, 0).tilts[0] == (
        -175.0,
        0.0,
    )


def test_a_step_smaller_than_a_pane_pixel_leaves_that_pane_as_it_is(volume: Volume) -> None:
    """A 48 mm section in a 12-pixel box: 4 mm a pixel, so four 1 mm steps through the axial
    pane move the coronal crosshair by one pixel at most: one redraw, not four."""
    view = VolumeView(at=volume.geometry.centre())
    keys, sent = [], []
    for _ in range(5):
        frames = vv.render_panes(volume, view, {0: (12, 12), 1: (12, 12)})
        assert frames is not None
        keys.append(frames[1].key)
        sent.append(frames[0].key)
        view = vv.moved_through(volume, view, 1)
    assert len(set(keys)) <= 2  # the coronal plane and its crosshair pixel: at most one move
    assert len(set(sent)) == 5  # the axial pane shows another slice each time


@pytest.mark.parametrize("pane", [0, 1])
def test_an_angle_is_measured_in_mm_at_its_vertex(
    volume: Volume, records: list[InstanceRecord], pane: int
) -> None:
    view = VolumeView(at=volume.geometry.centre(), active=pane)
    first = vv.moved_in_plane(volume, view, 8, 0).at
    second = vv.moved_in_plane(volume, view, 5, -5).at  # 45° up from the first arm
    drawing = Drawing(MeasurementKind.ANGLE, pane, first, view.plane, vertex=view.at)
    m = vv.measure(volume, drawing, second, view, records)
    assert m.angle_deg == pytest.approx(45.0)
    assert len(m.points) == 3
    with pytest.raises(RenderError, match="vertex first"):
        vv.measure(volume, replace_vertex(drawing), second, view, records)
    if pane == 0:  # on the stored image: its pixels, and drawn back on the axial pane
        assert m.image is not None
        drawn = vv.drawn_of(m, volume)
        assert drawn is not None and drawn.vertex is not None
        assert np.allclose(drawn.vertex, view.at) and np.allclose(drawn.start, first)


def replace_vertex(drawing: Drawing) -> Drawing:
    from dataclasses import replace

    return replace(drawing, vertex=None)


def test_a_crosshair_step_keeps_unmoved_pictures_and_leaves_nothing_of_the_old_crosshair(
    volume: Volume,
) -> None:
    """A step passes the frames on screen back in: a pane whose picture the step leaves alone
    is the very same picture (nothing drawn, nothing sent), and a pane whose plane stayed
    but whose crosshair moved equals a fresh render: its plane plus the new crosshair only."""
    view = VolumeView(at=volume.geometry.centre())
    boxes = {0: (40, 60), 1: (40, 60), 2: (40, 60)}
    first = vv.render_panes(volume, view, boxes)
    assert first is not None
    # 5 voxels to the right in the axial pane: axial and coronal keep their plane, their
    # vertical crosshair line moves; the sagittal pane is re-cut.
    step = vv.moved_in_plane(volume, view, 5, 0)
    second = vv.render_panes(volume, step, boxes, previous=[f.image for f in first], shown=first)
    fresh = vv.render_panes(volume, step, boxes)
    assert second is not None and fresh is not None
    for old, new, clean in zip(first, second, fresh, strict=True):
        assert not np.array_equal(old.pixels, new.pixels)  # the crosshair moved
        np.testing.assert_array_equal(new.pixels, clean.pixels)
        assert new.key == clean.key
    # Outside the new crosshair's row and column the axial pane is its grey plane: no pixel
    # of the old crosshair is left.
    axial = second[0]
    x, y = (round(c) for c in axial.image.pixel_of(step.at))
    grey = np.repeat(axial.image.pixels[:, :, None], 3, axis=2)
    keep = np.ones(grey.shape[:2], dtype=bool)
    keep[y, :] = keep[:, x] = False
    np.testing.assert_array_equal(axial.pixels[keep], grey[keep])
    # A step smaller than a pane pixel in a 12-pixel coronal pane: the same picture object.
    small = {0: (12, 12), 1: (12, 12)}
    before = vv.render_panes(volume, view, small)
    assert before is not None
    through = vv.moved_through(volume, view, 1)
    after = vv.render_panes(
        volume, through, small, previous=[f.image for f in before], shown=before
    )
    assert after is not None
    assert after[1].key == before[1].key and after[1].pixels is before[1].pixels
    assert after[1].image.at == through.at  # the plane image follows the crosshair
    assert after[0].pixels is not before[0].pixels  # the axial pane shows the next slice
