"""The state of the volume screen below Textual: the crosshair, the active pane, the slab, the
window, the ROI being drawn, and what each pane shows and says.

The volume screen (:mod:`tuiviewer.screens.volume`) routes keys here and draws what
:func:`render_panes` returns, so every rule of the MPR (where a key moves the crosshair, which
slice number a pane reads, what a measurement measures and on which image) is tested without a
terminal. Planes come from :mod:`tuiviewer.render.mpr`, statistics and lengths from
:mod:`tuiviewer.render.measure`, and a finished measurement is a
:class:`~tuiviewer.reports.measurements.Measurement` that the per-study store keeps for the
report.

Measurements are made in patient space: the crosshair marks the points, and the values are
computed on the plane re-extracted at the volume's own resolution (square pixels of the finest
voxel spacing), never on the pane's downsampled picture, so a measurement does not depend on
the size of the terminal. When the plane is an acquired slice (the acquisition's own
orientation, no slab, no gantry tilt, the crosshair on a slice) the measurement references that
image and its points are given in the image's pixels, so the TID 1500 SR carries a region on a
stored image; otherwise it is a reformat measurement, with its plane and position in words.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import Enum

import numpy as np

from tuiviewer.dicom.index import slice_location
from tuiviewer.dicom.scanning import InstanceRecord
from tuiviewer.exceptions import RenderError
from tuiviewer.render.lut import Window
from tuiviewer.render.measure import angle_degrees, ellipse_stats, length_mm, rectangle_stats
from tuiviewer.render.mpr import (
    Plane,
    PlaneImage,
    PlaneRequest,
    Projection,
    extract_plane,
    plane_key,
)
from tuiviewer.render.volume import Vec3, Volume
from tuiviewer.reports.measurements import Measurement, MeasurementKind
from tuiviewer.reports.model import KeyImage
from tuiviewer.services.viewer.arrival import ArrivingSeries
from tuiviewer.services.viewer.geometry import edge_labels

PANES = ("axial", "coronal", "sagittal")
"""The three panes, left to right; Tab goes through them in this order."""

SLAB_STEPS_MM = (0.0, 2.0, 3.0, 5.0, 10.0, 15.0, 20.0, 30.0, 50.0)
"""Slab thicknesses ``]`` and ``[`` step through (0: a thin plane)."""

PROJECTIONS = (Projection.MIP, Projection.MINIP, Projection.MEAN)

#: Colours drawn into the panes (RGB): the crosshair, the active pane's crosshair, marks.
CROSSHAIR = (0, 170, 255)
ACTIVE_CROSSHAIR = (255, 200, 0)
MARK = (80, 255, 80)
DRAWING = (255, 80, 80)


class Layout(Enum):
    """How many panes show."""

    THREE = "three"
    """Axial, coronal and sagittal side by side."""
    ONE = "one"
    """The active pane alone, full size."""


@dataclass(frozen=True)
class Drawing:
    """A measurement half drawn: its kind, the pane, its plane and the first point (mm)."""

    kind: MeasurementKind
    pane: int
    start: Vec3
    plane: Plane | None = None
    """The pane's plane when the drawing started (None: the pane's standard plane)."""
    vertex: Vec3 | None = None
    """An angle's vertex, once placed (the second point of three)."""


@dataclass(frozen=True)
class VolumeView:
    """Everything the keys of the volume screen change; a new value means new panes."""

    at: Vec3
    """The crosshair, patient mm (LPS), shared by all panes."""
    active: int = 0
    """Index in :data:`PANES` of the pane the keys act on."""
    layout: Layout = Layout.THREE
    slab: float = 0.0
    """Slab thickness in mm (0: thin planes), applied in every pane."""
    projection: Projection = Projection.MIP
    window: Window | None = None
    """None: the series' own window (its first slice's)."""
    preset: str = ""
    invert: bool = False
    drawing: Drawing | None = None
    tilts: tuple[tuple[float, float], ...] = ((0.0, 0.0),) * len(PANES)
    """Per pane: degrees about its horizontal then its vertical axis (oblique; 0, 0: the
    standard plane), always about the crosshair."""
    zoom: float = 1.0
    """Magnification of the panes drawn with this view (see ``services/viewer/layouts``)."""
    pan: tuple[float, float] = (0.0, 0.0)
    """Shift of the picture in pane pixels (x right, y down), with :attr:`zoom`."""

    def plane_of(self, pane: int) -> Plane:
        """Pane ``pane``'s plane: the standard one, tilted by :attr:`tilts`."""
        horizontal, vertical = self.tilts[pane]
        return Plane.standard(PANES[pane]).tilted(horizontal, vertical)

    @property
    def plane(self) -> Plane:
        """The active pane's plane."""
        return self.plane_of(self.active)

    @property
    def visible(self) -> tuple[int, ...]:
        """Indices of the panes on screen."""
        return tuple(range(len(PANES))) if self.layout is Layout.THREE else (self.active,)


# --------------------------------------------------------------------------------------------
# Before a volume exists


def why_not_a_volume(records: Sequence[InstanceRecord], *, arriving: bool = False) -> str | None:
    """A sentence when ``records`` cannot be a volume at all, judged from what the scan read
    (so the viewer can say so at once); None when it is worth building. The full check of
    the geometry is :func:`tuiviewer.render.volume.plan_volume`'s, once the headers are read.
    ``arriving``: ``records`` are what landed of a series still arriving, so too few of them
    is worth waiting on."""
    frames = sum(max(r.frames, 1) for r in records if r.rows)
    if frames < 2 and arriving:
        return None
    if frames < 2:
        return (
            f"This series has {frames} image{'s' if frames != 1 else ''}: MPR needs a stack of "
            "at least 2 parallel slices."
        )
    if not any(r.image_orientation for r in records) and all(r.frames <= 1 for r in records):
        return (
            "No image of this series has an Image Orientation (Patient): it cannot be placed "
            "in patient space, so no reformat can be made."
        )
    return None


def arriving_spacing(series: ArrivingSeries) -> float | None:
    """The slice spacing (mm) of a series still arriving, from its slots: two arrived slices
    ``k`` slots apart have ``k - 1`` slices yet to come between them (the slots follow
    Instance Number, see :mod:`tuiviewer.services.viewer.arrival`); the smallest such step.
    None when fewer than two arrived with a position, or without the PACS's list."""
    if not series.listed:
        return None
    placed = sorted(
        (slot, location)
        for sop, record in list(series.records.items())
        if (slot := series.slot(sop)) is not None
        and (location := slice_location(record)) is not None
    )
    steps = [
        abs(b - a) / (k - j)
        for (j, a), (k, b) in zip(placed, placed[1:], strict=False)
        if k > j and abs(b - a) > 0
    ]
    return min(steps) if steps else None


def start_point(volume: Volume, key: str | None) -> Vec3:
    """The crosshair when the screen opens: on the slice ``key`` (``"<SOP UID>#<frame>"``,
    the viewer's slice) at the centre of its rows and columns, else the volume's centre."""
    g = volume.geometry
    keys = [h.key for h in volume.plan.slices]
    if key in keys:
        return g.voxel_centre(keys.index(key), g.rows // 2, g.cols // 2)
    return g.centre()


# --------------------------------------------------------------------------------------------
# Keys


def _clamp_inside(volume: Volume, point: np.ndarray) -> Vec3:
    """``point`` moved onto the volume's box (voxel centres), along the volume's axes."""
    g = volume.geometry
    o, i, j = g.to_index(point[None, :])
    o0 = min(max(float(o[0]), g.offsets[0]), g.offsets[-1])
    i0 = min(max(float(i[0]), 0.0), g.rows - 1.0)
    j0 = min(max(float(j[0]), 0.0), g.cols - 1.0)
    return g.to_patient(o0, i0, j0)


def moved_in_plane(volume: Volume, view: VolumeView, dx: int, dy: int) -> VolumeView:
    """The crosshair moved ``dx`` voxels to the right and ``dy`` down in the active pane."""
    plane = view.plane
    g = volume.geometry
    step_u, step_v = g.spacing_along(plane.u), g.spacing_along(plane.v)
    moved = (
        np.asarray(view.at) + dx * step_u * np.asarray(plane.u) + dy * step_v * np.asarray(plane.v)
    )
    return replace(view, at=_clamp_inside(volume, moved))


def pointed(volume: Volume, view: VolumeView, pane: int, point: Vec3) -> VolumeView:
    """A click on pane ``pane`` at patient ``point``: that pane becomes the active one and the
    crosshair goes to the voxel centre nearest the point (so measurements start on a voxel)."""
    g = volume.geometry
    o, i, j = g.to_index(np.asarray(point, dtype=np.float64)[None, :])
    offsets = np.asarray(g.offsets)
    k = int(np.argmin(np.abs(offsets - o[0])))
    row = min(max(round(float(i[0])), 0), g.rows - 1)
    col = min(max(round(float(j[0])), 0), g.cols - 1)
    return replace(view, active=pane, at=g.voxel_centre(k, row, col))


def moved_through(volume: Volume, view: VolumeView, steps: int) -> VolumeView:
    """The crosshair moved ``steps`` slices along the active pane's normal (its next slice)."""
    plane = view.plane
    step = volume.geometry.spacing_along(plane.normal)
    moved = np.asarray(view.at) + steps * step * np.asarray(plane.normal)
    return replace(view, at=_clamp_inside(volume, moved))


def moved_to_end(volume: Volume, view: VolumeView, last: bool) -> VolumeView:
    """The crosshair on the first (or last) slice of the active pane."""
    count = pane_slices(volume, view.plane)
    return moved_through(volume, view, count if last else -count)


def thicker(view: VolumeView, direction: int) -> VolumeView:
    """The next slab thickness up (``direction`` > 0) or down in :data:`SLAB_STEPS_MM`."""
    if direction > 0:
        bigger = [s for s in SLAB_STEPS_MM if s > view.slab + 1e-6]
        slab = bigger[0] if bigger else SLAB_STEPS_MM[-1]
    else:
        smaller = [s for s in SLAB_STEPS_MM if s < view.slab - 1e-6]
        slab = smaller[-1] if smaller else 0.0
    return replace(view, slab=slab)


TILT_STEP = 5.0
"""Degrees per oblique key."""


def _angle(degrees: float) -> float:
    """``degrees`` in (-180, 180]."""
    turned = math.fmod(degrees, 360.0)
    if turned > 180.0:
        turned -= 360.0
    elif turned <= -180.0:
        turned += 360.0
    return round(turned, 6) + 0.0


def tilted(view: VolumeView, horizontal: int, vertical: int) -> VolumeView:
    """The active pane's plane turned ``horizontal`` steps about its horizontal axis and
    ``vertical`` steps about its vertical one (:data:`TILT_STEP` degrees each), about the
    crosshair; the other panes keep theirs."""
    tilts = list(view.tilts)
    h, v = tilts[view.active]
    tilts[view.active] = (
        _angle(h + horizontal * TILT_STEP),
        _angle(v + vertical * TILT_STEP),
    )
    return replace(view, tilts=tuple(tilts))


def straightened(view: VolumeView) -> VolumeView:
    """The active pane back on its standard plane."""
    tilts = list(view.tilts)
    tilts[view.active] = (0.0, 0.0)
    return replace(view, tilts=tuple(tilts))


def next_projection(view: VolumeView) -> VolumeView:
    """MIP → MinIP → mean → MIP; a thin plane becomes a 10 mm slab first."""
    if view.slab <= 0:
        return replace(view, slab=10.0, projection=Projection.MIP)
    index = PROJECTIONS.index(view.projection)
    return replace(view, projection=PROJECTIONS[(index + 1) % len(PROJECTIONS)])


# --------------------------------------------------------------------------------------------
# What a pane says


def _along(volume: Volume, plane: Plane) -> tuple[float, float, float]:
    """(first, last, step) of the positions of ``plane`` along its normal, mm."""
    normal = plane.normal
    reach = volume.geometry.corners() @ np.asarray(normal)
    step = volume.geometry.spacing_along(normal)
    return float(reach.min()), float(reach.max()), step


def pane_slices(volume: Volume, plane: Plane) -> int:
    """How many slices a pane showing ``plane`` has along its normal (at the native step)."""
    first, last, step = _along(volume, plane)
    return int(math.floor((last - first) / step + 1e-6)) + 1


def pane_slice(volume: Volume, plane: Plane, at: Vec3) -> int:
    """The 1-based slice of ``plane`` the crosshair is on."""
    first, _, step = _along(volume, plane)
    index = round((float(np.asarray(at) @ np.asarray(plane.normal)) - first) / step)
    return min(max(index, 0), pane_slices(volume, plane) - 1) + 1


_AXIS_NAME = {"axial": "z", "coronal": "y", "sagittal": "x"}


def pane_title(volume: Volume, view: VolumeView, pane: int, image: PlaneImage | None) -> str:
    """``"Axial 20/40 · z 0.5 mm"``: plane, slice and position, then the fidelity badge of
    ``image`` when one is given (``"· MPR · MIP 10 mm"``)."""
    name = PANES[pane]
    plane = view.plane_of(pane)
    where = f"{pane_slice(volume, plane, view.at)}/{pane_slices(volume, plane)}"
    horizontal, vertical = view.tilts[pane]
    if horizontal or vertical:  # oblique: no patient axis to name, the turn instead
        parts = [f"{name.capitalize()} ∠{horizontal:+g}°/{vertical:+g}° {where}"]
    else:
        axis = "xyz".index(_AXIS_NAME[name])
        parts = [
            f"{name.capitalize()} {where}",
            f"{_AXIS_NAME[name]} {view.at[axis]:.1f} mm",
        ]
    if image is not None and image.fidelity.badge:
        parts.append(image.fidelity.badge)
    return " · ".join(parts)


def pane_edges(plane: Plane) -> tuple[str, str, str, str]:
    """(left, right, top, bottom) orientation letters of a pane showing ``plane`` (two
    letters on an oblique plane, the main direction first)."""
    labels = edge_labels(plane.orientation)
    assert labels is not None  # a Plane's axes are unit vectors
    return labels.left, labels.right, labels.top, labels.bottom


def value_at(volume: Volume, at: Vec3) -> float | None:
    """The modality value of the voxel nearest ``at`` (None: a hole, outside, not loaded)."""
    g = volume.geometry
    o, i, j = g.to_index(np.asarray(at, dtype=np.float64)[None, :])
    offsets = np.asarray(g.offsets)
    k = int(np.argmin(np.abs(offsets - o[0])))
    if abs(offsets[k] - o[0]) > g.slice_spacing / 2 + 1e-6:
        return None
    row, col = int(round(float(i[0]))), int(round(float(j[0])))
    slot = int(volume.slots[k])
    if slot < 0 or not (0 <= row < g.rows and 0 <= col < g.cols):
        return None
    return float(volume.data[slot, row, col]) * float(volume.slope[k]) + float(volume.intercept[k])


def crosshair_text(volume: Volume, view: VolumeView) -> str:
    """``"(0.5, -3.5, 12.0) mm · 100 HU"``: where the crosshair is and the value there."""
    x, y, z = view.at
    value = value_at(volume, view.at)
    unit = f" {volume.units}" if volume.units else ""
    shown = "no data" if value is None else f"{value:g}{unit}"
    return f"({x:.1f}, {y:.1f}, {z:.1f}) mm · {shown}"


def slab_text(view: VolumeView) -> str:
    return f"{view.projection.name} {view.slab:g} mm" if view.slab > 0 else "thin"


# --------------------------------------------------------------------------------------------
# Rendering the panes


@dataclass(frozen=True)
class PaneFrame:
    """One pane ready to show: the plane, and its picture with the crosshair and marks."""

    pane: int
    image: PlaneImage
    pixels: np.ndarray = field(repr=False)
    """uint8 RGB ``(H, W, 3)``, stretched for the terminal's pixel aspect."""
    key: tuple[object, ...]
    """Same key, same picture: the image view sends nothing new."""
    aspect: float = 1.0
    """Rows of :attr:`pixels` per row of the plane image (see :func:`render_panes`)."""

    def patient_at(self, x: float, y: float) -> Vec3:
        """The patient point under position (x, y) of :attr:`pixels` (a click)."""
        return self.image.patient_at(x, y * self.aspect)


def _request(volume: Volume, view: VolumeView, pane: int, box: tuple[int, int]) -> PlaneRequest:
    return PlaneRequest(
        plane=view.plane_of(pane),
        at=view.at,
        slab=view.slab,
        projection=view.projection,
        size=box,
        window=view.window,
        invert=view.invert,
        zoom=view.zoom,
        pan=view.pan,
    )


def _line(
    rgb: np.ndarray, x0: float, y0: float, x1: float, y1: float, colour: Sequence[int]
) -> None:
    """A straight line of ``colour`` between two image positions (clipped to the image)."""
    height, width = rgb.shape[:2]
    count = int(max(abs(x1 - x0), abs(y1 - y0))) + 1
    xs = np.rint(np.linspace(x0, x1, count)).astype(np.int64)
    ys = np.rint(np.linspace(y0, y1, count)).astype(np.int64)
    inside = (xs >= 0) & (xs < width) & (ys >= 0) & (ys < height)
    rgb[ys[inside], xs[inside]] = colour


def _crosshair(rgb: np.ndarray, x: float, y: float, colour: Sequence[int]) -> None:
    """Two lines through (x, y) with a gap around the point, so the voxel under it shows."""
    height, width = rgb.shape[:2]
    gap = max(2.0, min(width, height) / 20)
    if 0 <= y < height:
        _line(rgb, 0, y, x - gap, y, colour)
        _line(rgb, x + gap, y, width - 1, y, colour)
    if 0 <= x < width:
        _line(rgb, x, 0, x, y - gap, colour)
        _line(rgb, x, y + gap, x, height - 1, colour)


def _shape(
    rgb: np.ndarray,
    image: PlaneImage,
    kind: MeasurementKind,
    a: Vec3,
    b: Vec3,
    colour: Sequence[int],
    vertex: Vec3 | None = None,
) -> None:
    """A length, ellipse or rectangle between patient points ``a`` and ``b`` on the pane; an
    angle from ``a`` to its ``vertex`` to ``b``."""
    (x0, y0), (x1, y1) = _pixel(image, a), _pixel(image, b)
    if kind is MeasurementKind.ANGLE and vertex is not None:
        xv, yv = _pixel(image, vertex)
        _line(rgb, x0, y0, xv, yv, colour)
        _line(rgb, xv, yv, x1, y1, colour)
    elif kind is MeasurementKind.ELLIPSE:
        rx, ry = abs(x1 - x0), abs(y1 - y0)
        count = max(16, int(4 * (rx + ry)))
        t = np.linspace(0, 2 * math.pi, count)
        xs, ys = x0 + rx * np.cos(t), y0 + ry * np.sin(t)
        for n in range(count - 1):
            _line(rgb, xs[n], ys[n], xs[n + 1], ys[n + 1], colour)
    elif kind is MeasurementKind.RECTANGLE:
        for p, q in (((x0, y0), (x1, y0)), ((x1, y0), (x1, y1)), ((x1, y1), (x0, y1)),
                     ((x0, y1), (x0, y0))):  # fmt: skip
            _line(rgb, p[0], p[1], q[0], q[1], colour)
    else:
        _line(rgb, x0, y0, x1, y1, colour)


@dataclass(frozen=True)
class Drawn:
    """A measurement of this screen as the panes draw it: patient points and its plane."""

    kind: MeasurementKind
    pane: int
    start: Vec3
    end: Vec3
    vertex: Vec3 | None = None


def _on_plane(image: PlaneImage, point: Vec3, tolerance: float) -> bool:
    normal = np.asarray(image.plane.normal)
    return abs(float((np.asarray(point) - np.asarray(image.at)) @ normal)) <= tolerance


def _pixel(image: PlaneImage, point: Vec3) -> tuple[int, int]:
    """The pane pixel a patient point falls on (projected on the plane)."""
    x, y = image.pixel_of(point)
    return round(x), round(y)


def _stretch(rgb: np.ndarray, aspect: float) -> np.ndarray:
    """Rows repeated or dropped so that square pixels look square on pixels ``aspect`` times
    as tall as wide (half-blocks on cells that are not 1:2)."""
    if abs(aspect - 1.0) < 1e-3:
        return rgb
    height = rgb.shape[0]
    rows = max(1, round(height / aspect))
    index = np.minimum((np.arange(rows) * aspect).astype(np.int64), height - 1)
    stretched: np.ndarray = rgb[index]
    return stretched


def render_panes(
    volume: Volume,
    view: VolumeView,
    boxes: dict[int, tuple[int, int]],
    *,
    aspect: float = 1.0,
    drawn: Sequence[Drawn] = (),
    previous: Sequence[PlaneImage] = (),
    shown: Sequence[PaneFrame] = (),
    cancel: threading.Event | None = None,
) -> list[PaneFrame] | None:
    """The visible panes for ``view``, each fitted to its pixel box (width, height), with the
    crosshair, the ROI being drawn and ``drawn`` measurements of that plane. ``previous``
    planes whose :attr:`~PlaneImage.key` still matches are reused (a step through the axial
    pane re-extracts only the axial plane), and so are the pictures of ``shown`` frames whose
    :attr:`PaneFrame.key` matches (a crosshair step smaller than a pane pixel draws nothing).
    None when cancelled.

    Raises:
        RenderError: a crosshair outside the volume, a bad window.
    """
    reusable = {image.key: image for image in previous if image.key}
    pictures = {frame.key: frame for frame in shown}
    frames: list[PaneFrame] = []
    for pane, (width, height) in boxes.items():
        box = (width, max(1, int(height * aspect)))
        request = _request(volume, view, pane, box)
        image = reusable.get(plane_key(volume, request))
        if image is not None:
            image = replace(image, at=view.at)
        else:
            image = extract_plane(volume, request, cancel=cancel)
            if image is None:
                return None
        drawing = view.drawing
        sketch: tuple[object, ...] = ()
        if drawing is not None and drawing.pane == pane:
            sketch = (
                drawing.kind,
                _pixel(image, drawing.start),
                _pixel(image, view.at),
                None if drawing.vertex is None else _pixel(image, drawing.vertex),
            )
        x, y = _pixel(image, view.at)
        active = pane == view.active
        # What is drawn, in pane pixels: a step smaller than a pane pixel (a 512² volume in a
        # 36-pixel pane) leaves the picture as it is, and the image view sends nothing.
        key = (image.key, (x, y), active, sketch, tuple(drawn), aspect)
        same = pictures.get(key)
        if same is not None:
            frames.append(replace(same, pane=pane, image=image))
            continue
        rgb = np.repeat(image.pixels[:, :, None], 3, axis=2)
        tolerance = volume.geometry.spacing_along(image.plane.normal) / 2 + 1e-6
        for mark in drawn:
            if mark.pane == pane and _on_plane(image, mark.start, tolerance):
                _shape(rgb, image, mark.kind, mark.start, mark.end, MARK, mark.vertex)
        if drawing is not None and drawing.pane == pane:
            _shape(rgb, image, drawing.kind, drawing.start, view.at, DRAWING, drawing.vertex)
        _crosshair(rgb, x, y, ACTIVE_CROSSHAIR if active else CROSSHAIR)
        pixels = _stretch(rgb, aspect)
        frames.append(PaneFrame(pane, image, pixels, key, aspect))
    return frames


# --------------------------------------------------------------------------------------------
# Measurements


def _acquired_image(
    volume: Volume, plane: Plane, slab: float, point: Vec3, records: Sequence[InstanceRecord]
) -> tuple[KeyImage, int] | None:
    """The stored image (and its slice index) that ``plane`` through ``point`` is, if it is
    one: the acquisition's orientation, no slab, no tilt, the point on a slice."""
    g = volume.plan.geometry
    if g is None or slab > 0 or np.linalg.norm(np.asarray(g.shear)) > 1e-6:
        return None
    normal = np.asarray(plane.normal)
    if abs(abs(float(normal @ np.asarray(g.normal))) - 1.0) > 1e-6:
        return None
    o, _, _ = g.to_index(np.asarray(point, dtype=np.float64)[None, :])
    offsets = np.asarray(g.offsets)
    k = int(np.argmin(np.abs(offsets - o[0])))
    if abs(offsets[k] - o[0]) > 1e-3:
        return None
    header = volume.plan.slices[k]
    record = next((r for r in records if r.sop_instance_uid == header.sop_instance_uid), None)
    if record is None:
        return None
    frame = header.frame + 1 if header.frames > 1 else None
    return KeyImage(
        header.sop_class_uid or record.sop_class_uid,
        header.sop_instance_uid,
        record.study_uid,
        record.series_uid,
        frame,
    ), k


def _image_pixel(volume: Volume, point: Vec3) -> tuple[float, float]:
    """(column, row) of a patient point in the acquired images' full-resolution pixels."""
    g = volume.plan.geometry
    assert g is not None
    _, i, j = g.to_index(np.asarray(point, dtype=np.float64)[None, :])
    return (round(float(j[0]), 4), round(float(i[0]), 4))


def measure(
    volume: Volume,
    drawing: Drawing,
    end: Vec3,
    view: VolumeView,
    records: Sequence[InstanceRecord],
    *,
    label: str = "",
) -> Measurement:
    """The measurement from ``drawing.start`` to ``end`` on ``drawing``'s pane, its values
    computed on the plane at the volume's own resolution (see the module docstring).

    Raises:
        RenderError: the shape has no length or area, or holds no pixel with a value.
    """
    plane = drawing.plane or Plane.standard(PANES[drawing.pane])
    start = drawing.start
    native = extract_plane(
        volume,
        PlaneRequest(plane=plane, at=start, slab=view.slab, projection=view.projection),
    )
    assert native is not None  # not cancellable
    a, b = native.pixel_of(start), native.pixel_of(end)
    spacing = native.spacing
    stats = None
    length = angle = None
    vertex = native.pixel_of(drawing.vertex) if drawing.vertex is not None else None
    if drawing.kind is MeasurementKind.ANGLE:
        if vertex is None:
            raise RenderError("An angle needs its vertex first: the key again places it.")
        angle = angle_degrees(a, vertex, b, spacing)
    elif drawing.kind is MeasurementKind.LENGTH:
        length = length_mm(a, b, spacing)
        if length <= 0:
            raise RenderError("A length needs two different points: move the crosshair first.")
    elif drawing.kind is MeasurementKind.ELLIPSE:
        radii = (abs(b[0] - a[0]), abs(b[1] - a[1]))
        if min(radii) <= 0:
            raise RenderError(
                "An ellipse needs a width and a height: move the crosshair away from its "
                "centre both across and down."
            )
        stats = ellipse_stats(native.values, spacing, a, radii)
    else:
        stats = rectangle_stats(native.values, spacing, a, b)
    acquired = _acquired_image(volume, plane, view.slab, start, records)
    image: KeyImage | None = None
    where = ""
    if acquired is not None:
        image = acquired[0]
        pa, pb = _image_pixel(volume, start), _image_pixel(volume, end)
        points: tuple[tuple[float, float], ...]
        if drawing.kind is MeasurementKind.ELLIPSE:
            points = (pa, (abs(pb[0] - pa[0]), abs(pb[1] - pa[1])))
        elif drawing.kind is MeasurementKind.ANGLE and drawing.vertex is not None:
            points = (pa, _image_pixel(volume, drawing.vertex), pb)
        else:
            points = (pa, pb)
    else:
        x, y, z = start
        slab = f", {slab_text(view)} slab" if view.slab > 0 else ""
        name = plane.name
        if name == "oblique":
            name = "oblique (normal {:.2f} {:.2f} {:.2f})".format(*plane.normal)
        where = f"{name} at ({x:.1f}, {y:.1f}, {z:.1f}) mm{slab}"
        if drawing.kind is MeasurementKind.ELLIPSE:
            points = (a, (abs(b[0] - a[0]), abs(b[1] - a[1])))
        elif vertex is not None:
            points = (a, vertex, b)
        else:
            points = (a, b)
    return Measurement(
        kind=drawing.kind,
        points=tuple((round(p[0], 4), round(p[1], 4)) for p in points),
        image=image,
        label=label,
        length_mm=length,
        angle_deg=angle,
        stats=stats,
        units=volume.units,
        where=where,
    )


def acquired_pane(volume: Volume) -> int | None:
    """The pane whose plane is the acquisition's (axial for an axial CT), if one is."""
    normal = np.asarray(volume.geometry.normal)
    for pane, name in enumerate(PANES):
        if abs(abs(float(np.asarray(Plane.standard(name).normal) @ normal)) - 1.0) < 1e-6:
            return pane
    return None


def drawn_of(measurement: Measurement, volume: Volume) -> Drawn | None:
    """Where a saved measurement on an image of this volume lies in patient space, to draw it
    on its pane (None: made on another series, on a reformat, or on an oblique stack)."""
    g = volume.plan.geometry
    image = measurement.image
    pane = acquired_pane(volume)
    if g is None or image is None or pane is None:
        return None
    frame = (image.frame or 1) - 1
    k = next(
        (
            n
            for n, h in enumerate(volume.plan.slices)
            if h.sop_instance_uid == image.sop_instance_uid and h.frame == frame
        ),
        None,
    )
    if k is None:
        return None
    points = measurement.points
    vertex = None
    if measurement.kind is MeasurementKind.ANGLE:
        (x0, y0), (xv, yv), (x1, y1) = points
        vertex = g.to_patient(g.offsets[k], yv, xv)
    else:
        (x0, y0), (x1, y1) = points
        if measurement.kind is MeasurementKind.ELLIPSE:
            x1, y1 = x0 + x1, y0 + y1
    start = g.to_patient(g.offsets[k], y0, x0)
    end = g.to_patient(g.offsets[k], y1, x1)
    return Drawn(measurement.kind, pane, start, end, vertex)
