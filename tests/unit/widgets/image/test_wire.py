"""What the image widget's frames put on the wire, recorded where Textual hands the terminal
its bytes: a notification over the pane does not swallow the Sixel frame, and a slice step of
the same size sends the new image but not the black cells around it again.

The app runs under Textual's pilot with a driver that records instead of being headless, so
the compositor renders every update as it would for a terminal (a headless app renders none).
tests/realterm checks what real terminals make of the bytes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from textual.drivers.headless_driver import HeadlessDriver
from textual.pilot import Pilot
from textual.strip import Strip

from tests.functional.helpers import settle
from tests.functional.test_viewer import open_viewer
from tuiviewer.app import make_app
from tuiviewer.config.settings import Config
from tuiviewer.dicom.datagen import write_ct_series
from tuiviewer.graphics.probe import GraphicsMode
from tuiviewer.widgets.image.halfcell import StyleCache, halfcell_lines

_CUP = re.compile(r"\x1b\[(\d+);(\d+)H")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("wire")
    write_ct_series(path, slices=6, rows=128, cols=128, seed=5, noise_hu=10.0)
    return path


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Everything the app writes to its terminal, in order."""
    written: list[str] = []
    monkeypatch.setattr(HeadlessDriver, "is_headless", property(lambda self: False))
    monkeypatch.setattr(HeadlessDriver, "write", lambda self, data: written.append(data))
    yield written


async def step_down(pilot: Pilot[None], wire: list[str]) -> str:
    """What the terminal gets for one slice step (the down arrow), everything settled."""
    await pilot.pause(0.3)
    wire.clear()
    await pilot.press("down")
    await settle(pilot)
    await pilot.pause(0.2)
    return "".join(wire)


def sixel_rows(data: str) -> list[int]:
    """The screen row (1-based) the cursor was moved to just before each Sixel image."""
    rows = []
    for found in re.finditer(r"\x1bP0;1;0q", data):
        moves = list(_CUP.finditer(data, 0, found.start()))
        rows.append(int(moves[-1].group(1)) if moves else 0)
    return rows


async def test_a_notification_over_the_pane_leaves_the_sixel_frame_on_the_wire(
    folder: Path, wire: list[str]
) -> None:
    app = make_app(Config(), [folder], graphics=GraphicsMode.SIXEL)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        screen = await open_viewer(pilot)
        view = screen.image_view
        # Several lines tall, as the note on unfinished report drafts is: it covers the
        # pane's lower right corner, where a line's last cells are.
        app.notify("A long note that stays while the reader steps. " * 4, timeout=30)
        await settle(pilot)
        data = await step_down(pilot, wire)
        assert view.writes >= 2 and "slice 2/6" in re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", data)
        rows = sixel_rows(data)
        assert rows, "the new slice reached the terminal (not dropped under the notification)"
        frame = view._frame
        assert frame is not None and frame.place is not None
        region = screen.query_one(type(view)).region
        assert rows == [region.y + frame.place.top + 1], "drawn at the image's top-left cell"


async def test_a_slice_step_of_the_same_size_sends_the_image_not_the_pane_around_it(
    folder: Path, wire: list[str]
) -> None:
    app = make_app(Config(), [folder], graphics=GraphicsMode.SIXEL)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_viewer(pilot)
        view = screen.image_view
        data = await step_down(pilot, wire)
        image = re.search(r"\x1bP0;1;0q.*?\x1b\\", data, re.S)
        assert image is not None, "the next slice is sent"
        rest = data[: image.start()] + data[image.end() :]
        region = view.region
        pane_rows = {
            int(m.group(1))
            for m in _CUP.finditer(rest)
            if region.x < int(m.group(2)) <= region.right
            and region.y < int(m.group(1))
            and int(m.group(1)) <= region.bottom
        }
        assert len(pane_rows) <= 2, f"only the line carrying the image, not rows {pane_rows}"


async def test_a_half_block_frame_that_changes_two_rows_repaints_one_line(
    wire: list[str],
) -> None:
    from textual.app import App, ComposeResult

    from tuiviewer.graphics.probe import GraphicsDecision
    from tuiviewer.widgets.image.view import ImageView

    decision = GraphicsDecision(GraphicsMode.HALFCELL, "test")

    class One(App[None]):
        def compose(self) -> ComposeResult:
            yield ImageView(decision, id="image")

    rng = np.random.default_rng(3)
    first = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)  # a colour pane, as MPR's
    moved = first.copy()
    moved[20:22] = (255, 200, 0)  # a crosshair's row: one line of cells
    async with One().run_test(size=(80, 30)) as pilot:
        view = pilot.app.query_one(ImageView)
        await pilot.pause(0.1)
        view.show(first, "first")
        await pilot.pause(0.2)
        wire.clear()
        view.show(moved, "moved")
        await pilot.pause(0.2)
        data = "".join(wire)
        # Rows the cursor is moved to before something is written (not the final parking).
        rows = {int(m.group(1)) for m in _CUP.finditer(data) if data[m.end() : m.end() + 1]}
        top = (view.content_size.height - 20) // 2
        assert rows == {top + 10 + 1}, f"only the changed line is sent, not {sorted(rows)}"
        assert view._frame is not None and view._frame.strips is not None
        lines, _ = halfcell_lines(moved, 80, 30, StyleCache())
        assert [s.text for s in view._frame.strips] == [Strip(line, 80).text for line in lines]
