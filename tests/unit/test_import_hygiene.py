"""The headless layers must not import Textual: the CLI, benchmarks, services and the domain
layers use them without a terminal. Each module is imported alone, in a fresh interpreter, so
one that pulls Textual in cannot hide behind another that was imported first. The layering
itself (who may import whom) is the import-linter contract in pyproject.toml."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import tuiviewer

UI_MODULES = (
    "tuiviewer.app",
    "tuiviewer.workstation",
    "tuiviewer.messages",
    "tuiviewer.screens",
    "tuiviewer.widgets",
)
TEXTUAL = ("textual", "textual_image")
#: Image modules of the UI that are plain numpy (and Rich for half-block segments), kept free of
#: Textual like the terminal protocols below the UI (tuiviewer.graphics).
PURE_WIDGET_MODULES = ("tuiviewer.widgets.image.png", "tuiviewer.widgets.image.halfcell")
GRAPHICS_MODULES = tuple(
    f"tuiviewer.graphics.{name}" for name in ("probe", "pixels", "sixel", "kitty", "iterm2")
)


def headless_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(tuiviewer.__path__, "tuiviewer."):
        if info.name == "tuiviewer.__main__":
            continue
        if info.name.startswith(UI_MODULES) and info.name not in PURE_WIDGET_MODULES:
            continue
        names.append(info.name)
    return names


def test_there_are_headless_modules_to_check() -> None:
    names = headless_modules()
    for room in ("dicom.loading", "net.find", "render.lut", "services.jobs", "config.nodes", "cli"):
        assert f"tuiviewer.{room}" in names
    checked = set(PURE_WIDGET_MODULES + GRAPHICS_MODULES)
    assert checked <= set(names), "every protocol module exists and is checked"


@pytest.mark.parametrize("module", headless_modules())
def test_a_headless_module_does_not_import_textual(module: str) -> None:
    code = (
        "import importlib, sys\n"
        f"importlib.import_module({module!r})\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {TEXTUAL!r})\n"
        "print('\\n'.join(bad[:3]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert not result.stdout.strip(), f"{module} imports {result.stdout.split()}"
