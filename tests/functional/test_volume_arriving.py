"""``M`` on a series still arriving: the volume screen shows what has landed (the notes say how
much), the planes fill in as the rest lands while the reader's crosshair and window stay put,
and the finished volume is the one a fresh ``M`` builds.

The PACS is the mini PACS sending through a gate (tests/support/paced_pacs.py): the test lets
the instances through a few at a time and looks at the screen in between.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from textual.pilot import Pilot

from tests.functional import test_arriving_series, test_arriving_study
from tests.functional.helpers import burst
from tests.functional.test_arriving_study import SLICES, app_on, open_first_row, text
from tests.integration.test_worklist import wait_for as until
from tests.support.paced_pacs import PacedPacs
from tuiviewer.app import TuiviewerApp
from tuiviewer.config.nodes import Node
from tuiviewer.render.mpr import Plane
from tuiviewer.render.volume import Volume, load_volume
from tuiviewer.screens.viewer import ViewerScreen
from tuiviewer.screens.volume import VolumeScreen
from tuiviewer.services.viewer import volume_view as vv

slow_pacs = test_arriving_study.slow_pacs
"""The mini PACS sending a CT of SLICES slices through a gate (a fixture)."""
SPACING = 2.5
"""write_ct_series's slices are this far apart (mm)."""


def in_order(volume: Volume) -> np.ndarray:
    """The stored values slice by slice along the normal (not in the order they came)."""
    assert volume.complete
    return np.asarray(volume.data[volume.slots])


def coronal_filled(screen: VolumeScreen) -> int:
    """Pixels of the coronal pane that show data (a slice not there yet is a gap: NaN)."""
    pane = next(i for i, spec in enumerate(screen.hanging.panes) if spec.plane == 1)
    frame = screen.frames.get(pane)
    return 0 if frame is None else int(np.count_nonzero(np.isfinite(frame.image.values)))


async def arriving_viewer(
    pilot: Pilot[None], app: TuiviewerApp, study: str, gate: threading.Semaphore, count: int
) -> ViewerScreen:
    """Enter on the study, ``count`` instances let through: the viewer on them, arriving."""
    await open_first_row(pilot, app, study)
    gate.release(count)
    await until(pilot, lambda: isinstance(app.screen, ViewerScreen))
    viewer = app.screen
    assert isinstance(viewer, ViewerScreen)
    await until(pilot, lambda: f"{count} of {SLICES} arrived" in text(app))
    assert viewer.stack.arriving is not None
    return viewer


def volume_screen(app: TuiviewerApp) -> VolumeScreen:
    screen = app.screen
    assert isinstance(screen, VolumeScreen)
    return screen


async def test_m_while_the_series_arrives_grows_the_volume_to_the_fresh_one(
    slow_pacs: tuple[PacedPacs, Node, str, threading.Semaphore], tmp_path: Path
) -> None:
    _pacs, node, study, gate = slow_pacs
    app = app_on(node, tmp_path / "store")
    async with app.run_test(size=(120, 40)) as pilot:
        viewer = await arriving_viewer(pilot, app, study, gate, 4)
        series = viewer.stack.arriving

        await pilot.press("M")
        await until(pilot, lambda: isinstance(app.screen, VolumeScreen))
        screen = volume_screen(app)
        await until(pilot, lambda: 0 in screen.volumes and len(screen.frames) == 3)
        await until(pilot, lambda: f"4 of {SLICES} arrived" in text(app))
        first = screen.volumes[0]
        assert first.geometry.slices == 4 and screen.arriving is series
        # A burst of keys: the crosshair steps through and across, the level goes up.
        start = screen.views[0].at
        await burst(pilot, "pageup", "right", "right", "down", "down", "W", "w")
        await until(pilot, lambda: not screen._rendering and not screen._dirty)
        view, hanging = screen.views[0], screen.hanging
        assert view.at != start and hanging.spec.window is not None
        filled = coronal_filled(screen)

        # More lands: the planes fill in, the reader's crosshair and window stay.
        gate.release(4)
        await until(pilot, lambda: len(app.store.instance_uids(study)) == 8)
        await until(pilot, lambda: screen.volumes[0].geometry.slices == 8)
        await until(pilot, lambda: f"8 of {SLICES} arrived" in text(app))
        await until(pilot, lambda: coronal_filled(screen) > filled)
        assert screen.views[0] == view and screen.hanging == hanging
        grown = screen.volumes[0]
        assert grown.data is first.data  # one store, sized for the whole series
        assert grown.data.nbytes <= screen.budget_bytes
        # The slice under the crosshair is what the files hold, where they are.
        k = vv.pane_slice(grown, Plane.standard(vv.PANES[0]), view.at)
        assert grown.slots[k] >= 0

        # The rest lands while keys keep coming: the series complete, the volume is the
        # one a fresh M builds.
        gate.release(SLICES)
        for _ in range(3):
            await burst(pilot, "up", "left")
        await until(pilot, lambda: screen.arriving is None)
        await until(pilot, lambda: "arrived" not in text(app))
        final = screen.volumes[0]
        assert final.complete and final.geometry.slices == SLICES
        assert final.geometry.gaps == ()
        paths = sorted(app.store.series_dir(study, series.series_uid).glob("*.dcm"))
        fresh, _ = load_volume(paths, budget_bytes=screen.budget_bytes)
        assert final.geometry == fresh.geometry
        assert np.array_equal(in_order(final), in_order(fresh))
        assert np.array_equal(final.slope, fresh.slope)
        assert np.array_equal(final.intercept, fresh.intercept)
        assert final.downsample == fresh.downsample

        # And a fresh M on the settled viewer builds that same volume.
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is viewer)
        await until(pilot, lambda: viewer.stack.arriving is None)
        await pilot.press("M")
        await until(pilot, lambda: isinstance(app.screen, VolumeScreen))
        again = volume_screen(app)
        assert again is not screen
        assert again.arriving is None
        await until(pilot, lambda: 0 in again.volumes)
        assert again.volumes[0].geometry == final.geometry
        assert np.array_equal(in_order(again.volumes[0]), in_order(final))
        await until(pilot, lambda: app.jobs and app.jobs[0].finished)
        assert app.jobs[0].state == "done", app.jobs[0].error


async def test_m_on_the_first_slice_waits_for_a_second_then_shows_the_volume(
    slow_pacs: tuple[PacedPacs, Node, str, threading.Semaphore], tmp_path: Path
) -> None:
    _pacs, node, study, gate = slow_pacs
    app = app_on(node, tmp_path / "store")
    async with app.run_test(size=(120, 40)) as pilot:
        await arriving_viewer(pilot, app, study, gate, 1)
        # One slice is no volume yet, but the series is coming: M waits instead of refusing.
        await burst(pilot, "M", "right", "right")
        await until(pilot, lambda: isinstance(app.screen, VolumeScreen))
        screen = volume_screen(app)
        await until(pilot, lambda: "Waiting for the slices of the volume" in text(app))
        assert f"1 of {SLICES} arrived" in text(app) and not screen.volumes
        gate.release(2)
        await until(pilot, lambda: 0 in screen.volumes and len(screen.frames) == 3)
        await until(pilot, lambda: f"3 of {SLICES} arrived" in text(app))
        partial = screen.volumes[0].geometry
        assert partial.slices == 3
        # Slices that came far apart are a gap the planes show empty, never interpolated
        # across: the spacing is the series' own (from the slots), not the median of three.
        assert partial.slice_spacing == pytest.approx(SPACING)
        span = round((partial.offsets[-1] - partial.offsets[0]) / SPACING) + 1
        assert partial.slices + sum(g.missing for g in partial.gaps) == span
        assert "3 images" in screen.sources[0].label
        gate.release(SLICES)
        await until(pilot, lambda: screen.arriving is None)
        assert screen.volumes[0].complete and screen.volumes[0].geometry.slices == SLICES
        assert f"{SLICES} images" in screen.sources[0].label
        await until(pilot, lambda: app.jobs and app.jobs[0].finished)


two_series = test_arriving_series.two_series
"""The gated PACS sending a study of two CT series of SLICES slices each (a fixture)."""


async def test_the_other_series_in_a_layout_pane_grows_while_it_arrives(
    two_series: tuple[Node, str, threading.Semaphore], tmp_path: Path
) -> None:
    """1×2 shows the study's other series beside the one in view: that pane's volume grows
    as its instances land too, to the volume a fresh read of its files builds."""
    node, study, gate = two_series
    app = app_on(node, tmp_path / "store")
    async with app.run_test(size=(120, 40)) as pilot:
        await open_first_row(pilot, app, study)
        await until(pilot, lambda: isinstance(app.screen, ViewerScreen))
        viewer = app.screen
        assert isinstance(viewer, ViewerScreen)
        gate.release(SLICES + 3)
        on_disk = SLICES + 3
        await until(pilot, lambda: len(app.store.instance_uids(study)) == on_disk)
        await until(pilot, lambda: len(viewer.stacks) == 2)
        await until(pilot, lambda: sum(map(len, viewer.stacks)) == on_disk)
        while len(viewer.stacks[1 - viewer.stack_pos]) < 2:  # a volume needs two slices
            gate.release(1)
            on_disk += 1
            await until(pilot, lambda n=on_disk: sum(map(len, viewer.stacks)) == n)
        other = viewer.stacks[1 - viewer.stack_pos]
        came, uid = len(other), other[0].series_uid
        assert came < SLICES

        await pilot.press("M")
        await until(pilot, lambda: isinstance(app.screen, VolumeScreen))
        screen = volume_screen(app)
        await until(pilot, lambda: 0 in screen.volumes)
        await burst(pilot, "g", "g")  # MPR → 1×1 → 1×2: the other series beside
        await until(pilot, lambda: len(screen.hanging.panes) == 2)
        source = screen.hanging.panes[1].source
        assert screen.sources[source].first.series_uid == uid
        await until(pilot, lambda: source in screen.volumes and 1 in screen.frames)
        first = screen.volumes[source]
        assert source in screen.growth and first.geometry.slices == came

        gate.release(2 * SLICES)
        await until(pilot, lambda: source not in screen.growth, timeout=60)
        final = screen.volumes[source]
        assert final.complete and final.geometry.slices == SLICES
        assert final.data is first.data  # one store, sized for the whole series
        assert final.data.nbytes <= screen.budget_bytes
        paths = sorted(app.store.series_dir(study, uid).glob("*.dcm"))
        fresh, _ = load_volume(paths, budget_bytes=screen.reserved[source])
        assert final.geometry == fresh.geometry
        assert np.array_equal(in_order(final), in_order(fresh))
        # The pane shows the grown volume: every pixel of its plane has data.
        await until(pilot, lambda: not screen._rendering and not screen._dirty)
        await until(
            pilot,
            lambda: (
                screen.frames[1].image.key[0] == id(final.data)
                and screen.frames[1].image.key[1] == final.loaded
            ),
        )
        await until(pilot, lambda: "arrived" not in text(app))
        await until(pilot, lambda: app.jobs and app.jobs[0].finished)
