"""Overlay planes: position, multi-frame overlays, drawing and the toggle."""

from __future__ import annotations

import numpy as np
import pydicom

from tests.conftest import testdata as sample
from tests.support import imagegen
from tuiviewer.render.overlay import overlay_masks
from tuiviewer.render.pipeline import RenderRequest, render


def test_overlay_origin_places_the_bitmap_one_based() -> None:
    ds = imagegen.with_overlays(rows=48, cols=64)
    border, box = overlay_masks(ds)
    assert border.shape == box.shape == (48, 64)
    assert border[0].all() and border[:, -1].all() and not border[1:-1, 1:-1].any()
    expected = np.zeros((48, 64), dtype=bool)
    expected[4:12, 6:16] = True  # origin (5, 7) is 1-based; 8 rows x 10 columns
    np.testing.assert_array_equal(box, expected)


def test_sample_overlay_matches_pydicoms_overlay_array() -> None:
    ds = pydicom.dcmread(sample("examples_overlay.dcm"))
    (mask,) = overlay_masks(ds)
    assert mask.sum() > 0
    np.testing.assert_array_equal(mask, ds.overlay_array(0x6000).astype(bool))


def test_multi_frame_overlay_applies_from_image_frame_origin() -> None:
    ds = imagegen.multiframe_overlay()
    assert overlay_masks(ds, 0) == []  # image frame 1 precedes the overlay's first frame
    (second,) = overlay_masks(ds, 1)
    (third,) = overlay_masks(ds, 2)
    assert second[3].all() and second.sum() == 16
    assert third[:, 4].all() and third.sum() == 16


def test_overlays_are_drawn_white_and_the_toggle_hides_them() -> None:
    ds = imagegen.with_overlays()
    shown = render(ds, RenderRequest())
    hidden = render(ds, RenderRequest(overlays=False))
    assert (shown.pixels[4:12, 6:16] == 255).all()
    assert (hidden.pixels[4:12, 6:16] < 255).all()
    assert "2 overlays" in shown.notes


def test_embedded_overlay_in_high_bits_is_read_from_pixel_data() -> None:
    ds = imagegen.bits_stored_12_with_junk(rows=8, cols=8)
    ds.add_new(0x60000010, "US", 8)
    ds.add_new(0x60000011, "US", 8)
    ds.add_new(0x60000040, "CS", "G")
    ds.add_new(0x60000050, "SS", [1, 1])
    ds.add_new(0x60000100, "US", 1)
    ds.add_new(0x60000102, "US", 15)
    (mask,) = overlay_masks(ds)
    expected = np.zeros(64, dtype=bool)
    expected[::2] = True  # the builder set bit 15 in every other pixel
    np.testing.assert_array_equal(mask.ravel(), expected)
