"""Resize, zoom and pan an 8-bit image for a target pixel grid, and choose that grid.

Shrinking averages every source pixel that falls under an output pixel (area averaging), so a
512-pixel CT squeezed into 120 terminal columns keeps thin structures as grey instead of
dropping or aliasing them. Enlarging uses nearest neighbour by default, which shows each source
pixel as a block of one value (what a reader inspects at high zoom), or bilinear on request.

Every method is one separable linear map: output = Wy · image · Wxᵀ with small weight matrices
built per axis, which handles shrink on one axis and enlarge on the other, zoom and pan (a
sub-rectangle of the source mapped to the output) and out-of-image parts (zero weight: black).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import numpy as np

from tuiviewer.exceptions import RenderError


class Interpolation(Enum):
    """How output pixels are computed from source pixels."""

    AUTO = "auto"
    """AREA on an axis that shrinks, NEAREST on one that enlarges or keeps its size."""
    AREA = "area"
    """Mean of the source area under the output pixel (box filter with fractional edges)."""
    NEAREST = "nearest"
    """The source pixel under the output pixel's centre."""
    BILINEAR = "bilinear"
    """Linear blend of the two nearest source pixel centres on each axis."""


@dataclass(frozen=True)
class AxisMap:
    """Output pixel ``i`` covers source interval ``[start + i*step, start + (i+1)*step)``."""

    n_in: int
    n_out: int
    start: float
    step: float


def _weights(axis: AxisMap, method: Interpolation) -> np.ndarray:
    """float32 matrix ``(n_out, n_in)``; rows for pixels outside the source sum to less than 1."""
    n_in, n_out, start, step = axis.n_in, axis.n_out, axis.start, axis.step
    w = np.zeros((n_out, n_in), dtype=np.float32)
    if method is Interpolation.AUTO:
        method = Interpolation.AREA if step > 1.0 else Interpolation.NEAREST
    i = np.arange(n_out, dtype=np.float64)
    if method is Interpolation.AREA:
        lo = start + i * step
        hi = lo + step
        first = np.floor(lo).astype(np.int64)
        last = np.ceil(hi).astype(np.int64)
        for k in range(n_out):
            for j in range(max(first[k], 0), min(last[k], n_in)):
                overlap = min(hi[k], j + 1.0) - max(lo[k], float(j))
                if overlap > 0:
                    w[k, j] = overlap / step
    elif method is Interpolation.NEAREST:
        nearest = np.floor(start + (i + 0.5) * step).astype(np.int64)
        hit = (nearest >= 0) & (nearest < n_in)
        w[np.nonzero(hit)[0], nearest[hit]] = 1.0
    else:
        centre = start + (i + 0.5) * step - 0.5
        covered = (centre > -0.5) & (centre < n_in - 0.5)
        clamped = np.clip(centre, 0.0, n_in - 1.0)
        j0 = np.floor(clamped).astype(np.int64)
        j1 = np.minimum(j0 + 1, n_in - 1)
        frac = (clamped - j0).astype(np.float32)
        rows = np.nonzero(covered)[0]
        np.add.at(w, (rows, j0[covered]), 1.0 - frac[covered])
        np.add.at(w, (rows, j1[covered]), frac[covered])
    return w


def _validate_image(img: np.ndarray) -> None:
    if img.dtype != np.uint8 or img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
        raise RenderError(
            f"Resampling expects uint8 (H, W) or (H, W, 3), got {img.dtype} {img.shape}."
        )
    if img.shape[0] < 1 or img.shape[1] < 1:
        raise RenderError(f"Cannot resample an empty image of shape {img.shape}.")


def remap(
    img: np.ndarray,
    x_axis: AxisMap,
    y_axis: AxisMap,
    method: Interpolation = Interpolation.AUTO,
) -> np.ndarray:
    """Apply per-axis maps to a uint8 ``(H, W)`` or ``(H, W, 3)`` image; returns uint8."""
    _validate_image(img)
    if (y_axis.n_in, x_axis.n_in) != img.shape[:2]:
        raise RenderError(f"Axis maps for {y_axis.n_in}x{x_axis.n_in} do not fit {img.shape}.")
    if min(x_axis.n_out, y_axis.n_out) < 1 or min(x_axis.step, y_axis.step) <= 0:
        raise RenderError(f"Output size {x_axis.n_out}x{y_axis.n_out} is not positive.")
    identity = (
        x_axis.n_in == x_axis.n_out
        and y_axis.n_in == y_axis.n_out
        and x_axis.start == 0
        and y_axis.start == 0
        and x_axis.step == 1
        and y_axis.step == 1
    )
    if identity:
        return img
    wy = _weights(y_axis, method)
    wx = _weights(x_axis, method)
    src = img.astype(np.float32)
    out: np.ndarray
    if img.ndim == 2:
        out = wy @ src @ wx.T
    else:
        out = np.einsum("oh,hwc,pw->opc", wy, src, wx, optimize=True)
    result: np.ndarray = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return result


def resample(
    img: np.ndarray, out_w: int, out_h: int, method: Interpolation = Interpolation.AUTO
) -> np.ndarray:
    """The whole image stretched to ``out_w`` × ``out_h`` (uint8 in, uint8 out).

    Raises:
        RenderError: not uint8 gray/RGB, or a size below 1.
    """
    _validate_image(img)
    if out_w < 1 or out_h < 1:
        raise RenderError(f"Target size {out_w}x{out_h} must be at least 1x1.")
    h, w = img.shape[:2]
    return remap(
        img,
        AxisMap(w, out_w, 0.0, w / out_w),
        AxisMap(h, out_h, 0.0, h / out_h),
        method,
    )


def display_size(
    rows: int,
    cols: int,
    pixel_spacing: tuple[float, float] | None,
    max_w: int,
    max_h: int,
) -> tuple[int, int]:
    """The largest ``(width, height)`` within ``max_w`` × ``max_h`` with the physical aspect.

    ``pixel_spacing`` is (row spacing, column spacing) as in Pixel Spacing (0028,0030): the
    distance between rows (vertical) then between columns (horizontal), PS3.3 10.7.1.3; a Pixel
    Aspect Ratio (0028,0034) (vertical, horizontal) can be passed the same way. Square pixels
    when None.
    """
    if rows < 1 or cols < 1:
        raise RenderError(f"Image size {cols}x{rows} must be at least 1x1.")
    if max_w < 1 or max_h < 1:
        raise RenderError(f"Display size {max_w}x{max_h} must be at least 1x1.")
    row_sp, col_sp = pixel_spacing if pixel_spacing else (1.0, 1.0)
    if not (row_sp > 0 and col_sp > 0 and math.isfinite(row_sp) and math.isfinite(col_sp)):
        row_sp, col_sp = 1.0, 1.0  # a broken spacing must not hide the image
    phys_w, phys_h = cols * col_sp, rows * row_sp
    scale = min(max_w / phys_w, max_h / phys_h)
    width = max(1, min(max_w, int(round(phys_w * scale))))
    height = max(1, min(max_h, int(round(phys_h * scale))))
    return width, height
