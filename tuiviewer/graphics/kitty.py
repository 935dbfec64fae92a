"""The Kitty terminal graphics protocol: upload, placement, deletion, Unicode placeholders.

Escape codes follow kitty's spec (docs/graphics-protocol.rst): ``APC G key=value,…;payload
ST``, PNG payloads (``f=100``) base64-encoded in chunks of at most 4096 bytes (``m=1`` on
all but the last), ``q=2`` so the terminal never answers (an answer would arrive as input).

Two ways to show an uploaded image:

- **Unicode placeholders** (kitty 0.28+, Ghostty): a virtual placement (``a=p,U=1``) and
  cells of ``U+10EEEE`` whose foreground colour is the image id and whose combining
  diacritics give row and column. The cells are text, so they scroll, clip and survive tmux's
  redraws like text, and a dialog over them simply covers them. Ids are written as 256-colour
  foregrounds (``38;5;n``, which tmux passes without 24-bit support) with the id's high byte
  in a third diacritic.
- **Direct placement** (older kitty, WezTerm, Konsole): ``a=p`` at the cursor with a placement
  id and ``C=1`` (the cursor stays put); the viewer deletes the placement whenever its pane
  changes size, goes away or is covered (a dialog, a notification).

Re-sending image data under an existing id replaces the image and drops its placements (kitty
``graphics.c``, ``handle_add_command``), so every upload is followed by a new placement; one
id per pane is reused for every frame, and the placeholder cells do not change between frames.
"""

from __future__ import annotations

import base64

PLACEHOLDER = "\U0010eeee"
CHUNK = 4096
"""Base64 bytes per escape code (the spec's maximum)."""
PLACEMENT_ID = 1
"""Each pane has its own image id, so one placement id is enough."""
Z_INDEX = 0
"""z-index of direct placements: over the text. Under it (negative), kitty 0.26.5 draws the
glyphs of earlier frames over the new text of a line (seen under Xvfb: two badge texts on
one line); over it, whatever else is on top of the pane (a dialog, a notification) needs the
placement deleted, which the widget does."""

_RANGES = (
    (0x0305, 0x0305),
    (0x030D, 0x030E),
    (0x0310, 0x0310),
    (0x0312, 0x0312),
    (0x033D, 0x033F),
    (0x0346, 0x0346),
    (0x034A, 0x034C),
    (0x0350, 0x0352),
    (0x0357, 0x0357),
    (0x035B, 0x035B),
    (0x0363, 0x036F),
    (0x0483, 0x0487),
    (0x0592, 0x0595),
    (0x0597, 0x0599),
    (0x059C, 0x05A1),
    (0x05A8, 0x05A9),
    (0x05AB, 0x05AC),
    (0x05AF, 0x05AF),
    (0x05C4, 0x05C4),
    (0x0610, 0x0617),
    (0x0657, 0x065B),
    (0x065D, 0x065E),
    (0x06D6, 0x06DC),
    (0x06DF, 0x06E2),
    (0x06E4, 0x06E4),
    (0x06E7, 0x06E8),
    (0x06EB, 0x06EC),
    (0x0730, 0x0730),
    (0x0732, 0x0733),
    (0x0735, 0x0736),
    (0x073A, 0x073A),
    (0x073D, 0x073D),
    (0x073F, 0x0741),
    (0x0743, 0x0743),
    (0x0745, 0x0745),
    (0x0747, 0x0747),
    (0x0749, 0x074A),
    (0x07EB, 0x07F1),
    (0x07F3, 0x07F3),
    (0x0816, 0x0819),
    (0x081B, 0x0823),
    (0x0825, 0x0827),
    (0x0829, 0x082D),
    (0x0951, 0x0951),
    (0x0953, 0x0954),
    (0x0F82, 0x0F83),
    (0x0F86, 0x0F87),
    (0x135D, 0x135F),
    (0x17DD, 0x17DD),
    (0x193A, 0x193A),
    (0x1A17, 0x1A17),
    (0x1A75, 0x1A7C),
    (0x1B6B, 0x1B6B),
    (0x1B6D, 0x1B73),
    (0x1CD0, 0x1CD2),
    (0x1CDA, 0x1CDB),
    (0x1CE0, 0x1CE0),
    (0x1DC0, 0x1DC1),
    (0x1DC3, 0x1DC9),
    (0x1DCB, 0x1DCC),
    (0x1DD1, 0x1DE6),
    (0x1DFE, 0x1DFE),
    (0x20D0, 0x20D1),
    (0x20D4, 0x20D7),
    (0x20DB, 0x20DC),
    (0x20E1, 0x20E1),
    (0x20E7, 0x20E7),
    (0x20E9, 0x20E9),
    (0x20F0, 0x20F0),
    (0x2CEF, 0x2CF1),
    (0x2DE0, 0x2DFF),
    (0xA66F, 0xA66F),
    (0xA67C, 0xA67D),
    (0xA6F0, 0xA6F1),
    (0xA8E0, 0xA8F1),
    (0xAAB0, 0xAAB0),
    (0xAAB2, 0xAAB3),
    (0xAAB7, 0xAAB8),
    (0xAABE, 0xAABF),
    (0xAAC1, 0xAAC1),
    (0xFE20, 0xFE26),
    (0x10A0F, 0x10A0F),
    (0x10A38, 0x10A38),
    (0x1D185, 0x1D189),
    (0x1D1AA, 0x1D1AD),
    (0x1D242, 0x1D244),
)
DIACRITICS = tuple(c for start, end in _RANGES for c in range(start, end + 1))
"""Row/column/high-byte numbers 0..296 as combining characters: kitty's
gen/rowcolumn-diacritics.txt (Unicode 6.0 characters "Mn;230;NSM" without decomposition, less
those that normalisation may fuse with a base character)."""
MAX_CELLS = len(DIACRITICS)
"""Placeholders can number at most this many rows and columns."""


def _command(keys: str, payload: str = "") -> str:
    return f"\x1b_G{keys};{payload}\x1b\\" if payload else f"\x1b_G{keys}\x1b\\"


def transmit(image_id: int, png: bytes) -> str:
    """Upload a PNG under ``image_id`` without showing it (``a=t``)."""
    data = base64.standard_b64encode(png).decode("ascii")
    chunks = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)] or [""]
    parts = []
    for n, chunk in enumerate(chunks):
        more = 1 if n < len(chunks) - 1 else 0
        keys = f"a=t,f=100,i={image_id},q=2,m={more}" if n == 0 else f"m={more}"
        parts.append(_command(keys, chunk))
    return "".join(parts)


def place_virtual(image_id: int, cols: int, rows: int) -> str:
    """A virtual placement of ``cols`` × ``rows`` cells that placeholders display."""
    return _command(f"a=p,U=1,i={image_id},c={cols},r={rows},q=2")


def place_here(
    image_id: int, cols: int, rows: int, *, source: tuple[int, int] | None = None
) -> str:
    """Show the image over ``cols`` × ``rows`` cells from the cursor, leaving the cursor; only
    its top-left ``source`` (width, height) pixels when given (the rest is covered)."""
    part = f"x=0,y=0,w={source[0]},h={source[1]}," if source is not None else ""
    return _command(
        f"a=p,i={image_id},p={PLACEMENT_ID},{part}c={cols},r={rows},C=1,z={Z_INDEX},q=2"
    )


def delete_placements(image_id: int) -> str:
    """Take the image off the screen, keeping its data (``d=i``)."""
    return _command(f"a=d,d=i,i={image_id},q=2")


def delete(image_id: int) -> str:
    """Delete the image and free its data (``d=I``)."""
    return _command(f"a=d,d=I,i={image_id},q=2")


def placeholder_rows(image_id: int, cols: int, rows: int) -> list[str]:
    """The text of ``rows`` lines of ``cols`` placeholder cells for ``image_id``.

    Every cell carries its row, column and the id's high byte: a line that a dialog or the
    screen edge cuts still names the right part of the image (kitty infers missing diacritics
    only from the cell to the left). The id's low byte is the foreground colour (see
    :func:`colour_of`).

    Raises:
        ValueError: more than :data:`MAX_CELLS` rows or columns, or an id of 0.
    """
    if not (1 <= cols <= MAX_CELLS and 1 <= rows <= MAX_CELLS):
        raise ValueError(
            f"Kitty placeholders cover at most {MAX_CELLS}×{MAX_CELLS} cells, not {cols}×{rows}."
        )
    if colour_of(image_id) == 0:
        raise ValueError(f"Image id {image_id!r} has a zero low byte: no colour can name it.")
    high = chr(DIACRITICS[(image_id >> 24) & 0xFF])
    columns = [chr(DIACRITICS[c]) + high for c in range(cols)]
    lines = []
    for r in range(rows):
        row = PLACEHOLDER + chr(DIACRITICS[r])
        lines.append(row + row.join(columns))
    return lines


def colour_of(image_id: int) -> int:
    """The 256-colour index that names ``image_id`` (its low byte)."""
    return image_id & 0xFF


def image_id(seed: int) -> int:
    """An image id whose low byte (the colour, 1..255) and high byte (1..255) come from
    ``seed``; the middle bytes stay 0, as 256-colour placeholders cannot carry them."""
    low = seed % 255 + 1
    high = (seed // 255) % 255 + 1
    return (high << 24) | low
