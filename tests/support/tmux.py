"""Drive a terminal program in a private tmux server, as a user at a terminal would."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path


def user_env(base: Path) -> dict[str, str]:
    """The environment of a user whose config, data, log and cache are under ``base``
    (created on first use, 0700, like a real home), with a 256-colour terminal."""
    return {
        "TUIVIEWER_CONFIG_DIR": str(base / "config"),
        "TUIVIEWER_DATA_DIR": str(base / "data"),
        "TUIVIEWER_LOG_DIR": str(base / "log"),
        "TUIVIEWER_CACHE_DIR": str(base / "cache"),
        "TERM": "xterm-256color",
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(base),
    }


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
        """Run ``tuiviewer open folder`` in a new session (the pane's process is tuiviewer)."""
        exports = " ".join(f"{key}={value}" for key, value in self.env.items())
        command = f"exec env {exports} {sys.executable} -m tuiviewer open {folder}"
        self.new_session(session, command)

    def new_session(self, session: str, command: str, width: int = 120, height: int = 40) -> None:
        self.run("new-session", "-d", "-s", session, "-x", str(width), "-y", str(height), command)

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
