"""Every pane of the volume screen honours the graphics mode: in Kitty, Sixel and iTerm2 the
picture a pane sends carries the crosshair (yellow in the active pane, blue in the others) on
the row and column of the crosshair's voxel, as the half-block panes draw it, and follows the
crosshair when a key moves it.

No terminal here (headless): what each pane hands to the terminal is recorded where it writes
it, and decoded by parsers written from the protocols (Kitty's graphics protocol, iTerm2's
inline images, DEC Sixel: the decoders of tests/unit/graphics), not from the encoders.
"""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from textual.pilot import Pilot

from tests.functional.helpers import burst, settle
from tests.functional.test_viewer import open_viewer
from tests.functional.test_volume_screen import open_volume, write_sphere
from tests.unit.graphics.test_sixel import decode_sixel
from tuiviewer.app import make_app
from tuiviewer.config.settings import Config
from tuiviewer.graphics.probe import GraphicsDecision, GraphicsMode
from tuiviewer.screens.volume import VolumeScreen
from tuiviewer.services.viewer import layouts as ls
from tuiviewer.services.viewer.volume_view import ACTIVE_CROSSHAIR, CROSSHAIR
from tuiviewer.widgets.image.view import ImageView

_APC = re.compile(r"\x1b_G([^;\x1b]*)(?:;([^\x1b]*))?\x1b\\")
_ITERM2 = re.compile(r"\x1b\]1337;File=[^:]*:([A-Za-z0-9+/=]+)\x07")


@pytest.fixture(scope="module")
def sphere(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("mpr-graphics")
    write_sphere(folder)
    return folder


def decode(mode: GraphicsMode, written: str) -> np.ndarray:
    """RGB of the last picture in ``written`` (what a pane sent), as the terminal gets it."""
    if mode is GraphicsMode.KITTY:
        # The last upload: "a=t" starts it, continuation chunks carry only "m".
        commands = _APC.findall(written)
        start = max(n for n, (keys, _) in enumerate(commands) if "a=t" in keys)
        payload = "".join(
            data
            for keys, data in commands[start:]
            if "a=t" in keys or keys.startswith("m=")  # placements carry no data
        )
        png = base64.standard_b64decode(payload)
        return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int64)
    if mode is GraphicsMode.ITERM2:
        png = base64.standard_b64decode(_ITERM2.findall(written)[-1])
        return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int64)
    start = written.rindex("\x1bP")
    return decode_sixel(written[start : written.index("\x1b\\", start) + 2])


def coloured(image: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    """Where ``image`` shows ``colour`` (within Sixel's whole-percent rounding)."""
    return np.all(np.abs(image - np.asarray(colour)) <= 3, axis=-1)


def record(view: ImageView) -> list[str]:
    written: list[str] = []
    view._write_raw = written.append  # type: ignore[method-assign]
    return written


async def until_shown(pilot: Pilot[None], screen: VolumeScreen, sent: list[list[str]]) -> None:
    for _ in range(100):
        await settle(pilot)
        await pilot.pause(0.05)
        if not screen._rendering and not screen._dirty and all(sent):
            return


@pytest.mark.parametrize(
    ("mode", "placeholders"),
    [
        (GraphicsMode.KITTY, True),
        (GraphicsMode.KITTY, False),
        (GraphicsMode.SIXEL, False),
        (GraphicsMode.ITERM2, False),
    ],
    ids=["kitty", "kitty-placed", "sixel", "iterm2"],
)
async def test_pixel_panes_carry_the_crosshair_where_it_is_and_follow_it(
    sphere: Path, mode: GraphicsMode, placeholders: bool
) -> None:
    app = make_app(Config(), [sphere], graphics=mode)
    app.graphics = GraphicsDecision(
        mode, "test", cell_size=(10, 20), kitty_placeholders=placeholders
    )
    async with app.run_test(size=(120, 40)) as pilot:
        await open_viewer(pilot)
        screen = await open_volume(pilot)
        views = [pane.image_view for pane in screen.panes]
        sent = [record(view) for view in views]
        for view in views:
            view.redraw()  # sent again, now recorded
        await until_shown(pilot, screen, sent)
        for keys in ([], ["right"] * 3 + ["down"] * 2 + ["pagedown"] * 4):
            if keys:
                before = {p: f.key for p, f in screen.frames.items()}
                for written in sent:
                    written.clear()
                await burst(pilot, *keys)
                await until_shown(pilot, screen, [[""]])
                for pane, written in zip(screen.panes, sent, strict=True):
                    if screen.frames[pane.pane].key != before[pane.pane]:
                        assert written, f"pane {pane.pane} did not send its new picture"
                    written.clear()
                for view in views:  # the pictures on screen now, sent again to be read
                    view.redraw()
                await until_shown(pilot, screen, sent)
            for pane, view, written in zip(screen.panes, views, sent, strict=True):
                assert written, f"pane {pane.pane} sent nothing in {mode.value}"
                frame = screen.frames[pane.pane]
                place = view._frame.place  # type: ignore[union-attr]
                assert place is not None
                view_of = ls.pane_view(screen.hanging, screen.views, pane.pane)
                x, y = (round(c) for c in frame.image.pixel_of(view_of.at))
                x, y = x + place.pad_left, y + place.pad_top
                image = decode(mode, "".join(written))
                colour = ACTIVE_CROSSHAIR if pane.pane == screen.hanging.active else CROSSHAIR
                lines = coloured(image, colour)
                width, height = frame.pixels.shape[1], frame.pixels.shape[0]
                # The horizontal line through the crosshair's row, the vertical one through its
                # column (a gap around the voxel itself), and nowhere else.
                assert lines[y].sum() >= width // 2, (mode, pane.pane, "row", y)
                assert lines[:, x].sum() >= height // 2, (mode, pane.pane, "column", x)
                rows = np.flatnonzero(lines.sum(axis=1) > width // 4)
                cols = np.flatnonzero(lines.sum(axis=0) > height // 4)
                assert rows.tolist() == [y] and cols.tolist() == [x], (mode, pane.pane)
        # The keys moved the crosshair: three voxels right, two down, four slices on.
        assert screen.panes[0].title_text.startswith("Axial 5/40")
