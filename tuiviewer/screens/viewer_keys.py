"""The viewer's keys and its help text, kept apart from the screen that routes them.

The footer shows the keys a reader needs first (Back, Help, Cine, Cursor, Measure, Tags,
Beside, Key image) in short words, so they fit at 80 columns; ``?`` lists
every key with what it does.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.binding import Binding, BindingType

from tuiviewer.render.presets import Preset
from tuiviewer.screens.dialogs.help import keys_of

VIEWER_BINDINGS: list[BindingType] = [
    Binding("escape", "back", "Back"),
    Binding("question_mark", "help", "Help"),
    Binding("down", "arrow(0, 1)", "Next slice", show=False),
    Binding("up", "arrow(0, -1)", "Prev slice", show=False),
    Binding("right", "arrow(1, 0)", "Next slice / cursor right", show=False),
    Binding("left", "arrow(-1, 0)", "Prev slice / cursor left", show=False),
    Binding("shift+down", "arrow(0, 10)", "10 slices on / cursor 10 px down", show=False),
    Binding("shift+up", "arrow(0, -10)", "10 slices back / cursor 10 px up", show=False),
    Binding("shift+right", "arrow(10, 0)", "10 slices on / cursor 10 px right", show=False),
    Binding("shift+left", "arrow(-10, 0)", "10 slices back / cursor 10 px left", show=False),
    Binding("pagedown", "step(10)", "10 slices on", show=False),
    Binding("pageup", "step(-10)", "10 slices back", show=False),
    Binding("home", "first", "First slice", show=False),
    Binding("end", "last", "Last slice", show=False),
    Binding("g", "goto", "Go to slice", show=False),
    Binding("w", "window(1, 0)", "Level up", show=False),
    Binding("s", "window(-1, 0)", "Level down", show=False),
    Binding("W", "window(10, 0)", "Level up ×10", show=False),
    Binding("S", "window(-10, 0)", "Level down ×10", show=False),
    Binding("d", "window(0, 1)", "Wider window", show=False),
    Binding("a", "window(0, -1)", "Narrower window", show=False),
    Binding("D", "window(0, 8)", "Wider ×8", show=False),
    Binding("A", "window(0, -8)", "Narrower ×8", show=False),
    *[Binding(str(n), f"preset({n})", f"Preset {n}", show=False) for n in range(1, 10)],
    Binding("0", "file_window", "File window", show=False),
    Binding("i", "invert", "Invert", show=False),
    Binding("z", "zoom(1)", "Zoom in", show=False),
    Binding("x", "zoom(-1)", "Zoom out", show=False),
    Binding("f", "fit", "Fit", show=False),
    Binding("equals_sign", "actual_pixels", "Actual pixels (1:1)", show=False),
    Binding("ctrl+l", "redraw", "Redraw the image", show=False),
    Binding("H", "pan(-1, 0)", "Pan left", show=False),
    Binding("L", "pan(1, 0)", "Pan right", show=False),
    Binding("K", "pan(0, -1)", "Pan up", show=False),
    Binding("J", "pan(0, 1)", "Pan down", show=False),
    Binding("space", "cine", "Cine"),
    Binding("plus", "fps(1)", "Faster cine", show=False),
    Binding("minus", "fps(-1)", "Slower cine", show=False),
    Binding("c", "cursor", "Cursor"),
    Binding("m", "measure", "Measure"),
    Binding("n", "series(1)", "Next series", show=False),
    Binding("p", "series(-1)", "Prev series", show=False),
    Binding("t", "tags", "Tags"),
    Binding("b", "beside", "Beside"),
    Binding("M", "volume", "MPR", show=False),
    Binding("o", "texts", "Hide texts", show=False),
    Binding("O", "overlays", "Overlays 60xx", show=False),
    Binding("r", "reset", "Reset", show=False),
    Binding("k", "key_image", "Key image"),
    Binding("l", "key_images", "List key images", show=False),
]


def help_text(bindings: Sequence[BindingType], presets: Sequence[Preset], graphics: str) -> str:
    """Every key of the viewer, the presets of the image on show and the graphics decision."""
    lines = []
    for binding in bindings:
        if isinstance(binding, Binding) and not binding.action.startswith("preset"):
            lines.append(f"{keys_of(binding):>14}  {binding.description}")
    names = ", ".join(p.name for p in presets) or "none for this image"
    lines.insert(0, f"{'1 … 9':>14}  Window presets ({names})")
    lines.append(
        f"{'mouse':>14}  wheel scrolls, drag sets the window (→ wider, ↓ level), "
        "click sets the cursor"
    )
    lines.append(
        f"{'':>14}  Tags: the panel follows the slice you stop on; Tab enters it, Esc leaves."
    )
    lines.append(
        f"{'':>14}  Side by side: the right series follows the left by position along the "
        "slice normal; window, invert, zoom and pan are shared (0: each its own file window)."
    )
    lines.append(f"{'':>14}  The report of this study: F9 (on every screen).")
    lines.append("")
    lines.append(f"Graphics: {graphics}")
    return "\n".join(lines)
