"""The volume screen in the real program, in tmux at 80×24 and 120×40: `M` in the viewer, keys in
one burst as over SSH, every pane's title following the crosshair, Esc back to the viewer."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pydicom
import pytest

from tests.conftest import require_tool
from tests.support import imagegen
from tests.support.tmux import Tmux, user_env


def open_command(tmux: Tmux, folder: Path) -> str:
    """The shell command that runs ``tuiviewer open FOLDER`` as the tmux user."""
    exports = " ".join(f"{key}={value}" for key, value in tmux.env.items())
    return f"exec env {exports} {sys.executable} -m tuiviewer open {folder}"


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_the_volume_screen_in_a_terminal(tmp_path: Path, size: tuple[int, int]) -> None:
    require_tool("tmux", shutil.which("tmux") is not None)
    folder = tmp_path / "sphere"
    folder.mkdir()
    for n, ds in enumerate(imagegen.sphere_series()):
        imagegen.save(ds, folder / f"{n:03}.dcm")
    tmux = Tmux(user_env(tmp_path))
    try:
        tmux.new_session("mpr", open_command(tmux, folder), *size)
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


HANGING = """
[[hanging]]
name = "CT chest follow-up"
modality = "CT"
description = "thorax"
layout = "1x2"
panes = [
  { plane = "axial", preset = "lung" },
  { study = "prior", plane = "axial", preset = "mediastinum" },
]
"""


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_a_hanging_rule_lays_out_the_study_and_its_prior(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    """config.toml's [[hanging]] rule hangs the study beside its prior when M opens the volume
    screen; a burst of PgDn moves both, the prior to its slice nearest the same z."""
    require_tool("tmux", shutil.which("tmux") is not None)
    from tests.unit.services.test_layouts import write_series

    frame = pydicom.uid.generate_uid()
    root = tmp_path / "studies"
    write_series(root / "a-now", study=pydicom.uid.generate_uid(), date="20240102",
                 description="thorax 1mm", frame=frame, slices=40, spacing=1.0)  # fmt: skip
    write_series(root / "b-before", study=pydicom.uid.generate_uid(), date="20230102",
                 description="thorax 2mm", frame=frame, slices=20, spacing=2.0)  # fmt: skip
    config = tmp_path / "config"
    config.mkdir(mode=0o700)
    (config / "config.toml").write_text(HANGING, encoding="utf-8")
    tmux = Tmux(user_env(tmp_path))
    try:
        tmux.new_session("hang", open_command(tmux, root), *size)
        tmux.wait_for("hang", "Scanned 60 files", timeout=60)
        tmux.keys("hang", "v")
        tmux.wait_for("hang", "slice 1/40", timeout=30)
        tmux.keys("hang", "M")
        screen = tmux.wait_for("hang", "Axial 1/20", timeout=30)
        assert "Axial 1/40 · z -19.5 mm" in screen and "Axial 1/20 · z -19.0 mm" in screen
        assert "hung by 'CT chest follow-up'" in screen
        assert "W 1500 L -600 lung" in screen, screen
        tmux.keys("hang", *["PageDown"] * 5, "Tab")
        screen = tmux.wait_for("hang", "Axial 3/20 · z -15.0 mm", timeout=20)
        assert "Axial 6/40 · z -14.5 mm" in screen
        screen = tmux.wait_for("hang", "mediastinum", timeout=20)
        assert "W 350 L 50 mediastinum" in screen
        tmux.keys("hang", "Escape")
        tmux.wait_for("hang", "slice 1/40", timeout=20)
        tmux.keys("hang", "q")
    finally:
        tmux.kill_server()
