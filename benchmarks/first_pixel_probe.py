"""Where the first pixel's time goes: a probe the first-pixel benchmark loads into the app it
runs (``--timeline``), never part of the app itself.

Loaded as ``sitecustomize`` (the benchmark puts a folder holding a copy on ``PYTHONPATH``), it
wraps a few functions on the open path and appends ``<clock> <phase>`` lines to the file
``FIRST_PIXEL_TIMELINE`` names; after Enter it also notes every garbage collection longer
than 3 ms (a full one holds every thread) and every turn of the event loop longer than
:data:`LONG_TURN_S` (what held the loop: a widget's message pump, a screen update).
The clock is :func:`time.perf_counter`, CLOCK_MONOTONIC on Linux, which the benchmark's own
process shares, so the phases line up with its Enter and with the first image bytes on the pty.
"""

from __future__ import annotations

import functools
import importlib
import os
import threading
import time
from typing import Any

_PATH = os.environ.get("FIRST_PIXEL_TIMELINE", "")
_LOCK = threading.Lock()
_SEEN: set[str] = set()
#: A turn of the event loop (one callback) at least this long is noted, with whose it was.
LONG_TURN_S = 0.02


def mark(phase: str, once: bool = True) -> None:
    """Note ``phase`` now (only its first time when ``once``)."""
    with _LOCK:
        if once and phase in _SEEN:
            return
        _SEEN.add(phase)
        with open(_PATH, "a") as out:
            out.write(f"{time.perf_counter():.6f} {phase}\n")


def _wrap(
    module: str, owner: str | None, name: str, phase: str, after: bool = False, once: bool = True
) -> None:
    target: Any = importlib.import_module(module)
    holder = getattr(target, owner) if owner else target
    original = getattr(holder, name)

    @functools.wraps(original)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not after:
            mark(phase, once)
        result = original(*args, **kwargs)
        if after:
            mark(phase, once)
        return result

    setattr(holder, name, wrapped)


def _find_answers() -> None:
    retrieve: Any = importlib.import_module("tuiviewer.net.inventory")
    original = retrieve.find

    def find(*args: Any, **kwargs: Any) -> Any:
        mark("C-FIND sent")
        for n, match in enumerate(original(*args, **kwargs)):
            if n == 0:
                mark("first C-FIND answer")
            yield match
        mark("last C-FIND answer")

    retrieve.find = find


def _install() -> None:
    try:
        _wrap("tuiviewer.widgets.study_opener", "StudyOpener", "open", "Enter handled")
        _wrap("tuiviewer.services.jobs", "RetrieveJob", "run", "retrieve worker start")
        _wrap(
            "pynetdicom.ae", "ApplicationEntity", "associate", "association requested", once=False
        )
        _wrap("pynetdicom.ae", "ApplicationEntity", "associate", "association up", True, False)
        _wrap("pynetdicom.association", "Association", "send_c_get", "C-GET sent", once=False)
        _find_answers()
        _wrap("tuiviewer.net.move", "InstanceWriter", "handle", "first C-STORE received")
        _wrap("tuiviewer.net.move", "InstanceWriter", "handle", "first C-STORE written", True)
        _wrap("tuiviewer.net.request", "_Run", "report", "first instance on disk")
        _wrap("tuiviewer.widgets.study_opener", "StudyOpener", "view_arriving", "viewer pushed")
        _wrap("tuiviewer.screens.viewer", "ViewerScreen", "on_mount", "viewer mounted")
        _wrap("tuiviewer.widgets.stack_pane", "StackPane", "render_slice", "render asked")
        _wrap("tuiviewer.widgets.stack_pane", "StackPane", "_display", "frame decoded")
        _wrap("tuiviewer.widgets.stack_pane", "StackPane", "_display", "frame shown", True)
    except Exception as exc:  # a renamed function: say so, and time what is left
        mark(f"probe incomplete: {exc!r}")


def _note(at: float, text: str) -> None:
    with _LOCK, open(_PATH, "a") as out:
        out.write(f"{at:.6f}   {text}\n")


def _watch_collector() -> None:
    import gc

    started = [0.0]

    def collected(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
            return
        took = time.perf_counter() - started[0]
        if took > 0.003 and "Enter handled" in _SEEN:
            _note(started[0], f"<garbage collection, generation {info['generation']}: "
                  f"{took * 1000:.0f} ms>")  # fmt: skip

    gc.callbacks.append(collected)


def _watch_loop() -> None:
    import asyncio.events

    original = asyncio.events.Handle._run

    def run(handle: Any) -> None:
        began = time.perf_counter()
        original(handle)
        took = time.perf_counter() - began
        if took >= LONG_TURN_S and "Enter handled" in _SEEN:
            owner: Any = getattr(handle._callback, "__self__", None)
            name = owner.get_name() if hasattr(owner, "get_name") else repr(handle._callback)
            _note(began, f"[event loop busy {took * 1000:.0f} ms: {name[:70]}]")

    setattr(asyncio.events.Handle, "_run", run)  # noqa: B010


if _PATH:
    _install()
    _watch_collector()
    _watch_loop()
