"""Reading a terminal's screenshot: where the image is, how close it is to the reference, and
whether anything of an earlier frame is left.

The test cards (:func:`tests.support.imagegen.card_display`) are never black and the viewer's
image pane is black around the image, so the image is the largest block of rows that each hold
one long run of non-black pixels (text lines are short runs, the footer one row).
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

DARK = 24
"""Channel values up to this count as black (the pane, the padding)."""


@dataclass(frozen=True)
class Rect:
    x: int
    y: int
    width: int
    height: int

    @property
    def right(self) -> int:
        return self.x + self.width

    @property
    def bottom(self) -> int:
        return self.y + self.height

    def crop(self, image: np.ndarray) -> np.ndarray:
        return image[self.y : self.bottom, self.x : self.right]

    def mask(self, shape: tuple[int, ...], grow: int = 0) -> np.ndarray:
        out = np.zeros(shape[:2], dtype=bool)
        out[
            max(0, self.y - grow) : self.bottom + grow, max(0, self.x - grow) : self.right + grow
        ] = True
        return out


def find_image(
    shot: np.ndarray, min_width: int = 80, min_height: int = 40, *, grey_only: bool = True
) -> Rect:
    """The image in a screenshot (uint8 RGB): the largest block of consecutive rows that each
    have a non-black run starting and ending at the same columns (within 2 px). With
    ``grey_only`` only grey pixels count (the test cards are grey; a panel is not)."""
    wide = shot.astype(np.int16)
    bright = wide.max(axis=2) > DARK
    if grey_only:
        bright &= wide.max(axis=2) - wide.min(axis=2) <= 12
    open_blocks: list[list[int]] = []  # [start, end, first row, last row]
    closed: list[list[int]] = []
    for y in range(bright.shape[0]):
        padded = np.concatenate([[False], bright[y], [False]])
        edges = np.flatnonzero(padded[1:] != padded[:-1])
        runs = [
            (int(x0), int(x1))
            for x0, x1 in zip(edges[0::2], edges[1::2], strict=True)
            if x1 - x0 >= min_width
        ]
        still_open = []
        for block in open_blocks:
            match = next(
                (r for r in runs if abs(r[0] - block[0]) <= 2 and abs(r[1] - block[1]) <= 2), None
            )
            if match is None:
                closed.append(block)
            else:
                block[3] = y
                runs.remove(match)
                still_open.append(block)
        open_blocks = still_open + [[x0, x1, y, y] for x0, x1 in runs]
    closed.extend(open_blocks)
    blocks = [b for b in closed if b[3] - b[2] + 1 >= min_height]
    if not blocks:
        raise AssertionError("No image in the screenshot: no block of long non-black rows.")
    x0, x1, top, bottom = max(blocks, key=lambda b: (b[1] - b[0]) * (b[3] - b[2] + 1))
    return Rect(x0, top, x1 - x0, bottom - top + 1)


def grey(image: np.ndarray) -> np.ndarray:
    """float64 grey of an RGB or grey array."""
    return image.astype(np.float64).mean(axis=2) if image.ndim == 3 else image.astype(np.float64)


def render_reference(
    path: Path,
    out: Path,
    size: tuple[int, int] | None = None,
    window: tuple[float, float] | None = None,
) -> np.ndarray:
    """What ``tuiviewer render`` writes for ``path`` (at ``size``, in ``window``), as an array."""
    command = [sys.executable, "-m", "tuiviewer", "render", str(path), "-o", str(out)]
    if size is not None:
        command += ["--size", f"{size[0]}x{size[1]}"]
    if window is not None:
        command += ["--window", f"{window[0]:g},{window[1]:g}"]
    subprocess.run(command, check=True, capture_output=True, timeout=60)
    return np.asarray(Image.open(out))


def mean_difference(shown: np.ndarray, reference: np.ndarray) -> float:
    """Mean |shown - reference| in 8-bit levels (both grey, or both RGB)."""
    if shown.shape[:2] != reference.shape[:2]:
        raise AssertionError(
            f"The image on screen is {shown.shape[1]}×{shown.shape[0]} px, the reference "
            f"{reference.shape[1]}×{reference.shape[0]}."
        )
    if reference.ndim == 2:
        return float(np.abs(grey(shown) - reference).mean())
    return float(np.abs(shown.astype(np.float64) - reference).mean())


def half_cells(shot: np.ndarray, rect: Rect, cell: tuple[int, int]) -> np.ndarray:
    """The colour of each half-cell of a half-block image (its centre pixel), (rows*2, cols)."""
    cell_w, cell_h = cell
    cols, rows = round(rect.width / cell_w), round(rect.height / cell_h * 2)
    ys = (rect.y + (np.arange(rows) + 0.5) * cell_h / 2).astype(int)
    xs = (rect.x + (np.arange(cols) + 0.5) * cell_w).astype(int)
    return shot[np.ix_(ys, xs)]


def block_means(image: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """``image`` averaged over a ``rows`` × ``cols`` grid of equal blocks."""
    height, width = image.shape[:2]
    ys = np.linspace(0, height, rows + 1).round().astype(int)
    xs = np.linspace(0, width, cols + 1).round().astype(int)
    data = image.astype(np.float64)
    out = np.zeros((rows, cols, *image.shape[2:]))
    for r in range(rows):
        for c in range(cols):
            out[r, c] = data[ys[r] : ys[r + 1], xs[c] : xs[c + 1]].mean(axis=(0, 1))
    return out


def leftovers(
    before: np.ndarray, old: Rect, after: np.ndarray, new: Rect, grow: int = 4, run: int = 12
) -> int:
    """Pixels of the old image's place (outside the new image) that still show the old frame:
    non-black, equal to the old screenshot within 2 levels on every channel, in horizontal runs
    of at least ``run`` pixels (a glyph that happens to match the old grey is a stroke or two
    wide; a strip of an old frame is as wide as the image)."""
    height = min(before.shape[0], after.shape[0])
    width = min(before.shape[1], after.shape[1])  # a resized window: what both cover
    before, after = before[:height, :width], after[:height, :width]
    outside = old.mask(before.shape) & ~new.mask(after.shape, grow)
    same = (np.abs(after.astype(np.int16) - before.astype(np.int16)) <= 2).all(axis=2)
    lit = before.max(axis=2) > DARK
    hits = outside & same & lit
    total = 0
    for line in hits:
        padded = np.concatenate([[False], line, [False]])
        edges = np.flatnonzero(padded[1:] != padded[:-1])
        lengths = edges[1::2] - edges[0::2]
        total += int(lengths[lengths >= run].sum())
    return total


def ring_is_dark(shot: np.ndarray, rect: Rect, width: int) -> bool:
    """The band of ``width`` pixels around ``rect`` is black (no glyph fragment, no bar)."""
    band = rect.mask(shot.shape, width) & ~rect.mask(shot.shape)
    return bool((shot[band].max(axis=1) <= DARK).all())
