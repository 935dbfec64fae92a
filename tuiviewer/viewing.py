"""What the slice viewer knows and computes, without Textual, so it can be unit-tested.

The viewer screen is a thin shell over this: which images make up the stack (frames of
multi-frame objects included), loading one slice into a cache bounded in bytes, key-repeat
coalescing (at most one render in flight; requests made meanwhile collapse to the latest, so
holding a key skips slices instead of queueing them), mapping source pixels to the rendered
image and back (the cursor works at source-pixel precision although a terminal cell is
coarser), orientation letters from Image Orientation (Patient), distances from Pixel Spacing,
the text of the pixel readout, and where a second stack shown beside the first must be to
show the same plane.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from tuiviewer.dicom.display import display_date
from tuiviewer.dicom.scanning import InstanceRecord
from tuiviewer.exceptions import DicomReadError, RenderError
from tuiviewer.render.decode import frame_count
from tuiviewer.render.lut import Window, functional_item, modality_lut
from tuiviewer.render.overlay import overlay_planes
from tuiviewer.render.pipeline import Frame, RenderedImage, displayed_spacing, load_frame
from tuiviewer.render.resample import display_size

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
T = TypeVar("T")

#: Default budget of decoded frames: ~250 slices of 512² 16-bit CT.
DEFAULT_FRAME_CACHE_BYTES = 128 * 1024 * 1024

# --------------------------------------------------------------------------------------------
# The images of a stack


@dataclass(frozen=True)
class SliceRef:
    """One displayable image: a frame of an instance."""

    record: InstanceRecord
    frame: int = 0
    """0-based frame index within the instance."""
    frames: int = 1
    """Number of frames of the instance."""

    @property
    def path(self) -> Path:
        return self.record.path


def slices_of(records: Sequence[InstanceRecord]) -> list[SliceRef]:
    """Every frame of every instance, in the given (stack) order: frame scroll is slice scroll."""
    out: list[SliceRef] = []
    for record in records:
        frames = max(1, int(record.frames or 1))
        out.extend(SliceRef(record, k, frames) for k in range(frames))
    return out


def goto_index(text: str, count: int) -> int:
    """0-based index for what the user typed: a slice number (from 1) or a percentage.

    Raises:
        ValueError: the text is neither, or the number is outside 1..count.
    """
    raw = text.strip()
    if count < 1:
        raise ValueError("There is no slice to go to.")
    try:
        if raw.endswith("%"):
            percent = float(raw[:-1])
            if not 0 <= percent <= 100:
                raise ValueError(f"{raw!r} is not between 0% and 100%.")
            return round((count - 1) * percent / 100.0)
        number = int(raw)
    except ValueError as exc:
        if "between" in str(exc):
            raise
        raise ValueError(f"{raw!r} is neither a slice number nor a percentage like 50%.") from None
    if not 1 <= number <= count:
        raise ValueError(f"Slice {number} does not exist: the stack has 1 to {count}.")
    return number - 1


# --------------------------------------------------------------------------------------------
# Orientation letters

#: Letters for +x, +y, +z of the patient coordinate system (LPS, PS3.3 C.7.6.2.1.1) and their
#: opposites: x increases to the patient's Left, y to Posterior, z to the Head.
_POSITIVE = ("L", "P", "H")
_NEGATIVE = ("R", "A", "F")

#: A direction cosine component below this does not earn a letter (a 15° tilt still reads "L").
ORIENTATION_THRESHOLD = 0.25


def direction_letters(vector: Sequence[float]) -> str:
    """The patient direction a vector points to, strongest component first (e.g. ``"LA"``)."""
    if len(vector) != 3:
        raise ValueError(f"A direction needs 3 components, got {list(vector)!r}.")
    ranked = sorted(range(3), key=lambda i: -abs(vector[i]))
    letters = [
        (_POSITIVE if vector[i] > 0 else _NEGATIVE)[i]
        for i in ranked
        if abs(vector[i]) >= ORIENTATION_THRESHOLD
    ]
    return "".join(letters)


@dataclass(frozen=True)
class EdgeLabels:
    """Letters at the four edges of the displayed image."""

    left: str
    right: str
    top: str
    bottom: str


def edge_labels(orientation: Sequence[float] | None) -> EdgeLabels | None:
    """Edge letters from Image Orientation (Patient): the row cosines point right, the column
    cosines down (PS3.3 C.7.6.2.1.1); None without a usable orientation."""
    if orientation is None or len(orientation) != 6:
        return None
    row = [float(v) for v in orientation[:3]]
    col = [float(v) for v in orientation[3:]]
    if math.hypot(*row) < 1e-6 or math.hypot(*col) < 1e-6:
        return None
    return EdgeLabels(
        left=direction_letters([-v for v in row]),
        right=direction_letters(row),
        top=direction_letters([-v for v in col]),
        bottom=direction_letters(col),
    )


# --------------------------------------------------------------------------------------------
# Distances


@dataclass(frozen=True)
class Distance:
    """A measured distance and how it should be read."""

    value: float
    unit: str
    """``"mm"`` or ``"px"``."""
    qualifier: str = ""
    """``"at detector"`` for Imager Pixel Spacing (projection images are magnified)."""

    @property
    def text(self) -> str:
        number = f"{self.value:.1f} {self.unit}"
        return f"{number} {self.qualifier}" if self.qualifier else number


def measure(
    start: tuple[float, float],
    end: tuple[float, float],
    spacing: tuple[float, float] | None,
    spacing_kind: str,
) -> Distance:
    """Distance between two source pixels given as ``(column, row)``.

    ``spacing`` is (row spacing, column spacing) as in Pixel Spacing (PS3.3 10.7.1.3): columns
    are ``spacing[1]`` mm apart horizontally, rows ``spacing[0]`` mm vertically. Pixel Spacing
    measures in the patient; Imager Pixel Spacing at the detector (PS3.3 10.7.1.1), which is
    said; a Pixel Aspect Ratio or no spacing at all gives pixels.
    """
    d_col = end[0] - start[0]
    d_row = end[1] - start[1]
    if spacing is not None and spacing_kind in ("PixelSpacing", "ImagerPixelSpacing"):
        value = math.hypot(d_col * spacing[1], d_row * spacing[0])
        qualifier = "at detector" if spacing_kind == "ImagerPixelSpacing" else ""
        return Distance(value, "mm", qualifier)
    return Distance(math.hypot(d_col, d_row), "px")


# --------------------------------------------------------------------------------------------
# Caches and coalescing


class ByteLRU(Generic[K, V]):
    """A least-recently-used cache bounded by the bytes its values hold, thread-safe."""

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"A cache budget of {max_bytes} bytes is negative.")
        self.max_bytes = max_bytes
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.evictions = 0

    @property
    def total_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def get(self, key: K) -> V | None:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return None
            self._items.move_to_end(key)
            return found[0]

    def put(self, key: K, value: V, nbytes: int) -> bool:
        """Store ``value``; evict the oldest until it fits. False when it alone is too big."""
        if nbytes < 0:
            raise ValueError(f"An item cannot weigh {nbytes} bytes.")
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            if nbytes > self.max_bytes:
                return False
            while self._items and self._bytes + nbytes > self.max_bytes:
                _, (_, dropped) = self._items.popitem(last=False)
                self._bytes -= dropped
                self.evictions += 1
            self._items[key] = (value, nbytes)
            self._bytes += nbytes
            return True

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def limit(self, max_bytes: int) -> None:
        """Change the budget, evicting the oldest items at once if it shrank."""
        if max_bytes < 0:
            raise ValueError(f"A cache budget of {max_bytes} bytes is negative.")
        with self._lock:
            self.max_bytes = max_bytes
            while self._items and self._bytes > max_bytes:
                _, (_, dropped) = self._items.popitem(last=False)
                self._bytes -= dropped
                self.evictions += 1


class RenderCoalescer(Generic[T]):
    """At most one job in flight; what is asked meanwhile collapses to the latest request.

    A held key posts a step per repeat; each step asks for a new slice. While one render runs,
    later requests overwrite each other, and when it finishes only the newest is started, so the
    intermediate slices are skipped rather than rendered in a queue that lags behind the key.
    """

    def __init__(self) -> None:
        self.in_flight: T | None = None
        self.pending: T | None = None
        self.started = 0
        """Jobs started so far (what a test counts)."""

    def request(self, job: T) -> T | None:
        """Ask for ``job``; returns it when it should start now, None when it must wait."""
        if self.in_flight is None:
            self.in_flight = job
            self.started += 1
            return job
        self.pending = job
        return None

    def finished(self) -> T | None:
        """The running job ended; returns the job to start next, if one is waiting."""
        self.in_flight = None
        job, self.pending = self.pending, None
        if job is None:
            return None
        self.in_flight = job
        self.started += 1
        return job

    @property
    def busy(self) -> bool:
        return self.in_flight is not None


# --------------------------------------------------------------------------------------------
# Geometry of the displayed image


@dataclass(frozen=True)
class ViewMapping:
    """Output pixel ``x`` covers source columns ``[start_x + x*step_x, start_x + (x+1)*step_x)``."""

    out_w: int
    out_h: int
    start_x: float
    start_y: float
    step_x: float
    step_y: float

    def to_output(self, col: float, row: float) -> tuple[float, float]:
        """Output position (fractional pixels) of the centre of source pixel (col, row)."""
        return (
            (col + 0.5 - self.start_x) / self.step_x,
            (row + 0.5 - self.start_y) / self.step_y,
        )

    def to_source(self, x: float, y: float) -> tuple[int, int]:
        """Source pixel (col, row) under output position (x, y)."""
        return (
            math.floor(self.start_x + x * self.step_x),
            math.floor(self.start_y + y * self.step_y),
        )


def view_mapping(
    rows: int,
    cols: int,
    spacing: tuple[float, float] | None,
    size: tuple[int, int] | None,
    zoom: float = 1.0,
    pan: tuple[float, float] = (0.0, 0.0),
    pixel_aspect: float = 1.0,
) -> ViewMapping:
    """The same geometry :func:`tuiviewer.render.pipeline.render_frame` uses for a request."""
    spacing = displayed_spacing(spacing, pixel_aspect)
    if size is None:
        fit_w, fit_h = cols, rows
    else:
        fit_w, fit_h = display_size(rows, cols, spacing, size[0], size[1])
    scale_x = fit_w / cols * zoom
    scale_y = fit_h / rows * zoom
    if zoom <= 1.0 and pan == (0.0, 0.0):
        out_w = max(1, round(cols * scale_x))
        out_h = max(1, round(rows * scale_y))
        return ViewMapping(out_w, out_h, 0.0, 0.0, cols / out_w, rows / out_h)
    step_x, step_y = 1.0 / scale_x, 1.0 / scale_y
    start_x = cols / 2.0 - pan[0] * step_x - fit_w / 2.0 * step_x
    start_y = rows / 2.0 - pan[1] * step_y - fit_h / 2.0 * step_y
    return ViewMapping(fit_w, fit_h, start_x, start_y, step_x, step_y)


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


# --------------------------------------------------------------------------------------------
# Window, view state, readout


def adjust_window(window: Window, *, level: float = 0.0, width: float = 0.0) -> Window:
    """Shift the centre by ``level`` widths and scale the width by ``exp(width)``.

    Steps relative to the current width feel the same on a 80 HU brain window and a 1500 HU
    lung window; the width never drops below 1 (PS3.3 C.11.2.1.2.1).
    """
    center = window.center + level * window.width
    new_width = max(1.0, window.width * math.exp(width))
    return replace(window, center=round(center, 1), width=round(new_width, 1), explanation="")


@dataclass(frozen=True)
class ViewState:
    """How the current slice is shown; a new value triggers a render."""

    window: Window | None = None
    """None: the file's own window (or its VOI LUT, or the full range)."""
    preset: str = ""
    invert: bool = False
    overlays: bool = True
    zoom: float = 1.0
    pan: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True)
class RenderJob:
    """One render the viewer asked for."""

    seq: int
    """Increases with every request; a result older than what is shown is stale."""
    stack: int
    """Which stack (series) of the study; a result for another stack is stale."""
    index: int
    state: ViewState
    box: tuple[int, int] | None
    """Pixel box of the image widget (None: native resolution)."""
    cap_to_source: bool = False
    """Never enlarge beyond the source (pixel protocols: the terminal shows pixels, and Kitty
    and iTerm2 terminals enlarge for free)."""
    pixel_aspect: float = 1.0
    """Height over width of one output pixel on screen (half-blocks: half a cell)."""
    asked_at: float = 0.0
    """``time.perf_counter()`` when the key arrived."""


def capped_box(
    rows: int, cols: int, spacing: tuple[float, float] | None, box: tuple[int, int]
) -> tuple[int, int]:
    """``box`` shrunk so that the fitted image is no larger than the source.

    A 512² slice in a 1200×760-pixel Kitty area would otherwise be enlarged before the upload
    (1.9× the pixels, sent on every step); the terminal scales the smaller image for free.
    """
    fit_w, fit_h = display_size(rows, cols, spacing, box[0], box[1])
    scale = min(1.0, cols / fit_w, rows / fit_h)
    if scale >= 1.0:
        return box
    return max(1, math.floor(box[0] * scale)), max(1, math.floor(box[1] * scale))


@dataclass(frozen=True)
class SliceInfo:
    """What the corner texts show about one slice."""

    patient: str
    study: str
    series: str
    modality: str
    position: tuple[float, float, float] | None
    orientation: tuple[float, ...] | None
    thickness: float | None
    slice_location: float | None
    units: str
    """Unit of modality values for the readout: ``"HU"`` for CT, else Rescale Type or ``""``."""


def _floats(value: object, count: int) -> tuple[float, ...] | None:
    try:
        items = [float(v) for v in value]  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return None
    return tuple(items) if len(items) == count else None


def _float(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def slice_info(ds: Dataset, frame: Frame, record: InstanceRecord) -> SliceInfo:
    """Corner-text facts of ``frame``; enhanced objects take position and orientation from
    the per-frame or shared functional groups (PS3.3 C.7.6.16.2.3, C.7.6.16.2.4)."""
    position_item = functional_item(ds, frame.index, "PlanePositionSequence")
    orientation_item = functional_item(ds, frame.index, "PlaneOrientationSequence")
    measures = functional_item(ds, frame.index, "PixelMeasuresSequence")
    position = _floats((position_item or ds).get("ImagePositionPatient"), 3)
    orientation = _floats((orientation_item or ds).get("ImageOrientationPatient"), 6)
    thickness = _float((measures or ds).get("SliceThickness"))
    if thickness is None:
        thickness = _float(ds.get("SliceThickness"))
    modality = str(ds.get("Modality", "") or record.modality)
    rescale_type = frame.modality.rescale_type.strip()
    units = "HU" if modality == "CT" and rescale_type in ("", "HU") else rescale_type
    name = str(ds.get("PatientName", "") or record.patient_name).replace("^", " ").strip()
    patient_id = str(ds.get("PatientID", "") or record.patient_id)
    study_date = display_date(str(ds.get("StudyDate", "") or record.study_date))
    description = str(ds.get("StudyDescription", "") or record.study_description)
    number = ds.get("SeriesNumber", record.series_number)
    series_description = str(ds.get("SeriesDescription", "") or record.series_description)
    return SliceInfo(
        patient=f"{name or '(no name)'} ({patient_id or 'no ID'})",
        study=" ".join(p for p in (study_date, description) if p),
        series=f"#{number if number not in (None, '') else '?'} {modality} {series_description}",
        modality=modality,
        position=position,  # type: ignore[arg-type]
        orientation=orientation,
        thickness=thickness,
        slice_location=_float(ds.get("SliceLocation")),
        units=units,
    )


def readout(frame: Frame, col: int, row: int, units: str) -> str:
    """``"x 12 y 34: 40 HU"``: the source pixel and its modality value (or RGB)."""
    if not (0 <= col < frame.columns and 0 <= row < frame.rows):
        return f"x {col} y {row}: outside the image"
    where = f"x {col} y {row}"
    stored = frame.pixels[row, col]
    if not frame.is_grey:
        channels = ", ".join(str(int(v)) for v in np.atleast_1d(stored))
        return f"{where}: RGB {channels}"
    value = float(modality_lut(np.asarray([[stored]]), frame.modality)[0, 0])
    number = f"{value:.0f}" if value == round(value) else f"{value:.2f}"
    return f"{where}: {number} {units}".rstrip()


# --------------------------------------------------------------------------------------------
# Loading slices


@dataclass(frozen=True)
class LoadedSlice:
    """A decoded slice: the dataset header (pixel data dropped when possible) and its frame."""

    ds: Dataset = field(repr=False)
    frame: Frame = field(repr=False)
    info: SliceInfo
    nbytes: int


class SliceSource:
    """Loads slices of a stack through a cache of decoded frames bounded in bytes.

    Workers call :meth:`load` from threads (the render worker and the prefetcher at once), so
    the caches are locked; decoding itself runs unlocked.
    """

    def __init__(
        self, slices: Sequence[SliceRef], *, max_bytes: int = DEFAULT_FRAME_CACHE_BYTES
    ) -> None:
        self.slices = list(slices)
        self.frames: ByteLRU[tuple[Path, int], LoadedSlice] = ByteLRU(max_bytes)
        # Multi-frame objects keep their pixel data between frames (re-reading a large file per
        # frame would be slow); a quarter of the budget holds them.
        self._datasets: ByteLRU[Path, Dataset] = ByteLRU(max_bytes // 4)
        self.decoded = 0
        """Frames decoded so far (cache misses)."""

    def __len__(self) -> int:
        return len(self.slices)

    def is_cached(self, index: int) -> bool:
        ref = self.slices[index]
        return (ref.path, ref.frame) in self.frames

    def _read(self, ref: SliceRef) -> Dataset:
        if ref.frames > 1:
            cached = self._datasets.get(ref.path)
            if cached is not None:
                return cached
        try:
            ds = dcmread(ref.path, force=True)
        except (OSError, InvalidDicomError, ValueError, EOFError, TypeError) as exc:
            raise DicomReadError(f"Cannot read {ref.path.name!r}: {exc}") from exc
        if ref.frames > 1:
            raw = ds.get("PixelData")
            self._datasets.put(ref.path, ds, len(raw) if isinstance(raw, bytes) else 0)
        return ds

    def load(self, index: int, cancel: threading.Event | None = None) -> LoadedSlice | None:
        """The decoded slice ``index`` (0-based); None when cancelled before decoding.

        Raises:
            RenderError: index out of range, or pixel data that cannot be decoded.
            DicomReadError: the file cannot be read.
        """
        if not 0 <= index < len(self.slices):
            raise RenderError(f"Slice {index + 1} does not exist: the stack has {len(self)}.")
        ref = self.slices[index]
        key = (ref.path, ref.frame)
        found = self.frames.get(key)
        if found is not None:
            return found
        if cancel is not None and cancel.is_set():
            return None
        ds = self._read(ref)
        frame = load_frame(ds, min(ref.frame, frame_count(ds) - 1))
        nbytes = int(frame.pixels.nbytes)
        if ref.frames == 1 and not overlay_planes(ds) and "PixelData" in ds:
            del ds.PixelData  # decoded already; keeping both would double the memory
        elif ref.frames == 1:
            raw = ds.get("PixelData")
            nbytes += len(raw) if isinstance(raw, bytes) else 0
        loaded = LoadedSlice(ds, frame, slice_info(ds, frame, ref.record), nbytes)
        self.decoded += 1
        self.frames.put(key, loaded, nbytes)
        return loaded


def prefetch_order(index: int, direction: int, count: int, ahead: int = 4) -> list[int]:
    """Slices worth decoding next: ``ahead`` in the scroll direction, then one behind."""
    step = 1 if direction >= 0 else -1
    wanted = [index + step * k for k in range(1, ahead + 1)] + [index - step]
    return [i for i in wanted if 0 <= i < count]


# --------------------------------------------------------------------------------------------
# Two stacks side by side, linked by slice position

Vector = tuple[float, float, float]


def slice_normal(orientation: Sequence[float] | None) -> Vector | None:
    """Unit normal ``row × column`` of Image Orientation (Patient) (PS3.3 C.7.6.2.1.1)."""
    if orientation is None or len(orientation) != 6:
        return None
    rx, ry, rz, cx, cy, cz = (float(v) for v in orientation)
    normal = (ry * cz - rz * cy, rz * cx - rx * cz, rx * cy - ry * cx)
    length = math.hypot(*normal)
    if length < 1e-6:
        return None
    return (normal[0] / length, normal[1] / length, normal[2] / length)


def slice_position(ref: SliceRef) -> Vector | None:
    """Image Position (Patient) of a slice as the scan recorded it; None for the frames of a
    multi-frame object (its record holds at most the first frame's position)."""
    if ref.frames > 1:
        return None
    return ref.record.image_position


@dataclass(frozen=True)
class StackGeometry:
    """Where the slices of a stack lie along its normal, to find the one nearest a position.

    Linking by position rather than by index is what makes a 5 mm prior follow a 2.5 mm
    current study: slice 10 of one is not slice 10 of the other, but the plane 22.5 mm up is.
    """

    normal: Vector | None
    locations: tuple[float | None, ...]
    """Position of each slice along ``normal`` in mm (None: unknown)."""

    @classmethod
    def of(cls, slices: Sequence[SliceRef]) -> StackGeometry:
        normal = next(
            (
                n
                for n in (slice_normal(ref.record.image_orientation) for ref in slices)
                if n is not None
            ),
            None,
        )
        locations: list[float | None] = []
        for ref in slices:
            position = slice_position(ref)
            locations.append(None if position is None or normal is None else _dot(position, normal))
        return cls(normal, tuple(locations))

    @property
    def spacing(self) -> float | None:
        """Median distance between neighbouring slices (mm), None with fewer than two known."""
        known = [v for v in self.locations if v is not None]
        gaps = sorted(abs(b - a) for a, b in zip(known, known[1:], strict=False))
        return gaps[len(gaps) // 2] if gaps else None

    def location_of(self, position: Vector) -> float | None:
        """``position`` projected on this stack's normal (mm), None without a normal."""
        return None if self.normal is None else _dot(position, self.normal)

    def nearest(self, position: Vector | None) -> int | None:
        """Index of the slice whose plane is nearest to ``position``; None when either side has
        no geometry. Of two equally near slices the first in stack order wins."""
        if position is None:
            return None
        target = self.location_of(position)
        if target is None:
            return None
        best: int | None = None
        best_distance = math.inf
        for i, location in enumerate(self.locations):
            if location is not None and abs(location - target) < best_distance - 1e-9:
                best, best_distance = i, abs(location - target)
        return best


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return float(a[0] * b[0] + a[1] * b[1] + a[2] * b[2])


class LinkedStack:
    """The second stack of a side-by-side: its own slices, decoded-frame cache, rendered-frame
    cache and render coalescer (so holding a key skips slices on both sides), and where it is."""

    def __init__(
        self,
        records: Sequence[InstanceRecord],
        *,
        stack: int,
        max_bytes: int = DEFAULT_FRAME_CACHE_BYTES // 2,
        rendered_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        self.stack = stack
        """Position of this stack in the viewer's list of stacks."""
        self.slices = slices_of(records)
        self.source = SliceSource(self.slices, max_bytes=max_bytes)
        self.rendered: ByteLRU[tuple[object, ...], RenderedImage] = ByteLRU(rendered_bytes)
        self.coalescer: RenderCoalescer[RenderJob] = RenderCoalescer()
        self.geometry = StackGeometry.of(self.slices)
        self.index = 0
        """The slice asked for (follows the other stack)."""
        self.shown_index: int | None = None
        self.shown_seq = -1
        self.direction = 1

    def __len__(self) -> int:
        return len(self.slices)

    def follow(self, position: Vector | None) -> bool:
        """Move to the slice nearest ``position``; False (and no move) when it cannot be placed."""
        index = self.geometry.nearest(position)
        if index is None:
            return False
        if index != self.index:
            self.direction = 1 if index > self.index else -1
        self.index = index
        return True
