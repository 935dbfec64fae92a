"""Resampling: area averaging when shrinking, blocks when enlarging, aspect-correct sizes."""

from __future__ import annotations

import numpy as np
import pytest

from tuiviewer.exceptions import RenderError
from tuiviewer.render.resample import Interpolation, display_size, resample


def test_halving_averages_each_2x2_block() -> None:
    img = np.array([[0, 100, 10, 10], [200, 100, 20, 40], [0, 0, 255, 255], [0, 4, 255, 255]])
    out = resample(img.astype(np.uint8), 2, 2)
    assert out.tolist() == [[100, 20], [1, 255]]


def test_shrinking_a_fine_checkerboard_gives_grey_not_aliasing() -> None:
    board = (np.indices((300, 300)).sum(axis=0) % 2 * 255).astype(np.uint8)
    out = resample(board, 100, 100)  # factor 3: an odd factor is where decimation aliases
    assert np.abs(out.astype(int) - 127.5).max() <= 15


def test_non_integer_shrink_weights_partial_pixels() -> None:
    img = np.array([[0, 0, 90]], dtype=np.uint8)
    # Output pixel 0 covers source [0, 1.5): 0; pixel 1 covers [1.5, 3): (0.5*0 + 1*90)/1.5 = 60.
    assert resample(img, 2, 1).tolist() == [[0, 60]]


def test_enlarging_uses_nearest_neighbour_blocks_by_default() -> None:
    img = np.array([[10, 200], [30, 40]], dtype=np.uint8)
    out = resample(img, 4, 4)
    assert out.tolist() == [[10, 10, 200, 200]] * 2 + [[30, 30, 40, 40]] * 2


def test_bilinear_enlargement_blends_between_centres() -> None:
    img = np.array([[0, 200]], dtype=np.uint8)
    out = resample(img, 4, 1, Interpolation.BILINEAR)
    # Output centres at source x = -0.25, 0.25, 0.75, 1.25 → clamp, 50, 150, clamp.
    assert out.tolist() == [[0, 50, 150, 200]]


def test_rgb_channels_are_resampled_independently() -> None:
    img = np.zeros((2, 2, 3), dtype=np.uint8)
    img[..., 0] = 200
    img[0, 0, 2] = 100
    assert resample(img, 1, 1).tolist() == [[[200, 0, 25]]]


def test_display_size_honours_pixel_spacing() -> None:
    # 100 rows x 200 columns, rows 2 mm apart, columns 0.5 mm: 100 mm wide, 200 mm tall.
    assert display_size(100, 200, (2.0, 0.5), 400, 400) == (200, 400)
    assert display_size(512, 512, None, 120, 80) == (80, 80)
    assert display_size(512, 512, (0.7, 0.7), 120, 80) == (80, 80)


@pytest.mark.parametrize(("w", "h"), [(0, 5), (5, -1)])
def test_sizes_below_one_are_refused(w: int, h: int) -> None:
    with pytest.raises(RenderError, match=f"{w}x{h}"):
        resample(np.zeros((4, 4), dtype=np.uint8), w, h)
