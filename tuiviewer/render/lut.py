"""Grey-scale transforms of PS3.3 C.11: Modality LUT, then VOI (window or VOI LUT) to 8 bits.

pydicom's helpers are not used for two reasons found in their sources: ``apply_windowing``
keeps the input's range instead of producing display values 0-255, and ``apply_modality_lut``
reads Rescale Slope/Intercept only from the top level, so enhanced objects whose values live in
the per-frame or shared functional groups (PS3.3 C.7.6.16.2.9 Pixel Value Transformation,
C.7.6.16.2.10 Frame VOI LUT) would be shown with the wrong numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from struct import unpack_from
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

from tuiviewer.exceptions import RenderError


class VoiFunction(Enum):
    """VOI LUT Function (0028,1056), PS3.3 C.11.2.1.3; LINEAR when absent (C.11.2.1.2)."""

    LINEAR = "LINEAR"
    """C.11.2.1.2.1: the historical formula with its ``c - 0.5`` and ``w - 1`` terms."""
    LINEAR_EXACT = "LINEAR_EXACT"
    """C.11.2.1.3.1: exactly ``c ± w/2`` mapped to the output range ends."""
    SIGMOID = "SIGMOID"
    """C.11.2.1.3.2: a logistic curve centred on ``c`` (never clips)."""


@dataclass(frozen=True)
class Window:
    """A window (Window Center/Width, PS3.3 C.11.2.1.2) in modality-LUT output units (HU for CT)."""

    center: float
    width: float
    function: VoiFunction = VoiFunction.LINEAR
    explanation: str = ""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.center) and math.isfinite(self.width)):
            raise RenderError(f"Window {self.center}/{self.width} is not a pair of finite numbers.")
        # C.11.2.1.2.1: width >= 1 for LINEAR; C.11.2.1.3.1/2: width > 0 for the others.
        minimum_ok = self.width >= 1 if self.function is VoiFunction.LINEAR else self.width > 0
        if not minimum_ok:
            bound = ">= 1" if self.function is VoiFunction.LINEAR else "> 0"
            raise RenderError(
                f"Window width {self.width:g} is not allowed for {self.function.value}: "
                f"it must be {bound} (PS3.3 C.11.2.1)."
            )


@dataclass(frozen=True)
class Lut:
    """A Modality or VOI LUT item (PS3.3 C.11.1.1.1 / C.11.2.1.1), entries as int64."""

    first_mapped: int
    bits: int
    data: np.ndarray
    explanation: str = ""

    def lookup(self, values: np.ndarray) -> np.ndarray:
        """Values below the first mapped value take the first entry, above the last the last."""
        idx = np.rint(np.asarray(values, dtype=np.float64) - self.first_mapped)
        np.clip(idx, 0, len(self.data) - 1, out=idx)
        return self.data[idx.astype(np.intp)]


@dataclass(frozen=True)
class ModalityParams:
    """What turns stored values into modality values (HU, ...) for one frame."""

    slope: float = 1.0
    intercept: float = 0.0
    lut: Lut | None = None
    rescale_type: str = ""

    @property
    def is_identity(self) -> bool:
        return self.lut is None and self.slope == 1.0 and self.intercept == 0.0


def _first(ds: Dataset, keyword: str) -> Dataset | None:
    seq = ds.get(keyword)
    if seq:
        item: Dataset = seq[0]
        return item
    return None


def functional_item(ds: Dataset, frame: int, macro: str) -> Dataset | None:
    """The macro item for ``frame``: per-frame group first, then shared (PS3.3 C.7.6.16)."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame and 0 <= frame < len(per_frame):
        found = _first(per_frame[frame], macro)
        if found is not None:
            return found
    shared = _first(ds, "SharedFunctionalGroupsSequence")
    if shared is not None:
        return _first(shared, macro)
    return None


def _little_endian(ds: Dataset) -> bool:
    meta = getattr(ds, "file_meta", None)
    uid = meta.get("TransferSyntaxUID") if meta is not None else None
    if uid is not None and str(uid) == "1.2.840.10008.1.2.2":
        return False
    if uid is None and getattr(ds, "is_little_endian", True) is False:
        return False
    return True


def parse_lut(item: Dataset, ds: Dataset) -> Lut:
    """Read LUT Descriptor/Data of a Modality or VOI LUT item (PS3.3 C.11.1.1.1, C.11.2.1.1).

    LUT Data may be US (a list of ints) or OW (bytes, one 16-bit word per entry, as pydicom
    and dcmtk read it). The descriptor's first mapped value is US or SS by Pixel
    Representation; pydicom reads it as US, so a signed value arrives as ``>= 32768``.
    """
    desc = item.get("LUTDescriptor")
    if desc is None or "LUTData" not in item or len(desc) != 3:
        raise RenderError("A LUT item lacks (0028,3002) LUT Descriptor (3 values) or LUT Data.")
    entries = int(desc[0]) or 65536  # 0 means 2^16 entries (C.11.1.1.1)
    first = int(desc[1])
    if first >= 32768 and ds.get("PixelRepresentation", 0) == 1:
        first -= 65536
    bits = int(desc[2])
    if not 8 <= bits <= 16:
        raise RenderError(f"LUT Descriptor bit depth {bits} is not supported (8 to 16 allowed).")
    raw = item["LUTData"].value
    values: Sequence[int]
    if isinstance(raw, bytes | bytearray):
        count = min(entries, len(raw) // 2)
        values = unpack_from(f"{'<' if _little_endian(ds) else '>'}{count}H", raw)
    elif isinstance(raw, int):
        values = [raw]
    else:
        values = list(raw)
    if len(values) < 1:
        raise RenderError("A LUT item has empty LUT Data.")
    data = np.asarray(values[:entries], dtype=np.int64)
    explanation = str(item.get("LUTExplanation", "") or "")
    return Lut(first_mapped=first, bits=bits, data=data, explanation=explanation)


def modality_params(ds: Dataset, frame: int = 0) -> ModalityParams:
    """Rescale or Modality LUT for ``frame`` (0-based) of ``ds``.

    Enhanced objects keep Rescale Slope/Intercept in the Pixel Value Transformation Sequence of
    the per-frame or shared functional groups (PS3.3 C.7.6.16.2.9); classic ones at the top
    level or in a Modality LUT Sequence (C.11.1).
    """
    holder = functional_item(ds, frame, "PixelValueTransformationSequence")
    for source in (holder, ds):
        if source is None:
            continue
        if "RescaleSlope" in source or "RescaleIntercept" in source:
            slope = source.get("RescaleSlope")
            intercept = source.get("RescaleIntercept")
            return ModalityParams(
                slope=float(slope) if slope not in (None, "") else 1.0,
                intercept=float(intercept) if intercept not in (None, "") else 0.0,
                rescale_type=str(source.get("RescaleType", "") or ""),
            )
    item = _first(ds, "ModalityLUTSequence")
    if item is not None:
        return ModalityParams(
            lut=parse_lut(item, ds), rescale_type=str(item.get("ModalityLUTType", "") or "")
        )
    return ModalityParams()


def modality_lut(arr: np.ndarray, params: ModalityParams) -> np.ndarray:
    """Stored values → modality values (PS3.3 C.11.1): ``v = m * sv + b`` or the LUT.

    Returns float32 when that is exact enough (integer input of at most 16 bits and a
    rescale), float64 otherwise (32-bit input, where float32's 24-bit mantissa would round).
    """
    values = np.asarray(arr)
    if values.dtype.kind not in "uif":
        raise RenderError(f"Pixel values of dtype {values.dtype} are not numbers.")
    if params.lut is not None:
        return params.lut.lookup(values).astype(np.float32)
    narrow = values.dtype.kind in "ui" and values.dtype.itemsize <= 2
    out: np.ndarray = values.astype(np.float32 if narrow else np.float64)
    if params.slope != 1.0:
        out *= out.dtype.type(params.slope)
    if params.intercept != 0.0:
        out += out.dtype.type(params.intercept)
    return out


def _multi(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
        return [value]
    return list(value)


def _voi_function(source: Dataset) -> VoiFunction:
    raw = str(source.get("VOILUTFunction", "") or "").strip().upper()
    try:
        return VoiFunction(raw) if raw else VoiFunction.LINEAR
    except ValueError:
        # An unknown defined term is treated as LINEAR, the default of C.11.2.1.2, as dcmtk does.
        return VoiFunction.LINEAR


def _windows_in(source: Dataset) -> list[Window]:
    centers = _multi(source.get("WindowCenter"))
    widths = _multi(source.get("WindowWidth"))
    explanations = _multi(source.get("WindowCenterWidthExplanation"))
    function = _voi_function(source)
    windows = []
    for i, (c, w) in enumerate(zip(centers, widths, strict=False)):
        try:
            window = Window(
                float(c),
                float(w),
                function,
                str(explanations[i]) if i < len(explanations) else "",
            )
        except (TypeError, ValueError, RenderError):
            continue  # an unusable pair (width 0, text) is skipped; the others stay selectable
        windows.append(window)
    return windows


def windows_from_dataset(ds: Dataset, frame: int = 0) -> list[Window]:
    """Every window the file proposes for ``frame``, in file order.

    Enhanced objects: the Frame VOI LUT macro of the per-frame, then shared, functional groups
    (PS3.3 C.7.6.16.2.10); otherwise the VOI LUT module (C.11.2) at the top level, whose
    Window Center/Width may be multi-valued (one window per value pair).
    """
    holder = functional_item(ds, frame, "FrameVOILUTSequence")
    if holder is not None:
        found = _windows_in(holder)
        if found:
            return found
    return _windows_in(ds)


def voi_luts_from_dataset(ds: Dataset) -> list[Lut]:
    """The items of VOI LUT Sequence (0028,3010), parsed (PS3.3 C.11.2.1.1)."""
    return [parse_lut(item, ds) for item in ds.get("VOILUTSequence") or []]


def full_range_window(values: np.ndarray) -> Window:
    """A LINEAR window mapping the minimum to 0 and the maximum to 255.

    With C.11.2.1.2.1, ``c = (min + max + 1) / 2`` and ``w = max - min + 1`` give
    ``c - 0.5 = (min + max) / 2`` and ``w - 1 = max - min``, so min → 0 and max → 255
    exactly; this is dcmtk's min-max window (``dcmj2pnm +Wm``).
    """
    arr = np.asarray(values)
    if arr.size == 0:
        raise RenderError("Cannot compute a window over an empty image.")
    finite = arr[np.isfinite(arr)] if arr.dtype.kind == "f" else arr
    if finite.size == 0:
        raise RenderError("Cannot compute a window: the image holds no finite value.")
    lo, hi = float(finite.min()), float(finite.max())
    return Window(center=(lo + hi + 1.0) / 2.0, width=hi - lo + 1.0, explanation="full range")


def apply_window(values: np.ndarray, window: Window) -> np.ndarray:
    """Modality values → display values, uint8 0..255 (PS3.3 C.11.2.1), rounded to nearest.

    ``ymin = 0`` and ``ymax = 255``. Computed in float32 for float32 input (the common CT
    path), float64 otherwise.
    """
    x = np.asarray(values)
    if x.dtype.kind not in "uif":
        raise RenderError(f"Cannot window values of dtype {x.dtype}.")
    dtype = np.float32 if x.dtype == np.float32 else np.float64
    x = x.astype(dtype, copy=False)
    c, w = window.center, window.width
    ymax = 255.0
    if window.function is VoiFunction.LINEAR:
        # C.11.2.1.2.1: x <= c - 0.5 - (w-1)/2 → ymin; x > c - 0.5 + (w-1)/2 → ymax;
        # else y = ((x - (c - 0.5)) / (w - 1) + 0.5) * (ymax - ymin) + ymin.
        if w == 1:  # the ramp has no width: a step at c - 0.5
            return np.where(x > c - 0.5, np.uint8(255), np.uint8(0)).astype(np.uint8)
        y = ((x - dtype(c - 0.5)) / dtype(w - 1) + dtype(0.5)) * dtype(ymax)
        lower, upper = c - 0.5 - (w - 1) / 2.0, c - 0.5 + (w - 1) / 2.0
        y = np.where(x <= lower, dtype(0), np.where(x > upper, dtype(ymax), y))
    elif window.function is VoiFunction.LINEAR_EXACT:
        # C.11.2.1.3.1: x <= c - w/2 → ymin; x > c + w/2 → ymax;
        # else y = ((x - c) / w + 0.5) * (ymax - ymin) + ymin.
        y = ((x - dtype(c)) / dtype(w) + dtype(0.5)) * dtype(ymax)
        y = np.where(x <= c - w / 2.0, dtype(0), np.where(x > c + w / 2.0, dtype(ymax), y))
    else:
        # C.11.2.1.3.2: y = (ymax - ymin) / (1 + exp(-4 (x - c) / w)) + ymin.
        with np.errstate(over="ignore"):
            y = dtype(ymax) / (dtype(1) + np.exp(dtype(-4.0) * (x - dtype(c)) / dtype(w)))
    display: np.ndarray = np.clip(np.rint(y), 0, 255).astype(np.uint8)
    return display


def apply_voi_lut_sequence(
    values: np.ndarray, item: Lut | Dataset, ds: Dataset | None = None
) -> np.ndarray:
    """Modality values → uint8 through a VOI LUT (PS3.3 C.11.2.1.1).

    The LUT output spans ``0 .. 2**bits - 1`` (bits = third LUT Descriptor value) and is
    scaled linearly to 0..255. ``item`` is a parsed :class:`Lut` or a VOI LUT Sequence item
    (then ``ds``, the dataset holding it, tells byte order and signedness).
    """
    lut = item if isinstance(item, Lut) else parse_lut(item, ds if ds is not None else item)
    out = lut.lookup(values).astype(np.float64)
    top = float(2**lut.bits - 1)
    result: np.ndarray = np.clip(np.rint(out * (255.0 / top)), 0, 255).astype(np.uint8)
    return result
