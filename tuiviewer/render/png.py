"""A minimal PNG encoder (8-bit grey and RGB) on zlib, so the render core needs no Pillow.

``tuiviewer render`` writes what the viewer shows: 8-bit grey scale ("L") as a grey PNG and
colour as 24-bit RGB (PNG specification, ISO/IEC 15948, colour types 0 and 2). Tests read the
files back with Pillow (a dependency of textual-image), an independent decoder.
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


def encode_png(pixels: np.ndarray, *, level: int = 6) -> bytes:
    """PNG bytes for a uint8 ``(H, W)`` grey or ``(H, W, 3)`` RGB array.

    Each row uses filter type 1 (Sub), which compresses medical images well and is cheap to
    compute with numpy.
    """
    arr = np.asarray(pixels)
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise RenderError(f"PNG needs uint8 (H, W) or (H, W, 3), got {arr.dtype} {arr.shape}.")
    height, width = arr.shape[:2]
    if height < 1 or width < 1:
        raise RenderError(f"Cannot write an empty {width}x{height} PNG.")
    colour_type = 0 if arr.ndim == 2 else 2
    rows = np.ascontiguousarray(arr).reshape(height, -1)
    bpp = 1 if colour_type == 0 else 3
    sub = rows.copy()
    sub[:, bpp:] = rows[:, bpp:] - rows[:, :-bpp]  # uint8 arithmetic wraps mod 256, as Sub needs
    raw = np.hstack([np.ones((height, 1), dtype=np.uint8), sub]).tobytes()
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return (
        _SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, level))
        + _chunk(b"IEND", b"")
    )


def write_png(path: str | Path, pixels: np.ndarray) -> None:
    """Write ``pixels`` (see :func:`encode_png`) to ``path``, replacing it."""
    Path(path).write_bytes(encode_png(pixels))
