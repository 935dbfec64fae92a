"""The Sixel encoder: what it writes decodes back to the image, by a decoder written from the
DEC Sixel description (VT330/VT340 Programmer Reference, chapter "Sixel Graphics"), not from
the encoder."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tests.support.imagegen import ultrasound_rgb
from tuiviewer.graphics.pixels import quantised
from tuiviewer.graphics.sixel import (
    MAX_GREY_LEVELS,
    NEAR_GREY,
    encode_sixel,
    from_percent,
    to_percent,
)
from tuiviewer.render.pipeline import render

_NUMBERS = re.compile(r"\d+(?:;\d+)*")


def decode_sixel(data: str) -> np.ndarray:
    """RGB (0-255) of every pixel a Sixel sequence paints; -1 where nothing was painted.

    Only what the DEC description defines: ``ESC P … q``, raster attributes ``"``, colour
    introducers ``#Pc`` / ``#Pc;2;R;G;B`` (percent), ``!Pn`` repeats, ``$`` carriage return,
    ``-`` next band, data characters ``?``..``~`` (bit 0 = top row), ``ESC \\``.
    """
    assert data.startswith("\x1bP"), "a Sixel sequence starts with DCS"
    assert data.endswith("\x1b\\"), "and ends with ST"
    q = data.index("q")
    params = data[2:q].split(";")
    assert params[1] == "1", "P2=1: zero bits leave pixels unchanged"
    body = data[q + 1 : -2]
    pos = 0
    assert body[0] == '"', "raster attributes come first"
    match = _NUMBERS.match(body, 1)
    assert match is not None
    pan, pad, width, height = (int(v) for v in match.group().split(";"))
    assert (pan, pad) == (1, 1), "square pixels"
    pos = match.end()
    image = np.full((height, width, 3), -1, dtype=np.int64)
    registers: dict[int, tuple[int, int, int]] = {}
    colour: tuple[int, int, int] | None = None
    x = band = 0
    repeat = 1
    while pos < len(body):
        char = body[pos]
        if char == "#":
            match = _NUMBERS.match(body, pos + 1)
            assert match is not None
            values = [int(v) for v in match.group().split(";")]
            pos = match.end()
            if len(values) == 5:
                assert values[1] == 2, "RGB colour coordinates"
                registers[values[0]] = (values[2], values[3], values[4])
            percent = registers[values[0]]
            colour = tuple(round(v * 255 / 100) for v in percent)  # type: ignore[assignment]
            continue
        if char == "!":
            match = _NUMBERS.match(body, pos + 1)
            assert match is not None
            repeat = int(match.group())
            pos = match.end()
            continue
        if char == "$":
            x = 0
        elif char == "-":
            x = 0
            band += 1
        else:
            bits = ord(char) - 0x3F
            assert 0 <= bits < 64, f"{char!r} is not a sixel data character"
            assert colour is not None, "a colour is selected before painting"
            for row in range(6):
                y = band * 6 + row
                if bits >> row & 1:
                    assert y < height, "nothing is painted below the declared height"
                    image[y, x : x + repeat] = colour
            x += repeat
            assert x <= width, "nothing is painted right of the declared width"
            repeat = 1
        pos += 1
    return image


def grey_image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A CT-like frame: black air, a noisy grey disc, a white bar (runs and noise together)."""
    yy, xx = np.mgrid[:height, :width]
    disc = (yy - height / 2) ** 2 + (xx - width / 2) ** 2 < (min(height, width) / 2.5) ** 2
    image = np.where(disc, 120 + rng.normal(0, 12, (height, width)), 0)
    image[height // 3 : height // 3 + 3, :] = 255
    return np.clip(image, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("levels", [2, 16, 64, 101])
@pytest.mark.parametrize(("height", "width"), [(1, 1), (6, 10), (7, 3), (47, 61), (128, 128)])
def test_grey_frames_decode_back_within_half_a_grey_step(
    height: int, width: int, levels: int
) -> None:
    pixels = grey_image(np.random.default_rng(height * width + levels), height, width)
    decoded = decode_sixel(encode_sixel(pixels, grey_levels=levels).data)
    assert decoded.shape == (height, width, 3)
    assert (decoded >= 0).all(), "every pixel is painted"
    # Half a palette step, plus the rounding of 255 levels to whole percents (≤ 1.3 levels).
    tolerance = (127.5 / (levels - 1) if levels < MAX_GREY_LEVELS else 0) + 1.3
    error = np.abs(decoded - pixels[..., None].astype(np.int64))
    assert error.max() <= tolerance, f"max error {error.max()} > {tolerance:.1f}"
    assert (decoded[..., 0] == decoded[..., 2]).all(), "greys stay grey"


def test_a_full_grey_ramp_gets_every_sixel_grey_and_says_how_many_of_how_many() -> None:
    ramp = np.tile(np.arange(256, dtype=np.uint8), (12, 1))
    image = encode_sixel(ramp)
    assert (image.grey_levels, image.source_greys, image.colours) == (101, 256, 0)
    decoded = decode_sixel(image.data)[..., 0]
    # What a Sixel terminal can show: the nearest whole percent, nothing coarser (terminals
    # round a percent back to 8 bits their own way: within one level).
    shown = from_percent(to_percent(ramp)).astype(np.int64)
    assert np.abs(decoded - shown).max() <= 1
    assert len(np.unique(decoded)) == 101


def test_a_frame_with_few_greys_keeps_each_of_them() -> None:
    values = np.array([0, 20, 41, 77, 130, 131, 200, 255], dtype=np.uint8)
    pixels = np.resize(values, (9, 16)).astype(np.uint8)
    image = encode_sixel(pixels)
    # 130 and 131 are the same percent (51%): no Sixel terminal can tell them apart.
    assert (image.grey_levels, image.source_greys) == (7, 8)
    decoded = decode_sixel(image.data)[..., 0]
    assert np.abs(decoded - pixels).max() <= 1


def test_near_grey_ultrasound_keeps_its_greys_and_its_colour_patch() -> None:
    """The RGB ultrasound frame has 201 greys (tinted by up to 2 levels) and a Doppler patch;
    a 6×6×6 cube would show 6 of those greys."""
    pixels = render(ultrasound_rgb(60, 80)).pixels
    image = encode_sixel(pixels)
    wide = pixels.astype(np.int64)
    grey = wide.max(axis=2) - wide.min(axis=2) <= NEAR_GREY
    luma = (wide.sum(axis=2) + 1) // 3
    expected_greys = len(np.unique(to_percent(luma[grey])))
    assert image.grey_levels == expected_greys > 60
    assert image.source_greys == len(np.unique(luma[grey]))
    decoded = decode_sixel(image.data)
    assert (decoded >= 0).all()
    assert np.abs(decoded[grey] - luma[grey][:, None]).max() <= 2
    colour_error = np.abs(decoded[~grey] - wide[~grey])
    assert image.colours > 16 and colour_error.mean() <= 3 and colour_error.max() <= 12


def test_a_colour_frame_gets_a_median_cut_palette_of_the_registers_it_has() -> None:
    yy, xx = np.mgrid[0:40, 0:90]
    pixels = np.stack([xx * 255 // 89, yy * 255 // 39, 255 - xx * 255 // 89], axis=2)
    pixels = pixels.astype(np.uint8)
    wide = decode_sixel(encode_sixel(pixels).data)
    assert np.abs(wide - pixels).mean() <= 5
    few = encode_sixel(pixels, registers=16)
    assert few.grey_levels + few.colours <= 16
    assert max(int(n) for n in re.findall(r"#(\d+)", few.data)) <= 15
    assert np.abs(decode_sixel(few.data) - pixels).mean() <= 25


def test_black_and_white_stay_exact() -> None:
    pixels = np.zeros((12, 8), dtype=np.uint8)
    pixels[::2, ::3] = 255
    decoded = decode_sixel(encode_sixel(pixels, grey_levels=5).data)
    assert np.array_equal(decoded[..., 0], pixels)
    pure = np.zeros((6, 6, 3), dtype=np.uint8)
    pure[:, :3] = (255, 0, 0)
    pure[:, 3:] = (0, 0, 255)
    assert np.array_equal(decode_sixel(encode_sixel(pure).data), pure)


def test_a_flat_band_is_written_as_one_repeat_by_hand() -> None:
    """Worked by hand from the DEC description: a 20×6 white image is one band, one colour
    (100% on each channel), every column with all six bits set ("~" = 0x3F + 63)."""
    image = encode_sixel(np.full((6, 20), 255, dtype=np.uint8), grey_levels=2)
    assert image.data == '\x1bP0;1;0q"1;1;20;6#0;2;100;100;100#0!20~-\x1b\\'


def test_the_dominant_colour_of_a_band_is_painted_first_and_the_others_over_it() -> None:
    """5 wide: black in the top four rows, white in the bottom two. Black is the band's most
    common colour, so it paints all six rows ("~"); white then paints bits 4-5 ("?"+48 = "o")
    over it after "$" (0-bits leave the black alone, P2=1)."""
    pixels = np.zeros((6, 5), dtype=np.uint8)
    pixels[4:] = 255
    image = encode_sixel(pixels, grey_levels=2)
    assert image.data == '\x1bP0;1;0q"1;1;5;6#0;2;0;0;0#1;2;100;100;100#0!5~$#1!5o-\x1b\\'


def test_a_frame_whose_height_is_not_a_multiple_of_six_paints_no_extra_rows() -> None:
    pixels = np.full((8, 4), 200, dtype=np.uint8)
    data = encode_sixel(pixels).data
    assert data.count("-") == 2, "two bands"
    # The second band has rows 6 and 7 only: bits 0 and 1 ("?" + 3 = "B").
    assert data.endswith("!4B-\x1b\\")
    assert (decode_sixel(data) >= 0).all()


def test_the_size_is_that_of_the_frame_never_enlarged() -> None:
    pixels = np.zeros((30, 50), dtype=np.uint8)
    assert '"1;1;50;30#' in encode_sixel(pixels).data


@pytest.mark.parametrize(
    ("pixels", "kwargs", "words"),
    [
        (np.zeros((4, 4), dtype=np.uint16), {}, "uint8"),
        (np.zeros((0, 4), dtype=np.uint8), {}, "empty"),
        (np.zeros((4, 4, 4), dtype=np.uint8), {}, "(4, 4, 4)"),
        (np.zeros((4, 4), dtype=np.uint8), {"grey_levels": 200}, "200"),
        (np.zeros((4, 4, 3), dtype=np.uint8), {"registers": 7}, "7"),
    ],
)
def test_bad_input_is_refused_with_the_value(
    pixels: np.ndarray, kwargs: dict[str, int], words: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(words)):
        encode_sixel(pixels, **kwargs)


def test_quantised_keeps_levels_evenly_spaced() -> None:
    ramp = np.arange(256, dtype=np.uint8)
    out = quantised(ramp, 32)
    assert len(np.unique(out)) == 32
    assert out[0] == 0 and out[-1] == 255
    assert np.abs(out.astype(int) - ramp).max() <= 127.5 / 31 + 0.5


def test_fewer_levels_spread_over_the_frames_own_greys_and_black_stays_black() -> None:
    """A windowed CT spans a few dozen greys; 16 levels over 0..255 would keep 4 of them."""
    from tuiviewer.graphics.sixel import grey_levels

    pixels = np.zeros((12, 60), dtype=np.uint8)
    pixels[:, 10:] = np.arange(100, 150, dtype=np.uint8)[None, :]  # black air, 50 greys
    image = encode_sixel(pixels, grey_levels=16)
    decoded = decode_sixel(image.data)[..., 0]
    assert (decoded[:, :10] == 0).all(), "black stays black"
    assert len(np.unique(decoded[:, 10:])) == 16
    assert np.abs(decoded[:, 10:] - pixels[:, 10:]).max() <= 50 / 15 / 2 + 1.3
    assert grey_levels(pixels, 16) == (17, 51), "16 levels and black, of 51 greys"
