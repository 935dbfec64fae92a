"""The image widget in the running viewer: each frame is sent once, a layout change or a dialog
never resends an old frame, Kitty images keep one id per pane (placeholders unchanged between
frames), placed Kitty images are taken off whenever the pane changes or is covered, and a held
key on a slow link gets draft frames, refined when the reader stops.

No terminal here (headless): what the widget writes to the terminal is recorded where it hands
it to Textual's driver. tests/realterm checks what real terminals make of it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from textual import events
from textual.pilot import Pilot
from textual.widgets import Static

from tests.functional.helpers import settle
from tests.functional.test_viewer import open_viewer
from tuiviewer.app import TuiviewerApp, make_app
from tuiviewer.config.settings import Config
from tuiviewer.dicom.datagen import write_ct_series
from tuiviewer.graphics import kitty
from tuiviewer.graphics.probe import GraphicsDecision, GraphicsMode
from tuiviewer.screens.viewer import ViewerScreen
from tuiviewer.widgets.image.view import REFINE_AFTER_S, ImageView


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("image-view")
    write_ct_series(path, slices=12, rows=96, cols=96, seed=21)
    return path


def record(view: ImageView) -> list[str]:
    """What the widget hands to the driver, in order."""
    written: list[str] = []
    original = view._write

    def keep(data: str) -> None:
        written.append(data)
        original(data)

    view._write = keep  # type: ignore[method-assign]
    return written


def kitty_app(folder: Path, *, placeholders: bool) -> TuiviewerApp:
    app = make_app(Config(), [folder], graphics=GraphicsMode.KITTY)
    app.graphics = GraphicsDecision(
        GraphicsMode.KITTY, "test", cell_size=(10, 20), kitty_placeholders=placeholders
    )
    return app


async def press(pilot: Pilot[None], *keys: str) -> None:
    await pilot.press(*keys)
    await settle(pilot)
    await pilot.pause(0.05)


async def test_sixel_sends_each_frame_once_and_no_old_frame_after_a_layout_change(
    folder: Path,
) -> None:
    app = make_app(Config(), [folder], graphics=GraphicsMode.SIXEL)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_viewer(pilot)
        view = screen.image_view
        assert view.writes == 1
        await press(pilot, "t")  # the pane narrows: one new frame, sent once
        assert view.writes == 2 and view._frame is not None
        assert (view._frame.cols, view._frame.rows) == tuple(view.content_size)
        await press(pilot, "t")
        assert view.writes == 3
        await press(pilot, "question_mark")
        assert view.writes == 3, "nothing is sent while the help covers the viewer"
        await press(pilot, "escape")
        assert view.writes == 4, "the image comes back once"
        await press(pilot, "down", "down")
        assert view.writes <= 6


async def test_kitty_placeholders_keep_one_id_and_the_same_cells_from_frame_to_frame(
    folder: Path,
) -> None:
    app = kitty_app(folder, placeholders=True)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_viewer(pilot)
        view = screen.image_view
        written = record(view)
        frame = view._frame
        assert frame is not None and frame.strips is not None
        cells = frame.strips
        await press(pilot, "down", "down", "down")
        ids = {int(i) for data in written for i in re.findall(r"i=(\d+)", data)}
        assert ids == {view._kitty_id}, "one image id for the pane"
        uploads = [data for data in written if "a=t," in data]
        assert len(uploads) == 3 and all("a=p,U=1" in data for data in uploads)
        assert view._frame is not None and view._frame.strips is cells, "cells not resent"
        # The placeholder cells carry the id: low byte as the 256-colour foreground; the
        # cells around them are black.
        place = frame.place
        assert place is not None
        segments = [s for s in cells[place.top] if kitty.PLACEHOLDER in s.text]
        assert len(segments) == 1 and segments[0].style is not None
        colour = segments[0].style.color
        assert colour is not None and colour.number == kitty.colour_of(view._kitty_id)
        assert segments[0].text.count(kitty.PLACEHOLDER) == place.cols
        assert not any(kitty.PLACEHOLDER in s.text for s in cells[place.top - 1])


async def test_placed_kitty_images_are_taken_off_when_the_pane_changes_or_is_covered(
    folder: Path,
) -> None:
    app = kitty_app(folder, placeholders=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_viewer(pilot)
        view = screen.image_view
        written = record(view)
        await press(pilot, "t")
        deletes = [data for data in written if "a=d,d=i," in data]
        assert deletes, "the old placement goes when the pane narrows"
        place = next(data for data in written[written.index(deletes[0]) :] if "a=p," in data)
        assert f"c={view.content_size.width}," in place
        written.clear()
        await press(pilot, "question_mark")
        assert any("a=d,d=i," in data for data in written), "taken off under the help"
        assert not any("a=p," in data for data in written)
        await press(pilot, "escape")
        assert view._kitty_placed, "placed again when the help closes"
        assert isinstance(pilot.app.screen, ViewerScreen)
    assert not view._kitty_uploaded, "deleted, data and all, when the viewer goes"


async def test_a_held_key_on_a_slow_link_gets_drafts_then_the_full_frame(folder: Path) -> None:
    app = make_app(Config(), [folder], graphics=GraphicsMode.SIXEL, low_bandwidth=True)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_viewer(pilot)
        view = screen.image_view
        drafts, draft_greys = 0, 256
        for _ in range(10):
            # As a terminal repeats a held key: keys arrive whatever the app is doing.
            pilot.app.post_message(events.Key("down", None))
            await pilot.pause(0.03)
            shown = view.shown
            if shown is not None and shown.cheap:
                drafts += 1
                draft_greys = min(draft_greys, shown.grey_levels or 0)
        assert drafts >= 2, "frames that follow each other quickly are drafts"
        await pilot.pause(REFINE_AFTER_S + 0.3)
        await settle(pilot)
        shown = view.shown
        assert shown is not None and not shown.cheap, "the frame the reader stops on is whole"
        assert shown.grey_levels is not None and shown.grey_levels > draft_greys
        # The badge says so: the reader is not told "draft" about the whole frame.
        badge = str(screen.query_one("#badge", Static).content)
        assert "draft" not in badge, badge
        assert f"{shown.grey_levels} of" in badge, badge
