"""A vectorised DEC Sixel encoder for 8-bit grey and RGB frames (numpy only, no Textual).

textual-image 0.12 encodes Sixel band by band in Python and at the widget's full pixel size:
~100 ms per 512² CT slice step, twice the viewer's budget. Here the whole frame is encoded with
array operations: pixels are quantised to a fixed palette (grey levels, or a small RGB cube),
every six-row band gets one bit mask per colour in one scatter per row, runs are found with
``diff``/``flatnonzero`` over all bands at once, and the output is assembled by indexing a table
of ready-made tokens. The image is never enlarged: a Sixel pixel is a terminal pixel, so the
caller hands in the frame at the size it wants shown (at most the source resolution).

Format (DEC STD 070 / VT330-340 Programmer Reference, "Sixel Graphics"): ``ESC P P1;P2;P3 q``
starts the image (``P2=1``: pixels whose bit is 0 keep their colour, so the per-colour passes
of one band never erase each other), ``"Pan;Pad;Ph;Pv`` is the raster attribute (1:1 pixel
aspect, width, height), ``#Pc;2;Pr;Pg;Pb`` defines colour register ``Pc`` in RGB percent,
``#Pc`` selects it, a character ``?``..``~`` (0x3F + six bits, least significant bit on top)
paints one column of a six-row band, ``!Pn c`` repeats ``c`` ``Pn`` times, ``$`` returns to the
start of the band (the next colour's pass), ``-`` moves to the next band, ``ESC \\`` ends.
"""

from __future__ import annotations

import numpy as np

SIXEL_START = '\x1bP0;1;0q"1;1;'
"""DCS introducer (1:1 aspect, 0-bits transparent) and the start of the raster attributes."""
SIXEL_END = "\x1b\\"
BAND = 6
MAX_GREY_LEVELS = 101
"""Sixel colours are whole percents: 101 distinct greys at most."""
DEFAULT_GREY_LEVELS = 64
DEFAULT_RGB_LEVELS = 6
"""Levels per channel of the RGB cube (6³ = 216 colours, under the 256 registers of xterm)."""
_REPEAT_FROM = 4
"""Runs this long or longer are written ``!n c`` (shorter ones as the characters)."""


def quantise_grey(pixels: np.ndarray, levels: int) -> tuple[np.ndarray, np.ndarray]:
    """Level index (0..levels-1, uint16) of every uint8 grey pixel, and each level's grey.

    Levels are evenly spaced over 0..255 and each pixel goes to the nearest one, so black and
    white stay exact and the error is at most half a step (``127.5 / (levels - 1)``).
    """
    if not 2 <= levels <= 256:
        raise ValueError(f"A grey palette needs 2 to 256 levels, not {levels!r}.")
    if pixels.dtype != np.uint8:
        raise ValueError(f"Sixel encoding takes uint8 pixels, not {pixels.dtype}.")
    steps = levels - 1
    index = (pixels.astype(np.uint16) * steps + 127) // 255
    greys = (np.arange(levels, dtype=np.uint16) * 255 + steps // 2) // steps
    return index, greys.astype(np.uint8)


def quantised(pixels: np.ndarray, levels: int) -> np.ndarray:
    """``pixels`` (uint8 grey or RGB) with each channel moved to the nearest of ``levels``."""
    index, greys = quantise_grey(pixels, levels)
    out: np.ndarray = greys[index]
    return out


def _palette(
    pixels: np.ndarray, grey_levels: int, rgb_levels: int
) -> tuple[np.ndarray, np.ndarray]:
    """Colour index per pixel (dense over the colours used) and their RGB values (K×3)."""
    if pixels.ndim == 2:
        index, greys = quantise_grey(pixels, grey_levels)
        colours = np.repeat(greys[:, None], 3, axis=1)
    elif pixels.ndim == 3 and pixels.shape[2] == 3:
        levels = rgb_levels
        channel, values = quantise_grey(pixels, levels)
        index = (channel[..., 0] * levels + channel[..., 1]) * levels + channel[..., 2]
        cube = np.indices((levels, levels, levels)).reshape(3, -1).T
        colours = values[cube]
    else:
        raise ValueError(f"Sixel encoding takes (H, W) or (H, W, 3) pixels, not {pixels.shape}.")
    counts = np.bincount(index.ravel(), minlength=len(colours))
    used = np.flatnonzero(counts)
    dense = np.zeros(len(colours), dtype=np.uint16)
    dense[used] = np.arange(len(used), dtype=np.uint16)
    return dense[index], colours[used]


def encode_sixel(
    pixels: np.ndarray,
    *,
    grey_levels: int = DEFAULT_GREY_LEVELS,
    rgb_levels: int = DEFAULT_RGB_LEVELS,
) -> str:
    """The Sixel sequence that paints ``pixels`` (uint8, grey ``(H, W)`` or RGB ``(H, W, 3)``).

    Parameters:
        pixels: the frame, at the size it should appear (one Sixel pixel per image pixel).
        grey_levels: palette size for grey images (2..101; Sixel colours are whole percents).
        rgb_levels: levels per channel for RGB images (2..6: at most 216 colour registers).

    Returns:
        ``ESC P … q`` … ``ESC \\`` as ASCII text.

    Raises:
        ValueError: wrong dtype or shape, an empty image, or a palette size out of range.
    """
    if not 2 <= grey_levels <= MAX_GREY_LEVELS:
        raise ValueError(f"Sixel grey levels must be 2 to {MAX_GREY_LEVELS}, not {grey_levels!r}.")
    if not 2 <= rgb_levels <= 6:
        raise ValueError(f"Sixel RGB levels per channel must be 2 to 6, not {rgb_levels!r}.")
    height, width = pixels.shape[:2]
    if height < 1 or width < 1:
        raise ValueError(f"Cannot encode an empty image of {width}×{height} pixels as Sixel.")
    index, colours = _palette(pixels, grey_levels, rgb_levels)
    ncolours = len(colours)

    # One bit mask per (band, colour, column); the padding rows of the last band get an extra
    # colour that is dropped, so nothing is painted below the image.
    bands = -(-height // BAND)
    padded = np.full((bands * BAND, width), ncolours, dtype=np.uint16)
    padded[:height] = index
    rows = padded.reshape(bands, BAND, width)
    masks = np.zeros((bands, ncolours + 1, width), dtype=np.uint8)
    band_ix = np.arange(bands)[:, None]
    col_ix = np.arange(width)[None, :]
    for bit in range(BAND):
        # Each (band, column) names exactly one colour per row: no repeated index in a scatter.
        masks[band_ix, rows[:, bit, :], col_ix] |= np.uint8(1 << bit)
    masks = masks[:, :ncolours, :]
    band_of, colour_of = np.nonzero(masks.any(axis=2))  # band-major, colours ascending
    lines = masks[band_of, colour_of]  # one row per colour pass
    nlines = len(lines)

    # Runs of equal sixels within each pass; a trailing empty run is not written.
    flat = lines.ravel()
    starts_mask = np.empty(flat.size, dtype=bool)
    starts_mask[0] = True
    np.not_equal(flat[1:], flat[:-1], out=starts_mask[1:])
    starts_mask[::width] = True
    starts = np.flatnonzero(starts_mask)
    lengths = np.diff(np.append(starts, flat.size))
    values = flat[starts].astype(np.int64)
    line_of = starts // width
    keep = (values != 0) | ((starts + lengths) % width != 0)
    starts, lengths, values, line_of = starts[keep], lengths[keep], values[keep], line_of[keep]

    # Token table: short runs (1-3 characters), "!n" prefixes, single characters, colour
    # selections, "$" and "-". Each run is one token (short) or two ("!n" then the character).
    chars = [chr(0x3F + v) for v in range(64)]
    short = [c * n for c in chars for n in range(_REPEAT_FROM)]
    repeat = [f"!{n}" for n in range(width + 1)]
    select = [f"#{c}" for c in range(ncolours)]
    table = np.array([*short, *repeat, *chars, *select, "$", "-"], dtype=object)
    at_repeat = len(short)
    at_char = at_repeat + len(repeat)
    at_select = at_char + len(chars)
    cr, lf = at_select + ncolours, at_select + ncolours + 1

    is_long = lengths >= _REPEAT_FROM
    tokens = 1 + is_long.astype(np.int64)
    before = np.cumsum(tokens) - tokens
    position = before + 2 * line_of + 1  # earlier passes each add a selection and a separator
    total = int(tokens.sum()) + 2 * nlines
    codes = np.empty(total, dtype=np.int64)
    long_at = position[is_long]
    codes[long_at] = at_repeat + lengths[is_long]
    codes[long_at + 1] = at_char + values[is_long]
    short_run = ~is_long
    codes[position[short_run]] = values[short_run] * _REPEAT_FROM + lengths[short_run]
    per_line = np.bincount(line_of, weights=tokens, minlength=nlines).astype(np.int64) + 2
    line_start = np.cumsum(per_line) - per_line
    codes[line_start] = at_select + colour_of
    last_of_band = np.append(band_of[1:] != band_of[:-1], True)
    codes[line_start + per_line - 1] = np.where(last_of_band, lf, cr)

    percent = (colours.astype(np.int64) * 100 + 127) // 255
    definitions = "".join(f"#{c};2;{r};{g};{b}" for c, (r, g, b) in enumerate(percent.tolist()))
    body = "".join(table[codes].tolist())
    return f"{SIXEL_START}{width};{height}{definitions}{body}{SIXEL_END}"
