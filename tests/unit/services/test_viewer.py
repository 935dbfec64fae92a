"""The viewer's headless logic: orientation letters, distances, caches, coalescing, geometry."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from tuiviewer.dicom.datagen import write_ct_series
from tuiviewer.dicom.scanning import InstanceRecord, scan
from tuiviewer.exceptions import RenderError
from tuiviewer.render.lut import Window
from tuiviewer.render.pipeline import RenderRequest, load_frame, render_frame
from tuiviewer.render.resample import display_size
from tuiviewer.services.viewer.caches import ByteLRU, RenderCoalescer
from tuiviewer.services.viewer.geometry import (
    StackGeometry,
    capped_box,
    direction_letters,
    edge_labels,
    measure,
    slice_normal,
    view_mapping,
)
from tuiviewer.services.viewer.marks import draw_marks
from tuiviewer.services.viewer.slices import (
    SliceSource,
    adjust_window,
    goto_index,
    prefetch_order,
    readout,
    slices_of,
)
from tuiviewer.services.viewer.stack import Stack

# ---- orientation: expectations worked out by hand from PS3.3 C.7.6.2.1.1 (LPS axes) ---------


def test_axial_edges() -> None:
    # Rows run to +x (patient left), columns to +y (posterior): the radiological convention.
    labels = edge_labels((1, 0, 0, 0, 1, 0))
    assert labels is not None
    assert (labels.left, labels.right, labels.top, labels.bottom) == ("R", "L", "A", "P")


def test_sagittal_edges() -> None:
    # Rows run to +y (posterior), columns to -z (feet).
    labels = edge_labels((0, 1, 0, 0, 0, -1))
    assert labels is not None
    assert (labels.left, labels.right, labels.top, labels.bottom) == ("A", "P", "H", "F")


def test_coronal_edges() -> None:
    labels = edge_labels((1, 0, 0, 0, 0, -1))
    assert labels is not None
    assert (labels.left, labels.right, labels.top, labels.bottom) == ("R", "L", "H", "F")


def test_oblique_edges_name_both_directions_strongest_first() -> None:
    # Rows rotated 30° from +x towards +y: cos 30 = 0.87 left, sin 30 = 0.5 posterior.
    c, s = math.cos(math.radians(30)), math.sin(math.radians(30))
    labels = edge_labels((c, s, 0, -s, c, 0))
    assert labels is not None
    assert labels.right == "LP" and labels.left == "RA"
    # Columns: -0.5 x (right), 0.87 y (posterior) → "PR" at the bottom.
    assert labels.bottom == "PR" and labels.top == "AL"


def test_small_components_get_no_letter_and_bad_orientations_none() -> None:
    assert direction_letters((0.99, 0.1, 0.0)) == "L"
    assert edge_labels(None) is None
    assert edge_labels((0, 0, 0, 0, 1, 0)) is None
    assert edge_labels((1, 0, 0)) is None


# ---- distances --------------------------------------------------------------------------------


def test_distance_uses_row_and_column_spacing_separately() -> None:
    # PixelSpacing = [row spacing 0.5, column spacing 0.8]: 3 columns = 2.4 mm, 4 rows = 2.0 mm.
    distance = measure((0, 0), (3, 4), (0.5, 0.8), "PixelSpacing")
    assert distance.value == pytest.approx(math.hypot(2.4, 2.0))
    assert distance.text == "3.1 mm"


def test_distance_with_imager_pixel_spacing_says_at_detector() -> None:
    distance = measure((0, 0), (3, 4), (0.5, 0.8), "ImagerPixelSpacing")
    assert distance.text == "3.1 mm at detector"


def test_distance_without_spacing_is_in_pixels() -> None:
    assert measure((1, 1), (4, 5), None, "").text == "5.0 px"
    assert measure((1, 1), (4, 5), (1.0, 2.0), "PixelAspectRatio").unit == "px"


# ---- caches and coalescing -----------------------------------------------------------------


def test_byte_lru_stays_within_its_byte_budget_and_evicts_least_recent() -> None:
    cache: ByteLRU[str, bytes] = ByteLRU(100)
    cache.put("a", b"a" * 40, 40)
    cache.put("b", b"b" * 40, 40)
    assert cache.get("a") is not None  # "a" is now the most recent
    cache.put("c", b"c" * 40, 40)
    assert "b" not in cache and "a" in cache and "c" in cache
    assert cache.total_bytes == 80 <= cache.max_bytes
    assert cache.put("huge", b"", 101) is False
    assert "huge" not in cache and cache.total_bytes == 80


def test_coalescer_collapses_a_burst_to_the_latest_request() -> None:
    coalescer: RenderCoalescer[int] = RenderCoalescer()
    assert coalescer.request(1) == 1
    for target in range(2, 31):
        assert coalescer.request(target) is None
    assert coalescer.finished() == 30  # the 28 slices in between are skipped
    assert coalescer.finished() is None
    assert coalescer.started == 2 and not coalescer.busy


def test_prefetch_follows_the_scroll_direction() -> None:
    assert prefetch_order(5, 1, 100) == [6, 7, 8, 9, 4]
    assert prefetch_order(5, -1, 100) == [4, 3, 2, 1, 6]
    assert prefetch_order(98, 1, 100) == [99, 97]


def test_goto_accepts_slice_numbers_and_percentages() -> None:
    assert goto_index("1", 41) == 0
    assert goto_index("50%", 41) == 20
    assert goto_index("100%", 41) == 40
    with pytest.raises(ValueError, match="Slice 42 does not exist"):
        goto_index("42", 41)
    with pytest.raises(ValueError, match="'abc' is neither"):
        goto_index("abc", 41)


def test_adjust_window_steps_relative_to_width_and_keeps_width_at_least_one() -> None:
    window = Window(40, 400)
    assert adjust_window(window, level=0.02).center == 48
    assert adjust_window(window, width=math.log(1.5)).width == 600
    assert adjust_window(Window(0, 2), width=-10).width == 1


# ---- geometry --------------------------------------------------------------------------------


def _dataset(rows: int, cols: int, pixels: np.ndarray) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.astype("<u2").tobytes()
    return ds


@pytest.mark.parametrize(
    ("size", "zoom", "pan"),
    [((30, 30), 1.0, (0.0, 0.0)), ((60, 50), 2.0, (3.0, -2.0)), ((200, 200), 1.0, (0.0, 0.0))],
)
def test_view_mapping_puts_a_source_pixel_where_the_renderer_draws_it(
    size: tuple[int, int], zoom: float, pan: tuple[float, float]
) -> None:
    rows, cols = 48, 64
    pixels = np.zeros((rows, cols), dtype=np.uint16)
    pixels[20:22, 30:32] = 1000  # a 2×2 spot survives area averaging when shrinking
    ds = _dataset(rows, cols, pixels)
    frame = load_frame(ds)
    request = RenderRequest(window=Window(500, 1000), size=size, zoom=zoom, pan=pan)
    image = render_frame(ds, frame, request).pixels
    mapping = view_mapping(rows, cols, None, size, zoom, pan)
    assert image.shape == (mapping.out_h, mapping.out_w)
    weights = image.astype(np.float64)
    ys, xs = np.indices(image.shape)
    # Centroid of the drawn spot, in output pixels (pixel x spans [x, x + 1)).
    x = float((weights * (xs + 0.5)).sum() / weights.sum())
    y = float((weights * (ys + 0.5)).sum() / weights.sum())
    expected_x, expected_y = mapping.to_output(30.5, 20.5)  # the corner the 4 pixels share
    assert abs(x - expected_x) <= 1.0 and abs(y - expected_y) <= 1.0
    assert mapping.to_source(x, y) in {(30, 20), (31, 20), (30, 21), (31, 21)}


def test_capped_box_never_enlarges_beyond_the_source() -> None:
    box = capped_box(512, 512, None, (1200, 760))
    assert display_size(512, 512, None, *box) == (512, 512)
    assert capped_box(512, 512, None, (300, 200)) == (300, 200)


def test_marks_leave_the_pixel_under_the_cursor_and_contrast_the_arms() -> None:
    image = np.full((20, 20), 30, dtype=np.uint8)
    mapping = view_mapping(20, 20, None, None)
    marked = draw_marks(image, mapping, (10, 10))
    assert marked[10, 10] == 30
    assert marked[10, 11] == 255 and marked[7, 10] == 255  # dark background → white arms
    assert image[10, 11] == 30, "the rendered frame itself is not modified"


# ---- loading through the byte-bounded cache ----------------------------------------------------


@pytest.fixture(scope="module")
def ct_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ct")
    write_ct_series(folder, slices=8, rows=32, cols=32, seed=11)
    return folder


def test_slice_source_keeps_decoded_frames_within_the_byte_budget(ct_folder: Path) -> None:
    records = sorted(
        (r for batch in scan([ct_folder]) for r in batch), key=lambda r: r.instance_number or 0
    )
    frame_bytes = 32 * 32 * 2
    source = SliceSource(slices_of(records), max_bytes=3 * frame_bytes)
    for index in range(len(records)):
        loaded = source.load(index)
        assert loaded is not None
        assert "PixelData" not in loaded.ds, "the raw pixel data is not kept twice"
    assert len(source.frames) == 3 and source.frames.total_bytes <= 3 * frame_bytes
    assert source.decoded == 8
    source.load(7)  # still cached
    assert source.decoded == 8
    source.load(0)  # evicted long ago: decoded again
    assert source.decoded == 9
    with pytest.raises(RenderError, match="Slice 9 does not exist"):
        source.load(8)


def test_readout_gives_hounsfield_units_as_pydicom_computes_them(ct_folder: Path) -> None:
    records = [r for batch in scan([ct_folder]) for r in batch]
    source = SliceSource(slices_of(records))
    loaded = source.load(0)
    assert loaded is not None
    ds = pydicom.dcmread(records[0].path)
    hu = ds.pixel_array[5, 7] * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert readout(loaded.frame, 7, 5, loaded.info.units) == f"x 7 y 5: {hu:.0f} HU"
    assert loaded.info.thickness == float(ds.SliceThickness)
    assert "outside the image" in readout(loaded.frame, 40, 5, "HU")


def test_multiframe_instances_contribute_one_slice_per_frame(ct_folder: Path) -> None:
    record = next(r for batch in scan([ct_folder]) for r in batch)
    from dataclasses import replace

    refs = slices_of([replace(record, frames=3), record])
    assert [(ref.frame, ref.frames) for ref in refs] == [(0, 3), (1, 3), (2, 3), (0, 1)]


# ---- linking two stacks by position: planes worked out by hand (normal = row × column) ------


def _records_at(
    ct_folder: Path, offsets: list[float], orientation: tuple[float, ...]
) -> list[InstanceRecord]:
    """Copies of one scanned record placed ``offset`` mm along the normal of ``orientation``."""
    from dataclasses import replace

    record = next(r for batch in scan([ct_folder]) for r in batch)
    normal = np.cross(orientation[:3], orientation[3:])
    return [
        replace(
            record,
            sop_instance_uid=f"1.2.3.{i}",
            image_position=_point(np.array([-175.0, -175.0, 0.0]) + normal * d),
            image_orientation=orientation,
        )
        for i, d in enumerate(offsets)
    ]


def _point(v: np.ndarray) -> tuple[float, float, float]:
    return (float(v[0]), float(v[1]), float(v[2]))


AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def test_slice_normal_is_row_cross_column() -> None:
    assert slice_normal(AXIAL) == (0.0, 0.0, 1.0)
    # Sagittal (rows along +y, columns along -z): (0,1,0) × (0,0,-1) = (-1, 0, 0).
    assert slice_normal((0, 1, 0, 0, 0, -1)) == (-1.0, 0.0, 0.0)
    assert slice_normal((1, 0, 0, 1, 0, 0)) is None, "parallel cosines have no normal"
    assert slice_normal(None) is None


def test_a_5_mm_stack_follows_a_2_5_mm_stack_by_position_not_index(ct_folder: Path) -> None:
    fine = StackGeometry.of(slices_of(_records_at(ct_folder, [i * 2.5 for i in range(40)], AXIAL)))
    coarse_offsets = [i * 5.0 for i in range(20)]
    coarse = StackGeometry.of(slices_of(_records_at(ct_folder, coarse_offsets, AXIAL)))
    assert fine.spacing == 2.5 and coarse.spacing == 5.0
    for left in range(40):
        z = left * 2.5
        expected = min(range(20), key=lambda k: (abs(coarse_offsets[k] - z), k))
        assert coarse.nearest((-175.0, -175.0, z)) == expected, f"left slice at {z} mm"
    assert coarse.nearest((-175.0, -175.0, 30.0)) == 6, "slice 7 lies at 30 mm, not index 12"
    assert coarse.nearest((0.0, 0.0, 500.0)) == 19, "beyond the end: the last slice"


def test_linking_projects_on_the_normal_of_the_followed_stack(ct_folder: Path) -> None:
    # An oblique stack tilted 45° about x: column cosines (0, c, -c), normal (0, c, c).
    c = math.sqrt(0.5)
    oblique = (1.0, 0.0, 0.0, 0.0, c, -c)
    stack = StackGeometry.of(slices_of(_records_at(ct_folder, [0, 10, 20, 30], oblique)))
    # A point 20 mm along that normal from the first slice's corner, moved sideways within the
    # plane (along the row and column directions), still belongs to the third slice.
    corner = np.array([-175.0, -175.0, 0.0])
    point = corner + np.array([0, c, c]) * 20 + np.array([1, 0, 0]) * 90 + np.array([0, c, -c]) * 40
    assert stack.nearest(_point(point)) == 2
    # A stack in descending order picks by position as well.
    descending = StackGeometry.of(slices_of(_records_at(ct_folder, [30, 20, 10, 0], AXIAL)))
    assert descending.nearest((0.0, 0.0, 11.0)) == 2


def test_stacks_without_geometry_and_multiframe_frames_cannot_be_placed(ct_folder: Path) -> None:
    from dataclasses import replace

    records = _records_at(ct_folder, [0, 5], AXIAL)
    unplaced = StackGeometry.of(slices_of([replace(r, image_orientation=None) for r in records]))
    assert unplaced.nearest((0.0, 0.0, 5.0)) is None
    frames = StackGeometry.of(slices_of([replace(records[0], frames=3)]))
    assert frames.locations == (None, None, None), "one record position cannot place 3 frames"
    assert StackGeometry.of(slices_of(records)).nearest(None) is None


def test_linked_stack_follows_and_keeps_its_place_when_it_cannot(ct_folder: Path) -> None:
    records = _records_at(ct_folder, [0, 5, 10, 15], AXIAL)
    link = Stack(records, stack=1, max_bytes=1024)
    assert link.follow((0.0, 0.0, 9.0)) and link.index == 2 and link.direction == 1
    assert link.follow((0.0, 0.0, -3.0)) and link.index == 0 and link.direction == -1
    assert not link.follow(None) and link.index == 0
    assert link.source.frames.max_bytes == 1024, "its decoded frames have their own budget"


def test_byte_lru_limit_evicts_down_to_a_smaller_budget_at_once() -> None:
    cache: ByteLRU[int, str] = ByteLRU(100)
    for key in range(5):
        cache.put(key, "x", 20)
    cache.get(0)  # now the most recent
    cache.limit(40)
    assert cache.total_bytes <= 40 and len(cache) == 2
    assert 0 in cache and 4 in cache, "the least recently used went first"
    with pytest.raises(ValueError, match="negative"):
        cache.limit(-1)
