"""What a pilot-driven app shows, as plain text lines, for tests that read the screen as a user.

At 80×24 a screen must show what its user needs without scrolling sideways; a test reads the
lines the terminal would show (the same composition Textual's own screenshots use) and asserts
on them: a column header is visible in full, a patient's name is not cut, the footer names a key.
"""

from __future__ import annotations

import io

from rich.console import Console
from textual.app import App


def screen_lines(app: App[object]) -> list[str]:
    """The rows of the screen on show (modal screens over their background), as plain text."""
    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        force_terminal=True,
        color_system=None,
        record=True,
        legacy_windows=False,
        safe_box=False,
    )
    update = app.screen._compositor.render_update(
        full=True, screen_stack=app._background_screens, simplify=True
    )
    console.print(update)
    lines = console.export_text(styles=False).split("\n")
    return [line.rstrip() for line in lines[:height]]


def screen_text(app: App[object]) -> str:
    """:func:`screen_lines` joined with newlines."""
    return "\n".join(screen_lines(app))
