"""Near-lossless frames: by default every pixel a terminal gets is within one level of the
slice as ``tuiviewer render`` makes it (8-bit for PNG and truecolour cells, whole percents for
Sixel), the badge says so, and ``[graphics] exact`` or the 1:1 "actual pixels" view sends the
exact frame.

The slices are real renders of a generated noisy CT series (σ 10 HU at W/L 40/400, as the
benchmarks use); what the viewer sends is decoded from what it writes to the terminal.
"""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from rich.console import Console
from rich.segment import Segment
from textual.strip import Strip
from textual.widgets import Static

from tests.functional.test_viewer import open_viewer
from tests.unit.widgets.image.test_wire import step_down, wire  # noqa: F401 - fixture
from tuiviewer.app import make_app
from tuiviewer.config.settings import Config, GraphicsConfig
from tuiviewer.dicom.datagen import write_ct_series
from tuiviewer.graphics.pixels import within_one
from tuiviewer.graphics.probe import ColorPlan, GraphicsMode
from tuiviewer.graphics.sixel import encode_sixel, fit_palette, to_percent
from tuiviewer.render.pipeline import RenderRequest, render
from tuiviewer.widgets.image.halfcell import StyleCache, halfcell_lines, within_one_cells
from tuiviewer.widgets.image.png import PngEncoder
from tuiviewer.widgets.image.view import ImageView

_KITTY = re.compile(r"\x1b_G([^;\x1b]*);?([^\x1b]*)\x1b\\")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("near")
    write_ct_series(path, slices=4, rows=192, cols=192, seed=11, noise_hu=10.0)
    return path


def slices(folder: Path) -> list[np.ndarray]:
    """Every slice of the series as ``tuiviewer render`` draws it, 1:1."""
    files = sorted(folder.rglob("*.dcm"))
    return [render(pydicom.dcmread(path), RenderRequest()).pixels for path in files]


def kitty_uploads(data: str) -> list[np.ndarray]:
    """The PNGs a Kitty terminal was sent (``a=t`` and its ``m=1`` continuations), decoded."""
    images, parts = [], []
    for keys, payload in _KITTY.findall(data):
        if keys.startswith("a=t"):
            parts = [payload]
        elif keys.startswith("m=") and parts:
            parts.append(payload)
        else:
            continue
        if keys.endswith("m=0") or ",m=0" in keys:
            png = base64.standard_b64decode("".join(parts))
            images.append(np.asarray(Image.open(io.BytesIO(png))))
            parts = []
    return images


def crop(uploaded: np.ndarray, view: ImageView) -> np.ndarray:
    """The frame inside the padding of what was uploaded for ``view``'s frame."""
    frame = view._frame
    assert frame is not None and frame.place is not None
    top, left = frame.place.pad_top, frame.place.pad_left
    height, width = frame.pixels.shape[:2]
    return uploaded[top : top + height, left : left + width]


def test_every_pixel_of_a_real_slice_is_within_one_level_and_costs_fewer_bytes(
    folder: Path,
) -> None:
    for pixels in slices(folder):
        near = within_one(pixels)
        error = np.abs(near.astype(np.int16) - pixels)
        assert error.max() <= 1, "no pixel more than one level off"
        assert (near[pixels == 0] == 0).all() and (near[pixels == 255] == 255).all()
        assert len(np.unique(near)) < len(np.unique(pixels)) / 2
        # The PNG a Kitty or iTerm2 terminal decodes is exactly that frame, and smaller.
        png = PngEncoder().encode(near)
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))), near)
        assert len(png) < 0.85 * len(PngEncoder().encode(pixels))


def test_a_near_lossless_sixel_keeps_each_grey_within_one_percent(folder: Path) -> None:
    for pixels in slices(folder):
        palette = fit_palette(pixels, tolerance=1)
        shown = palette.colours[palette.index][..., 0]
        off = np.abs(to_percent(shown) - to_percent(pixels))
        assert off.max() <= 1, "no grey more than one Sixel level (a percent) off"
        exact = fit_palette(pixels)
        assert np.array_equal(to_percent(exact.colours[exact.index][..., 0]), to_percent(pixels))
        assert palette.grey_levels <= 35 and palette.grey_levels < exact.grey_levels
        near_bytes = len(encode_sixel(pixels, tolerance=1).data)
        assert near_bytes < 0.8 * len(encode_sixel(pixels).data)


async def test_kitty_frames_are_within_one_level_and_the_badge_says_so(
    folder: Path,
    wire: list[str],  # noqa: F811 - fixture
) -> None:
    references = slices(folder)
    app = make_app(Config(), [folder], graphics=GraphicsMode.KITTY)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_viewer(pilot)
        data = await step_down(pilot, wire)
        sent = kitty_uploads(data)
        assert len(sent) == 1, "one upload per step"
        view = screen.image_view
        image = crop(sent[0], view)
        reference = references[1]  # the second slice: one step from the first
        assert image.shape == reference.shape, f"the 192² slice is sent at {image.shape}"
        badge = str(screen.query_one("#badge", Static).content)
        assert "each within ±1 level" in badge and badge.startswith("◩"), badge
        assert np.abs(image.astype(np.int16) - reference).max() <= 1
        assert not np.array_equal(image, reference), "the near-lossless frame was sent"
        # 1:1 "actual pixels": the exact frame, and the badge drops the ±1.
        await pilot.press("equals_sign")
        await pilot.pause(0.3)
        badge = str(screen.query_one("#badge", Static).content)
        assert "±1" not in badge and "1:1" in badge, badge
        assert view.shown is not None and view.shown.tolerance == 0


@pytest.mark.parametrize("mode", [GraphicsMode.KITTY, GraphicsMode.SIXEL, GraphicsMode.HALFCELL])
async def test_graphics_exact_in_the_config_sends_every_level(
    folder: Path,
    mode: GraphicsMode,
    wire: list[str],  # noqa: F811 - fixture
) -> None:
    config = Config(graphics=GraphicsConfig(exact=True))
    app = make_app(config, [folder], graphics=mode, color=ColorPlan("truecolor", "test"))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_viewer(pilot)
        data = await step_down(pilot, wire)
        badge = str(screen.query_one("#badge", Static).content)
        assert "±1" not in badge, badge
        view = screen.image_view
        assert view.shown is not None and view.shown.tolerance == 0
        if mode is GraphicsMode.KITTY:
            (image,) = kitty_uploads(data)
            assert np.array_equal(crop(image, view), slices(folder)[1]), "the exact slice"


async def test_sixel_and_half_block_badges_say_within_one(folder: Path) -> None:
    for mode, unit in ((GraphicsMode.SIXEL, "±1 %"), (GraphicsMode.HALFCELL, "±1 level")):
        app = make_app(Config(), [folder], graphics=mode, color=ColorPlan("truecolor", "test"))
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await open_viewer(pilot)
            await pilot.pause(0.2)
            badge = str(screen.query_one("#badge", Static).content)
            assert f"each within {unit}" in badge, badge


def test_half_block_cells_stay_within_one_level_and_take_fewer_segments(folder: Path) -> None:
    console = Console(color_system="truecolor", force_terminal=True, width=200)
    for pixels in slices(folder):
        # As the viewer fits the slice to a 120×40 screen's half-block pane (odd height too).
        small = np.asarray(Image.fromarray(pixels).resize((66, 65), Image.Resampling.BOX))
        near = within_one_cells(small)
        assert np.abs(near.astype(np.int16) - small).max() <= 1
        exact_lines, _ = halfcell_lines(small, 70, 35, StyleCache())
        near_lines, _ = halfcell_lines(near, 70, 35, StyleCache())

        def sent(lines: list[list[Segment]]) -> int:
            return sum(len(Strip(line, 70).render(console).encode()) for line in lines)

        assert sent(near_lines) < 0.9 * sent(exact_lines)
        assert sum(map(len, near_lines)) < sum(map(len, exact_lines))


async def test_a_near_lossless_sixel_frame_on_the_wire_is_within_one_percent(
    folder: Path,
) -> None:
    from tests.unit.graphics.test_sixel import decode_sixel

    app = make_app(Config(), [folder], graphics=GraphicsMode.SIXEL)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_viewer(pilot)
        view = screen.image_view
        frame = view._frame
        assert frame is not None and frame.place is not None
        decoded = decode_sixel(frame.sequence)[..., 0]
        top, left = frame.place.pad_top, frame.place.pad_left
        inside = decoded[top : top + 192, left : left + 192]
        reference = slices(folder)[0]
        off = np.abs(to_percent(inside) - to_percent(reference))
        assert off.max() <= 1, "every grey within one Sixel level (percent) of the slice's"
        assert off.mean() < 0.5
        badge = str(screen.query_one("#badge", Static).content)
        assert f"{len(np.unique(inside))} of {len(np.unique(reference))} grey levels" in badge
        assert "each within ±1 %" in badge


def greedy_runs_reference(pixels: np.ndarray) -> np.ndarray:
    """``within_one_cells`` as first written (a Python loop per cell), kept as the reference
    that the vectorised pass must match pixel for pixel."""
    img = pixels
    odd = img.shape[0] % 2
    if odd:
        img = np.concatenate([img, img[-1:]])
    upper, lower = img[0::2].astype(np.int64), img[1::2].astype(np.int64)
    flat = np.abs(upper - lower) <= 2
    a_lo = np.where(flat, np.maximum(upper, lower), upper) - 1
    a_hi = np.where(flat, np.minimum(upper, lower), upper) + 1
    b_lo = np.where(flat, -11, lower - 1)
    b_hi = np.where(flat, -9, lower + 1)
    out_u, out_l = upper.copy(), lower.copy()
    mid = (a_lo + a_hi) // 2
    out_u[flat] = mid[flat]
    out_l[flat] = mid[flat]
    for r in range(upper.shape[0]):
        alo, ahi, blo, bhi = a_lo[r].tolist(), a_hi[r].tolist(), b_lo[r].tolist(), b_hi[r].tolist()
        width, start = len(alo), 0
        while start < width:
            lo1, hi1, lo2, hi2 = alo[start], ahi[start], blo[start], bhi[start]
            end = start + 1
            while end < width:
                n_lo1, n_hi1 = max(lo1, alo[end]), min(hi1, ahi[end])
                n_lo2, n_hi2 = max(lo2, blo[end]), min(hi2, bhi[end])
                if n_lo1 > n_hi1 or n_lo2 > n_hi2:
                    break
                lo1, hi1, lo2, hi2 = n_lo1, n_hi1, n_lo2, n_hi2
                end += 1
            if end - start > 1:
                value = min(max((lo1 + hi1) // 2, 0), 255)
                out_u[r, start:end] = value
                second = min(max((lo2 + hi2) // 2, 0), 255)
                out_l[r, start:end] = value if flat[r, start] else second
            start = end
    out = np.empty(img.shape, dtype=np.uint8)
    out[0::2], out[1::2] = out_u, out_l
    return out[: img.shape[0] - odd] if odd else out


def test_the_vectorised_half_block_pass_equals_the_greedy_loop_on_real_slices(
    folder: Path,
) -> None:
    rng = np.random.default_rng(5)
    frames = []
    for pixels in slices(folder):
        # The viewer's pane sizes (120×40 and 100×30 screens, odd heights) and the 1:1 slice.
        for size in ((66, 66), (66, 65), (52, 51), (118, 71)):
            frames.append(np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.BOX)))
        frames.append(pixels)
    # Flat air, white, a one-pixel image and near-constant noise at the edges of the range.
    frames += [np.zeros((66, 66), np.uint8), np.full((9, 4), 255, np.uint8)]
    frames += [np.array([[7]], np.uint8), np.array([[0, 1, 2, 3]], np.uint8)]
    for spread in (1, 2, 3):
        for level in (0, 128, 255):
            noise = rng.integers(-spread, spread + 1, (33, 40))
            frames.append(np.clip(level + noise, 0, 255).astype(np.uint8))
    changed = 0
    for frame in frames:
        near = within_one_cells(frame)
        assert near.shape == frame.shape and near.dtype == np.uint8
        np.testing.assert_array_equal(near, greedy_runs_reference(frame))
        changed += int(not np.array_equal(near, frame))
    assert changed > len(frames) // 2, "the pass moves pixels on most frames"


def test_grey_counts_from_one_histogram_equal_counting_each_frame(folder: Path) -> None:
    from tuiviewer.graphics.pixels import grey_count, grey_counts_within_one

    for pixels in slices(folder):
        assert grey_counts_within_one(pixels) == (
            grey_count(pixels),
            grey_count(within_one(pixels)),
        )
        rgb_grey = np.repeat(pixels[..., None], 3, axis=2)
        assert grey_counts_within_one(rgb_grey) == grey_counts_within_one(pixels)
        colour = rgb_grey.copy()
        colour[0, 0] = (255, 0, 0)
        assert grey_counts_within_one(colour) == (None, None)
