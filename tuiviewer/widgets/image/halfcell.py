"""Pixels as characters: half-blocks (two pixels a cell) and shade characters (one).

A half-block cell is ``▀`` with the upper pixel as foreground and the lower one as background
(a space on the background where both are equal: one colour to send instead of two). Each
pixel is therefore half a cell tall; on a 10×20-px cell that is square, on kitty's 8×19 it is
19 % taller than wide, so the viewer renders frames for the cell's real aspect
(:func:`halfcell_aspect`) and this module only lays pixel rows out in pairs. Runs of equal
cells are merged and styles cached, so a repaint costs no re-encoding. Lines are Rich segments
(no Textual): the widget wraps them in strips.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from rich.color import Color
from rich.segment import Segment
from rich.style import Style

UPPER_HALF = "▀"
_SHADES = np.array(["█", "▓", "▒", "░", " "][::-1])  # dark → light as grey rises
BLACK = Style(bgcolor=Color.from_rgb(0, 0, 0))
_STYLE_CACHE_LIMIT = 70_000


@dataclass(frozen=True)
class Placement:
    """Where the image lies in the widget, in cells (fractional for padded pixel images),
    and its size in pixels of the frame."""

    left: float
    top: float
    cols: float
    rows: float
    width_px: int
    height_px: int


def halfcell_aspect(cell: tuple[int, int]) -> float:
    """Height over width of one half-block pixel on cells of ``cell`` (width, height) px."""
    width, height = cell
    return height / 2 / width


class StyleCache:
    """Half-block styles by (upper, lower) colour: a grey slice reuses at most 65,536."""

    def __init__(self) -> None:
        self._styles: dict[Hashable, Style] = {}

    def get(self, upper: Hashable, lower: Hashable) -> Style:
        key = (upper, lower)
        style = self._styles.get(key)
        if style is None:
            if len(self._styles) > _STYLE_CACHE_LIMIT:
                self._styles.clear()
            # Style.from_color: a seventh of Style()'s cost, and a noisy slice step meets a
            # few hundred pairs it has not met before.
            if upper == lower:
                # Drawn as a space: one colour in the escape sequence instead of two.
                style = Style.from_color(bgcolor=_rgb(lower))
            else:
                style = Style.from_color(_rgb(upper), _rgb(lower))
            self._styles[key] = style
        return style


@lru_cache(maxsize=4096)
def _rgb(value: Hashable) -> Color:
    if isinstance(value, tuple):
        return Color.from_rgb(*value)
    grey = int(value)  # type: ignore[call-overload]
    return Color.from_rgb(grey, grey, grey)


def _blank(width: int) -> list[Segment]:
    return [Segment(" " * width, BLACK)]


def halfcell_lines(
    pixels: np.ndarray,
    width: int,
    height: int,
    styles: StyleCache,
    only: set[int] | None = None,
) -> tuple[list[list[Segment]], Placement]:
    """Lines of ``▀`` for a uint8 image, centred in ``width`` × ``height`` cells.

    Runs of equal cells are found for the whole image at once; each distinct (upper, lower)
    pair becomes a glyph and a style once per frame (a noisy CT slice has thousands of runs).
    ``only``: the lines wanted (the others come back empty, for the caller to take from the
    previous frame).
    """
    img = pixels
    if img.shape[0] % 2:
        pad = np.zeros((1, *img.shape[1:]), dtype=np.uint8)
        img = np.concatenate([img, pad])
    place = halfcell_placement(pixels.shape, width, height)
    left, top, rows, cols = int(place.left), int(place.top), int(place.rows), int(place.cols)
    img = img[: rows * 2, :cols]
    right = max(0, width - cols - left)
    lines = [_blank(width) for _ in range(top)]
    upper, lower = img[0::2], img[1::2]
    if img.ndim == 2:
        keys = upper.astype(np.int64) * 256 + lower
    else:
        packed_u = (upper[..., 0].astype(np.int64) << 16) | (upper[..., 1] << 8) | upper[..., 2]
        packed_l = (lower[..., 0].astype(np.int64) << 16) | (lower[..., 1] << 8) | lower[..., 2]
        keys = (packed_u << 24) | packed_l
    starts = np.ones(keys.shape, dtype=bool)
    np.not_equal(keys[:, 1:], keys[:, :-1], out=starts[:, 1:])
    shift = 24 if img.ndim == 3 else 8
    mask = (1 << shift) - 1
    looks: dict[int, tuple[str, Style]] = {}
    left_pad = [Segment(" " * left, BLACK)] if left else []
    right_pad = [Segment(" " * right, BLACK)] if right else []
    for r in range(rows):
        if only is not None and top + r not in only:
            lines.append([])
            continue
        at = np.flatnonzero(starts[r])
        lengths = np.diff(np.append(at, cols)).tolist()
        segments = list(left_pad)
        for key, length in zip(keys[r, at].tolist(), lengths, strict=True):
            look = looks.get(key)
            if look is None:
                fg, bg = _colour(key >> shift, img.ndim), _colour(key & mask, img.ndim)
                # A cell of one colour is a space on that background (shorter escape sequence).
                look = (" " if fg == bg else UPPER_HALF, styles.get(fg, bg))
                looks[key] = look
            segments.append(Segment(look[0] * length, look[1]))
        segments.extend(right_pad)
        lines.append(segments)
    lines.extend(_blank(width) for _ in range(max(0, height - top - rows)))
    return lines, place


def halfcell_placement(shape: tuple[int, ...], width: int, height: int) -> Placement:
    """Where :func:`halfcell_lines` puts an image of ``shape`` in ``width`` × ``height``
    cells: centred, cut to the cells."""
    rows, cols = min((shape[0] + 1) // 2, height), min(shape[1], width)
    left, top = max(0, (width - cols) // 2), max(0, (height - rows) // 2)
    return Placement(left, top, cols, rows, cols, rows * 2)


def within_one_cells(pixels: np.ndarray) -> np.ndarray:
    """A grey frame with every pixel moved by at most one level so that its half-block lines
    take fewer, shorter segments: a cell whose two pixels are within two levels becomes one
    colour (a space on a background: one colour to send instead of two), and a run of cells
    that all lie within one level of common values becomes one segment of equal cells.

    Runs are grown greedily from the left, each as long as one value per half lies within one
    level of every pixel it holds (the highest less the lowest at most 2), so no pixel is ever
    more than one level off. On a 512² CT slice at 66×66 half-block pixels this sends 24 KB a
    frame instead of 34. In numpy throughout (a step cannot afford a Python loop per cell):
    the longest run from every cell by binary lifting over range tables, then the runs the
    greedy pass takes by pointer doubling from each row's left edge.
    """
    img = pixels
    odd = img.shape[0] % 2
    if odd:
        img = np.concatenate([img, img[-1:]])
    upper, lower = img[0::2].astype(np.int32), img[1::2].astype(np.int32)
    rows, width = upper.shape
    flat = np.abs(upper - lower) <= 2
    # Per cell, the highest and lowest value of each half that the run's value must stay
    # within one level of. A one-colour cell holds both pixels in the first half and -10 in
    # the second, which no two-colour cell (second half >= 0) comes within 2 of: the two
    # kinds never share a run.
    high = np.where(flat, np.maximum(upper, lower), upper)
    low = np.where(flat, np.minimum(upper, lower), upper)
    second = np.where(flat, -10, lower)
    # The rows laid end to end, each followed by a cell no run can hold, then a tail of them;
    # channels (high, -low, second, -second) so that one maximum serves all four.
    stride, levels, size = width + 1, int(width).bit_length(), rows * (width + 1)
    table = np.full((4, size + (1 << levels) + 1), 1 << 20, dtype=np.int32)
    for channel, values in enumerate((high, -low, second, -second)):
        table[channel, :size].reshape(rows, stride)[:, :width] = values
    tables = [table]  # tables[k][:, i]: the maxima over cells i .. i + 2**k - 1
    for k in range(1, levels + 1):
        shift = 1 << (k - 1)
        tables.append(np.maximum(tables[-1][:, :-shift], tables[-1][:, shift:]))
    # From every cell, the longest run that starts there, and its maxima.
    end = np.arange(1, size + 1)
    best = table[:, :size].copy()
    for k in range(levels, -1, -1):
        grown = np.maximum(best, tables[k].take(end, axis=1))
        fits = (grown[0] + grown[1] <= 2) & (grown[2] + grown[3] <= 2)
        end += fits.astype(end.dtype) << k
        best = np.where(fits, grown, best)
    # The runs the greedy pass takes: the cells reached from a row's left edge by run ends
    # (the cell after the row a fixed point).
    row_ends = np.arange(width, size, stride)
    jump = end.copy()
    jump[row_ends] = row_ends
    taken = np.zeros(size, dtype=bool)
    taken[row_ends - width] = True
    for _ in range(levels + 1):
        taken[jump[taken]] = True
        jump = jump[jump]
    start = np.maximum.accumulate(np.where(taken, np.arange(size), 0))

    def cells(values: np.ndarray) -> np.ndarray:
        return values.reshape(rows, stride)[:, :width]

    merged = cells(end[start] - start > 1)
    run = best[:, start]
    value = cells(np.clip((run[0] - run[1]) // 2, 0, 255))
    below = cells(np.clip((run[2] - run[3]) // 2, 0, 255))
    mid = (high + low) // 2
    out = np.empty(img.shape, dtype=np.uint8)
    out[0::2] = np.where(merged, value, np.where(flat, mid, upper))
    out[1::2] = np.where(merged, np.where(flat, value, below), np.where(flat, mid, lower))
    return out[: img.shape[0] - odd] if odd else out


def _colour(packed: int, ndim: int) -> Hashable:
    """A grey (int) or an RGB triple from a packed key half."""
    if ndim == 2:
        return packed
    return (packed >> 16) & 0xFF, (packed >> 8) & 0xFF, packed & 0xFF


def shade_lines(
    pixels: np.ndarray, width: int, height: int
) -> tuple[list[list[Segment]], Placement]:
    """One shade character per cell (rows averaged in pairs: a cell is two pixels tall)."""
    img = pixels if pixels.ndim == 2 else pixels.mean(axis=2)
    if img.shape[0] % 2:
        img = np.concatenate([img, img[-1:]])
    cells = (img[0::2].astype(np.float32) + img[1::2]) / 2.0
    rows, cols = min(cells.shape[0], height), min(cells.shape[1], width)
    cells = cells[:rows, :cols]
    index = np.clip((cells * len(_SHADES) / 256.0).astype(np.int64), 0, len(_SHADES) - 1)
    left, top = max(0, (width - cols) // 2), max(0, (height - rows) // 2)
    lines = [[Segment(" " * width)] for _ in range(top)]
    for r in range(rows):
        text = " " * left + "".join(_SHADES[index[r]].tolist())
        lines.append([Segment(text.ljust(width))])
    lines.extend([Segment(" " * width)] for _ in range(max(0, height - top - rows)))
    return lines, Placement(left, top, cols, rows, cols, rows * 2)


def changed_rows(
    before: np.ndarray,
    after: np.ndarray,
    placed_before: Placement | None,
    placed_after: Placement | None,
) -> list[tuple[int, int]] | None:
    """Half-block lines to repaint between two frames, as (line, cells from the left edge);
    None: all of them.

    A line is repainted from the widget's left edge up to its last changed cell (Textual
    writes a line's dirty span from the start of the widget's chop): the air around a body and
    the anatomy that a slice step leaves alike are not sent again.
    """
    if placed_before is None or placed_after is None or placed_before != placed_after:
        return None
    if before.shape != after.shape:
        return None
    rows, cols = int(placed_after.rows), int(placed_after.cols)
    differs = before[: rows * 2, :cols] != after[: rows * 2, :cols]
    if differs.ndim == 3:
        differs = differs.any(axis=2)
    if differs.shape[0] % 2:
        differs = np.concatenate([differs, np.zeros((1, differs.shape[1]), dtype=bool)])
    per_cell = differs[0::2] | differs[1::2]
    spans = []
    for row in np.flatnonzero(per_cell.any(axis=1)).tolist():
        last = int(np.flatnonzero(per_cell[row])[-1])
        spans.append((int(placed_after.top) + row, int(placed_after.left) + last + 1))
    return spans
