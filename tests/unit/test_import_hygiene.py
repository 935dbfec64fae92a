"""The headless layers must not import Textual: the CLI, benchmarks and the net layer use them."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import tuiviewer

UI_MODULES = ("tuiviewer.app", "tuiviewer.messages", "tuiviewer.screens", "tuiviewer.widgets")
#: The terminal protocols are plain numpy (and Rich for half-block segments); the probe runs
#: before Textual is imported, so that Textual reads the colour system it decides.
PURE_WIDGET_MODULES = tuple(
    f"tuiviewer.widgets.image.{name}"
    for name in ("probe", "pixels", "sixel", "kitty", "iterm2", "png", "halfcell")
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
    assert "tuiviewer.dicom.loading" in names
    assert "tuiviewer.cli" in names
    assert set(PURE_WIDGET_MODULES) <= set(names), "every protocol module exists and is checked"


def test_headless_modules_do_not_import_textual() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {headless_modules()!r}:\n"
        "    importlib.import_module(name)\n"
        "    bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "    assert not bad, (name, bad[:3])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
