"""Stopping the helper processes the tests start (Orthanc, sshd, terminals under Xvfb).

One way for all of them: SIGTERM, a grace period, then SIGKILL and reap, so a stuck server
never outlives its fixture and no zombie is left for the next test.
"""

from __future__ import annotations

import subprocess
from typing import Any


def stop_process(process: subprocess.Popen[Any] | None, timeout: float = 5) -> None:
    """SIGTERM ``process``; SIGKILL it if it is still there after ``timeout`` seconds."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
