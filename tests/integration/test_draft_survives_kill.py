"""A report draft survives SIGKILL and a dropped terminal (SIGHUP) of the real program.

The workstation runs in tmux as a user would run it over SSH; the test types a report, kills
the process, starts it again and resumes the draft.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import testdata as sample_file

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Tmux:
    """One private tmux server (its own socket) running the workstation."""

    def __init__(self, env: dict[str, str]) -> None:
        self.socket = f"tuiviewer-test-{uuid.uuid4().hex[:8]}"
        self.env = env

    def run(self, *args: str) -> str:
        result = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10
        )
        return result.stdout

    def start(self, session: str, folder: Path) -> None:
        exports = " ".join(f"{key}={value}" for key, value in self.env.items())
        command = f"exec env {exports} {sys.executable} -m tuiviewer open {folder}"
        self.run("new-session", "-d", "-s", session, "-x", "120", "-y", "40", command)

    def screen(self, session: str) -> str:
        return self.run("capture-pane", "-p", "-t", session)

    def wait_for(self, session: str, text: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen(session)
            if text in screen:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never appeared; the screen was:\n{screen}")

    def pid(self, session: str) -> int:
        return int(self.run("display-message", "-p", "-t", session, "#{pane_pid}").strip())

    def keys(self, session: str, *keys: str) -> None:
        self.run("send-keys", "-t", session, *keys)

    def kill_server(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    env = {
        "TUIVIEWER_CONFIG_DIR": str(tmp_path / "config"),
        "TUIVIEWER_DATA_DIR": str(tmp_path / "data"),
        "TUIVIEWER_LOG_DIR": str(tmp_path / "log"),
        "TUIVIEWER_CACHE_DIR": str(tmp_path / "cache"),
        "TERM": "xterm-256color",
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
    }
    server = Tmux(env)
    yield server
    server.kill_server()


@pytest.fixture
def study(tmp_path: Path) -> Path:
    folder = tmp_path / "study"
    folder.mkdir()
    shutil.copy(sample_file("CT_small.dcm"), folder / "CT_small.dcm")
    return folder


def type_report(tmux: Tmux, session: str, study: Path, text: str) -> None:
    tmux.start(session, study)
    tmux.wait_for(session, "Scanned 1 files")
    tmux.keys(session, "W")
    tmux.wait_for(session, "draft saved")
    tmux.keys(session, "-l", text)
    tmux.wait_for(session, text)


def resume(tmux: Tmux, session: str, study: Path) -> str:
    tmux.start(session, study)
    tmux.wait_for(session, "Scanned 1 files")
    tmux.keys(session, "W")
    tmux.wait_for(session, "Resume it?")
    tmux.keys(session, "y")
    return tmux.wait_for(session, "draft saved")


@pytest.mark.parametrize("how", ["SIGKILL", "SIGHUP"])
def test_draft_survives_the_process_being_killed(tmux: Tmux, study: Path, how: str) -> None:
    text = f"Findings typed before {how}"
    type_report(tmux, "first", study, text)
    # The promise: what was typed more than 2 s ago is on disk.
    time.sleep(2.0)
    pid = tmux.pid("first")
    if how == "SIGKILL":
        os.kill(pid, signal.SIGKILL)
    else:
        # What a dropped SSH connection does: the terminal goes away, the process gets SIGHUP.
        tmux.run("kill-session", "-t", "first")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"the workstation survived {how}")
    screen = resume(tmux, "second", study)
    assert text in screen
