"""Drive the slice viewer as a user would: open from the browser, step, window, zoom, cine, measure.

Expected values come from the files (read with pydicom) and the standard, not from the viewer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from textual import events
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Static

from tests.functional.helpers import settle
from tests.support.screentext import screen_lines
from tuiviewer.app import TuiviewerApp, make_app
from tuiviewer.config.settings import Config, GraphicsConfig, load_config
from tuiviewer.dicom.datagen import write_ct_series
from tuiviewer.dicom.elements import walk
from tuiviewer.graphics.probe import ColorPlan, GraphicsMode
from tuiviewer.screens.base import ShowsStudy
from tuiviewer.screens.dialogs.choose import ChooseDialog
from tuiviewer.screens.viewer import ViewerScreen
from tuiviewer.widgets.image.view import ImageView
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


def text(screen: Widget, selector: str) -> str:
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


# ---- the tag panel follows the slice ---------------------------------------------------------


async def wait_until(pilot: Pilot[None], condition: Callable[[], bool], timeout: float = 5) -> None:
    """Let workers, messages and timers (the tag panel's debounce) run until ``condition``."""
    for _ in range(int(timeout / 0.02)):
        await settle(pilot)
        if condition():
            return
        await pilot.pause(0.02)
    raise AssertionError(f"not reached within {timeout} s")


def tag_values(screen: ViewerScreen) -> dict[str, str]:
    return {row.keyword: row.value for row in walk(screen.tag_tree.rows) if row.keyword}


async def test_t_shows_the_tags_of_the_slice_on_screen_and_follows_the_steps(
    ct_folder: Path, by_position: list[pydicom.Dataset]
) -> None:
    app = new_app(ct_folder)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_viewer(pilot)
        width_before = screen.image_view.content_size.width
        await pilot.press("t")
        await wait_until(pilot, lambda: bool(screen.tag_tree.rows))
        first = by_position[0]
        assert tag_values(screen)["SOPInstanceUID"] == first.SOPInstanceUID
        # The image gave room to the panel and was rendered again to fit what is left.
        view = screen.image_view
        assert view.content_size.width < width_before
        assert view._pixels is not None and view._pixels.shape[1] <= view.content_size.width
        await pilot.press("down", "down", "down", "pagedown")
        expected = by_position[13]
        await wait_until(
            pilot, lambda: tag_values(screen).get("SOPInstanceUID") == expected.SOPInstanceUID
        )
        assert tag_values(screen)["InstanceNumber"] == str(expected.InstanceNumber)
        assert text(screen, "#tags-title").startswith(f"Tags · slice 14/{SLICES}")
        await pilot.press("t")
        await settle(pilot)
        assert not screen.query_one("#tags-panel").display
        assert screen.image_view.content_size.width == width_before


async def test_holding_a_key_reads_the_tags_of_the_slice_it_stops_on_only(
    ct_folder: Path, by_position: list[pydicom.Dataset]
) -> None:
    app = new_app(ct_folder)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_viewer(pilot)
        await pilot.press("t")
        await wait_until(pilot, lambda: bool(screen.tag_tree.rows))
        reads, frames = screen.tags_reads, screen.image_view.frames_sent
        # A held key repeats every ~30 ms; each slice is rendered and shown on the way.
        for _ in range(20):
            await pilot.press("down")
            await pilot.pause(0.03)
        assert screen.image_view.frames_sent - frames >= 10, "the slices were shown"
        expected = by_position[20].SOPInstanceUID
        await wait_until(pilot, lambda: tag_values(screen).get("SOPInstanceUID") == expected)
        assert screen.tags_reads - reads <= 2, (
            f"{screen.tags_reads - reads} files read for 20 steps"
        )


# ---- window presets from the configuration file ---------------------------------------------


async def test_a_preset_from_config_toml_is_on_a_number_key(
    ct_folder: Path, tmp_path: Path
) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[presets.CT]\n"soft tissue" = [50, 350]\nlung = [-500, 1400]\n')
    app = make_app(load_config(path), [ct_folder], graphics=GraphicsMode.HALFCELL)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_viewer(pilot)
        # Eight built-in CT presets, so the new one is the ninth; "lung" keeps its key (4).
        await pilot.press("9")
        await settle(pilot)
        assert "W 350 L 50 soft tissue" in text(screen, "#overlay-br")
        await pilot.press("4")
        await settle(pilot)
        assert "W 1400 L -500 lung" in text(screen, "#overlay-br")


# ---- side by side, linked by position ---------------------------------------------------------

PRIOR_SERIES_NUMBER = 99


@pytest.fixture(scope="module")
def two_series(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One study, two axial CT series over the same range: 40 slices 2.5 mm apart (0-97.5 mm)
    and 20 slices 5 mm apart (0-95 mm), the second made by dropping every other slice."""
    folder = tmp_path_factory.mktemp("two-series")
    study = "1.2.826.0.1.3680043.8.498.4242"
    write_ct_series(folder / "fine", slices=40, rows=32, cols=32, seed=7, study_uid=study)
    coarse = write_ct_series(
        folder / "coarse",
        slices=39,
        rows=32,
        cols=32,
        seed=7,
        study_uid=study,
        series_uid="1.2.826.0.1.3680043.8.498.4243",
    )
    for path in coarse:
        ds = pydicom.dcmread(path)
        if ds.InstanceNumber % 2 == 0:
            path.unlink()
            continue
        ds.SeriesNumber = PRIOR_SERIES_NUMBER
        ds.SeriesDescription = "CT 5 mm"
        ds.SliceThickness = "5"
        ds.save_as(path)
    return folder


def z_sorted(folder: Path) -> list[pydicom.Dataset]:
    return sorted(
        (pydicom.dcmread(p) for p in folder.iterdir()),
        key=lambda ds: float(ds.ImagePositionPatient[2]),
    )


async def open_beside(pilot: Pilot[None]) -> ViewerScreen:
    """The 2.5 mm series on the left (``n`` to it if the browser opened the other), the 5 mm
    series chosen to go beside it."""
    screen = await open_viewer(pilot)
    if len(screen.slices) != 40:
        await pilot.press("n")
        await settle(pilot)
    assert len(screen.slices) == 40
    await pilot.press("b")
    await settle(pilot)
    dialog = pilot.app.screen
    assert isinstance(dialog, ChooseDialog)
    labels = dialog.items
    assert len(labels) == 1 and labels[0].startswith(f"#{PRIOR_SERIES_NUMBER} CT CT 5 mm")
    await pilot.press("enter")
    await settle(pilot)
    assert pilot.app.screen is screen
    return screen


async def test_the_series_beside_follows_by_position_and_b_closes_it(two_series: Path) -> None:
    fine, coarse = z_sorted(two_series / "fine"), z_sorted(two_series / "coarse")
    coarse_z = [float(ds.ImagePositionPatient[2]) for ds in coarse]
    app = new_app(two_series)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_beside(pilot)
        assert len(screen.slices) == len(fine), "the 2.5 mm series is on the left"
        single_width = None
        link = screen.link
        assert link is not None and screen.link_view.display
        for steps, keys in ((6, ["down"] * 6), (16, ["pagedown"]), (39, ["end"])):
            await pilot.press(*keys)
            await settle(pilot)
            left_z = float(fine[steps].ImagePositionPatient[2])
            nearest = min(range(len(coarse)), key=lambda k: abs(coarse_z[k] - left_z))
            assert link.shown_index == nearest, f"left at {left_z} mm"
            caption = text(screen, "#link-info")
            assert caption.startswith(f"right: slice {nearest + 1}/{len(coarse)} at ")
            assert f"at {coarse_z[nearest]:.1f} mm (left {left_z:.1f}," in caption
        # Left at 15 mm is exactly on a 5 mm slice (index 3), not index 6 of the right.
        assert screen.link_view.frames_sent >= 3
        single_width = screen.image_view.content_size.width
        await pilot.press("b")
        await settle(pilot)
        assert screen.link is None
        assert not screen.link_view.display and not screen.query_one("#link-info").display
        assert screen.image_view.content_size.width > single_width
        assert isinstance(app.screen, ViewerScreen)


async def test_a_burst_of_steps_is_coalesced_on_both_sides(two_series: Path) -> None:
    fine, coarse = z_sorted(two_series / "fine"), z_sorted(two_series / "coarse")
    app = new_app(two_series)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_beside(pilot)
        link = screen.link
        assert link is not None
        left_before, right_before = screen.coalescer.started, link.coalescer.started
        for _ in range(30):
            app.post_message(events.Key("down", None))
        await settle(pilot)
        assert screen.shown_index == 30
        assert screen.coalescer.started - left_before < 30
        assert link.coalescer.started - right_before < 15, "15 right slices pass by"
        # 75 mm on the left is slice 16 (75 mm) of the 5 mm series.
        left_z = float(fine[30].ImagePositionPatient[2])
        assert link.shown_index is not None
        assert float(coarse[link.shown_index].ImagePositionPatient[2]) == left_z
        await pilot.press("escape")  # Esc closes the side-by-side before leaving the viewer
        assert screen.link is None and app.screen is screen


@pytest.fixture(scope="module")
def current_and_prior(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two studies of one patient: today's 2.5 mm CT and a prior 5 mm CT over the same range."""
    folder = tmp_path_factory.mktemp("prior")
    write_ct_series(folder / "current", slices=20, rows=32, cols=32, seed=11, patient_id="P42")
    prior = write_ct_series(
        folder / "prior",
        slices=10,
        rows=32,
        cols=32,
        seed=12,
        patient_id="P42",
        study_uid="1.2.826.0.1.3680043.8.498.5151",
        series_uid="1.2.826.0.1.3680043.8.498.5152",
    )
    for path in prior:
        ds = pydicom.dcmread(path)
        ds.StudyDate = "20190301"
        z = float(ds.ImagePositionPatient[2]) * 2  # 5 mm apart over the same range
        ds.ImagePositionPatient = [ds.ImagePositionPatient[0], ds.ImagePositionPatient[1], z]
        ds.SliceThickness = "5"
        ds.save_as(path)
    return folder


async def test_a_prior_study_of_the_patient_can_be_shown_beside(current_and_prior: Path) -> None:
    prior_z = sorted(
        float(pydicom.dcmread(p).ImagePositionPatient[2])
        for p in (current_and_prior / "prior").iterdir()
    )
    app = new_app(current_and_prior)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        tree = pilot.app.screen.query_one(StudyTree)
        # Move to today's study (the browser lists the newest study first).
        tree.focus()
        screen = await open_viewer(pilot)
        if screen.slices and screen.slices[0].record.study_date == "20190301":
            pytest.fail("the browser opened the prior first; newest studies must come first")
        await pilot.press("b")
        await settle(pilot)
        dialog = pilot.app.screen
        assert isinstance(dialog, ChooseDialog)
        assert any(label.startswith("prior 2019-03-01:") for label in dialog.items)
        choice = next(i for i, label in enumerate(dialog.items) if label.startswith("prior"))
        for _ in range(choice):
            await pilot.press("down")
        await pilot.press("enter")
        await settle(pilot)
        assert screen.link is not None
        await pilot.press("down", "down", "down", "down")
        await settle(pilot)
        left_z = screen.slices[screen.index].record.image_position[2]  # type: ignore[index]
        nearest = min(range(len(prior_z)), key=lambda k: abs(prior_z[k] - left_z))
        assert screen.link.shown_index == nearest


# ---- low-bandwidth mode and Sixel ------------------------------------------------------------


def lean_app(folder: Path) -> TuiviewerApp:
    return make_app(Config(), [folder], graphics=GraphicsMode.HALFCELL, low_bandwidth=True)


async def test_low_bandwidth_from_config_says_so_in_the_badge_and_quantises(
    ct_folder: Path, tmp_path: Path
) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[ui]\nlow_bandwidth = true\n")
    truecolor = ColorPlan("truecolor", "test")
    app = make_app(load_config(path), [ct_folder], graphics=GraphicsMode.HALFCELL, color=truecolor)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_viewer(pilot)
        shown = screen.image_view._pixels
        assert shown is not None
        assert len(np.unique(shown)) <= 32, "no more than 32 grey levels are sent"
        source = screen.image_view.shown
        assert source is not None and source.source_greys is not None
        badge = text(screen, "#badge")
        assert "low-bandwidth" in badge
        assert f"{min(32, source.source_greys)} of {source.source_greys} grey levels" in badge
        assert app.animation_level == "none"


async def test_low_bandwidth_caps_cine_at_5_fps(ct_folder: Path) -> None:
    app = lean_app(ct_folder)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_viewer(pilot)
        await pilot.press("plus", "plus", "plus")
        await pilot.press("space")
        assert "cine 5 fps" in text(screen, "#overlay-br")
        assert screen.cine is not None and screen.fps == 5
        await pilot.press("space")
    normal = new_app(ct_folder)
    async with normal.run_test(size=(120, 40)) as pilot:
        screen = await open_viewer(pilot)
        await pilot.press("plus", "plus", "plus")
        assert screen.fps == 13, "without the flag the same keys go past 5 fps"


async def key_repeat(pilot: Pilot[None], key: str, count: int, gap: float) -> float:
    """A held key as the terminal repeats it, one key every ``gap`` seconds; returns how long
    the burst took."""
    started = time.monotonic()
    for _ in range(count):
        pilot.app.post_message(events.Key(key, key))
        await pilot.pause(gap)
    return time.monotonic() - started


async def test_a_window_key_burst_renders_fewer_frames_than_keys_in_low_bandwidth(
    ct_folder: Path, by_position: list[pydicom.Dataset]
) -> None:
    ds = by_position[0]
    center, width = float(ds.WindowCenter), float(ds.WindowWidth)
    # Ten presses of w raise the level by 2% of the width each (width unchanged).
    expected = f"W {width:g} L {center + 10 * 0.02 * width:g}"
    renders: dict[bool, int] = {}
    for lean in (False, True):
        app = lean_app(ct_folder) if lean else new_app(ct_folder)
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await open_viewer(pilot)
            before = screen.image_view.frames_sent
            took = await key_repeat(pilot, "w", 10, 0.03)
            await wait_until(pilot, lambda: expected in text(screen, "#overlay-br"))  # noqa: B023
            renders[lean] = screen.image_view.frames_sent - before
    assert renders[False] >= 8, "without the flag, repeated keys render one frame each"
    # At most one frame per 150 ms while the keys come, plus the last one.
    most = math.floor(took / 0.15) + 2
    assert renders[True] <= min(most, 9), f"{renders[True]} frames for 10 keys in {took:.2f} s"


async def test_low_bandwidth_repaints_only_the_rows_a_cursor_move_changes(ct_folder: Path) -> None:
    app = lean_app(ct_folder)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_viewer(pilot)
        await pilot.press("c")
        await settle(pilot)
        view = screen.image_view
        drawn: list[int] = []
        original = view.render_line

        def counting(y: int):  # type: ignore[no-untyped-def]
            drawn.append(y)
            return original(y)

        view.render_line = counting  # type: ignore[method-assign]
        await pilot.press("right")
        await settle(pilot)
        await pilot.pause(0.05)
        placement = view._placement
        assert placement is not None and drawn
        # The cross spans 3 pixels each side of the cursor: at most 4 cell rows of 2 pixels.
        assert len(set(drawn)) <= 4, f"rows {sorted(set(drawn))} repainted for a 1-pixel move"
        assert len(set(drawn)) < placement.rows


async def test_sixel_frames_fill_the_pane_keep_source_size_and_the_badge_tells_the_truth(
    ct_folder: Path,
) -> None:
    from tests.unit.graphics.test_sixel import decode_sixel

    # Exact frames (each grey at its own percent); the near-lossless default is
    # tests/unit/widgets/image/test_near_lossless.py.
    exact = Config(graphics=GraphicsConfig(exact=True))
    app = make_app(exact, [ct_folder], graphics=GraphicsMode.SIXEL)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_viewer(pilot)
        view = screen.image_view
        shown = view._pixels
        frame = view._frame
        assert shown is not None and frame is not None and frame.place is not None
        # A 64² slice in a widget hundreds of terminal pixels wide is never enlarged...
        assert shown.shape == (64, 64)
        decoded = decode_sixel(frame.sequence)
        # ...and it covers every pixel of the whole cells it needs, black around it.
        cell_w, cell_h = view.cell_pixels
        place = frame.place
        assert decoded.shape[:2] == (place.rows * cell_h, place.cols * cell_w)
        assert place.rows * cell_h - 64 < cell_h and place.cols * cell_w - 64 < cell_w
        top, left = frame.place.pad_top, frame.place.pad_left
        inside = decoded[top : top + 64, left : left + 64, 0]
        assert np.abs(inside - shown.astype(int)).max() <= 1.3 + 0.5
        outside = decoded[..., 0].copy()
        outside[top : top + 64, left : left + 64] = 0
        assert (decoded >= 0).all() and outside.max() == 0
        greys = len(np.unique(shown))
        assert "Sixel 64×64 px" in text(screen, "#badge")
        assert f"{len(np.unique(inside))} of {greys} grey levels" in text(screen, "#badge")
        writes = view.writes
        assert writes == 1, "the frame is sent once"
        screen.query_one("#badge", Static).update("status changed")
        await settle(pilot)
        assert view.writes == writes, "an unrelated repaint does not resend the image"
        await pilot.press("down")
        await settle(pilot)
        assert view._frame is not None and view._frame.sequence != frame.sequence
        assert view.writes == writes + 1


async def test_a_click_in_the_middle_of_the_image_puts_the_cursor_on_the_middle_pixel(
    ct_folder: Path, by_position: list[pydicom.Dataset]
) -> None:
    rows, cols = int(by_position[0].Rows), int(by_position[0].Columns)
    for lean in (False, True):
        app = lean_app(ct_folder) if lean else new_app(ct_folder)
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await open_viewer(pilot)
            size = screen.image_view.content_size
            await pilot.click("#image", offset=(size.width // 2, size.height // 2))
            await settle(pilot)
            x, y = (int(v) for v in text(screen, "#readout").split(":")[0].split()[1::2])
            # One cell is about one source pixel wide and two tall here.
            assert abs(x - cols / 2) <= 1.5 and abs(y - rows / 2) <= 2.5, (lean, x, y)


# ---- issue 11: flow and 80×24 ----------------------------------------------------------------


def notices(app: TuiviewerApp) -> list[str]:
    return [n.message for n in app._notifications]


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_readouts_and_the_main_keys_are_on_screen_and_no_toast_covers_them(
    ct_folder: Path, by_position: list[pydicom.Dataset], size: tuple[int, int]
) -> None:
    ds = by_position[0]
    hu = ds.pixel_array.astype(float) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    app = new_app(ct_folder)
    async with app.run_test(size=size, notifications=True) as pilot:  # toasts are shown
        await open_viewer(pilot)
        await pilot.press("c")
        await settle(pilot)
        # Toasts (bottom right) while the reader reads the values off.
        for k in range(3):
            app.notify(f"A long notification number {k} that takes room on the screen.")
        await pilot.pause()
        shot = screen_lines(app)
        joined = "\n".join(shot)
        wl = f"W {float(ds.WindowWidth):g} L {float(ds.WindowCenter):g}"
        assert wl in joined, joined
        assert f"x 32 y 32: {hu[32, 32]:.0f} HU" in joined, joined
        assert f"slice 1/{SLICES}" in joined, joined
        footer = shot[-1]
        for key in ("esc Back", "? Help", "space Cine", "c Cursor", "m Measure", "t Tags"):
            assert key in footer, footer
        for key in ("b Beside", "k Key image"):
            assert key in footer, footer


async def test_tags_and_side_by_side_keep_patient_id_date_and_series_on_every_pane(
    two_series: Path,
) -> None:
    first = pydicom.dcmread(next((two_series / "fine").iterdir()))
    patient_id = str(first.PatientID)
    date = str(first.StudyDate)
    when = f"{date[:4]}-{date[4:6]}-{date[6:]}"
    app = new_app(two_series)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_beside(pilot)
        await settle(pilot)
        titles = [text(pane, ".pane-title") for pane in (screen.pane, screen.link_pane)]
        joined = "\n".join(screen_lines(app))
        for title in titles:
            assert patient_id in title and when in title, titles
        assert f"#{first.SeriesNumber} CT" in titles[0]
        assert f"#{PRIOR_SERIES_NUMBER} CT" in titles[1]
        assert patient_id in joined and when in joined, joined
        await pilot.press("b", "t")
        await settle(pilot)
        assert not screen.query_one("#info-left").display
        title = text(screen, "#tags-title").splitlines()[1:]
        assert patient_id in title[0] and when in title[0], title
        assert title[1].startswith(f"#{first.SeriesNumber} CT"), title
        joined = "\n".join(screen_lines(app))
        assert all(line in joined for line in title), "the panel's title is on screen"


async def test_k_marks_shows_lists_and_k_again_unmarks_the_key_image(ct_folder: Path) -> None:
    app = new_app(ct_folder)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_viewer(pilot)
        await pilot.press("k")
        await settle(pilot)
        assert any("F9 opens the report" in n for n in notices(app)), notices(app)
        assert not any("W opens" in n for n in notices(app))
        assert "key image" in text(screen, "#overlay-tr")
        await pilot.press("down", "down", "k")
        await settle(pilot)
        assert "key image" in text(screen, "#overlay-tr")
        await pilot.press("down")
        await settle(pilot)
        assert "key image" not in text(screen, "#overlay-tr"), "slice 4 is not marked"
        await pilot.press("l")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, ChooseDialog)
        assert [label.split(" · ")[-1] for label in dialog.items] == [
            f"slice 1/{SLICES}",
            f"slice 3/{SLICES}",
        ]
        await pilot.press("down", "enter")
        await settle(pilot)
        assert app.screen is screen and screen.index == 2
        assert "key image" in text(screen, "#overlay-tr")
        await pilot.press("k")
        await settle(pilot)
        assert any("unmarked (1 left" in n for n in notices(app)), notices(app)
        assert "key image" not in text(screen, "#overlay-tr")
        draft = app.drafts.load(screen.slices[0].record.study_uid)
        assert draft is not None and len(draft.report.key_images) == 1


async def test_a_preset_number_without_a_preset_says_so(ct_folder: Path) -> None:
    app = new_app(ct_folder)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_viewer(pilot)
        before = text(screen, "#overlay-br")
        await pilot.press("9")
        await settle(pilot)
        said = [n for n in notices(app) if n.startswith("No preset 9")]
        assert said and "lung" in said[0], notices(app)
        assert text(screen, "#overlay-br") == before


async def test_the_viewer_says_which_study_is_on_show_for_the_report_key(ct_folder: Path) -> None:
    app = new_app(ct_folder)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_viewer(pilot)
        assert isinstance(screen, ShowsStudy)
        study = screen.study_in_view()
        assert study is not None
        assert study.study_uid == screen.slices[0].record.study_uid
        assert study.path is not None and study.path.parent == ct_folder
