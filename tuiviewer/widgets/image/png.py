"""PNG for terminal images, compressed the way that measures smallest for the frames at hand.

Kitty and iTerm2 take PNG; over a thin link its size is the frame's cost. Which deflate set-up
wins depends on the picture, measured on 512² slices: a noisy CT (few distinct greys, much
black) is smallest unfiltered with run-length deflate (51 KB in 2 ms, against 67 KB for
Pillow's default level and 59 KB for level 9 in 20 ms); a smooth image (an ultrasound, a test
card) is many times smaller with the Sub filter. :class:`PngEncoder` therefore tries every
:data:`CANDIDATES` method on the first frame and again every :data:`REMEASURE_EVERY` frames or
when the frame changes size or kind, and uses the winner in between. The file itself comes from
:func:`tuiviewer.render.png.encode_png` (grey frames stay 8-bit grey: a third of RGB).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from tuiviewer.render.png import encode_png

REMEASURE_EVERY = 32


@dataclass(frozen=True)
class Method:
    """One way to compress: a PNG filter type for every row and a deflate set-up."""

    name: str
    filter_type: int
    """PNG filter type (0 None, 1 Sub, 2 Up)."""
    level: int
    strategy: int

    def encode(self, pixels: np.ndarray) -> bytes:
        return encode_png(
            pixels, level=self.level, filter_type=self.filter_type, strategy=self.strategy
        )


CANDIDATES = (
    Method("none+rle", 0, 6, zlib.Z_RLE),
    Method("sub", 1, 6, zlib.Z_FILTERED),
    Method("up", 2, 6, zlib.Z_FILTERED),
)
"""Paeth compresses smooth images a few percent better than Sub but costs 3-4 times as long."""


class PngEncoder:
    """Encodes frames with the method that came out smallest when last measured."""

    def __init__(self) -> None:
        self.method = CANDIDATES[0]
        self.sizes: dict[str, int] = {}
        """Bytes each candidate took at the last measurement."""
        self._frames = 0
        self._shape: tuple[int, ...] = ()

    def encode(self, pixels: np.ndarray) -> bytes:
        """The PNG of ``pixels`` (uint8 grey or RGB) by the method measured best."""
        measure = pixels.shape != self._shape or self._frames % REMEASURE_EVERY == 0
        self._shape = pixels.shape
        self._frames += 1
        if not measure:
            return self.method.encode(pixels)
        results = {method: method.encode(pixels) for method in CANDIDATES}
        self.sizes = {method.name: len(data) for method, data in results.items()}
        self.method = min(results, key=lambda method: len(results[method]))
        return results[self.method]
