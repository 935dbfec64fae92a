"""Helpers for driving the app with Textual's pilot."""

from __future__ import annotations

import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from textual import events
from textual.keys import _character_to_key
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


_CHARS = {"space": " ", "tab": "\t", "enter": "\r"}


async def burst(pilot: Pilot[None], *keys: str, timeout: float = 10) -> None:
    """Send ``keys`` as one burst, as they arrive over a laggy SSH link, then wait for them.

    ``pilot.press`` waits for the app to go idle after every key, which a terminal never does;
    here every key is in the app's queue before the first is handled.
    """
    app = pilot.app
    driver = app._driver
    assert driver is not None
    for key in keys:
        if len(key) == 1:
            event = events.Key(key if key.isalnum() else _character_to_key(key), key)
        else:
            event = events.Key(key, _CHARS.get(key))
        event.set_sender(app)
        driver.send_message(event)
    order = getattr(app, "key_order", None)
    for _ in range(int(timeout / 0.01)):
        await pilot.pause(0.01)
        if order is None or order.idle:
            break
    else:
        raise AssertionError(f"keys still waiting after {timeout} s")
    await pilot.pause()


async def on_patient_position(pilot: Pilot[None]) -> BrowserScreen:
    """Select rtplan.dcm and put the tag tree's cursor on its Patient Position (HFS)."""
    from tests.functional.test_browser import PATIENT_SETUP_POSITION, select_file
    from tuiviewer.widgets.tag_tree import TagTree

    await settle(pilot)
    await select_file(pilot, "rtplan.dcm")
    screen = browser(pilot)
    tags = screen.query_one(TagTree)
    tags.focus()
    tags.reveal(PATIENT_SETUP_POSITION)
    await pilot.pause()
    return screen


def slowed(monkeypatch: pytest.MonkeyPatch, module: ModuleType, name: str, seconds: float) -> None:
    """``module.name`` (a blocking call a worker makes) takes ``seconds`` longer: a PACS or a
    disk that is slow to answer, so keys typed meanwhile are sure to arrive first."""
    original = getattr(module, name)

    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(seconds)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, slow)
