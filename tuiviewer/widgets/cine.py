"""The viewer's timing: cine (the stack played as a film, at a speed the reader sets, capped in
low-bandwidth mode) and the throttle that renders window changes at most so often on a thin link.

The player owns its timer and speed; each tick calls back into the screen, which steps the
slice as a key would, so a frame arriving late is skipped rather than queued.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from textual.dom import DOMNode
from textual.timer import Timer

FPS_MIN, FPS_MAX = 1, 30
LOW_BANDWIDTH_FPS = 5
"""Cine ceiling in low-bandwidth mode (5 frames of ~15-25 KB fit a 1 Mbit/s link)."""


class Cine:
    """Plays ``tick`` ``fps`` times a second on ``owner``'s timers while running."""

    def __init__(self, owner: DOMNode, tick: Callable[[], None], *, fps: int = 10) -> None:
        self.owner = owner
        self.tick = tick
        self.fps = fps
        self.low_bandwidth = False
        self.timer: Timer | None = None

    @property
    def running(self) -> bool:
        return self.timer is not None

    @property
    def fps_max(self) -> int:
        return LOW_BANDWIDTH_FPS if self.low_bandwidth else FPS_MAX

    def lean(self, low_bandwidth: bool) -> None:
        """Low-bandwidth mode caps the speed."""
        self.low_bandwidth = low_bandwidth
        self.fps = min(self.fps, self.fps_max)

    def toggle(self) -> None:
        if self.timer is not None:
            self.stop()
        else:
            self.timer = self.owner.set_interval(1.0 / self.fps, self.tick)

    def stop(self) -> None:
        if self.timer is not None:
            self.timer.stop()
            self.timer = None

    def faster(self, delta: int) -> str:
        """Change the speed by ``delta`` frames per second; the sentence that says so."""
        self.fps = min(max(self.fps + delta, FPS_MIN), self.fps_max)
        if self.timer is not None:
            self.timer.stop()
            self.timer = self.owner.set_interval(1.0 / self.fps, self.tick)
        capped = self.low_bandwidth and self.fps == LOW_BANDWIDTH_FPS
        note = " (the low-bandwidth maximum)" if capped else ""
        return f"Cine {self.fps} frames per second{note}."


class Throttle:
    """Runs ``action`` at most every ``interval`` seconds while calls keep coming (a held window
    key, a drag in low-bandwidth mode); a call made meanwhile runs once the interval is over,
    with whatever is current then."""

    def __init__(self, owner: DOMNode, interval: float, action: Callable[[], None]) -> None:
        self.owner = owner
        self.interval = interval
        self.action = action
        self._timer: Timer | None = None
        self._ran_at = -math.inf

    def __call__(self) -> None:
        if self._timer is not None:
            return  # a run is already due; it will see the latest state
        wait = self._ran_at + self.interval - time.monotonic()
        if wait <= 0:
            self._run()
        else:
            self._timer = self.owner.set_timer(wait, self._run)

    def _run(self) -> None:
        self._timer = None
        self._ran_at = time.monotonic()
        self.action()
