"""A vectorised DEC Sixel encoder with a palette fitted to the frame (numpy only, no Textual).

Sixel colours are whole percents, so 101 greys is all a Sixel terminal can show. The palette is
fitted to what the frame holds: a grey frame (or an RGB one whose pixels are grey within a few
levels, as ultrasound scanners write them) gets one register per grey percent it uses, up to
all 101; an RGB frame with real colour gets those greys for its grey pixels and a median-cut
palette of the registers left for the others. The terminal's register count (XTSMGRAPHICS,
256 when it does not say) caps both. :class:`SixelImage` tells how many grey levels reach the
screen out of how many the frame has, so the badge can say it.

The whole frame is encoded with array operations: every six-row band gets one bit mask per
colour in one scatter per row, runs are found with ``diff``/``flatnonzero`` over all bands at
once, and the output is assembled by indexing a table of ready-made tokens. The image is never
enlarged: a Sixel pixel is a terminal pixel, so the caller hands in the frame at the size it
wants shown, padded to whole cells (see :func:`tuiviewer.graphics.pixels.footprint`).

Format (DEC STD 070 / VT330-340 Programmer Reference, "Sixel Graphics"): ``ESC P P1;P2;P3 q``
starts the image (``P2=1``: pixels whose bit is 0 keep their colour, so the per-colour passes
of one band never erase each other), ``"Pan;Pad;Ph;Pv`` is the raster attribute (1:1 pixel
aspect, width, height), ``#Pc;2;Pr;Pg;Pb`` defines colour register ``Pc`` in RGB percent,
``#Pc`` selects it, a character ``?``..``~`` (0x3F + six bits, least significant bit on top)
paints one column of a six-row band, ``!Pn c`` repeats ``c`` ``Pn`` times, ``$`` returns to the
start of the band (the next colour's pass), ``-`` moves to the next band, ``ESC \\`` ends.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tuiviewer.graphics.pixels import check_pixels

SIXEL_START = '\x1bP0;1;0q"1;1;'
"""DCS introducer (1:1 aspect, 0-bits transparent) and the start of the raster attributes."""
SIXEL_END = "\x1b\\"
BAND = 6
MAX_GREY_LEVELS = 101
"""Sixel colours are whole percents: 101 distinct greys at most."""
DEFAULT_REGISTERS = 256
"""Colour registers assumed when the terminal does not answer XTSMGRAPHICS (xterm's maximum)."""
MIN_REGISTERS = 16
"""A VT340 has 16 registers; fewer than that is not a Sixel terminal worth drawing on."""
NEAR_GREY = 3
"""An RGB pixel whose channels lie within this many levels of each other is a grey."""
_MIN_COLOUR_REGISTERS = 16
"""Registers kept for the colours of an RGB frame, whatever its greys need (half of them on a
terminal with fewer than 32)."""
_REPEAT_FROM = 4
"""Runs this long or longer are written ``!n c`` (shorter ones as the characters)."""


def to_percent(values: np.ndarray) -> np.ndarray:
    """Sixel's RGB percent (0..100, int64) of 8-bit channel values, rounded to nearest."""
    return (values.astype(np.int64) * 100 + 127) // 255


def from_percent(percent: np.ndarray) -> np.ndarray:
    """The 8-bit value (uint8) a terminal shows for a Sixel percent."""
    return ((percent.astype(np.int64) * 255 + 50) // 100).astype(np.uint8)


@dataclass(frozen=True)
class Palette:
    """The register of every pixel and what each register shows."""

    index: np.ndarray
    """uint16 ``(H, W)``: register of each pixel, dense from 0."""
    colours: np.ndarray
    """uint8 ``(K, 3)``: the RGB each register shows (whole percents, back in 0..255)."""
    grey_levels: int
    """Registers that hold greys (the first ones)."""
    source_greys: int
    """Distinct greys among the frame's grey pixels (what a perfect display would show)."""
    grey_cap: int = MAX_GREY_LEVELS
    """At most this many grey levels were allowed (the rest of the registers went to colour)."""


def within_one_percent(percent: np.ndarray) -> np.ndarray:
    """Sixel percents moved to the nearest multiple of 3 (100 stays 100): each within one
    percent, 35 greys for the 101 (see :func:`tuiviewer.graphics.pixels.within_one`)."""
    return np.where(percent >= 100, 100, (percent + 1) // 3 * 3)


def _quantise_span(values: np.ndarray, levels: int) -> np.ndarray:
    """``values`` (uint8) moved to the nearest of ``levels`` greys evenly spaced over the range
    of the values that are not black (a windowed CT spans a few dozen greys: 16 levels over
    0..255 would show 4 of them). Black stays black: the padding around a frame, and air."""
    lit = values > 0
    if not lit.any():
        return values
    low, high = int(values[lit].min()), int(values.max())
    if high - low < levels:
        return values
    steps = levels - 1
    index = ((values.astype(np.int64) - low) * steps * 2 + (high - low)) // ((high - low) * 2)
    greys = low + (index * (high - low) * 2 + steps) // (steps * 2)
    return np.where(lit, greys, 0).astype(np.uint8)


def _grey_registers(
    values: np.ndarray, levels: int, tolerance: int = 0, histogram: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Register per grey pixel (dense, uint16, the shape of ``values``) and each register's
    percent, for at most ``levels`` (``tolerance`` 1: each within one percent of its own, see
    :func:`within_one_percent`).

    A register depends on the pixel's byte value alone, so the mapping is worked out on the
    (at most 256) values the frame holds (``histogram``: their counts, when known) and applied
    with one table look-up per pixel."""
    if histogram is None:
        histogram = np.bincount(values.ravel(), minlength=256)
    present = np.flatnonzero(histogram).astype(np.uint8)
    mapped = _quantise_span(present, levels) if levels < MAX_GREY_LEVELS else present
    percent = to_percent(mapped)
    if tolerance and levels >= MAX_GREY_LEVELS:
        percent = within_one_percent(percent)
    used, register = np.unique(percent, return_inverse=True)  # ascending: dense from 0
    table = np.zeros(256, dtype=np.uint16)
    table[present] = register.astype(np.uint16)
    index: np.ndarray = np.take(table, values)
    return index, used


def _median_cut(rgb: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels (int64) of ``(N, 3)`` uint8 colours into at most ``count`` boxes, and each box's
    mean colour (uint8 ``(M, 3)``): Heckbert's median cut over a 5-bit-per-channel histogram,
    always splitting the box with the most pixels times extent at its weighted median."""
    keys = (
        (rgb[:, 0].astype(np.int64) >> 3) << 10
        | (rgb[:, 1].astype(np.int64) >> 3) << 5
        | (rgb[:, 2].astype(np.int64) >> 3)
    )
    counts = np.bincount(keys, minlength=32768)
    sums = np.stack([np.bincount(keys, weights=rgb[:, c], minlength=32768) for c in range(3)], 1)
    bins = np.flatnonzero(counts)
    coords = np.stack([(bins >> 10) & 31, (bins >> 5) & 31, bins & 31], axis=1)
    weight = counts[bins]
    boxes: list[np.ndarray] = [np.arange(len(bins))]

    def score(box: np.ndarray) -> tuple[int, int]:
        extent = coords[box].max(axis=0) - coords[box].min(axis=0)
        axis = int(np.argmax(extent))
        return int(extent[axis]) * int(weight[box].sum()), axis

    scores = [score(boxes[0])]
    while len(boxes) < count:
        best = max(range(len(boxes)), key=lambda i: scores[i][0])
        if scores[best][0] == 0:
            break  # every box is a single bin
        box, axis = boxes[best], scores[best][1]
        box = box[np.argsort(coords[box, axis], kind="stable")]
        cumulative = np.cumsum(weight[box])
        cut = int(np.searchsorted(cumulative, cumulative[-1] / 2))
        cut = min(max(cut, 1), len(box) - 1)
        if coords[box[cut - 1], axis] == coords[box[cut], axis]:
            # Keep equal coordinates together: move the cut to the nearest change.
            values = coords[box, axis]
            changes = np.flatnonzero(values[1:] != values[:-1]) + 1
            cut = int(changes[np.argmin(np.abs(changes - cut))])
        low, high = box[:cut], box[cut:]
        boxes[best], scores[best] = low, score(low)
        boxes.append(high)
        scores.append(score(high))
    lut = np.zeros(32768, dtype=np.int64)
    colours = np.zeros((len(boxes), 3), dtype=np.uint8)
    for label, box in enumerate(boxes):
        lut[bins[box]] = label
        total = weight[box].sum()
        colours[label] = np.clip(np.rint(sums[bins[box]].sum(axis=0) / total), 0, 255)
    return lut[keys], colours


def fit_palette(
    pixels: np.ndarray,
    *,
    registers: int = DEFAULT_REGISTERS,
    grey_levels: int = MAX_GREY_LEVELS,
    tolerance: int = 0,
) -> Palette:
    """The palette that shows ``pixels`` best with ``registers`` colour registers.

    Parameters:
        pixels: uint8 grey ``(H, W)`` or RGB ``(H, W, 3)``.
        registers: the terminal's colour registers (16..4096; only 256 are used at most).
        grey_levels: at most this many greys (2..101; fewer for a cheap frame), evenly spaced
            over the frame's own range when it has more.
        tolerance: 0 (each grey at its own percent) or 1 (all 101 allowed: each grey within one
            percent, on a multiple of 3: a third of the registers and about half the bytes).

    Raises:
        ValueError: wrong dtype or shape, or a register or level count out of range.
    """
    check_pixels(pixels)
    if not MIN_REGISTERS <= registers:
        raise ValueError(
            f"A Sixel palette needs {MIN_REGISTERS} registers or more, not {registers!r}."
        )
    if not 2 <= grey_levels <= MAX_GREY_LEVELS:
        raise ValueError(f"Sixel grey levels must be 2 to {MAX_GREY_LEVELS}, not {grey_levels!r}.")
    if tolerance not in (0, 1):
        raise ValueError(f"A Sixel grey may be off by 0 or 1 percent, not {tolerance!r}.")
    registers = min(registers, 256)
    if pixels.ndim == 2:
        grey, grey_mask = pixels, None
    else:
        wide = pixels.astype(np.int16)
        spread = wide.max(axis=2) - wide.min(axis=2)
        grey_mask = spread <= NEAR_GREY
        grey = ((wide.sum(axis=2) + 1) // 3).astype(np.uint8)
        if grey_mask.all():
            grey_mask = None
    if grey_mask is None:
        levels = min(grey_levels, registers)
        histogram = np.bincount(grey.ravel(), minlength=256)
        index, percent = _grey_registers(grey, levels, tolerance, histogram)
        shown = np.repeat(from_percent(percent)[:, None], 3, axis=1)
        distinct = int(np.count_nonzero(histogram))
        return Palette(index, shown, len(percent), distinct, levels)
    colour_min = min(_MIN_COLOUR_REGISTERS, registers // 2)
    levels = max(2, min(grey_levels, registers - colour_min))
    greys = grey[grey_mask]
    index = np.zeros(pixels.shape[:2], dtype=np.uint16)
    percent = np.zeros(0, dtype=np.int64)
    if greys.size:
        grey_index, percent = _grey_registers(greys, levels, tolerance)
        index[grey_mask] = grey_index
    labels, mean = _median_cut(pixels[~grey_mask], registers - len(percent))
    index[~grey_mask] = (labels + len(percent)).astype(np.uint16)
    grey_shown = np.repeat(from_percent(percent)[:, None], 3, axis=1)
    colour_shown = from_percent(to_percent(mean))
    source_greys = int(np.unique(greys).size) if greys.size else 0
    colours = np.concatenate([grey_shown, colour_shown])
    return Palette(index, colours, len(percent), source_greys, levels)


def _greys_of(pixels: np.ndarray) -> np.ndarray:
    """The grey values of a frame's grey pixels (all of a grey frame; the near-grey ones of an
    RGB frame, as their channel mean)."""
    if pixels.ndim == 2:
        flat: np.ndarray = pixels.ravel()
        return flat
    wide = pixels.astype(np.int16)
    grey = wide.max(axis=2) - wide.min(axis=2) <= NEAR_GREY
    lumas: np.ndarray = ((wide.sum(axis=2)[grey] + 1) // 3).astype(np.uint8)
    return lumas


def grey_levels(
    pixels: np.ndarray, levels: int = MAX_GREY_LEVELS, tolerance: int = 0
) -> tuple[int, int]:
    """(greys a Sixel terminal shows, greys the frame has) for its grey pixels, with a palette
    of at most ``levels`` greys (each within ``tolerance`` percent): what the badge says,
    counted on the frame without padding."""
    values = _greys_of(pixels)
    if values.size == 0:
        return 0, 0
    histogram = np.bincount(values, minlength=256)
    present = np.flatnonzero(histogram).astype(np.uint8)
    if levels < MAX_GREY_LEVELS:
        # The same span as the palette's (padding is black, which the span leaves out).
        present = _quantise_span(present, levels)
    percent = to_percent(present)
    if tolerance and levels >= MAX_GREY_LEVELS:
        percent = within_one_percent(percent)
    return int(np.unique(percent).size), int(present.size)


@dataclass(frozen=True)
class SixelImage:
    """A Sixel sequence and what its palette keeps of the frame."""

    data: str
    """``ESC P … q`` … ``ESC \\`` as ASCII text."""
    grey_levels: int
    """Grey registers used: the grey levels that reach the screen."""
    source_greys: int
    """Distinct greys of the frame's grey pixels."""
    colours: int
    """Registers used for pixels that are not grey."""
    width: int
    height: int
    grey_cap: int = MAX_GREY_LEVELS
    """The most grey levels the palette could have had (see :func:`grey_levels`)."""
    tolerance: int = 0
    """Percents a grey may be off by (0: each at its own)."""


def _join(table: list[str], codes: np.ndarray) -> str:
    """``"".join(table[c] for c in codes)`` for ASCII tokens, gathered as bytes with numpy (a
    noisy slice has a few hundred thousand tokens)."""
    data = np.frombuffer("".join(table).encode("ascii"), dtype=np.uint8)
    sizes = np.array([len(token) for token in table], dtype=np.int64)
    offsets = np.cumsum(sizes) - sizes
    lengths = sizes[codes]
    starts = np.repeat(offsets[codes] - (np.cumsum(lengths) - lengths), lengths)
    picked = data[starts + np.arange(int(lengths.sum()), dtype=np.int64)]
    return picked.tobytes().decode("ascii")


def encode_sixel(
    pixels: np.ndarray,
    *,
    registers: int = DEFAULT_REGISTERS,
    grey_levels: int = MAX_GREY_LEVELS,
    tolerance: int = 0,
) -> SixelImage:
    """The Sixel sequence that paints ``pixels`` (uint8, grey ``(H, W)`` or RGB ``(H, W, 3)``).

    Parameters:
        pixels: the frame, at the size it should appear (one Sixel pixel per image pixel).
        registers: the terminal's colour registers (see :func:`fit_palette`).
        grey_levels: at most this many greys (2..101).
        tolerance: percents a grey may be off by (0 or 1, see :func:`fit_palette`).

    Raises:
        ValueError: wrong dtype or shape, an empty image, or a palette size out of range.
    """
    height, width = pixels.shape[:2] if pixels.ndim >= 2 else (0, 0)
    if height < 1 or width < 1:
        raise ValueError(f"Cannot encode an empty image of {width}×{height} pixels as Sixel.")
    palette = fit_palette(pixels, registers=registers, grey_levels=grey_levels, tolerance=tolerance)
    index, colours = palette.index, palette.colours
    ncolours = len(colours)

    # One bit mask per (band, colour, column); the padding rows of the last band get an extra
    # colour that is dropped, so nothing is painted below the image.
    bands = -(-height // BAND)
    padded = np.full((bands * BAND, width), ncolours, dtype=np.uint16)
    padded[:height] = index
    rows = padded.reshape(bands, BAND, width)
    stride = (ncolours + 1) * width
    flat_masks = np.zeros(bands * stride, dtype=np.uint8)
    cell = np.arange(bands, dtype=np.intp)[:, None] * stride + np.arange(width, dtype=np.intp)
    for bit in range(BAND):
        # Each (band, column) names exactly one colour per row: no repeated index in a scatter.
        # One flat index array (a twentieth of the time of a three-array scatter).
        flat_masks[cell + rows[:, bit, :].astype(np.intp) * width] |= np.uint8(1 << bit)
    masks = flat_masks.reshape(bands, ncolours + 1, width)[:, :ncolours, :]
    # The band's most common colour is painted first over the whole band: its pass becomes one
    # run, and the other colours' passes paint over it (0-bits leave pixels alone).
    # Pixels of each colour in each band (the padding rows count for the dropped colour).
    band_keys = padded.astype(np.intp)
    band_keys += (np.arange(bands * BAND, dtype=np.intp) // BAND * (ncolours + 1))[:, None]
    counts = np.bincount(band_keys.ravel(), minlength=bands * (ncolours + 1))
    counts = counts.reshape(bands, ncolours + 1)[:, :ncolours]
    dominant = counts.argmax(axis=1)
    full = np.full(bands, (1 << BAND) - 1, dtype=np.uint8)
    full[-1] = (1 << (height - (bands - 1) * BAND)) - 1
    masks[np.arange(bands), dominant, :] = full[:, None]
    band_of, colour_of = np.nonzero(counts)  # band-major, colours ascending
    first = colour_of != dominant[band_of]
    order = np.lexsort((colour_of, first, band_of))
    band_of, colour_of = band_of[order], colour_of[order]
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
    table = [*short, *repeat, *chars, *select, "$", "-"]
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

    percent = to_percent(colours)
    definitions = "".join(f"#{c};2;{r};{g};{b}" for c, (r, g, b) in enumerate(percent.tolist()))
    body = _join(table, codes)
    return SixelImage(
        f"{SIXEL_START}{width};{height}{definitions}{body}{SIXEL_END}",
        palette.grey_levels,
        palette.source_greys,
        len(colours) - palette.grey_levels,
        width,
        height,
        palette.grey_cap,
        tolerance if grey_levels >= MAX_GREY_LEVELS else 0,
    )
