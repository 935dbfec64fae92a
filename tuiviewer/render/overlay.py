"""Overlay planes (groups 6000-601E, PS3.3 C.9.2) as boolean masks over one image frame.

Overlays carry annotations (arrows, ROI outlines, text burnt into a bitmap) that a reader expects
to see; they are drawn after VOI, as display-white, which is what dcmtk does by default
(``dcmj2pnm``: all overlays, mode "Replace", foreground density 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels.utils import unpack_bits

from tuiviewer.exceptions import RenderError


class OverlayType(Enum):
    """Overlay Type (60xx,0040), PS3.3 C.9.2.1.1."""

    GRAPHICS = "G"
    """Graphics: the set bits are drawn."""
    ROI = "R"
    """Region of interest: the set bits outline or fill a region."""


@dataclass(frozen=True)
class OverlayPlane:
    """One overlay group as read from the dataset (positions 1-based as in the standard)."""

    group: int
    rows: int
    columns: int
    origin: tuple[int, int]
    kind: OverlayType
    frames: int
    image_frame_origin: int
    description: str
    label: str


def _groups(ds: Dataset) -> list[int]:
    found = []
    for group in range(0x6000, 0x6020, 2):
        if (group << 16 | 0x0010) in ds and (group << 16 | 0x0011) in ds:
            found.append(group)
    return found


def _value(ds: Dataset, group: int, element: int, default: Any) -> Any:
    tag = group << 16 | element
    if tag in ds and ds[tag].value not in (None, ""):
        return ds[tag].value
    return default


def overlay_planes(ds: Dataset) -> list[OverlayPlane]:
    """Describe each overlay group that has Overlay Rows and Columns."""
    planes = []
    for group in _groups(ds):
        origin = _value(ds, group, 0x0050, [1, 1])
        # A multi-valued element is a pydicom MultiValue, not a list.
        pair = (int(origin[0]), int(origin[1])) if len(origin) == 2 else (1, 1)
        planes.append(
            OverlayPlane(
                group=group,
                rows=int(_value(ds, group, 0x0010, 0)),
                columns=int(_value(ds, group, 0x0011, 0)),
                origin=pair,
                kind=OverlayType.ROI
                if str(_value(ds, group, 0x0040, "G")).strip().upper() == "R"
                else OverlayType.GRAPHICS,
                frames=int(_value(ds, group, 0x0015, 1) or 1),
                image_frame_origin=int(_value(ds, group, 0x0051, 1) or 1),
                description=str(_value(ds, group, 0x0022, "")),
                label=str(_value(ds, group, 0x1500, "")),
            )
        )
    return planes


def _embedded_bits(ds: Dataset, group: int, bit: int, frame: int) -> np.ndarray | None:
    """Bits of an overlay embedded in unused high bits of native pixel data (retired, C.9.2.1.3)."""
    meta = getattr(ds, "file_meta", None)
    uid = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    if "PixelData" not in ds or int(ds.get("BitsAllocated", 0)) != 16:
        return None
    if uid not in ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"):
        return None  # compressed data loses the bits above BitsStored
    rows, cols = int(ds.Rows), int(ds.Columns)
    size = rows * cols * 2
    raw = ds.PixelData[frame * size : (frame + 1) * size]
    if len(raw) < size:
        return None
    words = np.frombuffer(raw, dtype=">u2" if uid.endswith(".2.2") else "<u2")
    return ((words >> bit) & 1).astype(bool).reshape(rows, cols)


def overlay_masks(ds: Dataset, frame: int = 0) -> list[np.ndarray]:
    """One bool mask of shape ``(Rows, Columns)`` per overlay plane that applies to ``frame``.

    Overlay Origin (60xx,0050) is the 1-based image position of the overlay's first pixel;
    parts outside the image are cut. Multi-frame overlays (Number of Frames in Overlay,
    Image Frame Origin, C.9.2.1.2) contribute their frame ``frame + 1 - origin``, nothing when
    the image frame is not covered. Overlay Data is bit-packed, first pixel in the least
    significant bit (PS3.5 8.1.2). A group without Overlay Data whose Overlay Bit Position is
    not 0 is an embedded overlay (retired) and is read from the pixel data's high bits.
    """
    if frame < 0:
        raise RenderError(f"Frame index {frame} is negative.")
    rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    masks = []
    for plane in overlay_planes(ds):
        data_tag = plane.group << 16 | 0x3000
        overlay_frame = frame + 1 - plane.image_frame_origin
        if not 0 <= overlay_frame < plane.frames:
            continue
        bitmap: np.ndarray | None
        if data_tag in ds and ds[data_tag].value:
            per_frame = plane.rows * plane.columns
            bits = np.asarray(unpack_bits(ds[data_tag].value), dtype=bool)
            chunk = bits[overlay_frame * per_frame : (overlay_frame + 1) * per_frame]
            if chunk.size < per_frame:
                continue  # truncated Overlay Data: drawing garbage would be worse than nothing
            bitmap = chunk.reshape(plane.rows, plane.columns)
        else:
            bit_tag = plane.group << 16 | 0x0102
            bit = int(ds[bit_tag].value) if bit_tag in ds and ds[bit_tag].value else 0
            if bit == 0:
                continue
            bitmap = _embedded_bits(ds, plane.group, bit, frame)
            if bitmap is None:
                continue
        mask = np.zeros((rows, cols), dtype=bool)
        top, left = plane.origin[0] - 1, plane.origin[1] - 1
        src_top, src_left = max(0, -top), max(0, -left)
        dst_top, dst_left = max(0, top), max(0, left)
        height = min(bitmap.shape[0] - src_top, rows - dst_top)
        width = min(bitmap.shape[1] - src_left, cols - dst_left)
        if height > 0 and width > 0:
            mask[dst_top : dst_top + height, dst_left : dst_left + width] = bitmap[
                src_top : src_top + height, src_left : src_left + width
            ]
        masks.append(mask)
    return masks
