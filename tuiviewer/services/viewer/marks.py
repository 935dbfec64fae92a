"""Marks drawn into the rendered pixels (the cursor cross and the ruler), so they look the same in
every graphics mode and never share cells with text."""

from __future__ import annotations

import math

import numpy as np

from tuiviewer.services.viewer.geometry import ViewMapping


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
