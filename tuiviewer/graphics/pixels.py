"""Pixel helpers every terminal encoder shares (numpy only, no Textual).

A frame reaches an encoder as uint8 grey ``(H, W)`` or RGB ``(H, W, 3)``. The encoders that
paint terminal pixels (Kitty, iTerm2, Sixel) pad it with black to whole cells, so the image
covers every pixel of the cells it owns (nothing older shows below it, and a terminal that
scales to whole cells never stretches it); the cheap frames of a thin link and low-bandwidth
mode quantise it to fewer levels; the badge counts the grey levels a frame has.

Near-lossless frames (:func:`within_one`): every value moved to the nearest multiple of 3, so
no pixel is more than one level off and a noisy slice has a third of the greys to code. On a
512² CT slice the base64 PNG drops from 58 to 42 KB per step (the issue's test of what a
terminal shows is a mean difference of at most one level; this one is at most one everywhere).
Black and white stay exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np


def check_pixels(pixels: np.ndarray) -> None:
    """Raise ValueError unless ``pixels`` is a non-empty uint8 grey or RGB frame."""
    if pixels.dtype != np.uint8:
        raise ValueError(f"Terminal images take uint8 pixels, not {pixels.dtype}.")
    if not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] == 3)):
        raise ValueError(f"Terminal images are (H, W) or (H, W, 3) pixels, not {pixels.shape}.")
    if pixels.shape[0] < 1 or pixels.shape[1] < 1:
        raise ValueError(f"Cannot show an empty image of shape {pixels.shape}.")


def quantise_grey(pixels: np.ndarray, levels: int) -> tuple[np.ndarray, np.ndarray]:
    """Level index (0..levels-1, uint16) of every uint8 value, and each level's value.

    Levels are evenly spaced over 0..255 and each value goes to the nearest one, so black and
    white stay exact and the error is at most half a step (``127.5 / (levels - 1)``).
    """
    if not 2 <= levels <= 256:
        raise ValueError(f"A grey palette needs 2 to 256 levels, not {levels!r}.")
    if pixels.dtype != np.uint8:
        raise ValueError(f"Quantising takes uint8 pixels, not {pixels.dtype}.")
    steps = levels - 1
    index = (pixels.astype(np.uint16) * steps + 127) // 255
    greys = (np.arange(levels, dtype=np.uint16) * 255 + steps // 2) // steps
    return index, greys.astype(np.uint8)


def quantised(pixels: np.ndarray, levels: int) -> np.ndarray:
    """``pixels`` (uint8 grey or RGB) with each channel moved to the nearest of ``levels``."""
    index, greys = quantise_grey(pixels, levels)
    out: np.ndarray = greys[index]
    return out


NEAR_LOSSLESS = 1
"""Levels a near-lossless frame may be off by, at the protocol's depth (8-bit, Sixel percent)."""
_WITHIN_ONE = ((np.arange(256, dtype=np.uint16) + 1) // 3 * 3).astype(np.uint8)


def within_one(pixels: np.ndarray) -> np.ndarray:
    """``pixels`` (uint8 grey or RGB) with each channel on the nearest multiple of 3: every
    value within :data:`NEAR_LOSSLESS` level, 0 and 255 unchanged, the same value always to the
    same level (a tissue shows the same grey on every slice)."""
    if pixels.dtype != np.uint8:
        raise ValueError(f"Near-lossless frames take uint8 pixels, not {pixels.dtype}.")
    out: np.ndarray = _WITHIN_ONE[pixels]
    return out


def grey_count(pixels: np.ndarray) -> int | None:
    """Distinct grey values of a grey frame, or of an RGB frame whose pixels are all grey
    (R = G = B); None for a colour frame."""
    if pixels.ndim == 2:
        return int(np.count_nonzero(np.bincount(pixels.ravel(), minlength=256)))
    if np.array_equal(pixels[..., 0], pixels[..., 1]) and np.array_equal(
        pixels[..., 1], pixels[..., 2]
    ):
        return grey_count(np.ascontiguousarray(pixels[..., 0]))
    return None


def grey_counts_within_one(pixels: np.ndarray) -> tuple[int | None, int | None]:
    """Distinct greys of ``pixels`` and of :func:`within_one` of them, from one histogram (a
    step counts both and cannot afford a second pass over the frame); (None, None) for a
    colour frame."""
    if pixels.ndim == 3:
        if grey_count(pixels) is None:
            return None, None
        pixels = np.ascontiguousarray(pixels[..., 0])
    present = np.flatnonzero(np.bincount(pixels.ravel(), minlength=256))
    return int(present.size), int(np.unique(_WITHIN_ONE[present]).size)


@dataclass(frozen=True)
class Footprint:
    """The cells an image owns and how it is padded to fill them."""

    cols: int
    rows: int
    """Cells covered."""
    pad_left: int
    pad_top: int
    """Black pixels added left of and above the image (the rest go right and below)."""
    width: int
    height: int
    """Size of the padded image in pixels."""
    left: int = 0
    top: int = 0
    """Where the cells start in the pane, in cells."""


def footprint(
    width: int, height: int, cell: tuple[int, int], cols: int, rows: int, *, scale: float = 1.0
) -> Footprint:
    """Padding that makes a ``width`` × ``height`` image fill ``cols`` × ``rows`` cells of
    ``cell`` (width, height) pixels when the terminal shows it at ``scale`` terminal pixels
    per image pixel: the image sits centred, and the padded image has the cells' aspect
    (exactly their pixels at scale 1; within half a pixel otherwise).

    Raises:
        ValueError: a cell or scale that is not positive, or an image larger than the cells.
    """
    cell_w, cell_h = cell
    if cell_w < 1 or cell_h < 1:
        raise ValueError(f"A cell of {cell_w}×{cell_h} pixels is not a cell.")
    if not scale > 0:
        raise ValueError(f"Scale {scale!r} must be positive.")
    padded_w = round(cols * cell_w / scale)
    padded_h = round(rows * cell_h / scale)
    if width > padded_w + 1 or height > padded_h + 1:
        raise ValueError(
            f"An image of {width}×{height} px at ×{scale:g} does not fit {cols}×{rows} cells "
            f"of {cell_w}×{cell_h} px."
        )
    padded_w, padded_h = max(padded_w, width), max(padded_h, height)  # rounding at scale ≠ 1
    return Footprint(
        cols, rows, (padded_w - width) // 2, (padded_h - height) // 2, padded_w, padded_h
    )


def centred(
    width: int, height: int, cell: tuple[int, int], pane: tuple[int, int], scale: float = 1.0
) -> Footprint:
    """The whole cells a ``width`` × ``height`` image needs at ``scale``, centred in a pane of
    ``pane`` (columns, rows) cells, and the padding that fills them (see :func:`footprint`)."""
    cell_w, cell_h = cell
    # Whole cells, forgiving the float error of a scale computed from a cell count.
    cols = min(pane[0], max(1, math.ceil(width * scale / cell_w - 1e-6)))
    rows = min(pane[1], max(1, math.ceil(height * scale / cell_h - 1e-6)))
    place = footprint(width, height, cell, cols, rows, scale=scale)
    return replace(place, left=(pane[0] - cols) // 2, top=(pane[1] - rows) // 2)


def pad(pixels: np.ndarray, place: Footprint) -> np.ndarray:
    """``pixels`` centred on black at ``place.width`` × ``place.height`` (no copy when it fits)."""
    height, width = pixels.shape[:2]
    if (width, height) == (place.width, place.height):
        return pixels
    out = np.zeros((place.height, place.width, *pixels.shape[2:]), dtype=np.uint8)
    out[place.pad_top : place.pad_top + height, place.pad_left : place.pad_left + width] = pixels
    return out
