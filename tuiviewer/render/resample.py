"""Resize, zoom and pan an 8-bit image for a target pixel grid, and choose that grid.

Shrinking averages every source pixel that falls under an output pixel (area averaging), so a
512-pixel CT squeezed into 120 terminal columns keeps thin structures as grey instead of
dropping or aliasing them. Enlarging uses nearest neighbour by default, which shows each source
pixel as a block of one value (what a reader inspects at high zoom), or bilinear on request.

Every method is one separable linear map: output = Wy · image · Wxᵀ with small weight matrices
built per axis, which handles shrink on one axis and enlarge on the other, zoom and pan (a
sub-rectangle of the source mapped to the output) and out-of-image parts (zero weight: black).

The map is applied as a few taps per output pixel (gathered rows or columns times their weights),
never as a matrix product: a product runs on BLAS's thread pool, which on a busy 2-core server
turns a sub-millisecond resize into tens of milliseconds (issue 10). Nearest neighbour on both
axes is a plain gather of the source values.
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


@dataclass(frozen=True)
class _Taps:
    """One axis of the map: output ``i`` = Σₜ ``weight[i, t]`` × source ``index[i, t]``.

    Unused taps (and outputs outside the source) have weight 0; ``nearest`` is set when every
    output takes one source value unchanged (index -1 for black), so no arithmetic is needed.
    """

    index: np.ndarray
    weight: np.ndarray
    nearest: np.ndarray | None


def _taps(axis: AxisMap, method: Interpolation) -> _Taps:
    """The taps of one axis for ``method`` (AUTO: AREA when shrinking, else NEAREST)."""
    n_in, n_out, start, step = axis.n_in, axis.n_out, axis.start, axis.step
    if method is Interpolation.AUTO:
        method = Interpolation.AREA if step > 1.0 else Interpolation.NEAREST
    i = np.arange(n_out, dtype=np.float64)
    if method is Interpolation.NEAREST:
        nearest = np.floor(start + (i + 0.5) * step).astype(np.intp)
        nearest[(nearest < 0) | (nearest >= n_in)] = -1
        hit = nearest >= 0
        return _Taps(np.where(hit, nearest, 0)[:, None], hit.astype(np.float32)[:, None], nearest)
    if method is Interpolation.AREA:
        lo = start + i * step
        hi = lo + step
        first = np.floor(lo).astype(np.intp)
        count = int((np.ceil(hi).astype(np.intp) - first).max())
        j = first[:, None] + np.arange(max(count, 1), dtype=np.intp)[None, :]
        overlap = np.minimum(hi[:, None], j + 1.0) - np.maximum(lo[:, None], j.astype(np.float64))
        inside = (j >= 0) & (j < n_in) & (overlap > 0)
        weight = np.where(inside, overlap / step, 0.0).astype(np.float32)
        return _Taps(np.where(inside, j, 0), weight, None)
    centre = start + (i + 0.5) * step - 0.5
    covered = (centre > -0.5) & (centre < n_in - 0.5)
    clamped = np.clip(centre, 0.0, n_in - 1.0)
    j0 = np.floor(clamped).astype(np.intp)
    j1 = np.minimum(j0 + 1, n_in - 1)
    frac = (clamped - j0).astype(np.float32)
    weight = np.stack([1.0 - frac, frac], axis=1) * covered[:, None]
    return _Taps(np.stack([j0, j1], axis=1), weight.astype(np.float32), None)


def _apply_rows(src: np.ndarray, taps: _Taps) -> np.ndarray:
    """The taps applied along the first axis of a float32 image, one tap at a time.

    Gathering whole rows is a contiguous copy, so the columns pass runs on the transpose.
    """
    shape = (taps.weight.shape[0],) + (1,) * (src.ndim - 1)
    out: np.ndarray = src[taps.index[:, 0]]
    out *= taps.weight[:, 0].reshape(shape)
    for t in range(1, taps.index.shape[1]):
        term = src[taps.index[:, t]]
        term *= taps.weight[:, t].reshape(shape)
        out += term
    return out


def _gather(img: np.ndarray, iy: np.ndarray, ix: np.ndarray) -> np.ndarray:
    """Nearest neighbour on both axes: pick source pixels, black where outside the source."""
    out: np.ndarray = img[np.clip(iy, 0, None)][:, np.clip(ix, 0, None)]
    if (iy < 0).any() or (ix < 0).any():
        out[iy < 0] = 0
        out[:, ix < 0] = 0
    return out


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
    ty, tx = _taps(y_axis, method), _taps(x_axis, method)
    if ty.nearest is not None and tx.nearest is not None:
        return _gather(img, ty.nearest, tx.nearest)
    rows = _apply_rows(img.astype(np.float32), ty)
    out = _apply_rows(np.ascontiguousarray(rows.swapaxes(0, 1)), tx).swapaxes(0, 1)
    result: np.ndarray = np.ascontiguousarray(np.clip(np.rint(out), 0, 255).astype(np.uint8))
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
