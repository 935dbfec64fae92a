"""A minimal PNG encoder (8-bit grey and RGB) on zlib, so the render core needs no Pillow.

``tuiviewer render`` writes what the viewer shows: 8-bit grey scale ("L") as a grey PNG and
colour as 24-bit RGB (PNG specification, ISO/IEC 15948, colour types 0 and 2). Tests read the
files back with Pillow, an independent decoder.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from tuiviewer.exceptions import RenderError

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def encode_png(
    pixels: np.ndarray,
    *,
    level: int = 6,
    filter_type: int = 1,
    strategy: int = zlib.Z_DEFAULT_STRATEGY,
) -> bytes:
    """PNG bytes for a uint8 ``(H, W)`` grey or ``(H, W, 3)`` RGB array.

    Every row uses PNG filter ``filter_type`` (section 9: 0 None, 1 Sub, 2 Up; differences
    modulo 256 to the byte one pixel to the left or above), cheap to compute with numpy. Sub
    compresses smooth medical images well; a noisy CT with few distinct greys is smaller
    unfiltered with ``strategy`` ``zlib.Z_RLE`` (see :mod:`tuiviewer.widgets.image.png`).
    """
    arr = np.asarray(pixels)
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise RenderError(f"PNG needs uint8 (H, W) or (H, W, 3), got {arr.dtype} {arr.shape}.")
    height, width = arr.shape[:2]
    if height < 1 or width < 1:
        raise RenderError(f"Cannot write an empty {width}x{height} PNG.")
    if filter_type not in (0, 1, 2):
        raise RenderError(f"PNG filter {filter_type!r} is not 0 (None), 1 (Sub) or 2 (Up).")
    colour_type = 0 if arr.ndim == 2 else 2
    rows = np.ascontiguousarray(arr).reshape(height, -1)
    bpp = 1 if colour_type == 0 else 3
    raw = np.empty((height, rows.shape[1] + 1), dtype=np.uint8)
    raw[:, 0] = filter_type
    body = raw[:, 1:]
    if filter_type == 1:
        body[:, :bpp] = rows[:, :bpp]
        np.subtract(rows[:, bpp:], rows[:, :-bpp], out=body[:, bpp:])  # uint8 wraps mod 256
    elif filter_type == 2:
        body[0] = rows[0]
        np.subtract(rows[1:], rows[:-1], out=body[1:])
    else:
        body[:] = rows
    compressor = zlib.compressobj(level, zlib.DEFLATED, 15, 9, strategy)
    data = compressor.compress(raw.tobytes()) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return _SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def write_png(path: str | Path, pixels: np.ndarray) -> None:
    """Write ``pixels`` (see :func:`encode_png`) to ``path``, replacing it."""
    Path(path).write_bytes(encode_png(pixels))
