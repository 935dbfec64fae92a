"""Drive the slice viewer as a user would: open from the browser, step, window, zoom, cine, measure.

Expected values come from the files (read with pydicom) and the standard, not from the viewer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from textual import events
from textual.pilot import Pilot
from textual.widgets import Static

from tests.functional.helpers import settle
from tuiviewer.app import TuiviewerApp, make_app
from tuiviewer.config import Config
from tuiviewer.dicom.datagen import write_ct_series
from tuiviewer.graphics import GraphicsMode
from tuiviewer.screens.viewer import ViewerScreen
from tuiviewer.widgets.image_view import ImageView
from tuiviewer.widgets.study_tree import StudyTree

SLICES = 40


@pytest.fixture(scope="module")
def ct_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("viewer-ct")
    write_ct_series(folder, slices=SLICES, rows=64, cols=64, seed=5)
    return folder


@pytest.fixture(scope="module")
def by_position(ct_folder: Path) -> list[pydicom.Dataset]:
    """The files in anatomical order (along the slice normal, here +z), as pydicom reads them."""
    datasets = [pydicom.dcmread(p) for p in ct_folder.iterdir()]
    return sorted(datasets, key=lambda ds: float(ds.ImagePositionPatient[2]))


def new_app(folder: Path) -> TuiviewerApp:
    return make_app(Config(), [folder], graphics=GraphicsMode.HALFCELL)


def text(screen: ViewerScreen, selector: str) -> str:
    content = screen.query_one(selector, Static).content
    return content.plain if hasattr(content, "plain") else str(content)


async def open_viewer(pilot: Pilot[None]) -> ViewerScreen:
    """Open the folder's series from the study browser with `v`, as a user does."""
    await settle(pilot)
    pilot.app.screen.query_one(StudyTree).focus()
    await pilot.press("v")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, ViewerScreen), type(screen)
    return screen


async def test_v_in_the_browser_opens_the_viewer_on_the_selected_instance(
    ct_folder: Path, by_position: list[pydicom.Dataset]
) -> None:
    app = new_app(ct_folder)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_viewer(pilot)
        first = by_position[0]
        assert text(screen, "#overlay-tr").startswith(f"slice 1/{SLICES}")
        assert str(first.PatientName).replace("^", " ") in text(screen, "#overlay-tl")
        assert f"thick {float(first.SliceThickness):g} mm" in text(screen, "#overlay-bl")
        assert screen.image_view.frames_sent == 1
        # Axial slice (IOP 1,0,0,0,1,0): patient right on the left, anterior on top.
        edges = [text(screen, f"#edge-{side}") for side in ("left", "right", "top", "bottom")]
        assert edges == ["R", "L", "A", "P"]
        await pilot.press("escape")
        assert not isinstance(app.screen, ViewerScreen)


async def test_step_keys_show_the_next_slices_in_anatomical_order(
    ct_folder: Path, by_position: list[pydicom.Dataset]
) -> None:
    app = new_app(ct_folder)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_viewer(pilot)
        await pilot.press("down", "down", "down")
        await settle(pilot)
        expected_z = float(by_position[3].ImagePositionPatient[2])
        assert text(screen, "#overlay-tr").startswith(f"slice 4/{SLICES}")
        assert f"z {expected_z:.1f}" in text(screen, "#overlay-bl").splitlines()
        await pilot.press("end")
        await settle(pilot)
        assert text(screen, "#overlay-tr").startswith(f"slice {SLICES}/{SLICES}")
        await pilot.press("up", "home")
        await settle(pilot)
        assert screen.shown_index == 0


async def test_a_burst_of_30_steps_renders_fewer_frames_and_lands_on_start_plus_30(
    ct_folder: Path,
) -> None:
    app = new_app(ct_folder)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_viewer(pilot)
        start, renders_before = screen.index, screen.coalescer.started
        # As a held key arrives over SSH: all repeats queued before the app handles any.
        for _ in range(30):
            app.post_message(events.Key("down", None))
        await settle(pilot)
        renders = screen.coalescer.started - renders_before
        assert renders < 30, f"{renders} renders for 30 steps: nothing was coalesced"
        assert screen.shown_index == start + 30
        assert text(screen, "#overlay-tr").startswith(f"slice {start + 31}/{SLICES}")


async def test_window_keys_and_presets_change_what_is_shown(
    ct_folder: Path, by_position: list[pydicom.Dataset]
) -> None:
    app = new_app(ct_folder)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_viewer(pilot)
        ds = by_position[0]
        center, width = float(ds.WindowCenter), float(ds.WindowWidth)
        assert f"W {width:g} L {center:g}" in text(screen, "#overlay-br")
        before = screen.image_view._pixels
        assert before is not None
        await pilot.press("w")  # level up by 2% of the width
        await settle(pilot)
        assert f"W {width:g} L {center + 0.02 * width:g}" in text(screen, "#overlay-br")
        after = screen.image_view._pixels
        assert after is not None and after.mean() < before.mean(), "a higher level is darker"
        # Preset 4 is the lung window, W 1500 L -600 (Radiopaedia, "Windowing (CT)").
        await pilot.press("4")
        await settle(pilot)
        assert "W 1500 L -600 lung" in text(screen, "#overlay-br")
        lung = screen.image_view._pixels
        await pilot.press("i")
        await settle(pilot)
        inverted = screen.image_view._pixels
        assert "inverted" in text(screen, "#overlay-br")
        assert lung is not None and inverted is not None
        assert np.array_equal(inverted, 255 - lung)
        await pilot.press("i", "0")
        await settle(pilot)
        assert f"W {width:g} L {center:g}" in text(screen, "#overlay-br")


async def test_zoom_and_fit(ct_folder: Path) -> None:
    app = new_app(ct_folder)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_viewer(pilot)
        shown = screen.image_view._pixels
        assert shown is not None
        # Body (soft tissue) pixels at fit; zoomed, the centre of the body fills more of the view.
        await pilot.press("z", "z")
        await settle(pilot)
        assert "zoom 1.56×" in text(screen, "#overlay-br")  # 1.25²
        zoomed = screen.image_view._pixels
        assert zoomed is not None
        air = 0  # W 400 L 40: -1000 HU is black
        assert (zoomed == air).mean() < (shown == air).mean(), "zooming in shows less air"
        await pilot.press("f")
        await settle(pilot)
        assert "zoom 1.00×" in text(screen, "#overlay-br")


async def test_cine_starts_advances_and_stops(ct_folder: Path) -> None:
    app = new_app(ct_folder)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_viewer(pilot)
        await pilot.press("space")
        assert "cine 10 fps" in text(screen, "#overlay-br")
        await pilot.pause(0.5)
        await pilot.press("space")
        await settle(pilot)
        stopped_at = screen.index
        assert stopped_at > 0, "cine advanced"
        assert "cine" not in text(screen, "#overlay-br")
        await pilot.pause(0.3)
        await settle(pilot)
        assert screen.index == stopped_at, "cine stopped"
        await pilot.press("plus", "plus")
        assert screen.fps == 12


async def test_cursor_readout_names_the_pixel_and_its_hounsfield_value(
    ct_folder: Path, by_position: list[pydicom.Dataset]
) -> None:
    app = new_app(ct_folder)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_viewer(pilot)
        ds = by_position[0]
        hu = ds.pixel_array.astype(float) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        await pilot.press("c")
        await settle(pilot)
        assert text(screen, "#readout") == f"x 32 y 32: {hu[32, 32]:.0f} HU"
        await pilot.press("right", "right", "down")  # one source pixel per key
        await settle(pilot)
        assert text(screen, "#readout") == f"x 34 y 33: {hu[33, 34]:.0f} HU"
        assert screen.index == 0, "arrows move the cursor, not the slice"


async def test_measuring_ten_columns_gives_ten_column_spacings(
    ct_folder: Path, by_position: list[pydicom.Dataset]
) -> None:
    app = new_app(ct_folder)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_viewer(pilot)
        column_spacing = float(by_position[0].PixelSpacing[1])
        await pilot.press("c", "m")
        for _ in range(10):
            await pilot.press("right")
        await pilot.press("m")
        await settle(pilot)
        assert f"distance {10 * column_spacing:.1f} mm" in text(screen, "#readout")


async def test_an_unrelated_repaint_does_not_resend_the_image(ct_folder: Path) -> None:
    app = new_app(ct_folder)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_viewer(pilot)
        view = screen.query_one(ImageView)
        drawn: list[int] = []
        original = view.render_line

        def counting(y: int):  # type: ignore[no-untyped-def]
            drawn.append(y)
            return original(y)

        view.render_line = counting  # type: ignore[method-assign]
        sent = view.frames_sent
        screen.query_one("#badge", Static).update("status changed")
        screen.notify("an unrelated notification")
        await settle(pilot)
        await pilot.pause(0.05)
        assert view.frames_sent == sent
        assert not drawn, f"image lines {sorted(set(drawn))[:5]}… were rendered again"
        # Asking for the frame on screen again sends nothing either.
        screen.request_render()
        await settle(pilot)
        assert view.frames_sent == sent


async def test_small_terminal_still_shows_texts_and_image(ct_folder: Path) -> None:
    app = new_app(ct_folder)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_viewer(pilot)
        box = screen.image_view.pixel_box()
        assert box is not None and box[0] >= 20 and box[1] >= 20
        assert text(screen, "#overlay-tr").startswith("slice 1/")
