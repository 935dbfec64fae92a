"""The Sixel encoder: what it writes decodes back to the image, by a decoder written from the
DEC Sixel description (VT330/VT340 Programmer Reference, chapter "Sixel Graphics"), not from
the encoder."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tuiviewer.widgets.image.sixel import encode_sixel, quantised

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
    decoded = decode_sixel(encode_sixel(pixels, grey_levels=levels))
    assert decoded.shape == (height, width, 3)
    assert (decoded >= 0).all(), "every pixel is painted"
    # Half a palette step, plus the rounding of 255 levels to whole percents (≤ 1.3 levels).
    tolerance = 127.5 / (levels - 1) + 1.3
    error = np.abs(decoded - pixels[..., None].astype(np.int64))
    assert error.max() <= tolerance, f"max error {error.max()} > {tolerance:.1f}"
    assert (decoded[..., 0] == decoded[..., 2]).all(), "greys stay grey"


def test_black_and_white_stay_exact() -> None:
    pixels = np.zeros((12, 8), dtype=np.uint8)
    pixels[::2, ::3] = 255
    decoded = decode_sixel(encode_sixel(pixels, grey_levels=5))
    assert np.array_equal(decoded[..., 0], pixels)


def test_rgb_frames_decode_back_within_half_a_cube_step() -> None:
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (25, 33, 3), dtype=np.uint8)
    decoded = decode_sixel(encode_sixel(pixels, rgb_levels=6))
    assert (decoded >= 0).all()
    error = np.abs(decoded - pixels.astype(np.int64))
    assert error.max() <= 127.5 / 5 + 1.3
    pure = np.zeros((6, 6, 3), dtype=np.uint8)
    pure[:, :3] = (255, 0, 0)
    pure[:, 3:] = (0, 0, 255)
    assert np.array_equal(decode_sixel(encode_sixel(pure)), pure)


def test_a_flat_band_is_written_as_one_repeat_by_hand() -> None:
    """Worked by hand from the DEC description: a 20×6 white image is one band, one colour
    (100% on each channel), every column with all six bits set ("~" = 0x3F + 63)."""
    data = encode_sixel(np.full((6, 20), 255, dtype=np.uint8), grey_levels=2)
    assert data == '\x1bP0;1;0q"1;1;20;6#0;2;100;100;100#0!20~-\x1b\\'


def test_two_greys_in_one_band_are_two_passes_joined_by_a_carriage_return() -> None:
    """Top three rows black, bottom three white, 5 wide: black paints bits 0-2 ("?"+7 = "F"),
    white bits 3-5 ("?"+56 = "w"); the second colour starts again at the left with "$"."""
    pixels = np.zeros((6, 5), dtype=np.uint8)
    pixels[3:] = 255
    data = encode_sixel(pixels, grey_levels=2)
    assert data == '\x1bP0;1;0q"1;1;5;6#0;2;0;0;0#1;2;100;100;100#0!5F$#1!5w-\x1b\\'


def test_a_frame_whose_height_is_not_a_multiple_of_six_paints_no_extra_rows() -> None:
    pixels = np.full((8, 4), 200, dtype=np.uint8)
    data = encode_sixel(pixels)
    assert data.count("-") == 2, "two bands"
    # The second band has rows 6 and 7 only: bits 0 and 1 ("?" + 3 = "B").
    assert data.endswith("!4B-\x1b\\")
    assert (decode_sixel(data) >= 0).all()


def test_the_size_is_that_of_the_frame_never_enlarged() -> None:
    pixels = np.zeros((30, 50), dtype=np.uint8)
    assert '"1;1;50;30#' in encode_sixel(pixels)


@pytest.mark.parametrize(
    ("pixels", "kwargs", "words"),
    [
        (np.zeros((4, 4), dtype=np.uint16), {}, "uint8"),
        (np.zeros((0, 4), dtype=np.uint8), {}, "empty"),
        (np.zeros((4, 4, 4), dtype=np.uint8), {}, "(4, 4, 4)"),
        (np.zeros((4, 4), dtype=np.uint8), {"grey_levels": 200}, "200"),
        (np.zeros((4, 4, 3), dtype=np.uint8), {"rgb_levels": 7}, "7"),
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
