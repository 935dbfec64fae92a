"""The volume screen in the real program, in tmux at 80×24 and 120×40: `M` in the viewer, keys in
one burst as over SSH, every pane's title following the crosshair, Esc back to the viewer."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.support import imagegen
from tests.support.tmux import Tmux, user_env


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_the_volume_screen_in_a_terminal(tmp_path: Path, size: tuple[int, int]) -> None:
    require_tool("tmux", shutil.which("tmux") is not None)
    folder = tmp_path / "sphere"
    folder.mkdir()
    for n, ds in enumerate(imagegen.sphere_series()):
        imagegen.save(ds, folder / f"{n:03}.dcm")
    env = user_env(tmp_path)
    tmux = Tmux(env)
    exports = " ".join(f"{key}={value}" for key, value in env.items())
    command = f"exec env {exports} {sys.executable} -m tuiviewer open {folder}"
    try:
        tmux.new_session("mpr", command, *size)
        tmux.wait_for("mpr", "Scanned 40 files", timeout=60)
        tmux.keys("mpr", "v")
        tmux.wait_for("mpr", "slice 1/40", timeout=30)
        tmux.keys("mpr", "Down", "Down", "M")
        screen = tmux.wait_for("mpr", "Axial 3/40", timeout=30)
        assert "Coronal 25/48" in screen and "Sagittal 24/48" in screen
        screen = tmux.wait_for("mpr", "Ruler")  # the footer's keys once the volume is read
        assert "W 400 L 40" in screen and "-1000 HU" in screen
        # One burst: five slices through the axial pane, then the coronal pane and two
        # voxels to the right in it (the sagittal pane follows).
        tmux.keys("mpr", *["PageDown"] * 5, "Tab", "Right", "Right")
        screen = tmux.wait_for("mpr", "Sagittal 22/48", timeout=20)
        assert "Axial 8/40" in screen and "Coronal · (2.5, 0.5, -12.5) mm" in screen
        tmux.keys("mpr", "Escape")
        screen = tmux.wait_for("mpr", "slice 3/40", timeout=20)
        assert "Axial" not in screen
        tmux.keys("mpr", "q")
    finally:
        tmux.kill_server()
