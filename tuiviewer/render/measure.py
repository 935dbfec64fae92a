"""Measurement maths on an image of modality values: ROI statistics, lengths and angles in mm.

Works on any 2D array of modality values with a Pixel Spacing, so the same code measures an
acquired slice (``Frame.values()``, ``Frame.pixel_spacing``) and a reformat
(:attr:`~tuiviewer.render.mpr.PlaneImage.values`, :attr:`~tuiviewer.render.mpr.PlaneImage.spacing`).
Positions are ``(x, y)`` = (column, row) in pixels with integers at pixel centres, as the
viewer's cursor uses them. A pixel belongs to an ROI when its centre lies inside the shape (how
Horos and OsiriX count); the area reported is the shape's own (π·a·b for an ellipse), which
does not depend on how the pixel grid falls. Samples without data (NaN: a gap, outside a
reformatted volume) are left out and counted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from tuiviewer.dicom.roi import RoiStats
from tuiviewer.exceptions import RenderError

Point = tuple[float, float]


def _check_image(values: np.ndarray) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 2 or arr.dtype.kind not in "uif":
        raise RenderError(f"Measurements need a 2D array of numbers, not {arr.dtype} {arr.shape}.")
    return arr


def _spacing(spacing: tuple[float, float] | None) -> tuple[float, float]:
    """(row spacing, column spacing) in mm; (1, 1) when the image has none (pixels)."""
    if spacing is None:
        return 1.0, 1.0
    row, col = float(spacing[0]), float(spacing[1])
    if not (row > 0 and col > 0 and math.isfinite(row) and math.isfinite(col)):
        raise RenderError(f"Pixel Spacing {spacing!r} is not two positive numbers.")
    return row, col


def ellipse_mask(shape: tuple[int, int], centre: Point, radii: Point) -> np.ndarray:
    """Pixels whose centre is inside the axis-aligned ellipse (radii in pixels, x then y)."""
    rx, ry = float(radii[0]), float(radii[1])
    if not (rx > 0 and ry > 0):
        raise RenderError(f"Ellipse radii {radii!r} must be positive.")
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    inside: np.ndarray = ((xx - centre[0]) / rx) ** 2 + ((yy - centre[1]) / ry) ** 2 <= 1.0 + 1e-9
    return inside


def rectangle_mask(shape: tuple[int, int], corner: Point, opposite: Point) -> np.ndarray:
    """Pixels whose centre is inside the rectangle spanned by two opposite corners."""
    x0, x1 = sorted((float(corner[0]), float(opposite[0])))
    y0, y1 = sorted((float(corner[1]), float(opposite[1])))
    if x1 - x0 <= 0 or y1 - y0 <= 0:
        raise RenderError(f"Rectangle {corner!r}–{opposite!r} has no area.")
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    inside: np.ndarray = (
        (xx >= x0 - 1e-9) & (xx <= x1 + 1e-9) & (yy >= y0 - 1e-9) & (yy <= y1 + 1e-9)
    )
    return inside


def roi_stats(
    values: np.ndarray, mask: np.ndarray, spacing: tuple[float, float] | None, area_mm2: float
) -> RoiStats:
    """Mean, SD, min and max of ``values`` where ``mask`` is set.

    Raises:
        RenderError: the ROI holds no pixel with a value.
    """
    arr = _check_image(values)
    if mask.shape != arr.shape:
        raise RenderError(f"ROI mask {mask.shape} does not fit the image {arr.shape}.")
    _spacing(spacing)
    picked = arr[mask].astype(np.float64)
    finite = picked[np.isfinite(picked)]
    if finite.size == 0:
        raise RenderError("The region holds no pixel with a value: draw it over the image.")
    return RoiStats(
        mean=float(finite.mean()),
        sd=float(finite.std()),
        minimum=float(finite.min()),
        maximum=float(finite.max()),
        area_mm2=float(area_mm2),
        pixels=int(finite.size),
        excluded=int(picked.size - finite.size),
    )


def ellipse_stats(
    values: np.ndarray, spacing: tuple[float, float] | None, centre: Point, radii: Point
) -> RoiStats:
    """Statistics inside an axis-aligned ellipse; area π · rx · ry in mm²."""
    row, col = _spacing(spacing)
    mask = ellipse_mask(_check_image(values).shape, centre, radii)
    return roi_stats(values, mask, spacing, math.pi * radii[0] * col * radii[1] * row)


def rectangle_stats(
    values: np.ndarray, spacing: tuple[float, float] | None, corner: Point, opposite: Point
) -> RoiStats:
    """Statistics inside a rectangle; area width · height in mm²."""
    row, col = _spacing(spacing)
    mask = rectangle_mask(_check_image(values).shape, corner, opposite)
    area = abs(opposite[0] - corner[0]) * col * abs(opposite[1] - corner[1]) * row
    return roi_stats(values, mask, spacing, area)


def _mm(vector: Sequence[float], spacing: tuple[float, float] | None) -> np.ndarray:
    row, col = _spacing(spacing)
    return np.asarray([vector[0] * col, vector[1] * row], dtype=np.float64)


def length_mm(start: Point, end: Point, spacing: tuple[float, float] | None) -> float:
    """Distance between two image positions in mm (pixels without a spacing)."""
    return float(np.linalg.norm(_mm((end[0] - start[0], end[1] - start[1]), spacing)))


def angle_degrees(
    first: Point, vertex: Point, second: Point, spacing: tuple[float, float] | None
) -> float:
    """The angle at ``vertex`` between the arms to ``first`` and ``second`` (0–180°), measured
    in mm so that non-square pixels do not skew it.

    Raises:
        RenderError: an arm has no length.
    """
    a = _mm((first[0] - vertex[0], first[1] - vertex[1]), spacing)
    b = _mm((second[0] - vertex[0], second[1] - vertex[1]), spacing)
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0 or nb == 0:
        raise RenderError("An angle needs two arms of non-zero length.")
    cosine = max(-1.0, min(1.0, float(a @ b) / (na * nb)))
    return math.degrees(math.acos(cosine))
