"""Every series of a study grows while it arrives, not only the one the viewer opened on: the
series count takes a series as its first image lands, and switching to one still arriving
shows what came ("n of N arrived"), growing as the rest lands.

The PACS is the mini PACS sending through a gate (tests/support/paced_pacs.py).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from tests.functional.test_arriving_study import app_on, open_first_row, text
from tests.integration.test_worklist import wait_for as until
from tests.support.paced_pacs import gated_study
from tuiviewer.config.nodes import Node
from tuiviewer.dicom.datagen import write_ct_series
from tuiviewer.screens.viewer import ViewerScreen

SLICES = 12


@pytest.fixture
def two_series(tmp_path: Path) -> Iterator[tuple[Node, str, threading.Semaphore]]:
    study = generate_uid()
    files = [
        *write_ct_series(tmp_path / "a", slices=SLICES, rows=32, cols=32, seed=41, study_uid=study),
        *write_ct_series(tmp_path / "b", slices=SLICES, rows=32, cols=32, seed=42, study_uid=study),
    ]
    with gated_study(tmp_path / "pacs", files, study) as (pacs, node, gate):
        yield node, study, gate


async def test_the_other_series_appears_grows_and_can_be_read_while_it_arrives(
    two_series: tuple[Node, str, threading.Semaphore], tmp_path: Path
) -> None:
    node, study, gate = two_series
    app = app_on(node, tmp_path / "store")
    async with app.run_test(size=(120, 40)) as pilot:
        await open_first_row(pilot, app, study)
        await until(pilot, lambda: isinstance(app.screen, ViewerScreen))
        viewer = app.screen
        assert isinstance(viewer, ViewerScreen)
        # Fifteen instances: the PACS sends both series at once (two associations), so the
        # split between them is its own.
        gate.release(SLICES + 3)
        await until(pilot, lambda: len(app.store.instance_uids(study)) == SLICES + 3)
        await until(pilot, lambda: "series 1/2" in text(app))
        await until(pilot, lambda: sum(map(len, viewer.stacks)) == SLICES + 3)
        assert len(viewer.stacks) == 2
        other = viewer.stacks[1 - viewer.stack_pos]
        came = len(other)
        assert 0 < came < SLICES

        # The other series, still arriving: what came is there, and the rest is awaited.
        await pilot.press("n")
        await until(pilot, lambda: "series 2/2" in text(app))
        await until(pilot, lambda: viewer.stack.arriving is not None)
        now = viewer.stack.arriving.count
        assert now >= came and len(viewer.slices) == SLICES
        await until(pilot, lambda: f"{now} of {SLICES} arrived" in text(app))
        await until(pilot, lambda: viewer.shown_index is not None)

        # It grows in view, then becomes the ordinary stack.
        series = viewer.stack.arriving
        on_disk = SLICES + 3
        while series.count == now:  # one at a time, until one of this series lands
            gate.release(1)
            on_disk += 1
            await until(pilot, lambda n=on_disk: len(app.store.instance_uids(study)) == n)
            await until(pilot, lambda n=on_disk: sum(map(len, viewer.stacks)) == n)
        await until(pilot, lambda: f"{series.count} of {SLICES} arrived" in text(app))
        assert series.count < SLICES and viewer.stack.arriving is series
        gate.release(SLICES)
        await until(pilot, lambda: viewer.stack.arriving is None)
        await until(pilot, lambda: "arrived" not in text(app))
        assert len(viewer.slices) == SLICES and "series 2/2" in text(app)
        # Back to the first: both series whole.
        await pilot.press("p")
        await until(pilot, lambda: "series 1/2" in text(app))
        assert sorted(map(len, viewer.stacks)) == [SLICES, SLICES]
        await until(pilot, lambda: app.jobs and app.jobs[0].finished)
        assert app.jobs[0].state == "done", app.jobs[0].error
