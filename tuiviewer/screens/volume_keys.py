"""The volume screen's keys and its help text, kept apart from the screen that routes them.

Window/level, presets, file window and invert are the viewer's own bindings
(:data:`tuiviewer.screens.viewer_keys.VIEWER_BINDINGS`), so the two screens cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.binding import Binding, BindingType

from tuiviewer.render.presets import Preset
from tuiviewer.reports.measurements import MeasurementKind
from tuiviewer.screens.dialogs.help import keys_of
from tuiviewer.screens.viewer_keys import VIEWER_BINDINGS

KINDS = {kind.value: kind for kind in MeasurementKind}
"""What ``m`` (length), ``v`` (angle), ``e`` (ellipse) and ``r`` (rectangle) draw, by their
action's name."""

WINDOW_BINDINGS = [
    b
    for b in VIEWER_BINDINGS
    if isinstance(b, Binding)
    and b.action.split("(")[0] in ("window", "preset", "file_window", "invert")
]
"""The viewer's own window/level, preset, file window and invert keys: the same here."""

LAYOUT_BINDINGS: list[BindingType] = [
    Binding("g", "grid(1)", "Layout"),
    Binding("G", "choose_grid", "Choose the layout: MPR, 1×1, 1×2, 2×2", show=False),
    Binding("n", "series(1)", "Pane: next series (of this study, then priors)", show=False),
    Binding("N", "series(-1)", "Pane: previous series", show=False),
    Binding("o", "plane(1)", "Pane: next plane (axial, coronal, sagittal)", show=False),
    Binding("O", "plane(-1)", "Pane: previous plane", show=False),
    Binding("c", "choose", "Pane: choose its series and plane", show=False),
    Binding("u", "link", "Link/unlink scrolling by position", show=False),
    Binding("P", "shared_window", "W/L shared by all panes / per pane", show=False),
    Binding("z", "zoom(1)", "Zoom the pane in", show=False),
    Binding("Z", "zoom(-1)", "Zoom the pane out", show=False),
    Binding("equals_sign", "zoom(0)", "Fit the pane (zoom 1, no pan)", show=False),
    Binding("H", "pan(-1, 0)", "Pan left", show=False),
    Binding("L", "pan(1, 0)", "Pan right", show=False),
    Binding("K", "pan(0, -1)", "Pan up", show=False),
    Binding("J", "pan(0, 1)", "Pan down", show=False),
]
"""Layouts, what a pane shows, linking, W/L per pane, zoom and pan (screens/volume_panes.py)."""

VOLUME_BINDINGS: list[BindingType] = [
    Binding("escape", "back", "Back"),
    Binding("question_mark", "help", "Help"),
    Binding("tab", "pane(1)", "Pane"),
    Binding("shift+tab", "pane(-1)", "Prev pane", show=False),
    Binding("f", "layout", "Full/3"),
    Binding("up", "move(0, -1)", "Crosshair up", show=False),
    Binding("down", "move(0, 1)", "Crosshair down", show=False),
    Binding("left", "move(-1, 0)", "Crosshair left", show=False),
    Binding("right", "move(1, 0)", "Crosshair right", show=False),
    Binding("shift+up", "move(0, -10)", "Crosshair 10 up", show=False),
    Binding("shift+down", "move(0, 10)", "Crosshair 10 down", show=False),
    Binding("shift+left", "move(-10, 0)", "Crosshair 10 left", show=False),
    Binding("shift+right", "move(10, 0)", "Crosshair 10 right", show=False),
    Binding("pagedown", "through(1)", "Next slice of the pane", show=False),
    Binding("pageup", "through(-1)", "Prev slice of the pane", show=False),
    Binding("full_stop", "through(10)", "10 slices on", show=False),
    Binding("comma", "through(-10)", "10 slices back", show=False),
    Binding("home", "end(0)", "First slice of the pane", show=False),
    Binding("end", "end(1)", "Last slice of the pane", show=False),
    *WINDOW_BINDINGS,
    Binding("p", "projection", "Slab"),
    Binding("right_square_bracket", "slab(1)", "Thicker slab", show=False),
    Binding("left_square_bracket", "slab(-1)", "Thinner slab", show=False),
    Binding("t", "tilt(1, 0)", "Oblique: tilt about the horizontal axis +5°", show=False),
    Binding("T", "tilt(-1, 0)", "Oblique: tilt about the horizontal axis -5°", show=False),
    Binding("y", "tilt(0, 1)", "Oblique: turn about the vertical axis +5°", show=False),
    Binding("Y", "tilt(0, -1)", "Oblique: turn about the vertical axis -5°", show=False),
    Binding("x", "straighten", "Back to the standard plane", show=False),
    Binding("m", "draw('length')", "Ruler"),
    Binding("v", "draw('angle')", "Angle: first arm, vertex, second arm", show=False),
    Binding("e", "draw('ellipse')", "Ellipse"),
    Binding("r", "draw('rectangle')", "Rect"),
    Binding("l", "list", "List"),
    Binding("ctrl+l", "redraw", "Redraw the images", show=False),
    *LAYOUT_BINDINGS,
]


def help_text(bindings: Sequence[BindingType], presets: Sequence[Preset]) -> str:
    """Every key of the volume screen and the presets of the series."""
    lines = []
    for binding in bindings:
        if isinstance(binding, Binding) and not binding.action.startswith("preset"):
            lines.append(f"{keys_of(binding):>14}  {binding.description}")
    names = ", ".join(p.name for p in presets) or "none for this series"
    lines.insert(0, f"{'1 … 9':>14}  Window presets ({names})")
    lines.append("")
    lines.append(
        "Arrows move the crosshair in the active pane (yellow); PgUp/PgDn go through it. "
        "Every pane of the series follows, and with linked scrolling (u) every series of the "
        "same frame of reference goes to the same patient point. g changes the layout; n, o "
        "and c change what the active pane shows. Measurements are made at the volume's own "
        "resolution and kept with the study for its report."
    )
    return "\n".join(lines)
