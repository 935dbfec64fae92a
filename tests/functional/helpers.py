"""Helpers for driving the app with Textual's pilot."""

from __future__ import annotations

from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Static
from textual.worker import WorkerState

from tuiviewer.app import TuiviewerApp, make_app
from tuiviewer.config.settings import Config
from tuiviewer.screens.browser import BrowserScreen


def new_app(*paths: Path) -> TuiviewerApp:
    return make_app(Config(), list(paths))


async def settle(pilot: Pilot[None], timeout: float = 30) -> None:
    """Wait until no worker is pending or running and the messages they posted are handled.

    (``wait_for_complete`` raises when an exclusive worker was superseded, which the browser
    does on purpose when the selection moves on.)
    """
    busy = (WorkerState.PENDING, WorkerState.RUNNING)
    for _ in range(int(timeout / 0.01)):
        await pilot.pause()
        if not any(worker.state in busy for worker in pilot.app.workers):
            await pilot.pause()
            return
        await pilot.pause(0.01)
    raise AssertionError(f"workers still running after {timeout} s")


def browser(pilot: Pilot[None]) -> BrowserScreen:
    screen = pilot.app.screen
    assert isinstance(screen, BrowserScreen), type(screen)
    return screen


def static_text(screen: BrowserScreen, selector: str) -> str:
    content = screen.query_one(selector, Static).content
    return content.plain if hasattr(content, "plain") else str(content)
