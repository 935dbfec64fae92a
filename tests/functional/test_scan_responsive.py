"""A folder of 2,000 files: partial results show and keys work while the scan is still running."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual import events
from textual.worker import WorkerState

from tests.functional.helpers import new_app, settle, static_text
from tuiviewer.dicom.datagen import write_many
from tuiviewer.screens.browser import BrowserScreen
from tuiviewer.widgets.study_tree import StudyTree

FILES = 2000


@pytest.fixture(scope="module")
def big_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("big")
    write_many(folder, count=FILES, studies=4, seed=7)
    return folder


async def test_tree_fills_and_answers_keys_while_scanning(big_folder: Path) -> None:
    app = new_app(big_folder)
    seen_while_running: list[int] = []
    cursor_moves: list[tuple[int, int]] = []

    async with app.run_test(size=(120, 40)) as pilot:
        screen: BrowserScreen | None = None
        # Wait for the first batch, then act while the scan worker is still running.
        for _ in range(2000):
            await pilot.pause(0.005)
            screen = app.screen if isinstance(app.screen, BrowserScreen) else None
            if screen is not None and len(screen.index) > 0:
                break
        assert screen is not None and len(screen.index) > 0, "no partial result arrived"
        scan_workers = [w for w in app.workers if w.group == "scan"]
        assert scan_workers and scan_workers[0].state == WorkerState.RUNNING, (
            "the scan finished before the first partial result was shown"
        )
        seen_while_running.append(len(screen.index))
        tree = screen.query_one(StudyTree)
        tree.focus()
        before = tree.cursor_line
        # Deliver the key as the terminal driver does (pilot.press would wait for the app to
        # be idle, which it is not until the scan ends) and watch the cursor.
        app.post_message(events.Key("down", None))
        for _ in range(2000):
            if tree.cursor_line != before:
                break
            await asyncio.sleep(0.001)
        cursor_moves.append((before, tree.cursor_line))
        still_running = scan_workers[0].state == WorkerState.RUNNING
        await settle(pilot)
        assert len(screen.index) == FILES
        assert f"{FILES} DICOM" in static_text(screen, "#scan-status")

    assert seen_while_running[0] < FILES
    assert still_running, "the key was handled only after the scan had finished"
    assert cursor_moves[0][1] != cursor_moves[0][0]
