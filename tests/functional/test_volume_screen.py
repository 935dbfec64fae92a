"""The volume screen as a reader drives it: M in the viewer, three panes that follow one crosshair,
measurements of a sphere whose size and HU are known, and the report that carries them.

Keys go in bursts (as over SSH); what is asserted is what the screen shows (its text lines),
what is kept on disk, and the SR that dciodvfy checks.
"""

from __future__ import annotations

import io
import math
import re
import time
from pathlib import Path
from typing import Any

import pydicom
import pytest
from textual import events
from textual.pilot import Pilot
from textual.widgets._toast import Toast

from tests.functional.helpers import burst, settle
from tests.functional.test_viewer import new_app, open_viewer
from tests.integration.test_worklist import wait_for as until
from tests.support import imagegen
from tests.support.screentext import screen_lines, screen_text
from tests.unit.reports.test_sr import assert_valid_sr
from tuiviewer.app import TuiviewerApp
from tuiviewer.commands.report import run_report_new, run_report_show
from tuiviewer.reports.measurements import MeasurementKind, MeasurementStore
from tuiviewer.screens.dialogs.choose import ChooseDialog
from tuiviewer.screens.volume import VolumeScreen
from tuiviewer.services.viewer import layouts as ls

RADIUS = 12.0
SLICES = 40


def write_sphere(folder: Path, **kwargs: object) -> list[pydicom.Dataset]:
    series = imagegen.sphere_series(radius=RADIUS, **kwargs)  # type: ignore[arg-type]
    for n, ds in enumerate(series):
        ds.PatientName, ds.PatientID = "Sphere^Phantom", "SPH1"
        ds.StudyDate, ds.StudyTime, ds.AccessionNumber = "20240102", "101500", "A1"
        ds.ReferringPhysicianName, ds.StudyID, ds.SeriesNumber = "", "1", 3
        ds.PatientBirthDate, ds.PatientSex = "", "O"
        imagegen.save(ds, folder / f"{n:03}.dcm")
    return series


@pytest.fixture(scope="module")
def sphere_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("mpr-sphere")
    write_sphere(folder)
    return folder


async def open_volume(pilot: Pilot[None]) -> VolumeScreen:
    await pilot.press("M")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, VolumeScreen), type(screen)
    for _ in range(100):  # the first render follows the layout
        if len(screen.frames) == 3:
            break
        await pilot.pause(0.02)
        await settle(pilot)
    return screen


def info(app: TuiviewerApp) -> str:
    """The readout line under the panes."""
    return next(line for line in screen_lines(app) if " mm · " in line and "slab" in line)


def notifications(app: TuiviewerApp) -> list[str]:
    return [n.message for n in app._notifications]


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_m_shows_three_planes_with_their_letters_and_readouts(
    sphere_folder: Path, size: tuple[int, int]
) -> None:
    app = new_app(sphere_folder)
    async with app.run_test(size=size) as pilot:
        await open_viewer(pilot)
        screen = await open_volume(pilot)
        lines = screen_lines(app)
        top = lines[0]
        # The viewer was on slice 1 (the feet end): the axial pane starts there, the others
        # through the middle of that slice.
        assert "Axial 1/40 · z -19.5 mm" in top
        assert "Coronal 25/48 · y 0.5 mm" in top
        assert "Sagittal 24/48 · x 0.5 mm" in top
        # Orientation letters at the edges of each pane: axial R L / A P, coronal R L / H F,
        # sagittal A P / H F.
        assert [c for c in lines[1].split()] == ["A", "H", "H"]
        middle = next(line for line in lines if line.startswith("R "))
        assert re.fullmatch(r"R .*L R .*L A .*P", middle), middle
        assert any(line.split()[:1] == ["P"] and line.count("F") >= 2 for line in lines)
        # Reformats say so on their badge; the readout names the active pane, the point and
        # its value, the window and the slab.
        assert sum("MPR" in line for line in lines) == 1
        assert info(app).startswith(" Axial · (0.5, 0.5, -19.5) mm · -1000 HU · W 400 L 40")
        assert "slab thin" in info(app)
        assert all(p.image_view.frames_sent >= 1 for p in screen.panes)
        footer = lines[-1]
        assert "Pane" in footer and "Ruler" in footer
        # Leaving and the list of every key are in the footer at every width, nothing cut.
        assert "esc Back" in footer and "? Help" in footer, footer
        assert not re.search(r" f\d*$", footer.rstrip()), f"an F-key cut at the edge: {footer!r}"


async def test_the_crosshair_moves_every_pane(sphere_folder: Path) -> None:
    app = new_app(sphere_folder)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_viewer(pilot)
        screen = await open_volume(pilot)
        before = {p.pane: p.image_view.frames_sent for p in screen.panes}
        keys = {f.pane: f.key for f in screen.frames.values()}
        await burst(pilot, *["pagedown"] * 20)
        await settle(pilot)
        top = screen_lines(app)[0]
        assert "Axial 21/40 · z 0.5 mm" in top
        assert screen.renders < 21, "a burst of keys was rendered key by key"
        # Every pane shows the new crosshair (its own plane or its lines moved).
        assert all(screen.frames[p].key != keys[p] for p in range(3))
        assert all(p.image_view.frames_sent > before[p.pane] for p in screen.panes)
        for frame in screen.frames.values():
            assert frame.image.at == screen.view.at  # type: ignore[union-attr]
        # Tab: the coronal pane; arrows move the crosshair in it, the sagittal pane follows.
        await burst(pilot, "tab", "right", "right", "right", "up", "up")
        await settle(pilot)
        top = screen_lines(app)[0]
        assert "Sagittal 21/48 · x 3.5 mm" in top
        assert "Axial 23/40 · z 2.5 mm" in top
        assert info(app).startswith(" Coronal · (3.5, 0.5, 2.5) mm · 100 HU")
        # One pane full size, and back.
        await pilot.press("f")
        await settle(pilot)
        assert [p.display for p in screen.panes] == [False, True, False]
        wide = screen.panes[1].pixel_box()
        await pilot.press("f")
        await settle(pilot)
        assert all(p.display for p in screen.panes)
        narrow = screen.panes[1].pixel_box()
        assert wide is not None and narrow is not None and wide[0] > 2 * narrow[0]
        # Oblique: the coronal plane tilted twice by 5° about its horizontal axis.
        await burst(pilot, "t", "t")
        await settle(pilot)
        top = screen_lines(app)[0]
        assert "Coronal ∠+10°/+0° " in top and "Sagittal 21/48 · x 3.5 mm" in top
        assert screen.frames[1].image.plane.name == "oblique"
        await pilot.press("x")
        await settle(pilot)
        assert "Coronal 25/48 · y 0.5 mm" in screen_lines(app)[0]


async def test_a_sphere_measured_in_the_screen_goes_into_the_report(
    sphere_folder: Path, tmp_path: Path
) -> None:
    app = new_app(sphere_folder)
    store = MeasurementStore()
    async with app.run_test(size=(120, 40)) as pilot:
        await open_viewer(pilot)
        screen = await open_volume(pilot)
        await burst(pilot, *["pagedown"] * 20)  # the axial slice through the sphere's middle
        await settle(pilot)
        # Walk left while the readout says the sphere's 100 HU, as a reader does.
        steps = 0
        while "· 100 HU" in info(app):
            await pilot.press("left")
            await settle(pilot)
            steps += 1
            assert steps < 30
        await pilot.press("right", "m")
        await settle(pilot)
        assert "drawing length: arrows, m ends" in info(app)
        steps = 0
        await pilot.press("right")
        await settle(pilot)
        while "· 100 HU" in info(app):
            await pilot.press("right")
            await settle(pilot)
            steps += 1
            assert steps < 40
        await pilot.press("left", "m")
        await settle(pilot)
        # Back to the middle and an ellipse of 5 × 5 voxels inside the sphere.
        await burst(pilot, *["left"] * 11, "e", *["right"] * 5, *["down"] * 5, "e")
        await settle(pilot)
        # An angle: first arm's end, the vertex, the second arm's end (a right angle).
        await burst(pilot, "v", *["left"] * 4, "v", *["down"] * 4, "v")
        await settle(pilot)
        # And a rectangle in the coronal pane (a reformat) across the edge.
        await burst(pilot, "tab", "r", *["right"] * 20, *["down"] * 3, "r")
        await settle(pilot)
        assert "4 measurements (l)" in info(app)
        saved = store.load(screen.study_uid)
        assert [m.kind for m in saved] == [
            MeasurementKind.LENGTH,
            MeasurementKind.ELLIPSE,
            MeasurementKind.ANGLE,
            MeasurementKind.RECTANGLE,
        ]
        ruler, ellipse, angle, rectangle = saved
        assert angle.angle_deg == pytest.approx(90.0) and angle.image is not None
        chord = 2 * math.sqrt(RADIUS**2 - 2 * 0.5**2)
        assert ruler.length_mm is not None and abs(ruler.length_mm + 1 - chord) <= 1.0
        assert ellipse.stats is not None and (ellipse.stats.mean, ellipse.stats.sd) == (100, 0)
        assert ellipse.stats.area_mm2 == pytest.approx(math.pi * 25)
        assert ruler.image is not None and ellipse.image is not None  # acquired axial slice
        assert rectangle.image is None and rectangle.where.startswith("coronal at")
        assert rectangle.stats is not None and rectangle.stats.minimum == -1000
        # Listed, and Esc in the list keeps them all; Enter removes the one chosen.
        await pilot.press("l")
        await settle(pilot)
        assert isinstance(app.screen, ChooseDialog)
        assert "Length 1: length" in screen_text(app)
        await pilot.press("escape")
        await settle(pilot)
        assert len(store.load(screen.study_uid)) == 4
        await pilot.press("l", "end", "enter")
        await settle(pilot)
        kept = [ruler.uid, ellipse.uid, angle.uid]
        assert [m.uid for m in store.load(screen.study_uid)] == kept
    # The report of the study carries them: text and a TID 1500 SR that dciodvfy accepts.
    markdown = tmp_path / "r.md"
    markdown.write_text("## Findings\n\nRound lesion.\n", encoding="utf-8")
    out, stdout, stderr = tmp_path / "report.dcm", io.StringIO(), io.StringIO()
    rc = run_report_new(
        sphere_folder, markdown, out, final=False, reader=None, send=None, stdout=stdout,
        stderr=stderr,
    )  # fmt: skip
    assert rc == 0, stderr.getvalue()
    companion = tmp_path / "report-measurements.dcm"
    dump = assert_valid_sr(companion)
    assert "3 measurements" in stdout.getvalue()
    assert "Angle: 90 degree" in run_show(companion)
    assert f"{ruler.length_mm:g}" in dump and '"100" ([hnsf\'U],UCUM' in dump
    assert "ELLIPSE" in dump
    store.save(screen.study_uid, [])


async def test_esc_returns_to_the_viewer_on_its_slice(sphere_folder: Path) -> None:
    app = new_app(sphere_folder)
    async with app.run_test(size=(100, 30)) as pilot:
        viewer = await open_viewer(pilot)
        await burst(pilot, "down", "down", "down", "down")
        await settle(pilot)
        screen = await open_volume(pilot)
        assert "Axial 5/40" in screen_lines(app)[0]
        await burst(pilot, "pagedown", "pagedown", "tab", "right", "m", "right", "escape")
        await settle(pilot)
        assert app.screen is screen and screen.view is not None and screen.view.drawing is None
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is viewer and viewer.index == 4 and viewer.shown_index == 4
        assert MeasurementStore().load(screen.study_uid) == []  # nothing drawn was kept


async def test_a_series_that_is_not_a_volume_says_why(tmp_path: Path) -> None:
    one = tmp_path / "one"
    one.mkdir()
    write_sphere(one, slices=1)
    app = new_app(one)
    async with app.run_test(size=(100, 30)) as pilot:
        viewer = await open_viewer(pilot)
        await pilot.press("M")
        await settle(pilot)
        assert app.screen is viewer
        assert any("MPR needs a stack of at least 2" in n for n in notifications(app))
    # Slices that cannot be placed (no Pixel Spacing): the screen opens and says why.
    flat = tmp_path / "flat"
    flat.mkdir()
    for n, ds in enumerate(imagegen.sphere_series(slices=4, rows=16, cols=16, radius=4)):
        del ds.PixelSpacing
        imagegen.save(ds, flat / f"{n}.dcm")
    app = new_app(flat)
    async with app.run_test(size=(100, 30)) as pilot:
        viewer = await open_viewer(pilot)
        await pilot.press("M")
        await settle(pilot)
        assert isinstance(app.screen, VolumeScreen)
        text = screen_text(app)
        assert "No MPR for this series:" in text and "Pixel Spacing" in text
        await burst(pilot, "pagedown", "m", "tab", "l", "f")  # nothing to act on, no error
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is viewer


async def test_a_click_puts_the_crosshair_there_and_the_wheel_goes_through_that_pane(
    sphere_folder: Path,
) -> None:
    app = new_app(sphere_folder)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_viewer(pilot)
        screen = await open_volume(pilot)
        view = screen.panes[1].image_view
        width, height = view.content_size.width, view.content_size.height
        cell = (width // 2 + 5, height // 2 - 3)
        where = view.cell_to_pixel(*cell)
        assert where is not None
        await pilot.click("#mpr-image-1", offset=cell)
        await settle(pilot)
        assert screen.view is not None and screen.view.active == 1
        frame = screen.frames[1]
        x, y = frame.image.crosshair
        # On the voxel centre nearest the click (1 mm voxels, 1.2 mm pixels here).
        assert abs(x - where[0]) <= 1.0 and abs(y - where[1] * frame.aspect) <= 1.0
        assert all(f.image.at == screen.view.at for f in screen.frames.values())
        before = screen.view.at
        # The wheel over the sagittal pane: three slices through it (its normal is -x), and it
        # becomes the active pane.
        sagittal = screen.panes[2].image_view
        sagittal.post_message(sagittal.Wheeled(3))
        await settle(pilot)
        assert screen.view.active == 2
        assert screen.view.at == pytest.approx((before[0] - 3, before[1], before[2]))
        assert "Sagittal · (" in info(app)


@pytest.mark.parametrize("modifier", ["control", "meta"])
async def test_ctrl_or_alt_and_the_wheel_zoom_about_the_pointer_and_the_plain_wheel_steps(
    sphere_folder: Path, modifier: str
) -> None:
    app = new_app(sphere_folder)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_viewer(pilot)
        screen = await open_volume(pilot)
        view = screen.panes[1].image_view
        cell = (view.content_size.width // 2 + 6, view.content_size.height // 2 - 4)
        where = view.cell_to_pixel(*cell)
        assert where is not None
        frame = screen.frames[1]
        pointer = (where[0], where[1] * frame.aspect)
        under = frame.image.patient_at(*pointer)
        at = screen.views[0].at
        held = {modifier: True}
        # Two turns up with the modifier held over the coronal pane: zoom in twice, about
        # the pointer; the crosshair stays.
        for _ in range(2):
            await pilot._post_mouse_events(
                [events.MouseScrollUp], "#mpr-image-1", offset=cell, **held
            )
        await settle(pilot)
        assert screen.hanging.active == 1 and screen.hanging.spec.zoom == 2.0
        assert screen.views[0].at == at
        await until(pilot, lambda: screen.frames[1].image.pixel_mm < frame.image.pixel_mm)
        zoomed = screen.frames[1]
        assert zoomed.image.patient_at(*pointer) == pytest.approx(under, abs=1e-6)
        assert "zoom 2×" in screen_text(app)
        # The plain wheel still steps through the slices (coronal: along +y), zoom kept.
        await pilot._post_mouse_events([events.MouseScrollDown], "#mpr-image-1", offset=cell)
        await settle(pilot)
        assert screen.views[0].at != at and screen.hanging.spec.zoom == 2.0


async def test_a_zoomed_pane_follows_the_crosshair_the_arrows_move(sphere_folder: Path) -> None:
    app = new_app(sphere_folder)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_viewer(pilot)
        screen = await open_volume(pilot)
        await burst(pilot, "z", "z", "z", "z", *["right"] * 20)
        await settle(pilot)
        await until(pilot, lambda: not screen._rendering and not screen._dirty)
        spec = screen.hanging.panes[0]
        assert spec.zoom == 4.0 and spec.pan[0] < 0  # the picture moved left, after it
        frame = screen.frames[0]
        x, y = frame.image.crosshair
        height, width = frame.image.pixels.shape[:2]
        assert 0 <= x < width and 0 <= y < height


async def test_a_zoomed_pane_follows_the_crosshair_while_its_renders_lag_behind_the_keys(
    sphere_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same burst on a busy machine: each render takes 150 ms, so the arrows come while
    the frame on screen is still at fit or 2×; the pane still ends with the crosshair in it."""
    render = ls.render_layout

    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.15)
        return render(*args, **kwargs)

    monkeypatch.setattr(ls, "render_layout", slow)
    await test_a_zoomed_pane_follows_the_crosshair_the_arrows_move(sphere_folder)


def run_show(path: Path) -> str:
    """What `tuiviewer report show` prints of an SR."""
    out = io.StringIO()
    assert run_report_show(path, stdout=out, stderr=io.StringIO()) == 0
    return out.getvalue()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_a_notification_in_the_volume_screen_leaves_the_panes_and_readout_in_view(
    sphere_folder: Path, size: tuple[int, int]
) -> None:
    """A retrieve finishing while the reader is in the volume screen says so on the notes
    line only: the panes (a toast over a Sixel pane erases it) and the crosshair readout stay."""
    app = new_app(sphere_folder)
    # run_test shows no toasts unless asked: this test is about them.
    async with app.run_test(size=size, notifications=True) as pilot:
        await open_viewer(pilot)
        screen = await open_volume(pilot)
        before = screen_lines(app)
        readout = info(app)
        for k in range(3):
            app.notify(f"Retrieve {k} done: 120 received of 120.")
        await pilot.pause(0.3)
        lines = screen_lines(app)
        assert any("Retrieve 2 done" in line for line in lines), "the newest one is on screen"
        assert not any("Retrieve 0 done" in line for line in lines), "one at a time"
        assert info(app) == readout, "the crosshair readout is not covered"
        toasts = [t for t in screen.query(Toast) if t.display and t.parent and t.parent.display]
        assert len(toasts) == 1
        keep_clear = [screen.query_one(s).region for s in ("#mpr-panes", "#mpr-info")]
        for region in keep_clear:
            assert not toasts[0].region.overlaps(region), (toasts[0].region, region)
        panes = screen.query_one("#mpr-panes").region
        assert lines[panes.y : panes.bottom] == before[panes.y : panes.bottom]
