"""The cursor and the ruler: where they are, what they read, and how they are drawn into the
rendered pixels (so they look the same in every graphics mode and never share cells with
text)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from tuiviewer.services.viewer.geometry import ViewMapping, measure
from tuiviewer.services.viewer.slices import LoadedSlice, readout


def _contrast(values: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.where(values < 128, np.uint8(255), np.uint8(0)).astype(np.uint8)
    return out


def _plot(image: np.ndarray, points: list[tuple[int, int]]) -> None:
    height, width = image.shape[:2]
    inside = [(x, y) for x, y in points if 0 <= x < width and 0 <= y < height]
    if not inside:
        return
    xs = np.array([p[0] for p in inside])
    ys = np.array([p[1] for p in inside])
    image[ys, xs] = _contrast(image[ys, xs])


def _line(a: tuple[int, int], b: tuple[int, int]) -> list[tuple[int, int]]:
    steps = max(abs(b[0] - a[0]), abs(b[1] - a[1]), 1)
    return sorted(
        {
            (round(a[0] + (b[0] - a[0]) * t / steps), round(a[1] + (b[1] - a[1]) * t / steps))
            for t in range(steps + 1)
        }
    )


def draw_marks(
    pixels: np.ndarray,
    mapping: ViewMapping,
    cursor: tuple[int, int] | None,
    ruler: tuple[tuple[int, int], tuple[int, int]] | None = None,
    arm: int = 3,
) -> np.ndarray:
    """A copy of the rendered image with the cursor cross and the ruler drawn in contrast.

    Marks are drawn into the pixels (not as text over the cells) so they look the same in every
    graphics mode; the pixel under the cursor is left untouched so its grey stays readable.
    """
    if cursor is None and ruler is None:
        return pixels
    out = pixels.copy()

    def at(point: tuple[int, int]) -> tuple[int, int]:
        x, y = mapping.to_output(point[0], point[1])
        return math.floor(x), math.floor(y)

    if ruler is not None:
        a, b = at(ruler[0]), at(ruler[1])
        _plot(out, [p for p in _line(a, b) if p not in (a, b)])
    if cursor is not None:
        x, y = at(cursor)
        cross = [(x + d, y) for d in range(-arm, arm + 1) if d] + [
            (x, y + d) for d in range(-arm, arm + 1) if d
        ]
        _plot(out, cross)
    return out


Marks = tuple[tuple[int, int] | None, tuple[tuple[int, int], tuple[int, int]] | None]
"""The cursor (source pixel) and the ruler (two source pixels) to draw into the image."""


@dataclass
class Pointer:
    """The cursor of an image, at source-pixel precision, and the ruler measured with it."""

    cursor: tuple[int, int] | None = None
    active: bool = False
    """Cursor mode: the arrows move the cursor instead of stepping slices."""
    ruler: list[tuple[int, int]] = field(default_factory=list)
    """Its start, then its end (source pixels)."""

    def marks(self) -> Marks:
        """What to draw: the cursor while active, the ruler (to the cursor while unfinished)."""
        cursor = self.cursor if self.active else None
        ruler = (self.ruler[0], self.ruler[1]) if len(self.ruler) == 2 else None
        if len(self.ruler) == 1 and cursor is not None:
            ruler = (self.ruler[0], cursor)
        return cursor, ruler

    def reset(self) -> None:
        self.cursor, self.active, self.ruler = None, False, []

    def toggle(self, centre: tuple[int, int]) -> None:
        """Cursor mode on (at ``centre`` the first time) or off."""
        self.active = not self.active
        if self.active and self.cursor is None:
            self.cursor = centre

    def move(self, dx: int, dy: int, columns: int, rows: int) -> None:
        """Move the cursor, kept inside a ``columns`` × ``rows`` image."""
        if self.cursor is None:
            return
        col = min(max(self.cursor[0] + dx, 0), columns - 1)
        row = min(max(self.cursor[1] + dy, 0), rows - 1)
        self.cursor = (col, row)

    def mark(self) -> str | None:
        """Set the ruler's start, or its end, or start over; a sentence when it cannot."""
        if self.cursor is None:
            return None
        if len(self.ruler) == 2:
            self.ruler = []
        elif len(self.ruler) == 1 and self.ruler[0] == self.cursor:
            return "Move the cursor away from the start before setting the end."
        else:
            self.ruler.append(self.cursor)
        return None

    def text(self, loaded: LoadedSlice | None) -> str:
        """The readout line: the pixel under the cursor and its value, the ruler's length."""
        parts = []
        if self.active and self.cursor is not None and loaded is not None:
            parts.append(readout(loaded.frame, *self.cursor, loaded.info.units))
        if len(self.ruler) == 2 and loaded is not None:
            frame = loaded.frame
            distance = measure(
                self.ruler[0], self.ruler[1], frame.pixel_spacing, frame.spacing_kind
            )
            parts.append(f"distance {distance.text}")
        elif len(self.ruler) == 1:
            parts.append("ruler: move the cursor, m sets the end")
        return "  ·  ".join(parts)
