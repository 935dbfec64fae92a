"""One Xvfb for the session, the test cards, and a helper that opens the viewer in a terminal.

The terminals, Xvfb, xdotool and ImageMagick are Debian packages that scripts/test installs:
missing here, the tests skip; missing on CI (CI=true), they fail.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.support.imagegen import save, ultrasound_rgb, write_card_series
from tests.support.realterm import Display, Terminal, missing_tools

SLICES = 6
SHOTS = Path(os.environ.get("TUIVIEWER_SHOTS", "")) if os.environ.get("TUIVIEWER_SHOTS") else None
"""Where to keep every screenshot (TUIVIEWER_SHOTS=DIR), besides the test's own folder."""


@pytest.fixture(scope="session")
def display() -> Iterator[Display]:
    missing = missing_tools(("xterm", "mlterm", "kitty"))
    require_tool(f"the real-terminal tools ({', '.join(missing)})", not missing)
    server = Display()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def cards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_card_series(tmp_path_factory.mktemp("cards"), slices=SLICES)


@pytest.fixture(scope="session")
def ultrasound(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("us")
    save(ultrasound_rgb(), folder / "us.dcm")
    return folder


def viewer_command(folder: Path, *options: str) -> list[str]:
    """``tuiviewer open FOLDER`` with this interpreter (the worktree's venv)."""
    return [sys.executable, "-m", "tuiviewer", "open", str(folder), *options]


def open_viewer(terminal: Terminal, files: int, slices: int, badge: bool = True) -> None:
    """From the browser to the viewer's first slice, drawn. ``badge=False`` when a
    notification is expected on the status lines (it covers the badge there)."""
    terminal.wait_for_text(f"Scanned {files} file", timeout=60)
    terminal.settled()  # the tree has its first study selected
    terminal.keys("v")
    terminal.wait_for_text(f"slice 1/{slices}", timeout=30)
    if badge:  # the badge is written with the first frame
        terminal.wait_for_text(r"(?:Sixel|Kitty|iTerm2|half-blocks|shade) \d+×\d+ px", timeout=30)


def keep(terminal: Terminal, image: object, name: str) -> Path:
    """Save a screenshot in the test folder (and in TUIVIEWER_SHOTS if set)."""
    path = terminal.save(image, name)  # type: ignore[arg-type]
    if SHOTS is not None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        (SHOTS / path.name).write_bytes(path.read_bytes())
    return path
