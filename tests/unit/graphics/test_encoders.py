"""The Kitty, iTerm2 and PNG encoders and the padding to whole cells, read back by parsers
written from the specifications (kitty's docs/graphics-protocol.rst, iTerm2's "Inline Images
Protocol", the PNG specification through Pillow), not from the encoders."""

from __future__ import annotations

import base64
import io
import re
import unicodedata
import zlib

import numpy as np
import pytest
from PIL import Image

from tests.support.imagegen import card_display
from tuiviewer.graphics import iterm2, kitty
from tuiviewer.graphics.pixels import footprint, grey_count, pad
from tuiviewer.graphics.probe import tmux_wrap
from tuiviewer.render.pipeline import RenderedImage
from tuiviewer.widgets.image.png import CANDIDATES, PngEncoder
from tuiviewer.widgets.image.view import Shown, badge_text

_APC = re.compile(r"\x1b_G([^;\x1b]*)(?:;([^\x1b]*))?\x1b\\")


def png_of(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="png")
    return buffer.getvalue()


def test_a_kitty_upload_is_chunked_as_the_spec_says_and_decodes_to_the_png() -> None:
    png = png_of(np.random.default_rng(1).integers(0, 256, (70, 90), dtype=np.uint8))
    commands = _APC.findall(kitty.transmit(7, png))
    assert len(commands) > 1, "more than 4096 base64 bytes: several chunks"
    first = dict(item.split("=") for item in commands[0][0].split(","))
    assert first == {"a": "t", "f": "100", "i": "7", "q": "2", "m": "1"}
    for keys, _ in commands[1:-1]:
        assert keys == "m=1", "continuation chunks carry only m"
    assert commands[-1][0] == "m=0"
    assert all(len(payload) <= 4096 for _, payload in commands)
    assert base64.standard_b64decode("".join(p for _, p in commands)) == png


def test_placements_and_deletions_name_the_image_and_never_ask_for_an_answer() -> None:
    here = dict(kv.split("=") for kv in _APC.findall(kitty.place_here(9, 30, 12))[0][0].split(","))
    assert here == {
        "a": "p",
        "i": "9",
        "p": "1",
        "c": "30",
        "r": "12",
        "C": "1",
        "z": "0",
        "q": "2",
    }
    part = _APC.findall(kitty.place_here(9, 30, 5, source=(300, 100)))[0][0]
    assert "x=0,y=0,w=300,h=100" in part and "r=5" in part
    assert _APC.findall(kitty.place_virtual(9, 30, 12))[0][0] == "a=p,U=1,i=9,c=30,r=12,q=2"
    assert _APC.findall(kitty.delete(9))[0][0] == "a=d,d=I,i=9,q=2"
    assert _APC.findall(kitty.delete_placements(9))[0][0] == "a=d,d=i,i=9,q=2"


def test_the_diacritics_table_follows_kittys_rule() -> None:
    """kitty's gen/rowcolumn-diacritics.txt: Unicode 6.0 characters "Mn;230;NSM" without a
    decomposition, less those normalisation may fuse with a base (0300-0304, 0306-030C...)."""
    fused = {0x300, 0x301, 0x302, 0x303, 0x304, 0x306, 0x307, 0x308, 0x309, 0x30A, 0x30B,
             0x30C, 0x30F, 0x311, 0x313, 0x314, 0x342, 0x653, 0x654}  # fmt: skip
    assert len(kitty.DIACRITICS) == kitty.MAX_CELLS == 297
    assert list(kitty.DIACRITICS) == sorted(kitty.DIACRITICS)
    for code in kitty.DIACRITICS:
        char = chr(code)
        assert unicodedata.category(char) == "Mn" and unicodedata.combining(char) == 230
        assert unicodedata.bidirectional(char) == "NSM" and not unicodedata.decomposition(char)
        assert code not in fused
    assert kitty.DIACRITICS[:3] == (0x305, 0x30D, 0x30E), "0, 1, 2 as in the spec's examples"


def test_placeholder_cells_name_their_row_column_and_image() -> None:
    image_id = kitty.image_id(123456)
    assert 1 <= kitty.colour_of(image_id) <= 255 and image_id >> 24 >= 1
    assert (image_id >> 8) & 0xFFFF == 0, "a 256-colour id has no middle bytes"
    lines = kitty.placeholder_rows(image_id, 5, 3)
    number = {chr(code): n for n, code in enumerate(kitty.DIACRITICS)}
    for r, line in enumerate(lines):
        cells = line.split(kitty.PLACEHOLDER)[1:]
        assert len(cells) == 5
        for c, marks in enumerate(cells):
            assert [number[m] for m in marks] == [r, c, image_id >> 24]
    with pytest.raises(ValueError, match="298"):
        kitty.placeholder_rows(image_id, 298, 1)


def test_an_inline_image_carries_its_file_size_and_cells() -> None:
    png = png_of(np.zeros((20, 30), dtype=np.uint8))
    data = iterm2.inline_image(png, 12, 4)
    found = re.fullmatch(r"\x1b\]1337;File=([^:]*):([A-Za-z0-9+/=]*)\x07", data)
    assert found is not None
    keys = dict(item.split("=") for item in found.group(1).split(";"))
    assert keys["inline"] == "1" and keys["size"] == str(len(png))
    assert (keys["width"], keys["height"], keys["preserveAspectRatio"]) == ("12", "4", "0")
    assert base64.standard_b64decode(found.group(2)) == png
    with pytest.raises(ValueError, match="0×4"):
        iterm2.inline_image(png, 0, 4)


def test_tmux_passthrough_doubles_every_escape() -> None:
    assert tmux_wrap("\x1b_Ga=d\x1b\\") == "\x1bPtmux;\x1b\x1b_Ga=d\x1b\x1b\\\x1b\\"


@pytest.mark.parametrize("image", ["ct", "card", "rgb"])
def test_every_png_method_decodes_to_the_frame_and_the_encoder_keeps_the_smallest(
    image: str,
) -> None:
    rng = np.random.default_rng(4)
    card = card_display(96, 128, 2)
    frames = {
        # A noisy CT: black air, a body of few greys.
        "ct": np.where(rng.random((96, 128)) < 0.4, 0, 100 + rng.integers(0, 12, (96, 128))),
        "card": card,
        "rgb": np.stack([card, card // 2, 255 - card], axis=2),
    }
    frame = frames[image].astype(np.uint8)
    sizes = {}
    for method in CANDIDATES:
        data = method.encode(frame)
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), frame), method.name
        sizes[method.name] = len(data)
    encoder = PngEncoder()
    chosen = encoder.encode(frame)
    assert len(chosen) == min(sizes.values()) and encoder.sizes == sizes
    # Between measurements the winner is reused (and still decodes).
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(encoder.encode(frame)))), frame)


def test_noise_over_black_compresses_best_unfiltered_with_run_length_deflate() -> None:
    """The measurement that chose the candidates, on a CT-like frame."""
    rng = np.random.default_rng(8)
    body = np.zeros((256, 256), dtype=np.uint8)
    body[64:192, 64:192] = 110 + rng.normal(0, 6, (128, 128)).round().astype(np.uint8)
    sizes = {method.name: len(method.encode(body)) for method in CANDIDATES}
    assert min(sizes, key=sizes.__getitem__) == "none+rle", sizes
    default = len(zlib.compress(body.tobytes(), 6))
    assert sizes["none+rle"] < default * 1.1


def test_padding_fills_whole_cells_with_the_image_centred() -> None:
    place = footprint(512, 500, (10, 20), 66, 26)
    assert (place.width, place.height) == (660, 520), "exactly the cells' pixels at 1:1"
    assert (place.pad_left, place.pad_top) == (74, 10)
    image = np.full((500, 512), 200, dtype=np.uint8)
    padded = pad(image, place)
    assert padded.shape == (520, 660) and padded.sum() == image.sum()
    assert padded[10:510, 74:586].min() == 200
    # Shown ×1.5 by the terminal: the padded image has the cells' aspect.
    scaled = footprint(100, 80, (10, 20), 30, 10, scale=1.5)
    assert abs(scaled.width / scaled.height - 300 / 200) < 0.02
    with pytest.raises(ValueError, match="does not fit"):
        footprint(700, 100, (10, 20), 66, 26)


def test_grey_levels_are_counted_for_grey_and_grey_rgb_frames_only() -> None:
    grey = np.array([[0, 1, 1, 200]], dtype=np.uint8)
    assert grey_count(grey) == 3
    assert grey_count(np.repeat(grey[..., None], 3, axis=2)) == 3
    colour = np.repeat(grey[..., None], 3, axis=2)
    colour[0, 0] = (255, 0, 0)
    assert grey_count(colour) is None


def rendered(downsampled: float = 1.0, lossy: bool = False) -> RenderedImage:
    return RenderedImage(np.zeros((4, 4), np.uint8), "L", None, (4, 4), downsampled, lossy)


def test_the_badge_says_1_to_1_only_when_one_source_pixel_is_one_terminal_pixel() -> None:
    exact = Shown("Kitty", 512, 512, 1.0, 56, 56, pixel_exact=True)
    text = badge_text(exact, rendered(), 1.0, low_bandwidth=False)
    assert text.plain == "Kitty 512×512 px · 1:1 · all 56 grey levels" and text.style == "dim"
    enlarged = Shown("Kitty", 512, 512, 1.29, 56, 56)
    assert (
        "×1.29 by the terminal" in badge_text(enlarged, rendered(), 1.0, low_bandwidth=False).plain
    )
    sixel = Shown("Sixel", 300, 300, 1.0, 23, 56, pixel_exact=True)
    text = badge_text(sixel, rendered(1.7, lossy=True), 1.7, low_bandwidth=True)
    assert text.plain.startswith("◩ ") and "1:1" not in text.plain
    for part in ("downsampled 1.7:1", "23 of 56 grey levels", "low-bandwidth", "lossy"):
        assert part in text.plain
    half = Shown("half-blocks", 66, 66, 10.0, 56, 56)
    assert "1:1" not in badge_text(half, rendered(7.8), 7.8, low_bandwidth=False).plain
    draft = Shown("Sixel", 300, 300, 1.0, 6, 56, cheap=True, pixel_exact=True)
    assert (
        "draft while keys repeat" in badge_text(draft, rendered(), 1.0, low_bandwidth=False).plain
    )
