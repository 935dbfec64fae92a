"""A reader who rests on a worklist row has the study's instances listed (metadata, no
pixels) so that Enter sends the first C-GET at once."""

from __future__ import annotations

import threading
from pathlib import Path

from tests.functional.test_arriving_study import SLICES, app_on, open_first_row, slow_pacs, text
from tests.integration.test_worklist import wait_for as until
from tests.support.paced_pacs import PacedPacs
from tuiviewer.config.nodes import Node
from tuiviewer.screens.viewer import ViewerScreen
from tuiviewer.widgets.study_opener import StudyOpener

__all__ = ["slow_pacs"]  # the fixture


async def test_a_rest_on_the_row_lists_the_study_and_enter_does_not_list_it_again(
    slow_pacs: tuple[PacedPacs, Node, str, threading.Semaphore], tmp_path: Path
) -> None:
    pacs, node, study, gate = slow_pacs
    app = app_on(node, tmp_path / "store")
    async with app.run_test(size=(120, 40)) as pilot:
        opener = app.screen.query_one(StudyOpener)
        await until(pilot, lambda: study in opener.listed)  # the cursor rests on the row
        assert pacs.image_finds == 1 and pacs.sent == 0  # listed, no pixel moved
        await open_first_row(pilot, app, study)
        await until(pilot, lambda: isinstance(app.screen, ViewerScreen))
        viewer = app.screen
        assert isinstance(viewer, ViewerScreen)
        # The slots are known before any instance came: the list of the rest.
        assert viewer.stack.arriving is not None and viewer.stack.arriving.total == SLICES
        gate.release(1)
        await until(pilot, lambda: f"1 of {SLICES} arrived" in text(app))
        gate.release(SLICES)
        await until(pilot, lambda: app.jobs and app.jobs[0].finished)
        assert app.jobs[0].state == "done", app.jobs[0].error
    assert pacs.image_finds == 1, "Enter listed the study again"
    assert pacs.sent == SLICES
