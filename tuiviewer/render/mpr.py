"""Planes through a volume: axial, coronal, sagittal and oblique reformats, and slabs.

A plane is two perpendicular unit vectors in patient space (LPS, PS3.3 C.7.6.2.1.1): ``u``
points to the right of the displayed image and ``v`` down, as Image Orientation (Patient) does
for an acquired image, so :func:`tuiviewer.services.viewer.geometry.edge_labels` gives the
orientation letters of a reformat from :attr:`PlaneImage.orientation` exactly as for a slice.
The standard planes are shown as readers expect: axial seen from the feet (patient's left on
the right), coronal from the front and sagittal from the patient's left, both with the head at
the top.

Every output pixel is a point in patient space, mapped into the volume through its geometry
(:meth:`~tuiviewer.render.volume.VolumeGeometry.to_index`), so tilted and irregular stacks are
sampled where the patient really is. When a plane follows two axes of the volume (the usual
case) the work is separable: one layer of voxels is taken (interpolated between the two
neighbouring layers, or reduced over a slab) and resampled along two axes, which costs a few
milliseconds; any other plane is sampled trilinearly. Output pixels are square. Samples in a
gap between slices, in a slice not loaded yet, or outside the volume are NaN in
:attr:`PlaneImage.values` and black on screen: nothing is interpolated across missing data.

Grey values go through the same VOI stage as a slice (:func:`tuiviewer.render.lut.apply_window`).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from functools import cached_property
from typing import Any

import numpy as np

from tuiviewer.exceptions import RenderError
from tuiviewer.render.lut import Window, apply_window, full_range_window
from tuiviewer.render.volume import Vec3, Volume, VolumeError

__all__ = [
    "STANDARD_PLANES",
    "Fidelity",
    "Plane",
    "PlaneImage",
    "PlaneRequest",
    "Projection",
    "extract_plane",
    "mpr_planes",
    "plane_key",
    "step_crosshair",
]


class Projection(Enum):
    """How the samples of a slab along the plane normal make one pixel."""

    MIP = "mip"
    """Maximum intensity projection (vessels, nodules)."""
    MINIP = "minip"
    """Minimum intensity projection (airways)."""
    MEAN = "mean"
    """Average (a thick slice with less noise)."""


#: (u, v) of the standard planes: axial from the feet, coronal from the front, sagittal from the
#: patient's left; head at the top of coronal and sagittal.
STANDARD_PLANES: dict[str, tuple[Vec3, Vec3]] = {
    "axial": ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
    "coronal": ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0)),
    "sagittal": ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0)),
}


def _unit(vector: Sequence[float]) -> np.ndarray:
    v = np.asarray(vector, dtype=np.float64)
    length = float(np.linalg.norm(v))
    if v.shape != (3,) or not math.isfinite(length) or length < 1e-9:
        raise RenderError(f"Direction {list(vector)!r} is not a 3-vector of non-zero length.")
    return v / length


def _vec(v: np.ndarray) -> Vec3:
    return (float(v[0]), float(v[1]), float(v[2]))


_STANDARD: dict[str, Plane] = {}
"""The standard planes, made once (a plane is immutable)."""


@dataclass(frozen=True)
class Plane:
    """A displayed plane's orientation: ``u`` to the right, ``v`` down (unit, perpendicular)."""

    u: Vec3
    v: Vec3
    name: str = "oblique"

    def __post_init__(self) -> None:
        u, v = _unit(self.u), _unit(self.v)
        if abs(float(u @ v)) > 1e-6:
            raise RenderError(f"Plane axes {self.u!r} and {self.v!r} are not perpendicular.")
        object.__setattr__(self, "u", _vec(u))
        object.__setattr__(self, "v", _vec(v))

    @classmethod
    def standard(cls, name: str) -> Plane:
        """``"axial"``, ``"coronal"`` or ``"sagittal"``.

        Raises:
            RenderError: another name.
        """
        key = name.strip().lower()
        if key not in STANDARD_PLANES:
            raise RenderError(
                f"Plane {name!r} is not one of {', '.join(STANDARD_PLANES)} (or an oblique one)."
            )
        plane = _STANDARD.get(key)
        if plane is None or type(plane) is not cls:
            u, v = STANDARD_PLANES[key]
            plane = _STANDARD[key] = cls(u, v, key)
        return plane

    @cached_property
    def normal(self) -> Vec3:
        """``u × v``: the direction a slab extends and the crosshair steps along (worked out
        once: the panes' titles ask for it on every crosshair step)."""
        return _vec(np.cross(np.asarray(self.u), np.asarray(self.v)))

    @property
    def orientation(self) -> tuple[float, float, float, float, float, float]:
        """As Image Orientation (Patient): the row (``u``) then the column (``v``) cosines."""
        return (*self.u, *self.v)

    def rotated(self, axis: Sequence[float], degrees: float) -> Plane:
        """The plane turned by ``degrees`` about ``axis`` (right-handed, Rodrigues' formula)."""
        k = _unit(axis)
        theta = math.radians(degrees)

        def turn(x: Vec3) -> np.ndarray:
            a = np.asarray(x)
            return (
                a * math.cos(theta)
                + np.cross(k, a) * math.sin(theta)
                + k * float(k @ a) * (1 - math.cos(theta))
            )

        if degrees % 360 == 0:
            return self
        return Plane(_vec(turn(self.u)), _vec(turn(self.v)), "oblique")

    def tilted(self, horizontal: float = 0.0, vertical: float = 0.0) -> Plane:
        """Tilted about the displayed horizontal axis (``u``) and then the vertical one (``v``):
        what the viewer's oblique keys do, always about the crosshair."""
        plane = self.rotated(self.u, horizontal) if horizontal else self
        return plane.rotated(plane.v, vertical) if vertical else plane


@dataclass(frozen=True)
class PlaneRequest:
    """What to show of a volume."""

    plane: Plane
    at: Vec3 | None = None
    """The crosshair (patient mm) the plane passes through; None: the volume's centre voxel."""
    slab: float = 0.0
    """Slab thickness in mm along the plane normal; 0 for a thin plane."""
    projection: Projection = Projection.MIP
    size: tuple[int, int] | None = None
    """(width, height) pixel box to fit the volume's section in; None: native resolution
    (square pixels of the finest voxel spacing in the plane), grid aligned on the crosshair."""
    zoom: float = 1.0
    pan: tuple[float, float] = (0.0, 0.0)
    """Image shift in output pixels (x right, y down), with ``size``."""
    window: Window | None = None
    """None: the volume's first window, else the full range of the plane."""
    invert: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.slab) and self.slab >= 0):
            raise RenderError(f"Slab thickness {self.slab!r} mm must be 0 or more.")
        if not (math.isfinite(self.zoom) and self.zoom > 0):
            raise RenderError(f"Zoom {self.zoom!r} must be a positive number.")
        if self.size is not None and (self.size[0] < 1 or self.size[1] < 1):
            raise RenderError(f"Size {self.size[0]}x{self.size[1]} must be at least 1x1.")
        if self.at is not None and not all(math.isfinite(float(c)) for c in self.at):
            raise RenderError(f"Crosshair {self.at!r} is not a finite point.")


@dataclass(frozen=True)
class Fidelity:
    """What the badge of a pane must say about how its image was made."""

    reformatted: bool
    """The plane is not the acquired one (or the stack is tilted): values are resampled."""
    slab: str
    """``"MIP 20 mm"`` etc., ``""`` for a thin plane."""
    downsampled: float
    """Output pixel size over the native one, 1.0 when nothing was dropped."""
    volume_downsample: int
    """The volume itself is averaged ``n × n`` in-plane (memory budget)."""
    holes: bool
    """Part of the plane falls in missing or not-yet-loaded slices."""

    @property
    def badge(self) -> str:
        parts = []
        if self.reformatted:
            parts.append("MPR")
        if self.slab:
            parts.append(self.slab)
        scale = self.downsampled * self.volume_downsample
        if scale > 1.0 + 1e-3:
            parts.append(f"↓{scale:.1f}×")
        if self.holes:
            parts.append("gaps")
        return " · ".join(parts)


@dataclass(frozen=True)
class PlaneImage:
    """A plane of a volume: modality values, the 8-bit image, and where each pixel is."""

    values: np.ndarray = field(repr=False)
    """float32 ``(H, W)`` modality values (HU for CT); NaN where there is no data."""
    pixels: np.ndarray = field(repr=False)
    """uint8 ``(H, W)``: :attr:`values` through the window; black where there is no data."""
    window: Window
    plane: Plane
    at: Vec3
    origin: Vec3
    """Patient position of the centre of pixel (0, 0)."""
    pixel_mm: float
    """Side of a (square) output pixel in mm."""
    fidelity: Fidelity
    notes: tuple[str, ...] = ()
    mode: str = "L"
    key: tuple[object, ...] = field(default=(), repr=False, compare=False)
    """What the pixels depend on (see :func:`mpr_planes`): the same key, the same image."""

    @property
    def orientation(self) -> tuple[float, float, float, float, float, float]:
        """For :func:`tuiviewer.services.viewer.geometry.edge_labels`: the plane's u then v
        cosines."""
        return self.plane.orientation

    @property
    def spacing(self) -> tuple[float, float]:
        """As Pixel Spacing (row, column), for measurements on this image."""
        return (self.pixel_mm, self.pixel_mm)

    def patient_at(self, x: float, y: float) -> Vec3:
        """Patient position (mm) of image position (x, y); integers are pixel centres."""
        p = (
            np.asarray(self.origin)
            + x * self.pixel_mm * np.asarray(self.plane.u)
            + y * self.pixel_mm * np.asarray(self.plane.v)
        )
        return _vec(p)

    def pixel_of(self, point: Sequence[float]) -> tuple[float, float]:
        """Image position (x, y) of a patient point projected on the plane."""
        rel = np.asarray(point, dtype=np.float64) - np.asarray(self.origin)
        return (
            float(rel @ np.asarray(self.plane.u)) / self.pixel_mm,
            float(rel @ np.asarray(self.plane.v)) / self.pixel_mm,
        )

    @property
    def crosshair(self) -> tuple[float, float]:
        """Where the crosshair is in this image (x, y)."""
        return self.pixel_of(self.at)


# --------------------------------------------------------------------------------------------
# Sampling helpers

_AXES = ("o", "i", "j")
_SNAP = 1e-6


@dataclass(frozen=True)
class _Axis:
    """Linear interpolation along one volume axis: ``(1 - f) · [i0] + f · [i1]``."""

    i0: np.ndarray
    i1: np.ndarray
    f: np.ndarray
    valid: np.ndarray


def _axis(volume: Volume, name: str, coord: np.ndarray) -> _Axis:
    """Interpolation indices for coordinates along axis ``name`` (o in mm, i/j in voxels)."""
    g = volume.geometry
    c = np.asarray(coord, dtype=np.float64)
    if name == "o":
        offsets = np.asarray(g.offsets)
        half = g.slice_spacing / 2.0
        valid = (c >= offsets[0] - half - _SNAP) & (c <= offsets[-1] + half + _SNAP)
        cc = np.clip(c, offsets[0], offsets[-1])
        k0 = np.clip(np.searchsorted(offsets, cc, side="right") - 1, 0, len(offsets) - 2)
        k1 = k0 + 1
        f = (cc - offsets[k0]) / (offsets[k1] - offsets[k0])
        i0, i1 = k0, k1
    else:
        n = g.rows if name == "i" else g.cols
        valid = (c >= -0.5 - _SNAP) & (c <= n - 0.5 + _SNAP)
        cc = np.clip(c, 0.0, n - 1.0)
        i0 = np.minimum(np.floor(cc).astype(np.int64), max(n - 2, 0))
        i1 = np.minimum(i0 + 1, n - 1)
        f = cc - i0
    at_lower = f < _SNAP
    at_upper = f > 1.0 - _SNAP
    i1 = np.where(at_lower, i0, i1)
    i0 = np.where(at_upper, i1, i0)
    f = np.where(at_lower | at_upper, 0.0, f)
    if name == "o" and g.gaps:
        for gap in g.gaps:
            inside = (i0 == gap.after) & (i1 == gap.after + 1)
            valid &= ~inside
    return _Axis(i0.astype(np.int64), i1.astype(np.int64), f.astype(np.float32), valid)


def _rows_of_slices(volume: Volume, ks: np.ndarray, picker: tuple[Any, ...]) -> np.ndarray:
    """Modality values of ``data[slot(k)][picker]`` for each k (float32), NaN when not loaded."""
    slots = volume.slots[ks]
    loaded = slots >= 0
    raw = volume.data[(np.where(loaded, slots, 0), *picker)]
    values: np.ndarray = raw.astype(np.float32)
    shape = (-1,) + (1,) * (values.ndim - 1)
    values *= volume.slope[ks].astype(np.float32).reshape(shape)
    values += volume.intercept[ks].astype(np.float32).reshape(shape)
    values[~loaded] = np.nan
    return values


def _voxels(volume: Volume, k: np.ndarray, i: Any, j: Any) -> np.ndarray:
    """Modality values (float32) at broadcast indices: slice ``k``, row ``i``, column ``j``;
    NaN where the slice is not loaded. The same arithmetic as :func:`_rows_of_slices`."""
    slots = volume.slots[k]
    loaded = slots >= 0
    values: np.ndarray = volume.data[np.where(loaded, slots, 0), i, j].astype(np.float32)
    values *= volume.slope[k].astype(np.float32)
    values += volume.intercept[k].astype(np.float32)
    if not loaded.all():
        values[np.broadcast_to(~loaded, values.shape)] = np.nan
    return values


def _taken_layer(
    volume: Volume, axis: str, coord: float, take: tuple[np.ndarray, np.ndarray]
) -> np.ndarray:
    """The layer at ``coord`` along ``axis``, interpolated, but only at the indices ``take``
    along its two axes (in (o, i, j) order): the voxels a pane's resampling reads, not the
    whole section (a sagittal layer of 300 slices of 512 rows is 150 000 reads, one cache
    line each, for a pane of a few thousand pixels)."""
    ax = _axis(volume, axis, np.asarray([coord]))
    first, second = take[0][:, None], take[1][None, :]
    if not ax.valid[0]:
        return np.full((len(take[0]), len(take[1])), np.nan, dtype=np.float32)
    i0, i1, f = int(ax.i0[0]), int(ax.i1[0]), float(ax.f[0])

    def at(n: int) -> np.ndarray:
        if axis == "o":
            return _voxels(volume, np.asarray([[n]]), first, second)
        if axis == "i":
            return _voxels(volume, first, n, second)
        return _voxels(volume, first, second, n)

    a = at(i0)
    return _blend(a, a if i1 == i0 else at(i1), f)


def _blend(a: np.ndarray, b: np.ndarray, f: np.ndarray | float) -> np.ndarray:
    """``a + (b - a) · f``: exact where ``a == b``, so a uniform region keeps its value."""
    if np.isscalar(f) or np.ndim(f) == 0:
        if float(f) == 0.0:
            return a
        scaled: np.ndarray = a + (b - a) * np.float32(float(f))
        return scaled
    if not np.any(f):
        return a  # on the voxels: nothing to interpolate
    blended: np.ndarray = a + (b - a) * f
    return blended


def _layer(
    volume: Volume, axis: str, coords: np.ndarray, projection: Projection | None
) -> np.ndarray:
    """The voxel layer(s) at ``coords`` along ``axis``, interpolated, reduced over the slab.

    Returns a 2D float32 array over the two other axes, in (o, i, j) order.
    """
    if len(np.atleast_1d(coords)) > 1 and axis != "o":
        fast = _slab_of_rows(volume, axis, np.asarray(coords), projection or Projection.MEAN)
        if fast is not None:
            return fast
    layers = []
    for c in np.atleast_1d(coords):
        ax = _axis(volume, axis, np.asarray([c]))
        if not ax.valid[0]:
            shape = _layer_shape(volume, axis)
            layers.append(np.full(shape, np.nan, dtype=np.float32))
            continue
        i0, i1, f = int(ax.i0[0]), int(ax.i1[0]), float(ax.f[0])
        if axis == "o":
            a = _rows_of_slices(volume, np.asarray([i0]), ())[0]
            b = a if i1 == i0 else _rows_of_slices(volume, np.asarray([i1]), ())[0]
        else:
            ks = np.arange(volume.geometry.slices)
            pick = (i0,) if axis == "i" else (slice(None), i0)
            a = _rows_of_slices(volume, ks, pick)
            if i1 == i0:
                b = a
            else:
                b = _rows_of_slices(volume, ks, (i1,) if axis == "i" else (slice(None), i1))
        layers.append(_blend(a, b, f))
    if len(layers) == 1:
        return layers[0]
    return _reduce(np.stack(layers), projection or Projection.MEAN)


def _slab_of_rows(
    volume: Volume, axis: str, coords: np.ndarray, projection: Projection
) -> np.ndarray | None:
    """A slab across the rows (``i``) or columns (``j``) of every slice, reduced on the stored
    values in one pass, when its samples fall exactly on voxel layers; None otherwise.

    Exact because max, min and mean commute with each slice's rescale ``m · v + b`` for
    ``m > 0`` (PS3.3 C.11.1), which is applied once to the reduced layer.
    """
    index = np.rint(coords)
    size = volume.geometry.rows if axis == "i" else volume.geometry.cols
    inside = (index >= 0) & (index < size)
    if not np.allclose(coords, index, atol=1e-6) or not inside.any() or np.any(volume.slope <= 0):
        return None
    used = index[inside].astype(np.int64)
    lo, hi = int(used.min()), int(used.max())
    if hi - lo + 1 != len(used):
        return None
    slots = volume.slots
    loaded = slots >= 0
    picked = np.where(loaded, slots, 0)
    block = volume.data[picked, lo : hi + 1] if axis == "i" else volume.data[picked, :, lo : hi + 1]
    along = 1 if axis == "i" else 2
    if projection is Projection.MIP:
        reduced = block.max(axis=along)
    elif projection is Projection.MINIP:
        reduced = block.min(axis=along)
    else:
        reduced = block.mean(axis=along, dtype=np.float64)
    values: np.ndarray = reduced.astype(np.float32)
    values *= volume.slope.astype(np.float32)[:, None]
    values += volume.intercept.astype(np.float32)[:, None]
    values[~loaded] = np.nan
    return values


def _layer_shape(volume: Volume, axis: str) -> tuple[int, int]:
    g = volume.geometry
    return {"o": (g.rows, g.cols), "i": (g.slices, g.cols), "j": (g.slices, g.rows)}[axis]


def _reduce(stack: np.ndarray, projection: Projection) -> np.ndarray:
    """NaN-aware reduction over axis 0: a sample with no data does not count."""
    if projection is Projection.MIP:
        out: np.ndarray = np.fmax.reduce(stack, axis=0)
    elif projection is Projection.MINIP:
        out = np.fmin.reduce(stack, axis=0)
    else:
        # Not np.nanmean: it warns on all-NaN columns, and silencing that with catch_warnings
        # swaps process-wide state under other threads (see dicom/warned.py).
        valid = ~np.isnan(stack)
        total = np.where(valid, stack, 0).sum(axis=0, dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):  # all-NaN columns stay NaN
            out = (total / valid.sum(axis=0)).astype(np.float32)
    return out


def _resample(
    volume: Volume, layer: np.ndarray, axes: tuple[str, str], coords: tuple[np.ndarray, np.ndarray]
) -> np.ndarray:
    """Separable linear resampling of ``layer`` (axes ``axes``) at the output rows and columns,
    in the order that keeps the intermediate image smaller (a tall coronal of 300 slices is
    resampled along its 512 columns first)."""
    ay = _axis(volume, axes[0], coords[0])
    ax = _axis(volume, axes[1], coords[1])
    return _resample_along(layer, ay, ax, layer.shape)


def _resample_along(
    layer: np.ndarray, ay: _Axis, ax: _Axis, section: tuple[int, ...]
) -> np.ndarray:
    """:func:`_resample` with the interpolation of both axes worked out; the order follows the
    whole ``section`` (rows, columns) the layer is cut from, so a layer of only the voxels
    read gives the same values to the last bit."""
    if len(ay.i0) * section[1] <= section[0] * len(ax.i0):
        rows = _blend(layer[ay.i0], layer[ay.i1], ay.f[:, None])
        out = _blend(rows[:, ax.i0], rows[:, ax.i1], ax.f[None, :])
    else:
        cols = _blend(layer[:, ax.i0], layer[:, ax.i1], ax.f[None, :])
        out = _blend(cols[ay.i0], cols[ay.i1], ay.f[:, None])
    out[~ay.valid] = np.nan
    out[:, ~ax.valid] = np.nan
    result: np.ndarray = np.ascontiguousarray(out, dtype=np.float32)
    return result


def _used(axis: _Axis) -> tuple[np.ndarray, _Axis]:
    """The layer indices ``axis`` reads, and ``axis`` renumbered to read them in that order."""
    used, inverse = np.unique(np.concatenate([axis.i0, axis.i1]), return_inverse=True)
    n = len(axis.i0)
    return used, replace(axis, i0=inverse[:n].astype(np.int64), i1=inverse[n:].astype(np.int64))


SPARSE_FROM = 4
"""A thin plane reads only the voxels its pane samples when the whole section is this many
times as many voxels."""


def _trilinear(volume: Volume, o: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Values at arbitrary (o, i, j) points (any shape), NaN where there is no data."""
    shape = o.shape
    ak = _axis(volume, "o", o.ravel())
    ai = _axis(volume, "i", i.ravel())
    aj = _axis(volume, "j", j.ravel())

    def at(k: np.ndarray, ii: np.ndarray, jj: np.ndarray) -> np.ndarray:
        slots = volume.slots[k]
        raw: np.ndarray = volume.data[np.where(slots >= 0, slots, 0), ii, jj].astype(np.float32)
        raw *= volume.slope[k].astype(np.float32)
        raw += volume.intercept[k].astype(np.float32)
        raw[slots < 0] = np.nan
        return raw

    def bilinear(k: np.ndarray) -> np.ndarray:
        top = _blend(at(k, ai.i0, aj.i0), at(k, ai.i0, aj.i1), aj.f)
        bottom = _blend(at(k, ai.i1, aj.i0), at(k, ai.i1, aj.i1), aj.f)
        return _blend(top, bottom, ai.f)

    lower = bilinear(ak.i0)
    upper = lower if np.array_equal(ak.i0, ak.i1) else bilinear(ak.i1)
    values = _blend(lower, upper, ak.f)
    values[~(ak.valid & ai.valid & aj.valid)] = np.nan
    result: np.ndarray = values.reshape(shape).astype(np.float32, copy=False)
    return result


# --------------------------------------------------------------------------------------------
# Planes


@dataclass(frozen=True)
class _Grid:
    origin: np.ndarray
    step: float
    width: int
    height: int
    native: float


def _native_step(volume: Volume, plane: Plane) -> float:
    g = volume.geometry
    return min(g.spacing_along(plane.u), g.spacing_along(plane.v))


def _grid(volume: Volume, plane: Plane, at: np.ndarray, request: PlaneRequest) -> _Grid:
    u, v = np.asarray(plane.u), np.asarray(plane.v)
    rel = volume.geometry.corners() - at
    cu, cv = rel @ u, rel @ v
    native = _native_step(volume, plane)
    if request.size is None:
        step = native / request.zoom
        c0 = math.floor(-cu.min() / step + 1e-6)
        r0 = math.floor(-cv.min() / step + 1e-6)
        width = c0 + math.floor(cu.max() / step + 1e-6) + 1
        height = r0 + math.floor(cv.max() / step + 1e-6) + 1
        origin = at - c0 * step * u - r0 * step * v
        return _Grid(origin, step, max(width, 1), max(height, 1), native)
    box_w, box_h = request.size
    extent_u = float(cu.max() - cu.min()) + native
    extent_v = float(cv.max() - cv.min()) + native
    scale = min(box_w / extent_u, box_h / extent_v)
    width = max(1, min(box_w, round(extent_u * scale)))
    height = max(1, min(box_h, round(extent_v * scale)))
    step = 1.0 / (scale * request.zoom)
    centre = (
        at
        + (cu.min() + cu.max()) / 2.0 * u
        + (cv.min() + cv.max()) / 2.0 * v
        - request.pan[0] * step * u
        - request.pan[1] * step * v
    )
    origin = centre - (width - 1) / 2.0 * step * u - (height - 1) / 2.0 * step * v
    return _Grid(origin, step, width, height, native)


def _index_frame(
    volume: Volume, grid: _Grid, plane: Plane
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(o, i, j) of pixel (0, 0) and their change per output column and per output row."""
    g = volume.geometry
    u, v = np.asarray(plane.u), np.asarray(plane.v)
    points = np.stack([grid.origin, grid.origin + grid.step * u, grid.origin + grid.step * v])
    o, i, j = g.to_index(points)
    base = np.asarray([o[0], i[0], j[0]])
    return base, np.asarray([o[1], i[1], j[1]]) - base, np.asarray([o[2], i[2], j[2]]) - base


def _single_axis(delta: np.ndarray) -> int | None:
    scale = max(float(np.abs(delta).max()), 1e-12)
    nonzero = [n for n in range(3) if abs(delta[n]) > 1e-9 * max(scale, 1.0)]
    return nonzero[0] if len(nonzero) == 1 else None


def _sample_plane(
    volume: Volume, grid: _Grid, plane: Plane, offsets: np.ndarray, projection: Projection
) -> np.ndarray:
    """Values of the plane (or of the slab made of planes at ``offsets`` mm along its normal)."""
    base, dx, dy = _index_frame(volume, grid, plane)
    normal = np.asarray(plane.normal)
    g = volume.geometry
    probe = g.to_index(np.stack([grid.origin, grid.origin + normal]))
    dn = np.asarray(
        [probe[0][1] - probe[0][0], probe[1][1] - probe[1][0], probe[2][1] - probe[2][0]]
    )
    xs = np.arange(grid.width, dtype=np.float64)
    ys = np.arange(grid.height, dtype=np.float64)
    a_x, a_y = _single_axis(dx), _single_axis(dy)
    if a_x is not None and a_y is not None and a_x != a_y:
        fixed = 3 - a_x - a_y
        pure_normal = _single_axis(dn) == fixed
        if pure_normal or len(offsets) == 1:
            coords = base[fixed] + offsets * dn[fixed]
            others = [n for n in range(3) if n != fixed]  # the layer's axes, in (o, i, j) order
            ay = _axis(volume, _AXES[a_y], base[a_y] + ys * dy[a_y])
            ax = _axis(volume, _AXES[a_x], base[a_x] + xs * dx[a_x])
            shape = _layer_shape(volume, _AXES[fixed])
            if others != [a_y, a_x]:
                shape = (shape[1], shape[0])
            reads = 4 * len(ay.i0) * len(ax.i0)  # at most two neighbours along each axis
            if len(coords) == 1 and SPARSE_FROM * reads <= shape[0] * shape[1]:
                rows, ay = _used(ay)
                cols, ax = _used(ax)
                take = (rows, cols) if others == [a_y, a_x] else (cols, rows)
                layer = _taken_layer(volume, _AXES[fixed], float(coords[0]), take)
            else:
                layer = _layer(volume, _AXES[fixed], coords, projection)
            if others != [a_y, a_x]:
                layer = layer.T
            return _resample_along(layer, ay, ax, shape)
    planes = []
    for t in offsets:
        start = base + t * dn
        o = start[0] + xs[None, :] * dx[0] + ys[:, None] * dy[0]
        i = start[1] + xs[None, :] * dx[1] + ys[:, None] * dy[1]
        j = start[2] + xs[None, :] * dx[2] + ys[:, None] * dy[2]
        planes.append(_trilinear(volume, o, i, j))
    return planes[0] if len(planes) == 1 else _reduce(np.stack(planes), projection)


def _slab_offsets(volume: Volume, plane: Plane, thickness: float) -> np.ndarray:
    """Sample positions along the normal: every native step within ±thickness/2."""
    if thickness <= 0:
        return np.zeros(1)
    step = volume.geometry.spacing_along(plane.normal)
    count = math.floor(thickness / 2.0 / step + 1e-6)
    return np.arange(-count, count + 1, dtype=np.float64) * step


def plane_key(volume: Volume, request: PlaneRequest) -> tuple[object, ...]:
    """What :func:`extract_plane` of ``request`` depends on: an image whose
    :attr:`PlaneImage.key` equals it can be shown again with the crosshair moved."""
    g = volume.geometry
    at = np.asarray(request.at if request.at is not None else g.centre(), dtype=np.float64)
    return _key(volume, request, at)


def _key(volume: Volume, request: PlaneRequest, at: np.ndarray) -> tuple[object, ...]:
    """Everything a plane image depends on. In a pane (``size`` given) the grid is fixed by the
    volume's section, so the crosshair counts only by its position along the plane normal;
    at native resolution the grid is aligned on the crosshair, so all of it counts."""
    along = round(float(at @ np.asarray(request.plane.normal)), 6)
    where: object = along if request.size is not None else tuple(round(float(c), 6) for c in at)
    return (
        id(volume.data),
        volume.loaded,
        volume.downsample,
        request.plane,
        where,
        request.slab,
        request.projection,
        request.size,
        request.zoom,
        request.pan,
        request.window,
        request.invert,
    )


def extract_plane(
    volume: Volume, request: PlaneRequest, *, cancel: threading.Event | None = None
) -> PlaneImage | None:
    """The plane (or slab) ``request`` asks for, windowed; None when cancelled.

    Raises:
        RenderError: a bad window, or a crosshair that does not lie in the volume's box.
    """
    g = volume.geometry
    plane = request.plane
    at = np.asarray(request.at if request.at is not None else g.centre(), dtype=np.float64)
    o, i, j = g.to_index(at[None, :])
    half = g.slice_spacing / 2.0
    if not (
        g.offsets[0] - half - 1e-6 <= o[0] <= g.offsets[-1] + half + 1e-6
        and -0.5 - 1e-6 <= i[0] <= g.rows - 0.5 + 1e-6
        and -0.5 - 1e-6 <= j[0] <= g.cols - 0.5 + 1e-6
    ):
        raise VolumeError(
            f"The point ({at[0]:.1f}, {at[1]:.1f}, {at[2]:.1f}) mm lies outside the volume."
        )
    grid = _grid(volume, plane, at, request)
    offsets = _slab_offsets(volume, plane, request.slab)
    if cancel is not None and cancel.is_set():
        return None
    values = _sample_plane(volume, grid, plane, offsets, request.projection)
    if cancel is not None and cancel.is_set():
        return None
    empty = np.isnan(values)
    window = request.window
    if window is None:
        if volume.windows:
            window = volume.windows[0]
        elif not empty.all():
            window = full_range_window(values[~empty])
        else:
            window = Window(0.0, 1.0)
    shown = np.where(empty, np.float32(-np.inf), values)
    pixels = apply_window(shown, window)
    if volume.photometric == "MONOCHROME1":
        pixels = 255 - pixels  # PS3.3 C.7.6.3.1.2: after VOI, as for a slice
    if request.invert:
        pixels = 255 - pixels
    pixels[empty] = 0
    acquired = np.asarray(g.normal)
    tilted = float(np.linalg.norm(np.asarray(g.shear))) > 1e-6
    reformatted = tilted or abs(abs(float(np.asarray(plane.normal) @ acquired)) - 1.0) > 1e-6
    slab = ""
    if len(offsets) > 1:
        span = float(offsets[-1] - offsets[0])
        slab = f"{request.projection.name} {request.slab:g} mm"
        notes = [f"{request.projection.name} slab of {len(offsets)} samples over {span:.1f} mm"]
    else:
        notes = []
    holes = bool(empty.any()) and (bool(g.gaps) or not volume.complete)
    notes.extend(volume.notes())
    ratio = grid.step / grid.native
    fidelity = Fidelity(
        reformatted=reformatted,
        slab=slab,
        downsampled=ratio if ratio > 1.0 + 1e-6 else 1.0,
        volume_downsample=volume.downsample,
        holes=holes,
    )
    return PlaneImage(
        key=_key(volume, request, at),
        values=values,
        pixels=pixels,
        window=window,
        plane=plane,
        at=_vec(at),
        origin=_vec(grid.origin),
        pixel_mm=grid.step,
        fidelity=fidelity,
        notes=tuple(notes),
    )


def mpr_planes(
    volume: Volume,
    at: Vec3 | None,
    *,
    size: tuple[int, int] | None = None,
    window: Window | None = None,
    slab: float = 0.0,
    projection: Projection = Projection.MIP,
    planes: Sequence[Plane] | None = None,
    previous: Sequence[PlaneImage] = (),
    cancel: threading.Event | None = None,
) -> list[PlaneImage] | None:
    """The three standard planes (or ``planes``) through ``at``: one crosshair step of a
    three-pane layout. None when cancelled.

    ``previous`` (the images shown now) are reused, with the new crosshair, for the planes the
    step does not move: stepping the axial pane changes only the axial image, the coronal and
    sagittal ones just move their crosshair. Their :attr:`PlaneImage.key` decides.
    """
    chosen = planes or [Plane.standard(n) for n in ("axial", "coronal", "sagittal")]
    centre = np.asarray(at if at is not None else volume.geometry.centre(), dtype=np.float64)
    reusable = {image.key: image for image in previous if image.key}
    out = []
    for plane in chosen:
        request = PlaneRequest(
            plane=plane, at=_vec(centre), slab=slab, projection=projection, size=size, window=window
        )
        same = reusable.get(_key(volume, request, centre))
        if same is not None:
            out.append(replace(same, at=_vec(centre)))
            continue
        image = extract_plane(volume, request, cancel=cancel)
        if image is None:
            return None
        out.append(image)
    return out


def step_crosshair(volume: Volume, at: Vec3, plane: Plane, steps: int) -> Vec3:
    """``at`` moved ``steps`` native voxel steps along ``plane``'s normal (the next slice of
    that pane), kept inside the volume's extent along that direction."""
    normal = np.asarray(plane.normal)
    step = volume.geometry.spacing_along(plane.normal)
    moved = np.asarray(at, dtype=np.float64) + steps * step * normal
    reach = volume.geometry.corners() @ normal
    along = float(moved @ normal)
    clamped = min(max(along, float(reach.min())), float(reach.max()))
    return _vec(moved + (clamped - along) * normal)
