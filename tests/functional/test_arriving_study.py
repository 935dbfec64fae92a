"""Reading a study while it arrives: Enter on a worklist row opens the viewer on the first
image, the stack grows as the PACS sends the rest, a slice not there yet says so and appears
the moment it lands, and a retrieve that stops keeps what came.

The PACS is the mini PACS sending through a gate (tests/support/paced_pacs.py): the test lets
the instances through a few at a time and looks at the screen in between.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom.uid import generate_uid
from textual._xterm_parser import XTermParser

from tests.integration.test_worklist import wait_for as until
from tests.support.paced_pacs import PacedPacs, gated_study
from tests.support.screentext import screen_lines
from tuiviewer.app import TuiviewerApp, make_app
from tuiviewer.config.nodes import Node
from tuiviewer.config.settings import Config
from tuiviewer.dicom.datagen import write_ct_series
from tuiviewer.screens.report import ReportScreen
from tuiviewer.screens.viewer import ViewerScreen
from tuiviewer.screens.worklist import WorklistScreen
from tuiviewer.store import LocalStore

SLICES = 12


def text(app: TuiviewerApp) -> str:
    return "\n".join(screen_lines(app))


@pytest.fixture
def slow_pacs(tmp_path: Path) -> Iterator[tuple[PacedPacs, Node, str, threading.Semaphore]]:
    study = generate_uid()
    files = write_ct_series(
        tmp_path / "ct", slices=SLICES, rows=32, cols=32, seed=23, study_uid=study
    )
    with gated_study(tmp_path / "pacs", files, study) as (pacs, node, gate):
        yield pacs, node, study, gate


def app_on(node: Node, store: Path) -> TuiviewerApp:
    return make_app(
        Config(), [], nodes={node.name: node}, default_node=node.name, store=LocalStore(store)
    )


async def open_first_row(pilot: Any, app: TuiviewerApp, study: str) -> None:
    def listed() -> bool:
        screen = app.screen
        row = screen.selected_study() if isinstance(screen, WorklistScreen) else None
        return row is not None and row.uid == study

    await until(pilot, listed)
    await pilot.press("enter")


async def viewer_of_first_row(
    pilot: Any, app: TuiviewerApp, study: str, gate: threading.Semaphore, let_go: int
) -> ViewerScreen:
    """Enter on the study's row, the PACS lets ``let_go`` instances go: the viewer it opens."""
    await open_first_row(pilot, app, study)
    gate.release(let_go)
    await until(pilot, lambda: isinstance(app.screen, ViewerScreen))
    viewer = app.screen
    assert isinstance(viewer, ViewerScreen)
    return viewer


async def test_enter_opens_on_the_first_slices_and_the_stack_grows(
    slow_pacs: tuple[PacedPacs, Node, str, threading.Semaphore], tmp_path: Path
) -> None:
    pacs, node, study, gate = slow_pacs
    app = app_on(node, tmp_path / "store")
    async with app.run_test(size=(120, 40)) as pilot:
        viewer = await viewer_of_first_row(pilot, app, study, gate, 2)
        # Opened with almost nothing on disk: the PACS has let two instances go.
        assert len(app.store.instance_uids(study)) <= 2
        await until(pilot, lambda: viewer.shown_index is not None)
        await until(pilot, lambda: f"of {SLICES} arrived" in text(app))
        assert f"slice 1/{SLICES}" in text(app)

        # The last slice has not come: the reader is told, and nothing is drawn.
        await pilot.press("end")
        await until(pilot, lambda: f"slice {SLICES} of {SLICES} not yet arrived" in text(app))
        assert viewer.index == SLICES - 1 and viewer.pane.shown is None

        # Half the series comes: the stack grows, the reader still waits on the last slice.
        gate.release(4)
        await until(pilot, lambda: f"6 of {SLICES} arrived" in text(app))
        assert viewer.pane.shown is None

        # The rest lands: the last slice is shown where the reader waited, and the
        # readout is the ordinary one.
        gate.release(SLICES)
        await until(pilot, lambda: viewer.stack.arriving is None)
        await until(pilot, lambda: viewer.shown_index == SLICES - 1)
        await until(pilot, lambda: "arrived" not in text(app))  # its texts follow the frame
        assert f"slice {SLICES}/{SLICES}" in text(app)
        # Slices are in position order: the first is the lowest, as the finished stack.
        locations = viewer.stack.geometry.locations
        assert list(locations) == sorted(locations)  # type: ignore[type-var]
        await until(pilot, lambda: app.jobs and app.jobs[0].finished)
        assert app.jobs[0].state == "done", app.jobs[0].error
    assert len(LocalStore(tmp_path / "store").instance_uids(study)) == SLICES
    assert pacs.sent == SLICES


async def test_esc_and_w_typed_in_one_burst_leave_the_viewer_and_open_the_report(
    slow_pacs: tuple[PacedPacs, Node, str, threading.Semaphore], tmp_path: Path
) -> None:
    """The terminal's bytes "Esc W" in one read (a packet over SSH, or read late on a busy
    machine) reach Textual's parser as alt+shift+w: the Esc must still leave the viewer of a
    study arriving, and W then write the report from the worklist, not set the level."""
    _pacs, node, study, gate = slow_pacs
    app = app_on(node, tmp_path / "store")
    async with app.run_test(size=(120, 40)) as pilot:
        viewer = await viewer_of_first_row(pilot, app, study, gate, 2)
        await until(pilot, lambda: viewer.shown_index is not None)
        view = viewer.view
        parser = XTermParser()
        for event in [*parser.feed("\x1bW"), *parser.feed("")]:  # the burst, then no more
            app.post_message(event)
        await until(pilot, lambda: isinstance(app.screen, ReportScreen))
        assert viewer not in app.screen_stack
        assert viewer.view == view  # no "level ×10"
        gate.release(SLICES)


async def test_garbage_collection_waits_for_the_first_image_and_no_longer(
    slow_pacs: tuple[PacedPacs, Node, str, threading.Semaphore], tmp_path: Path
) -> None:
    """No full collection (it pauses every thread, the retrieve's too) while the viewer opens;
    the collector runs again once the first image is on screen, or when the viewer closes
    before any came."""
    _pacs, node, study, gate = slow_pacs
    app = app_on(node, tmp_path / "store")
    assert gc.isenabled()
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await open_first_row(pilot, app, study)
            await until(pilot, lambda: isinstance(app.screen, ViewerScreen))
            assert not gc.isenabled()
            await pilot.press("escape")  # nothing came: back on the worklist
            await until(pilot, lambda: isinstance(app.screen, WorklistScreen))
            assert gc.isenabled()
            await pilot.press("enter")  # the retrieve still runs: the viewer again
            await until(pilot, lambda: isinstance(app.screen, ViewerScreen))
            viewer = app.screen
            assert isinstance(viewer, ViewerScreen) and not gc.isenabled()
            gate.release(2)
            await until(pilot, lambda: viewer.shown_index is not None)
            await until(pilot, gc.isenabled)
            gate.release(SLICES)
    finally:
        gc.enable()


async def test_a_cancelled_retrieve_keeps_what_came_and_the_viewer_says_so(
    slow_pacs: tuple[PacedPacs, Node, str, threading.Semaphore], tmp_path: Path
) -> None:
    _pacs, node, study, gate = slow_pacs
    app = app_on(node, tmp_path / "store")
    async with app.run_test(size=(120, 40)) as pilot:
        viewer = await viewer_of_first_row(pilot, app, study, gate, 3)
        await until(pilot, lambda: f"3 of {SLICES} arrived" in text(app))
        await pilot.press("end")  # waiting on a slice that will not come
        (job,) = app.jobs
        job.cancel.set()
        gate.release(1)  # the PACS sends one more, then sees the C-CANCEL
        await until(pilot, lambda: job.finished)
        await until(pilot, lambda: viewer.stack.arriving is None)
        kept = len(app.store.instance_uids(study))
        assert 3 <= kept < SLICES
        # The viewer holds what arrived, on the arrived slice nearest the one asked for.
        assert len(viewer.slices) == kept
        await until(pilot, lambda: viewer.shown_index == kept - 1)
        said = f"{kept} of {SLICES} slices of this series arrived"
        await until(pilot, lambda: any(said in n.message for n in app._notifications))
        assert job.state == "cancelled"
        assert f"slice {kept}/{kept}" in text(app) and "arrived" not in viewer._slice_text()


async def test_enter_on_a_query_result_opens_the_viewer_while_the_study_arrives(
    slow_pacs: tuple[PacedPacs, Node, str, threading.Semaphore], tmp_path: Path
) -> None:
    """The PACS query screen (F2) reads a study the way the worklist does."""
    from tuiviewer.screens.query import QueryScreen

    _pacs, node, study, gate = slow_pacs
    app = app_on(node, tmp_path / "store")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f2")
        await until(pilot, lambda: isinstance(app.screen, QueryScreen))
        screen = app.screen
        assert isinstance(screen, QueryScreen)
        await pilot.press("ctrl+s")

        def found() -> bool:
            row = screen.selected_study()
            return row is not None and row.uid == study

        await until(pilot, found)
        screen.studies.focus()
        await pilot.press("enter")
        gate.release(2)
        await until(pilot, lambda: isinstance(app.screen, ViewerScreen))
        viewer = app.screen
        assert isinstance(viewer, ViewerScreen)
        assert len(app.store.instance_uids(study)) <= 2, "opened before the series was in"
        await until(pilot, lambda: f"of {SLICES} arrived" in text(app))
        gate.release(SLICES)
        await until(pilot, lambda: viewer.stack.arriving is None)
        assert f"slice 1/{SLICES}" in text(app)
