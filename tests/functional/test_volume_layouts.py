"""Layouts in the volume screen as a reader drives them: 1×2 of the study and its prior with
scrolling linked by patient position, a series of another frame of reference that says it is not
linked, W/L per pane, zoom and pan, a hanging rule from the config, and the memory budget shared
by two volumes.

The study in view is a generated sphere of 40 axial slices 1 mm apart; its prior (same patient,
same frame of reference) has 20 slices 2 mm apart, so "the nearest position" is checkable from
the z each pane reads out. Keys go in bursts, as over SSH.
"""

from __future__ import annotations

import re
from pathlib import Path

import pydicom
import pytest
from textual.pilot import Pilot

from tests.functional.helpers import burst, settle
from tests.functional.test_viewer import open_viewer
from tests.support.screentext import screen_lines
from tests.unit.services.test_layouts import write_series
from tuiviewer.app import TuiviewerApp, make_app
from tuiviewer.config.hanging import HangingRule, PaneRule
from tuiviewer.config.settings import Config
from tuiviewer.graphics.probe import GraphicsMode
from tuiviewer.screens.dialogs.choose import ChooseDialog
from tuiviewer.screens.volume import VolumeScreen

FRAME = pydicom.uid.generate_uid()


@pytest.fixture(scope="module")
def two_studies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("layouts")
    now, before = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
    # Numbered so that the study's first series, the one `v` opens, is the 1 mm thorax (the
    # tree lists series by number, then description: unnumbered, the scout would be first).
    write_series(root / "a-now", study=now, date="20240102", description="thorax 1mm",
                 frame=FRAME, slices=40, spacing=1.0, number=1)  # fmt: skip
    write_series(root / "a-now-scout", study=now, date="20240102", description="scout",
                 frame="1.2.3.4", slices=10, spacing=4.0, number=2)  # fmt: skip
    write_series(root / "b-before", study=before, date="20230102", description="thorax 2mm",
                 frame=FRAME, slices=20, spacing=2.0, number=1)  # fmt: skip
    return root


def new_app(folder: Path, config: Config | None = None) -> TuiviewerApp:
    return make_app(config or Config(), [folder], graphics=GraphicsMode.HALFCELL)


async def open_volume(pilot: Pilot[None], panes: int = 3) -> VolumeScreen:
    viewer = await open_viewer(pilot)
    assert viewer.slices[0].record.study_date == "20240102", "the viewer opened the prior"
    assert viewer.slices[0].record.series_description == "thorax 1mm", "not the study's thorax"
    await pilot.press("M")
    screen = pilot.app.screen
    assert isinstance(screen, VolumeScreen), type(screen)
    await wait_frames(pilot, screen, panes)
    return screen


async def wait_frames(pilot: Pilot[None], screen: VolumeScreen, count: int) -> None:
    for _ in range(200):
        await settle(pilot)
        wanted = [s for s in screen.hanging.sources() if s not in screen.refused]
        if len(screen.frames) == count and all(s in screen.volumes for s in wanted):
            if not screen._rendering:
                return
        await pilot.pause(0.02)
    raise AssertionError(f"{len(screen.frames)} panes drawn, not {count}")


def titles(app: TuiviewerApp) -> list[str]:
    """The pane titles on screen, top row then bottom row, left to right."""
    found = []
    for line in screen_lines(app):
        found += re.findall(r"(?:Axial|Coronal|Sagittal) \d+/\d+ · [xyz] -?\d+\.\d mm", line)
    return found


def info(app: TuiviewerApp) -> str:
    return next(line for line in screen_lines(app) if " mm · " in line and "slab" in line)


def notes(app: TuiviewerApp) -> str:
    return screen_lines(app)[-2]


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_current_and_prior_side_by_side_scroll_linked_by_position(
    two_studies: Path, size: tuple[int, int]
) -> None:
    app = new_app(two_studies)
    async with app.run_test(size=size) as pilot:
        screen = await open_volume(pilot)
        await burst(pilot, "g", "g")  # MPR → 1×1 → 1×2: the prior beside the study
        await wait_frames(pilot, screen, 2)
        assert titles(app) == ["Axial 1/40 · z -19.5 mm", "Axial 1/20 · z -19.0 mm"]
        assert "1×2" in notes(app)
        assert any("prior" in line for line in screen_lines(app)[-6:]), "no prior badge"
        assert "linked" in info(app)
        # Five slices on: the prior goes to its slice nearest z -14.5 (2 mm apart: -15).
        await burst(pilot, *["pagedown"] * 5)
        await wait_frames(pilot, screen, 2)
        assert titles(app) == ["Axial 6/40 · z -14.5 mm", "Axial 3/20 · z -15.0 mm"]
        # Unlinked, the prior stays; linked again, it catches up at the next step.
        await burst(pilot, "u", *["pagedown"] * 4)
        await wait_frames(pilot, screen, 2)
        assert titles(app) == ["Axial 10/40 · z -10.5 mm", "Axial 3/20 · z -15.0 mm"]
        assert "unlinked" in info(app)
        await burst(pilot, "u", "pagedown")
        await wait_frames(pilot, screen, 2)
        assert titles(app) == ["Axial 11/40 · z -9.5 mm", "Axial 6/20 · z -9.0 mm"]
        # Stepping the prior's pane moves the study's the same way.
        await burst(pilot, "tab", "pageup", "pageup")
        await wait_frames(pilot, screen, 2)
        assert titles(app) == ["Axial 7/40 · z -13.5 mm", "Axial 4/20 · z -13.0 mm"]
        assert info(app).startswith(" Axial (prior) · ")


async def test_a_pane_picks_its_series_and_plane_and_says_when_it_is_not_linked(
    two_studies: Path,
) -> None:
    app = new_app(two_studies)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_volume(pilot)
        await burst(pilot, "g", "g", "tab", "o")  # 1×2, the prior's pane on its coronal
        await wait_frames(pilot, screen, 2)
        assert titles(app)[1].startswith("Coronal ")
        # The chooser: Esc leaves the pane as it was.
        await burst(pilot, "c")
        await settle(pilot)
        assert isinstance(app.screen, ChooseDialog)
        await burst(pilot, "down", "down", "escape")
        await settle(pilot)
        assert app.screen is screen and screen.hanging.panes[1].source == 2
        # Choose the scout (another frame of reference), axial: it is not linked, and says so.
        await burst(pilot, "c")
        await settle(pilot)
        labels = app.screen.items  # type: ignore[attr-defined]
        target = next(n for n, t in enumerate(labels) if t.startswith("Axial") and "scout" in t)
        await burst(pilot, *["down"] * target, "enter")
        await wait_frames(pilot, screen, 2)
        assert screen.hanging.panes[1].source == 1 and screen.hanging.panes[1].plane == 0
        lines = screen_lines(app)
        assert any("not linked: other frame of reference" in line for line in lines), lines
        before = titles(app)[1]
        await burst(pilot, "shift+tab", *["pagedown"] * 3)
        await wait_frames(pilot, screen, 2)
        assert titles(app)[0] == "Axial 4/40 · z -16.5 mm"
        assert titles(app)[1] == before  # another frame of reference: left where it was
        # n cycles the series of the active pane: this study's other series, then the prior.
        await burst(pilot, "n")
        await wait_frames(pilot, screen, 2)
        assert screen.hanging.panes[0].source == 1


async def test_window_per_pane_zoom_and_pan(two_studies: Path) -> None:
    app = new_app(two_studies)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_volume(pilot)
        await burst(pilot, "g", "g", "4")  # lung on both (shared)
        await wait_frames(pilot, screen, 2)
        assert "W 1500 L -600 lung" in info(app)
        await burst(pilot, "P", "tab", "8")  # per pane: bone on the prior's only
        await wait_frames(pilot, screen, 2)
        assert "W 1800 L 400 bone" in info(app)
        assert "W/L per pane" in notes(app)
        await burst(pilot, "shift+tab")
        await settle(pilot)
        assert "W 1500 L -600 lung" in info(app)
        assert screen.frames[1].image.window.width == 1800
        # Zoom: the badge says it, the pixels are half the size, the pan stops at the edge.
        fit = screen.frames[0].image.pixel_mm
        right = screen.frames[0].image.patient_at(screen.frames[0].image.pixels.shape[1] - 1, 0)[0]
        await burst(pilot, "z", "z")
        await wait_frames(pilot, screen, 2)
        assert any("zoom 2×" in line for line in screen_lines(app))
        assert screen.frames[0].image.pixel_mm == pytest.approx(fit / 2)
        width = screen.frames[0].image.pixels.shape[1]
        await burst(pilot, *["L"] * 30)
        await wait_frames(pilot, screen, 2)
        assert screen.hanging.panes[0].pan == (-width / 2, 0.0)
        # Panned as far as it goes, the image's right edge is on the pane's right edge.
        edge = screen.frames[0].image.patient_at(width - 1, 0)[0]
        assert edge == pytest.approx(right, abs=fit / 2)
        await burst(pilot, "equals_sign")
        await wait_frames(pilot, screen, 2)
        assert screen.hanging.panes[0].zoom == 1.0 and screen.hanging.panes[0].pan == (0, 0)
        assert not any("zoom 2×" in line for line in screen_lines(app))


CHEST = HangingRule(
    "CT chest",
    modality="CT",
    description="thorax",
    layout="1x2",
    panes=(PaneRule(plane="axial", preset="lung"), PaneRule(plane="coronal", preset="mediastinum")),
)
FOLLOW_UP = HangingRule(
    "Follow-up", layout="1x2", panes=(PaneRule(), PaneRule(study="prior"))
)  # fmt: skip


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_a_hanging_rule_lays_the_study_out_on_open(
    two_studies: Path, size: tuple[int, int]
) -> None:
    config = Config(hanging=(HangingRule("MR head", modality="MR"), CHEST))
    app = new_app(two_studies, config)
    async with app.run_test(size=size) as pilot:
        screen = await open_volume(pilot, panes=2)
        assert screen.hanging.rule == "CT chest"
        assert notes(app).startswith(" 1×2 · hung by 'CT chest' · W/L per pane")
        assert titles(app)[0].startswith("Axial 1/40") and titles(app)[1].startswith("Coronal")
        assert "W 1500 L -600 lung" in info(app)
        await burst(pilot, "tab")
        await settle(pilot)
        assert "W 350 L 50 mediastinum" in info(app)
        assert not app._notifications  # nothing over the readout: the notes line says it


async def test_current_and_prior_by_rule_and_a_second_volume_within_the_budget(
    two_studies: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 48×48×40 int16 is 184,320 bytes, the prior (48×48×20) 92,160. With 250,000 for both,
    # the study keeps its resolution and the prior gets what is left (65,680): averaged 2×2,
    # and its pane says so. With 190,000 in all and the study read in full before the prior
    # is asked for (no rule), what is left is too little: the prior is refused and says why.
    monkeypatch.setattr(VolumeScreen, "BUDGET_BYTES", 250_000)
    app = new_app(two_studies, Config(hanging=(FOLLOW_UP,)))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_volume(pilot, panes=2)
        assert screen.volumes[0].downsample == 1 and screen.volumes[2].downsample == 2
        assert sum(v.data.nbytes for v in screen.volumes.values()) <= 250_000
        assert titles(app) == ["Axial 1/40 · z -19.5 mm", "Axial 1/20 · z -19.0 mm"]
        assert screen.panes[1].badge == "prior · ↓2.0× memory", screen.panes[1].badge
        assert "volume averaged" not in notes(app)  # the study in view is not
        await burst(pilot, "tab")
        await settle(pilot)
        assert "volume averaged 2×2 in-plane to fit the memory budget" in notes(app)
    monkeypatch.setattr(VolumeScreen, "BUDGET_BYTES", 190_000)
    app = new_app(two_studies)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_volume(pilot)
        await burst(pilot, "g", "g")
        await wait_frames(pilot, screen, 1)
        lines = screen_lines(app)
        assert any("Axial · not read: the 1 volume on screen uses" in line for line in lines)
        assert 2 in screen.refused and 2 not in screen.volumes


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_two_by_two_and_one_pane_full_size(two_studies: Path, size: tuple[int, int]) -> None:
    app = new_app(two_studies)
    async with app.run_test(size=size) as pilot:
        screen = await open_volume(pilot)
        await burst(pilot, "g", "g", "g")  # 2×2: two planes of the study and of its prior
        await wait_frames(pilot, screen, 4)
        shown = titles(app)
        assert [t.split(" · ")[0] for t in shown] == [
            "Axial 1/40", "Coronal 25/48", "Axial 1/20", "Coronal 25/48",
        ]  # fmt: skip
        assert "2×2" in notes(app)
        # Full size, then Tab: the next pane alone, and back to the four.
        await burst(pilot, "f", "tab")
        await wait_frames(pilot, screen, 4)
        assert [p.pane for p in screen.panes if p.display] == [1]
        assert [t.split(" · ")[0] for t in titles(app)] == ["Coronal 25/48"]
        await burst(pilot, "f")
        await settle(pilot)
        assert len(titles(app)) == 4
        # G chooses a layout; Esc leaves it as it is, Enter on MPR gives the three planes.
        await burst(pilot, "G", "escape")
        await settle(pilot)
        assert screen.hanging.grid.value == "2x2"
        await burst(pilot, "G", "enter")
        await wait_frames(pilot, screen, 3)
        assert [t.split(" · ")[0] for t in titles(app)] == [
            "Axial 1/40", "Coronal 25/48", "Sagittal 24/48",
        ]  # fmt: skip
