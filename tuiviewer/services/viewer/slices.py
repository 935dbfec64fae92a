"""The slices of a stack and what is known about each: frames of multi-frame objects as slices,
loading through a cache of decoded frames, the view state a render is asked with, the facts the
corner texts show, the pixel readout, and what to decode next."""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from tuiviewer.dicom.display import display_date
from tuiviewer.dicom.reading import read_dicom
from tuiviewer.dicom.scanning import InstanceRecord
from tuiviewer.exceptions import DicomReadError, RenderError
from tuiviewer.render.decode import frame_count
from tuiviewer.render.lut import Window, functional_item, modality_lut
from tuiviewer.render.overlay import overlay_planes
from tuiviewer.render.pipeline import Frame, load_frame
from tuiviewer.services.viewer.caches import ByteLRU

#: Default budget of decoded frames: ~250 slices of 512² 16-bit CT.
DEFAULT_FRAME_CACHE_BYTES = 128 * 1024 * 1024


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


@dataclass(frozen=True)
class SliceInfo:
    """What the corner texts show about one slice."""

    patient: str
    study: str
    series: str
    study_date: str
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
        study_date=study_date,
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

    def _read(self, ref: SliceRef) -> Dataset:
        if ref.frames > 1:
            cached = self._datasets.get(ref.path)
            if cached is not None:
                return cached
        try:
            ds = read_dicom(ref.path, force=True)
        except DicomReadError:
            raise
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
