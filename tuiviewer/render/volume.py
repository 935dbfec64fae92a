"""A series' stack as a volume in patient space, for reformats (MPR), slabs and ROI statistics.

A stack of slices is a volume only if its geometry says so, and a reader must never be shown
a reformat whose geometry is silently wrong. So the slices' Image Plane attributes (PS3.3
C.7.6.2: Image Position and Orientation (Patient), Pixel Spacing; for enhanced objects the
Plane Position, Plane Orientation and Pixel Measures functional groups, C.7.6.16.2.1-4) are
checked before any pixel is used (:func:`plan_volume`):

* slices lie in parallel planes (every row and column cosine within half a pixel at the image
  edge), with one matrix size and one Pixel Spacing; localizers and the rest are set aside,
  each with the reason, and the largest consistent group is the volume;
* the distance between slices comes from their positions along the normal, never from Slice
  Thickness; slices at the same position are set aside (a second acquisition or echo);
* a gap wider than 1.5 times the usual spacing (missing slices) is recorded and nothing is
  interpolated across it; smaller irregularities are kept at their true positions;
* a stack whose origins move in-plane from slice to slice (gantry tilt) is a sheared volume:
  the shear is measured and every sample is taken where the patient point really lies; origins
  that do not lie on one straight line are refused with the offending slice named.

:class:`VolumeBuilder` then collects pixels as they arrive (from files, or while a retrieve is
under way), stores stored values as decoded (int16/uint16, lossless) with each slice's own
Rescale Slope/Intercept (C.7.6.16.2.9 per frame), and keeps the volume inside a byte budget by
averaging blocks of ``f × f`` pixels when the whole stack would not fit, which
:attr:`Volume.downsample` reports so the viewer's badge can say so. :meth:`VolumeBuilder.volume`
gives a :class:`Volume` snapshot at any time: slices not loaded yet are holes, never guesses.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from tuiviewer.dicom.reading import read_dicom
from tuiviewer.exceptions import DicomReadError, RenderError
from tuiviewer.render.decode import frame_count
from tuiviewer.render.lut import ModalityParams, Window, functional_item, modality_lut
from tuiviewer.render.pipeline import load_frame

Vec3 = tuple[float, float, float]

#: Default memory for one volume's pixels: a 512² × 500 int16 stack at full resolution.
DEFAULT_VOLUME_BYTES = 256 * 1024 * 1024

#: A gap between neighbouring slices wider than this many usual spacings is missing slices.
GAP_FACTOR = 1.5

#: Slice positions closer than this along the normal (mm) are the same position.
SAME_POSITION_MM = 0.01


class VolumeError(RenderError):
    """A stack cannot be used as a volume; the message says why."""

    title = "Not a volume"


@dataclass(frozen=True)
class SliceHeader:
    """Where one frame of one instance lies in the patient, and what it references."""

    key: str
    """Unique within a series: ``"<SOP Instance UID>#<frame>"``."""
    position: Vec3
    """Image Position (Patient): centre of the first transmitted pixel, mm (C.7.6.2.1.1)."""
    orientation: tuple[float, float, float, float, float, float]
    """Image Orientation (Patient): row then column direction cosines."""
    spacing: tuple[float, float]
    """Pixel Spacing: (row spacing, column spacing) in mm (PS3.3 10.7.1.3)."""
    rows: int
    cols: int
    sop_class_uid: str = ""
    sop_instance_uid: str = ""
    frame: int = 0
    """0-based frame index within the instance."""
    frames: int = 1
    localizer: bool = False
    """Image Type says LOCALIZER (PS3.3 C.8.2.1.1.1)."""
    label: str = ""
    """How messages name the slice (instance number or file name, never patient data)."""

    @property
    def row_dir(self) -> np.ndarray:
        return np.asarray(self.orientation[:3], dtype=np.float64)

    @property
    def col_dir(self) -> np.ndarray:
        return np.asarray(self.orientation[3:], dtype=np.float64)

    @property
    def normal(self) -> np.ndarray:
        """Unit ``row × column`` (PS3.3 C.7.6.2.1.1)."""
        n: np.ndarray = np.cross(self.row_dir, self.col_dir)
        return n / float(np.linalg.norm(n))


@dataclass(frozen=True)
class Rejected:
    """A slice left out of the volume, and why."""

    key: str
    label: str
    reason: str


def _floats(value: object, count: int) -> tuple[float, ...] | None:
    try:
        items = tuple(float(v) for v in value)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return None
    if len(items) != count or not all(math.isfinite(v) for v in items):
        return None
    return items


def headers_of(ds: Dataset, *, label: str = "") -> tuple[list[SliceHeader], list[Rejected]]:
    """One :class:`SliceHeader` per frame of ``ds``; frames lacking geometry are rejected.

    Enhanced objects give each frame its own Plane Position / Plane Orientation / Pixel
    Measures item (per-frame, else shared functional groups, PS3.3 C.7.6.16); classic images
    have them at the top level.
    """
    frames = frame_count(ds) if "PixelData" in ds else 1
    sop_uid = str(ds.get("SOPInstanceUID", "") or "")
    sop_class = str(ds.get("SOPClassUID", "") or "")
    raw_type = ds.get("ImageType") or []
    image_type = [str(v).upper() for v in ([raw_type] if isinstance(raw_type, str) else raw_type)]
    number = ds.get("InstanceNumber")
    name = label or (f"instance {number}" if number not in (None, "") else "an image")
    headers: list[SliceHeader] = []
    rejected: list[Rejected] = []
    rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    for frame in range(frames):
        key = f"{sop_uid}#{frame}"
        what = f"{name} frame {frame + 1}" if frames > 1 else name
        position_item = functional_item(ds, frame, "PlanePositionSequence")
        orientation_item = functional_item(ds, frame, "PlaneOrientationSequence")
        measures = functional_item(ds, frame, "PixelMeasuresSequence")
        position = _floats((position_item or ds).get("ImagePositionPatient"), 3)
        orientation = _floats((orientation_item or ds).get("ImageOrientationPatient"), 6)
        spacing = _floats((measures or ds).get("PixelSpacing"), 2)
        if spacing is None and measures is not None:
            spacing = _floats(ds.get("PixelSpacing"), 2)
        problem = None
        if "PixelData" not in ds:
            problem = "it has no pixel data"
        elif position is None:
            problem = "it has no usable Image Position (Patient)"
        elif orientation is None:
            problem = "it has no usable Image Orientation (Patient)"
        elif spacing is None or min(spacing) <= 0:
            problem = "it has no usable Pixel Spacing"
        elif rows < 1 or cols < 1:
            problem = f"its matrix {cols}x{rows} is empty"
        else:
            row, col = np.asarray(orientation[:3]), np.asarray(orientation[3:])
            if (
                abs(np.linalg.norm(row) - 1) > 0.01
                or abs(np.linalg.norm(col) - 1) > 0.01
                or abs(float(row @ col)) > 0.01
            ):
                problem = (
                    f"its Image Orientation (Patient) {list(orientation)!r} is not two "
                    "perpendicular unit vectors"
                )
        if problem is not None:
            rejected.append(Rejected(key, what, f"{what} cannot be placed: {problem}."))
            continue
        assert position is not None and orientation is not None and spacing is not None
        unit = [v / np.linalg.norm(orientation[:3]) for v in orientation[:3]] + [
            v / np.linalg.norm(orientation[3:]) for v in orientation[3:]
        ]
        headers.append(
            SliceHeader(
                key=key,
                position=(position[0], position[1], position[2]),
                orientation=tuple(float(v) for v in unit),  # type: ignore[arg-type]
                spacing=(spacing[0], spacing[1]),
                rows=rows,
                cols=cols,
                sop_class_uid=sop_class,
                sop_instance_uid=sop_uid,
                frame=frame,
                frames=frames,
                localizer="LOCALIZER" in image_type,
                label=what,
            )
        )
    return headers, rejected


# --------------------------------------------------------------------------------------------
# Geometry


@dataclass(frozen=True)
class Gap:
    """Missing slices: nothing lies between ``start`` and ``end`` (mm along the normal)."""

    after: int
    """Index (in volume order) of the last slice before the gap."""
    start: float
    end: float
    missing: int
    """How many slices of the usual spacing would fill it."""

    @property
    def text(self) -> str:
        count = f"{self.missing} slice{'s' if self.missing != 1 else ''}"
        return f"{count} missing between {self.start:.1f} and {self.end:.1f} mm"


@dataclass(frozen=True)
class VolumeGeometry:
    """Where voxel (slice k, row i, column j) lies in patient space.

    Slice ``k``'s first pixel is at ``origin + offsets[k] * (normal + shear)``; within it,
    ``+ j * col_spacing * row_dir + i * row_spacing * col_dir`` (PS3.3 C.7.6.2.1.1 equation).
    ``shear`` is zero for an ordinary stack and in-plane for a gantry-tilted one.
    """

    origin: Vec3
    row_dir: Vec3
    col_dir: Vec3
    normal: Vec3
    shear: Vec3
    offsets: tuple[float, ...]
    """Each slice's position along ``normal`` relative to the first, ascending (mm)."""
    row_spacing: float
    col_spacing: float
    rows: int
    cols: int
    slice_spacing: float
    """The usual (median) distance between neighbouring slices, mm."""
    gaps: tuple[Gap, ...] = ()
    irregular: bool = False
    """Spacing varies (beyond 5 %) without being a gap: slices kept at their true positions."""

    @property
    def slices(self) -> int:
        return len(self.offsets)

    @property
    def tilt_degrees(self) -> float:
        """Angle between the slice normal and the line through the slice origins."""
        return math.degrees(math.atan(float(np.linalg.norm(self.shear))))

    def _axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return (
            np.asarray(self.origin),
            np.asarray(self.row_dir),
            np.asarray(self.col_dir),
            np.asarray(self.normal),
            np.asarray(self.shear),
        )

    def to_index(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Patient points ``(..., 3)`` → (offset along the normal mm, row i, column j)."""
        origin, row, col, normal, shear = self._axes()
        rel = np.asarray(points, dtype=np.float64) - origin
        o = rel @ normal
        inplane = rel - o[..., None] * (normal + shear)
        return o, inplane @ col / self.row_spacing, inplane @ row / self.col_spacing

    def to_patient(self, o: float, i: float, j: float) -> Vec3:
        """Inverse of :meth:`to_index` for one point."""
        origin, row, col, normal, shear = self._axes()
        p = origin + o * (normal + shear) + i * self.row_spacing * col + j * self.col_spacing * row
        return (float(p[0]), float(p[1]), float(p[2]))

    def voxel_centre(self, k: int, i: int, j: int) -> Vec3:
        """Patient position of the centre of voxel (k, i, j)."""
        return self.to_patient(self.offsets[k], i, j)

    def centre(self) -> Vec3:
        """The voxel centre nearest the middle of the volume (so planes fall on voxels)."""
        return self.voxel_centre(self.slices // 2, self.rows // 2, self.cols // 2)

    def corners(self) -> np.ndarray:
        """The 8 corner voxel centres, ``(8, 3)`` (read-only: computed once, every pane title
        of every step asks)."""
        return self._corners

    @cached_property
    def _corners(self) -> np.ndarray:
        out = []
        for o in (self.offsets[0], self.offsets[-1]):
            for i in (0.0, self.rows - 1.0):
                for j in (0.0, self.cols - 1.0):
                    out.append(self.to_patient(o, i, j))
        corners = np.asarray(out)
        corners.flags.writeable = False
        return corners

    def spacing_along(self, direction: Sequence[float]) -> float:
        """Native sampling distance along ``direction`` (mm): the voxel size along it when it
        follows a volume axis, the finest voxel size otherwise."""
        d = np.asarray(direction, dtype=np.float64)
        d = d / np.linalg.norm(d)
        for axis, size in (
            (self.normal, self.slice_spacing),
            (self.col_dir, self.row_spacing),
            (self.row_dir, self.col_spacing),
        ):
            if abs(abs(float(d @ np.asarray(axis))) - 1.0) < 1e-6 and not (
                axis is self.normal and np.linalg.norm(self.shear) > 1e-9
            ):
                return size
        return min(self.slice_spacing, self.row_spacing, self.col_spacing)

    def downsampled(self, factor: int) -> VolumeGeometry:
        """The geometry of ``factor × factor`` block means (origin at the first block's
        centre, edge pixels that do not fill a block dropped)."""
        if factor == 1:
            return self
        shift = (factor - 1) / 2.0
        origin = self.to_patient(0.0, shift, shift)
        return VolumeGeometry(
            origin=origin,
            row_dir=self.row_dir,
            col_dir=self.col_dir,
            normal=self.normal,
            shear=self.shear,
            offsets=self.offsets,
            row_spacing=self.row_spacing * factor,
            col_spacing=self.col_spacing * factor,
            rows=self.rows // factor,
            cols=self.cols // factor,
            slice_spacing=self.slice_spacing,
            gaps=self.gaps,
            irregular=self.irregular,
        )

    def describe(self) -> list[str]:
        """What a reader should know about this geometry, one sentence each."""
        notes = [gap.text for gap in self.gaps]
        if self.irregular:
            gaps = np.diff(np.asarray(self.offsets))
            notes.append(
                f"slice spacing varies from {gaps.min():.2f} to {gaps.max():.2f} mm; "
                "slices are used at their true positions"
            )
        if self.tilt_degrees > 0.05:
            notes.append(f"gantry tilt {self.tilt_degrees:.1f}° resampled")
        return notes


@dataclass(frozen=True)
class VolumePlan:
    """Which slices make the volume, in order along the normal, and why the others do not."""

    slices: tuple[SliceHeader, ...]
    geometry: VolumeGeometry | None
    rejected: tuple[Rejected, ...]
    problem: str | None = None
    """Why there is no volume at all (then ``geometry`` is None)."""

    @property
    def ok(self) -> bool:
        return self.geometry is not None


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    return math.degrees(math.acos(max(-1.0, min(1.0, float(a @ b)))))


def _parallel(a: SliceHeader, b: SliceHeader) -> bool:
    """Same row and column directions, within half a pixel at the far edge of the image."""
    extent = max(a.rows * a.spacing[0], a.cols * a.spacing[1], 1.0)
    limit = math.degrees(0.5 * min(a.spacing) / extent)
    return _angle(a.row_dir, b.row_dir) <= limit and _angle(a.col_dir, b.col_dir) <= limit


def _same_grid(a: SliceHeader, b: SliceHeader) -> bool:
    return (a.rows, a.cols) == (b.rows, b.cols) and all(
        abs(x - y) <= 1e-3 * max(x, y) for x, y in zip(a.spacing, b.spacing, strict=True)
    )


def _why_not(member: SliceHeader, ref: SliceHeader) -> str:
    if not _parallel(member, ref):
        angle = max(_angle(member.row_dir, ref.row_dir), _angle(member.col_dir, ref.col_dir))
        return f"its orientation differs from the stack's by {angle:.1f}°"
    if (member.rows, member.cols) != (ref.rows, ref.cols):
        return (
            f"its matrix {member.cols}x{member.rows} differs from the stack's {ref.cols}x{ref.rows}"
        )
    return (
        f"its Pixel Spacing {member.spacing[0]:g}\\{member.spacing[1]:g} differs from the "
        f"stack's {ref.spacing[0]:g}\\{ref.spacing[1]:g}"
    )


def plan_volume(
    headers: Iterable[SliceHeader],
    rejected: Iterable[Rejected] = (),
    *,
    spacing: float | None = None,
) -> VolumePlan:
    """Choose the slices that form a volume and compute its geometry (module docstring).

    ``spacing`` (mm): the stack's spacing when known better than from these slices (a series
    still arriving: two slices far apart would otherwise look adjacent and be interpolated
    across); the usual spacing is never taken wider than it.

    Never raises for bad geometry: :attr:`VolumePlan.problem` says why there is no volume, and
    every slice left out is in :attr:`VolumePlan.rejected` with its reason.
    """
    out_rejected = list(rejected)
    candidates: list[SliceHeader] = []
    for h in headers:
        if h.localizer:
            out_rejected.append(Rejected(h.key, h.label, f"{h.label} is a localizer."))
        else:
            candidates.append(h)
    groups: list[list[SliceHeader]] = []
    for h in candidates:
        for g in groups:
            if _parallel(g[0], h) and _same_grid(g[0], h):
                g.append(h)
                break
        else:
            groups.append([h])
    if not groups:
        why = f" ({out_rejected[0].reason[:-1]})" if out_rejected else ""
        return VolumePlan(
            (),
            None,
            tuple(out_rejected),
            f"The series has no image that can be placed in space{why}.",
        )
    groups.sort(key=len, reverse=True)
    chosen = groups[0]
    ref = chosen[0]
    for g in groups[1:]:
        for h in g:
            out_rejected.append(
                Rejected(h.key, h.label, f"{h.label} is left out: {_why_not(h, ref)}.")
            )
    normal = ref.normal
    origin0 = np.asarray(ref.position)
    chosen.sort(key=lambda h: float((np.asarray(h.position) - origin0) @ normal))
    members: list[SliceHeader] = []
    locations: list[float] = []
    for h in chosen:
        loc = float((np.asarray(h.position) - origin0) @ normal)
        if locations and loc - locations[-1] <= SAME_POSITION_MM:
            out_rejected.append(
                Rejected(
                    h.key,
                    h.label,
                    f"{h.label} lies at the same position as {members[-1].label} "
                    "(a second acquisition, echo or phase?).",
                )
            )
            continue
        members.append(h)
        locations.append(loc)
    if len(members) < 2:
        return VolumePlan(
            tuple(members),
            None,
            tuple(out_rejected),
            f"A volume needs at least 2 parallel slices at different positions; the stack has "
            f"{len(members)}.",
        )
    first = np.asarray(members[0].position)
    offsets = np.asarray(locations) - locations[0]
    # In-plane drift of each slice's origin: zero for an ordinary stack, proportional to the
    # offset for a gantry tilt (a sheared volume), anything else is not one straight stack.
    drift = (
        np.asarray([np.asarray(h.position) - first for h in members]) - offsets[:, None] * normal
    )
    shear = drift[-1] / offsets[-1]
    residual = np.linalg.norm(drift - offsets[:, None] * shear, axis=1)
    tolerance = max(0.01, 0.05 * min(ref.spacing))
    worst = int(np.argmax(residual))
    if residual[worst] > tolerance:
        return VolumePlan(
            tuple(members),
            None,
            tuple(out_rejected),
            f"The slice origins do not lie on one straight line: {members[worst].label} is "
            f"{residual[worst]:.2f} mm off it (a table shift or a stitched series).",
        )
    steps = np.diff(offsets)
    usual = float(np.median(steps))
    if spacing is not None and 0 < spacing < usual:
        usual = spacing
    gaps = tuple(
        Gap(
            after=int(k),
            start=float(offsets[k]),
            end=float(offsets[k + 1]),
            missing=max(1, round(float(steps[k]) / usual) - 1),
        )
        for k in np.nonzero(steps > GAP_FACTOR * usual)[0]
    )
    ordinary = steps[steps <= GAP_FACTOR * usual]
    irregular = bool(np.any(np.abs(ordinary - usual) > max(0.05 * usual, 0.01)))
    geometry = VolumeGeometry(
        origin=(float(first[0]), float(first[1]), float(first[2])),
        row_dir=tuple(float(v) for v in ref.row_dir),  # type: ignore[arg-type]
        col_dir=tuple(float(v) for v in ref.col_dir),  # type: ignore[arg-type]
        normal=tuple(float(v) for v in normal),  # type: ignore[arg-type]
        shear=tuple(float(v) for v in shear),  # type: ignore[arg-type]
        offsets=tuple(float(v) for v in offsets),
        row_spacing=ref.spacing[0],
        col_spacing=ref.spacing[1],
        rows=ref.rows,
        cols=ref.cols,
        slice_spacing=usual,
        gaps=gaps,
        irregular=irregular,
    )
    return VolumePlan(tuple(members), geometry, tuple(out_rejected))


# --------------------------------------------------------------------------------------------
# Pixels


@dataclass(frozen=True)
class Volume:
    """A snapshot of a volume: geometry, the stored values of the slices loaded so far and their
    rescale. Safe to read from one thread while a :class:`VolumeBuilder` fills more slices."""

    geometry: VolumeGeometry
    """The grid of :attr:`data` (block centres when downsampled)."""
    plan: VolumePlan
    data: np.ndarray = field(repr=False)
    """Stored values ``(capacity, rows, cols)``; slice ``k`` is ``data[slots[k]]``."""
    slots: np.ndarray = field(repr=False)
    """int64 per slice in volume order: its row of :attr:`data`, -1 while not loaded."""
    slope: np.ndarray = field(repr=False)
    """float64 Rescale Slope per slice in volume order (PS3.3 C.11.1)."""
    intercept: np.ndarray = field(repr=False)
    downsample: int = 1
    """Each stored pixel is the mean of ``downsample × downsample`` source pixels."""
    modality: str = ""
    units: str = ""
    """``"HU"`` for CT, else the Rescale Type (may be empty)."""
    windows: tuple[Window, ...] = ()
    """The first slice's windows, the default for every plane."""
    photometric: str = "MONOCHROME2"
    frame_of_reference_uid: str = ""

    @property
    def loaded(self) -> int:
        return int(np.count_nonzero(self.slots >= 0))

    @property
    def complete(self) -> bool:
        return self.loaded == self.geometry.slices

    def missing(self) -> tuple[SliceHeader, ...]:
        """Slices of the plan whose pixels have not arrived (yet)."""
        return tuple(h for h, s in zip(self.plan.slices, self.slots, strict=True) if s < 0)

    def slice_values(self, k: int) -> np.ndarray:
        """Modality values (float32) of slice ``k`` (volume order), as stored.

        Raises:
            VolumeError: slice ``k`` is outside the volume or not loaded.
        """
        if not 0 <= k < self.geometry.slices:
            raise VolumeError(
                f"Slice {k + 1} does not exist: the volume has {self.geometry.slices}."
            )
        slot = int(self.slots[k])
        if slot < 0:
            raise VolumeError(f"Slice {k + 1} ({self.plan.slices[k].label}) is not loaded yet.")
        return modality_lut(
            self.data[slot], ModalityParams(float(self.slope[k]), float(self.intercept[k]))
        )

    def notes(self) -> list[str]:
        """Sentences for the badge and the CLI: gaps, tilt, downsampling, loading."""
        notes = self.geometry.describe()
        if self.downsample > 1:
            notes.append(
                f"volume averaged {self.downsample}×{self.downsample} in-plane to fit the memory "
                "budget"
            )
        if not self.complete:
            notes.append(f"{self.loaded} of {self.geometry.slices} slices loaded")
        return notes


def _storage_dtype(pixels: np.ndarray) -> np.dtype:
    kind, size = pixels.dtype.kind, pixels.dtype.itemsize
    if kind in "iu" and size == 1:
        return np.dtype(np.int16)
    if kind in "iu" and size == 2:
        return pixels.dtype.newbyteorder("=")
    return np.dtype(np.float32)  # 32-bit and float data: rescaled exactly enough for display


def block_mean(pixels: np.ndarray, factor: int) -> np.ndarray:
    """Means of ``factor × factor`` blocks (float64), edge pixels that fill no block dropped."""
    if factor == 1:
        return np.asarray(pixels, dtype=np.float64)
    rows, cols = pixels.shape[0] // factor, pixels.shape[1] // factor
    trimmed = np.asarray(pixels[: rows * factor, : cols * factor], dtype=np.float64)
    mean: np.ndarray = trimmed.reshape(rows, factor, cols, factor).mean(axis=(1, 3))
    return mean


def _fit(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        fitted: np.ndarray = np.clip(np.rint(values), info.min, info.max).astype(dtype)
        return fitted
    return np.asarray(values, dtype=dtype)


class _Store:
    """Slices of one matrix size, ``(capacity, rows / f, cols / f)``, in arrival order."""

    def __init__(self, rows: int, cols: int, dtype: np.dtype, capacity: int, budget: int) -> None:
        self.rows, self.cols, self.budget = rows, cols, budget
        self.factor = self._factor_for(capacity, 1, dtype.itemsize)
        # np.empty does not touch the pages: memory is used as slices arrive.
        self.data = np.empty((capacity, rows // self.factor, cols // self.factor), dtype=dtype)
        self.count = 0
        self.slot: dict[str, int] = {}

    def _factor_for(self, count: int, factor: int, itemsize: int) -> int:
        while count * (self.rows // factor) * (self.cols // factor) * itemsize > self.budget:
            factor *= 2
            if self.rows // factor < 2 or self.cols // factor < 2:
                raise VolumeError(
                    f"{count} slices of {self.cols}x{self.rows} do not fit a volume budget of "
                    f"{self.budget / 2**20:.0f} MiB even averaged {factor}×{factor}."
                )
        return factor

    def _grow(self) -> None:
        data = self.data
        capacity = data.shape[0] * 2
        factor = self._factor_for(capacity, self.factor, data.dtype.itemsize)
        ratio = factor // self.factor
        shape = (capacity, self.rows // factor, self.cols // factor)
        grown = np.empty(shape, dtype=data.dtype)
        for slot in range(self.count):
            grown[slot] = _fit(block_mean(data[slot], ratio)[: shape[1], : shape[2]], data.dtype)
        self.data, self.factor = grown, factor

    def put(self, key: str, pixels: np.ndarray) -> None:
        slot = self.slot.get(key)
        if slot is None:
            if self.count == self.data.shape[0]:
                self._grow()
            slot = self.count
            self.count += 1
        if self.factor == 1:
            self.data[slot] = pixels
        else:
            self.data[slot] = _fit(block_mean(pixels, self.factor), self.data.dtype)
        self.slot[key] = slot


class VolumeBuilder:
    """Collects the slices of one stack, from headers and pixels, as they arrive.

    ``expected`` (the stack's frame count, when known) sizes the store once and chooses the
    downsampling factor up front; otherwise storage grows, and the factor doubles when the
    budget would be exceeded. Slices of another matrix size than the first are kept apart (the
    plan decides which size is the volume); localizers are not stored. Thread-safe: one worker
    adds while another takes snapshots.
    """

    def __init__(
        self, *, budget_bytes: int = DEFAULT_VOLUME_BYTES, expected: int | None = None
    ) -> None:
        if budget_bytes < 1:
            raise VolumeError(f"A volume budget of {budget_bytes} bytes is not positive.")
        self.budget_bytes = budget_bytes
        self.expected = expected
        self._lock = threading.Lock()
        self._headers: dict[str, SliceHeader] = {}
        self._rejected: dict[str, Rejected] = {}
        self._rescale: dict[str, tuple[float, float]] = {}
        self._stores: dict[tuple[int, int], _Store] = {}
        self._plan: VolumePlan | None = None
        self._spacing: float | None = None
        self.modality = ""
        self.units = ""
        self.windows: tuple[Window, ...] = ()
        self.photometric = "MONOCHROME2"
        self.frame_of_reference_uid = ""

    # -- headers ------------------------------------------------------------------------------

    def announce(self, headers: Iterable[SliceHeader]) -> None:
        """Make slices known before their pixels arrive (they count as missing until then)."""
        with self._lock:
            for h in headers:
                self._headers.setdefault(h.key, h)
            self._plan = None

    def reject(self, rejected: Iterable[Rejected]) -> None:
        """Record slices that cannot be used at all (the plan lists them)."""
        with self._lock:
            for r in rejected:
                self._rejected.setdefault(r.key, r)
            self._plan = None

    def expect_spacing(self, spacing: float | None) -> None:
        """The stack's spacing (mm) as known from elsewhere while slices are missing (see
        :func:`plan_volume`); None once they are all in, so the volume is the one the files
        alone give."""
        with self._lock:
            if spacing != self._spacing:
                self._spacing, self._plan = spacing, None

    @property
    def plan(self) -> VolumePlan:
        with self._lock:
            return self._current_plan()

    def _current_plan(self) -> VolumePlan:
        if self._plan is None:
            self._plan = plan_volume(
                self._headers.values(), self._rejected.values(), spacing=self._spacing
            )
        return self._plan

    # -- pixels -------------------------------------------------------------------------------

    def _refuse(self, header: SliceHeader, reason: str) -> Rejected:
        rejected = Rejected(header.key, header.label, reason)
        self._rejected[header.key] = rejected
        self._headers.pop(header.key, None)
        self._plan = None
        return rejected

    def add(
        self, header: SliceHeader, pixels: np.ndarray, modality: ModalityParams
    ) -> Rejected | None:
        """Store one slice's decoded stored values and rescale; returns why it was refused.

        A Modality LUT is applied here (the volume keeps slope/intercept only); values that do
        not fit the store's type (a signed slice in an unsigned series) refuse the slice.
        """
        if pixels.ndim != 2:
            return Rejected(header.key, header.label, f"{header.label} is not a grey-scale image.")
        if pixels.shape != (header.rows, header.cols):
            return Rejected(
                header.key,
                header.label,
                f"{header.label} decodes to {pixels.shape[1]}x{pixels.shape[0]}, not the "
                f"{header.cols}x{header.rows} its header says.",
            )
        slope, intercept = modality.slope, modality.intercept
        if modality.lut is not None:
            pixels = modality_lut(pixels, modality)
            slope, intercept = 1.0, 0.0
        with self._lock:
            self._headers.setdefault(header.key, header)
            self._plan = None
            if header.localizer:
                return None  # the plan sets it aside; its pixels are not needed
            size = (header.rows, header.cols)
            store = self._stores.get(size)
            dtype = store.data.dtype if store is not None else _storage_dtype(pixels)
            if dtype.kind in "iu" and pixels.size:
                info = np.iinfo(dtype)
                low, high = pixels.min(), pixels.max()
                if (
                    low < info.min
                    or high > info.max
                    or (pixels.dtype.kind == "f" and not np.array_equal(pixels, np.rint(pixels)))
                ):
                    return self._refuse(
                        header,
                        f"{header.label} holds values {low:g}..{high:g} that the volume's "
                        f"{dtype} store cannot keep (the series mixes pixel representations).",
                    )
            if store is None:
                first = not self._stores
                capacity = max(self.expected or 0, len(self._headers), 16) if first else 16
                store = self._stores[size] = _Store(
                    header.rows, header.cols, dtype, capacity, self.budget_bytes
                )
            store.put(header.key, pixels)
            self._rescale[header.key] = (float(slope), float(intercept))
        return None

    def add_dataset(
        self, ds: Dataset, *, label: str = "", cancel: threading.Event | None = None
    ) -> list[Rejected]:
        """Decode every frame of ``ds`` into the volume; returns the frames refused.

        Raises:
            RenderError: pixel data that cannot be decoded.
            DecoderMissingError: a decoder plugin is missing.
        """
        headers, rejected = headers_of(ds, label=label)
        self.announce(headers)
        with self._lock:
            if not self.modality:
                self.modality = str(ds.get("Modality", "") or "")
                self.frame_of_reference_uid = str(ds.get("FrameOfReferenceUID", "") or "")
        for header in headers:
            if cancel is not None and cancel.is_set():
                break
            frame = load_frame(ds, header.frame)
            if not frame.is_grey:
                rejected.append(
                    Rejected(header.key, header.label, f"{header.label} is a colour image.")
                )
                continue
            with self._lock:
                if not self.windows:
                    self.windows = frame.windows
                    self.photometric = frame.photometric
                    kind = frame.modality.rescale_type.strip()
                    self.units = "HU" if self.modality == "CT" and kind in ("", "HU") else kind
            refused = self.add(header, frame.pixels, frame.modality)
            if refused is not None:
                rejected.append(refused)
        self.reject(rejected)
        return rejected

    def add_file(self, path: Path, *, cancel: threading.Event | None = None) -> list[Rejected]:
        """Read ``path`` and :meth:`add_dataset` it.

        Raises:
            DicomReadError: the file cannot be read.
            RenderError: pixel data that cannot be decoded.
        """
        try:
            ds = read_dicom(path, force=True)
        except DicomReadError:
            raise
        except (OSError, InvalidDicomError, ValueError, EOFError, TypeError) as exc:
            raise DicomReadError(f"Cannot read {path.name!r}: {exc}") from exc
        number = ds.get("InstanceNumber")
        label = f"instance {number}" if number not in (None, "") else f"file {path.name!r}"
        return self.add_dataset(ds, label=label, cancel=cancel)

    def add_files(
        self,
        paths: Sequence[Path],
        *,
        cancel: threading.Event | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        """:meth:`add_file` each of ``paths`` in turn (a stack read at once, or the instances
        of a series that landed since the last call); ``progress``: (files read, files).

        Raises:
            DicomReadError, RenderError: as :meth:`add_file`.
        """
        for n, path in enumerate(paths, 1):
            if cancel is not None and cancel.is_set():
                break
            self.add_file(Path(path), cancel=cancel)
            if progress is not None:
                progress(n, len(paths))

    @property
    def too_few(self) -> bool:
        """Fewer than two slices could be placed so far: a stack still arriving may become a
        volume with the next ones (any other problem of the plan is the stack's own)."""
        plan = self.plan
        return plan.geometry is None and len(plan.slices) < 2

    # -- snapshots ----------------------------------------------------------------------------

    def volume(self) -> Volume:
        """The volume as far as it has arrived.

        Raises:
            VolumeError: the slices do not form a volume (the plan's problem), or no slice of
                the plan has pixels yet.
        """
        with self._lock:
            plan = self._current_plan()
            if plan.geometry is None:
                raise VolumeError(plan.problem or "The slices do not form a volume.")
            store = self._stores.get((plan.geometry.rows, plan.geometry.cols))
            if store is None:
                raise VolumeError("No slice of the volume has been loaded yet.")
            slots = np.asarray([store.slot.get(h.key, -1) for h in plan.slices], dtype=np.int64)
            rescale = [self._rescale.get(h.key, (1.0, 0.0)) for h in plan.slices]
            return Volume(
                geometry=plan.geometry.downsampled(store.factor),
                plan=plan,
                data=store.data,
                slots=slots,
                slope=np.asarray([r[0] for r in rescale], dtype=np.float64),
                intercept=np.asarray([r[1] for r in rescale], dtype=np.float64),
                downsample=store.factor,
                modality=self.modality,
                units=self.units,
                windows=self.windows,
                photometric=self.photometric,
                frame_of_reference_uid=self.frame_of_reference_uid,
            )


def load_volume(
    paths: Sequence[Path],
    *,
    budget_bytes: int = DEFAULT_VOLUME_BYTES,
    cancel: threading.Event | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Volume, tuple[Rejected, ...]]:
    """Build the volume of the files ``paths`` (one stack or series, any order).

    Args:
        budget_bytes: memory for the pixels (see :class:`VolumeBuilder`).
        cancel: stops reading; the volume so far is returned (with holes).
        progress: called with (files read, files) after each file.

    Returns:
        The volume and every slice left out with its reason.

    Raises:
        VolumeError: the files do not hold a volume; the message says why.
        DicomReadError, RenderError: a file cannot be read or decoded.
    """
    builder = VolumeBuilder(budget_bytes=budget_bytes, expected=len(paths))
    builder.add_files(paths, cancel=cancel, progress=progress)
    volume = builder.volume()
    return volume, volume.plan.rejected
