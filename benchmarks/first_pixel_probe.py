"""Where the first pixel's time goes: a probe the first-pixel benchmark loads into the app it
runs (``--timeline``), never part of the app itself.

Loaded as ``sitecustomize`` (the benchmark puts a folder holding a copy on ``PYTHONPATH``), it
wraps a few functions on the open path and appends ``<clock> <phase>`` lines to the file
``FIRST_PIXEL_TIMELINE`` names. The clock is :func:`time.perf_counter`, CLOCK_MONOTONIC on
Linux, which the benchmark's own process shares, so the phases line up with its Enter and with
the first image bytes on the pty.
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


if _PATH:
    _install()
