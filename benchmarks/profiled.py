"""``python -m tuiviewer`` under cProfile, switched on by SIGUSR1 and written by SIGUSR2.

``slice_step.py --profile FILE`` launches the app through this (``profiled.py FILE open …``)
so that a profile holds the slice steps only, not the start-up and the scan before them: the
benchmark signals once the viewer is open and again after the last step. Only the event-loop
thread is profiled (the renders run in worker threads and show up as the time they are waited
for); cProfile roughly doubles the cost of Python calls, so read the shares, not the times.
"""

from __future__ import annotations

import cProfile
import os
import runpy
import signal
import sys
import time
from types import FrameType


def main() -> None:
    out = sys.argv.pop(1)
    # TUIVIEWER_PROFILE_CPU=1: the event loop's CPU time (time.thread_time) instead of the wall
    # clock, which on a machine others load counts the time the thread waited for a core.
    cpu = os.environ.get("TUIVIEWER_PROFILE_CPU") == "1"
    profile = cProfile.Profile(time.thread_time) if cpu else cProfile.Profile()

    def start(_signum: int, _frame: FrameType | None) -> None:
        profile.enable()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        profile.disable()
        profile.dump_stats(out)

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    sys.argv[0] = "tuiviewer"
    runpy.run_module("tuiviewer", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
