"""Colour images (PS3.3 C.7.6.3.1.2 Photometric Interpretation) to 8-bit RGB.

What pydicom 3 already does while decoding (checked in ``pydicom/pixels/decoders/base.py``):
planar configuration 1 is de-interleaved, YBR_FULL_422 subsampling is removed, and
YBR_FULL / YBR_FULL_422 (and YBR_ICT / YBR_RCT inside JPEG 2000) come back as RGB with the
photometric interpretation reported as ``"RGB"``. What is left here: YBR data that arrives
unconverted, YBR_PARTIAL_422/420, PALETTE COLOR through its LUTs, and reducing samples of more
than 8 bits to 8.
"""

from __future__ import annotations

from enum import Enum

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels.processing import apply_color_lut, convert_color_space

from tuiviewer.exceptions import RenderError
from tuiviewer.render.lut import _little_endian


class Photometric(Enum):
    """Photometric Interpretation (0028,0004) defined terms, PS3.3 C.7.6.3.1.2."""

    MONOCHROME1 = "MONOCHROME1"
    """Grey scale, minimum value displayed white; inverted after VOI (C.7.6.3.1.2)."""
    MONOCHROME2 = "MONOCHROME2"
    """Grey scale, minimum value displayed black."""
    PALETTE_COLOR = "PALETTE COLOR"
    """One sample indexing the Red/Green/Blue Palette Color LUTs (C.7.6.3.1.5, C.7.9)."""
    RGB = "RGB"
    """Three samples, red, green, blue."""
    YBR_FULL = "YBR_FULL"
    """Full-range Y CB CR (ITU-R BT.601 with 0..255 range)."""
    YBR_FULL_422 = "YBR_FULL_422"
    """YBR_FULL with horizontally halved chroma."""
    YBR_PARTIAL_422 = "YBR_PARTIAL_422"
    """Retired: studio-range Y CB CR (Y 16..235, chroma 16..240), chroma halved."""
    YBR_PARTIAL_420 = "YBR_PARTIAL_420"
    """Studio-range Y CB CR, chroma halved both ways (MPEG-2)."""
    YBR_ICT = "YBR_ICT"
    """JPEG 2000 irreversible colour transform; undone by the decoder."""
    YBR_RCT = "YBR_RCT"
    """JPEG 2000 reversible colour transform; undone by the decoder."""

    @classmethod
    def parse(cls, value: str) -> Photometric:
        """The enum member for ``value``; a :class:`RenderError` quoting it otherwise."""
        try:
            return cls(str(value).strip().upper())
        except ValueError:
            raise RenderError(
                f"Photometric Interpretation {value!r} is not supported "
                "(PS3.3 C.7.6.3.1.2 lists MONOCHROME1/2, PALETTE COLOR, RGB and YBR_*)."
            ) from None

    @property
    def is_grey(self) -> bool:
        return self in (Photometric.MONOCHROME1, Photometric.MONOCHROME2)


def _to_uint8(arr: np.ndarray, bits_stored: int) -> np.ndarray:
    """Samples of ``bits_stored`` bits → 0..255, ``round(v * 255 / (2**bits - 1))``."""
    if arr.dtype == np.uint8 and bits_stored == 8:
        return arr
    top = float(2**bits_stored - 1)
    scaled = np.rint(arr.astype(np.float64) * (255.0 / top))
    return np.clip(scaled, 0, 255).astype(np.uint8)


def _partial_to_rgb(arr: np.ndarray) -> np.ndarray:
    """Studio-range BT.601 Y CB CR → RGB (PS3.3 C.7.6.3.1.2 YBR_PARTIAL_422 equations inverted)."""
    y = arr[..., 0].astype(np.float64) - 16.0
    cb = arr[..., 1].astype(np.float64) - 128.0
    cr = arr[..., 2].astype(np.float64) - 128.0
    r = 1.164383 * y + 1.596027 * cr
    g = 1.164383 * y - 0.391762 * cb - 0.812968 * cr
    b = 1.164383 * y + 2.017232 * cb
    return np.clip(np.rint(np.stack([r, g, b], axis=-1)), 0, 255).astype(np.uint8)


def palette_lut(ds: Dataset, colour: str) -> np.ndarray:
    """One Palette Color LUT (``colour``: Red, Green or Blue) as a 1-D array of its entries.

    PS3.3 C.7.6.3.1.5/6: the descriptor gives the number of entries (0 means 2^16), the first
    pixel value mapped and the bits per entry; the data is OW, one 16-bit word per entry, in
    the byte order of the transfer syntax (not the machine's: pydicom 3.0's apply_color_lut
    reads it natively, which turns a big-endian file's LUT into near-black). An 8-bit LUT may
    also be packed one byte per entry.

    Raises:
        ValueError: the descriptor and the data do not fit together.
    """
    entries = int(ds[f"{colour}PaletteColorLookupTableDescriptor"].value[0]) or 65536
    raw = ds[f"{colour}PaletteColorLookupTableData"].value
    if not isinstance(raw, bytes | bytearray):
        values = np.asarray(list(raw) if not isinstance(raw, int) else [raw], dtype=np.uint16)
    elif len(raw) == entries:
        values = np.frombuffer(raw, dtype=np.uint8)
    else:
        order = "<u2" if _little_endian(ds) else ">u2"
        values = np.frombuffer(raw[: len(raw) // 2 * 2], dtype=order)
    if len(values) < entries:
        raise ValueError(
            f"the {colour} LUT holds {len(values)} entries, its descriptor says {entries}"
        )
    return values[:entries]


def apply_palette(arr: np.ndarray, ds: Dataset) -> np.ndarray:
    """Indices → ``(rows, cols, 3)`` LUT values (PS3.3 C.7.6.3.1.5).

    Pixel values below the first mapped value take the first entry, values past the end the
    last one; the first mapped value is SS when Pixel Representation is 1 (read as US here).
    """
    desc = ds.RedPaletteColorLookupTableDescriptor
    first = int(desc[1])
    if first >= 32768 and int(ds.get("PixelRepresentation", 0) or 0) == 1:
        first -= 65536
    luts = [palette_lut(ds, colour) for colour in ("Red", "Green", "Blue")]
    entries = min(len(lut) for lut in luts)
    index = np.clip(arr.astype(np.int64) - first, 0, entries - 1)
    return np.stack([lut[index] for lut in luts], axis=-1)


def to_rgb(arr: np.ndarray, photometric: str, planar_configuration: int, ds: Dataset) -> np.ndarray:
    """A decoded colour frame → uint8 ``(rows, columns, 3)`` RGB.

    Args:
        arr: one frame from :func:`tuiviewer.render.decode.decode_frame` (``(rows, cols, 3)``
            for three-sample data, ``(rows, cols)`` for PALETTE COLOR).
        photometric: the colour space of ``arr`` as the decoder reported it (not necessarily
            the file's: pydicom converts YBR_FULL to RGB).
        planar_configuration: the file's Planar Configuration (0 or 1). pydicom has already
            interleaved planar data; it is validated here so a corrupt value is reported.
        ds: the dataset, for BitsStored and the palette LUTs.

    Raises:
        RenderError: a grey-scale interpretation, an unknown one, or a shape that does not fit.
    """
    kind = Photometric.parse(photometric)
    if planar_configuration not in (0, 1):
        raise RenderError(
            f"Planar Configuration {planar_configuration!r} is invalid (PS3.3 C.7.6.3.1.3: 0 or 1)."
        )
    if kind.is_grey:
        raise RenderError(f"{kind.value} is grey scale: it goes through the VOI stage, not to_rgb.")
    bits = int(ds.get("BitsStored", ds.get("BitsAllocated", 8)) or 8)
    if kind is Photometric.PALETTE_COLOR:
        if arr.ndim != 2:
            raise RenderError(f"PALETTE COLOR expects one sample per pixel, got shape {arr.shape}.")
        try:
            if "RedPaletteColorLookupTableData" in ds:
                rgb = apply_palette(arr, ds)
            else:
                # Segmented LUTs (PS3.3 C.7.9.2): pydicom expands them in the file's byte order.
                rgb = apply_color_lut(arr, ds)
        except (ValueError, AttributeError, KeyError, TypeError) as exc:
            raise RenderError(f"The palette colour LUTs cannot be applied: {exc}") from exc
        lut_bits = int(ds.RedPaletteColorLookupTableDescriptor[2])
        return _to_uint8(rgb, 16 if lut_bits == 16 else 8)
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise RenderError(f"{kind.value} expects three samples per pixel, got shape {arr.shape}.")
    if kind in (Photometric.YBR_FULL, Photometric.YBR_FULL_422):
        if arr.dtype != np.uint8:
            raise RenderError(f"{kind.value} with {bits}-bit samples is not supported.")
        return np.asarray(convert_color_space(arr, "YBR_FULL", "RGB"), dtype=np.uint8)
    if kind in (Photometric.YBR_PARTIAL_422, Photometric.YBR_PARTIAL_420):
        return _partial_to_rgb(arr)
    # RGB, and YBR_ICT/RCT that a decoder left as is (the J2K decoders undo the transform).
    return _to_uint8(arr, bits)
