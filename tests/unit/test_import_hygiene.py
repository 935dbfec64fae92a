"""The headless layers must not import Textual: the CLI, benchmarks and the net layer use them."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import tuiviewer

UI_MODULES = ("tuiviewer.app", "tuiviewer.messages", "tuiviewer.screens", "tuiviewer.widgets")


def headless_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(tuiviewer.__path__, "tuiviewer."):
        if info.name.startswith(UI_MODULES) or info.name == "tuiviewer.__main__":
            continue
        names.append(info.name)
    return names


def test_there_are_headless_modules_to_check() -> None:
    names = headless_modules()
    assert "tuiviewer.dicom.loading" in names
    assert "tuiviewer.cli" in names


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
