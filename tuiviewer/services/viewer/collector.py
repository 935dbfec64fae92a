"""Python's cyclic garbage collector kept out of the way of the viewer's first image.

A full collection walks every object the process holds, and holds the GIL while it does, so
it stops the event loop *and* the retrieve's network threads. With the ~190,000 objects the app
holds once started, one took 135–520 ms on a busy 2-core machine (benchmarks/first_pixel.py
``--timeline``), and the allocations of laying out a viewer made one fall between Enter and
the first image nearly every time.

:func:`settle`, once at start-up before the UI runs: collect, then freeze what survived (the
modules, their classes and tables, the app) into the permanent generation, so that later full
collections walk only what came after it (tens of thousands of objects, not hundreds).
:func:`hold` / :func:`release`: no automatic collection while a viewer opens, until its first
image is on screen; the viewer bounds the hold in time (:data:`HOLD_LIMIT_S`).
"""

from __future__ import annotations

import gc

HOLD_LIMIT_S = 5.0
"""A viewer holds the collector off at most this long (a first image that never comes)."""

_holders = 0
_frozen = False
_disabled_here = False


def settle() -> None:
    """Collect everything once, then freeze the survivors (start-up, before the UI runs)."""
    gc.collect()
    gc.freeze()


def freeze_once() -> None:
    """Freeze what the first image pane finds (the app and its first screens), once per process:
    a full collection walks all of it, and one that fell during a slice step stalled it (200 ms
    of CPU measured at the 40th step); frames and strips made later are collected as before."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.freeze()


def hold() -> None:
    """No automatic collection until every :func:`hold` has had its :func:`release`."""
    global _holders, _disabled_here
    _holders += 1
    if _holders == 1 and gc.isenabled():
        gc.disable()
        _disabled_here = True


def release() -> None:
    """The end of one :func:`hold` (the collector runs again after the last one; a collector
    someone else had turned off stays off)."""
    global _holders, _disabled_here
    if _holders == 0:
        return
    _holders -= 1
    if _holders == 0 and _disabled_here:
        _disabled_here = False
        gc.enable()


def holding() -> bool:
    """Whether a hold is in force."""
    return _holders > 0
