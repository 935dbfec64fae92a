"""What the viewer's keys do to the view, as pure functions: window/level steps, zoom, pan,
the window a step starts from, the presets of an image and the slice nearest a position.

The screen routes keys here and hands the new :class:`ViewState` to its panes, so the arithmetic
is tested without a terminal and both panes of a side-by-side move alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace

from tuiviewer.render.lut import Window, full_range_window
from tuiviewer.render.pipeline import RenderedImage
from tuiviewer.render.presets import Preset, presets_for
from tuiviewer.services.viewer.geometry import Vector
from tuiviewer.services.viewer.slices import LoadedSlice, SliceRef, ViewState, adjust_window

ZOOM_STEP = 1.25
ZOOM_MIN, ZOOM_MAX = 0.25, 32.0
LEVEL_FINE, LEVEL_COARSE = 0.02, 0.2
"""Level steps as a fraction of the current width."""
WIDTH_FINE, WIDTH_COARSE = 0.05, 0.4
"""Width steps as a logarithm (×1.05, ×1.5)."""


def stepped_window(window: Window, level_steps: int, width_steps: int) -> Window:
    """``window`` moved by key steps: ±1 fine, larger counts coarse (W/S ×10, D/A ×8)."""
    level = level_steps * (LEVEL_FINE if abs(level_steps) <= 1 else LEVEL_COARSE / 10)
    width = width_steps * (WIDTH_FINE if abs(width_steps) <= 1 else WIDTH_COARSE / 8)
    return adjust_window(window, level=level, width=width)


def dragged_window(window: Window, dx: int, dy: int) -> Window:
    """Right widens, down raises the level (darker image), as most workstations do."""
    return adjust_window(window, level=dy * 0.01, width=dx * 0.02)


def current_window(
    view: ViewState, image: RenderedImage | None, loaded: LoadedSlice | None
) -> Window | None:
    """The window a step starts from: the view's, else the one the image on show was rendered
    with, else the full range of a grey frame; None for colour images."""
    if view.window is not None:
        return view.window
    if image is None or loaded is None:
        return None
    if image.window is not None:
        return image.window
    if loaded.frame.is_grey:
        return full_range_window(loaded.frame.values())
    return None


def zoomed(view: ViewState, direction: int) -> ViewState:
    """One zoom step in (``direction`` > 0) or out, kept within 0.25× … 32×."""
    zoom = view.zoom * (ZOOM_STEP if direction > 0 else 1 / ZOOM_STEP)
    zoom = min(max(zoom, ZOOM_MIN), ZOOM_MAX)
    if abs(zoom - 1.0) < 1e-6:
        zoom = 1.0
    return replace(view, zoom=round(zoom, 4))


def panned(view: ViewState, dx: int, dy: int, box: tuple[int, int] | None) -> ViewState:
    """A tenth of the pane's pixel ``box`` per step; "pan left" shows what lies to the right."""
    width, height = box or (100, 100)
    step_x, step_y = max(1, width // 10), max(1, height // 10)
    return replace(view, pan=(view.pan[0] - dx * step_x, view.pan[1] - dy * step_y))


def image_presets(
    loaded: LoadedSlice, overrides: Mapping[str, Sequence[Preset]] | None
) -> list[Preset]:
    """The window presets of a grey image (none for colour): the modality's, CT by its
    numbers, others from the frame's values; ``overrides`` from ``[presets]`` of config.toml."""
    if not loaded.frame.is_grey:
        return []
    values = None if loaded.info.modality == "CT" else loaded.frame.values()
    return presets_for(
        loaded.info.modality,
        loaded.ds,
        values,
        overrides=overrides,
        frame=loaded.frame.index,
    )


def nearest_slice(slices: Sequence[SliceRef], position: Vector | None) -> int:
    """The slice whose image position is closest to ``position`` (the same anatomy when the
    reader switches series), else 0."""
    if position is None:
        return 0
    best, best_distance = 0, math.inf
    for i, ref in enumerate(slices):
        other = ref.record.image_position
        if other is not None:
            distance = math.dist(position, other)
            if distance < best_distance:
                best, best_distance = i, distance
    return best
