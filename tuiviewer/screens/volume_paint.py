"""Screen updates of the volume screen in separate boxes: a crosshair step changes a pane and
the readout line under all of them, and Textual would paint the one box around both.

Textual's compositor turns the regions changed since the last update into one crop, the box
around all of them, and asks every widget inside that box for its lines: a step that redraws
the sagittal pane (the right third) and the readout (the bottom line, full width) has every
widget of the screen render and cut its lines, though two thirds of the panes did not change.
:class:`SeparateBoxes` groups the changed regions into boxes that waste little (the pane; the
readout line) and renders each box on its own, sent as one screen update (one synchronised
write, as Textual does), so only the widgets under a changed box are asked. What is written is
what Textual would write for those regions: the same spans, taken from the same compositor.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Console
from textual.geometry import Region
from textual.screen import Screen

try:  # Textual's own update types (not public: fall back to its one box if they move)
    from textual._compositor import CompositorUpdate
    from textual._context import visible_screen_stack
except ImportError:  # pragma: no cover - another Textual
    CompositorUpdate = None  # type: ignore[assignment,misc]

WASTE = 2.0
"""Two groups of regions are painted as one box while the box is at most this many times
the cells they cover."""


def _area(region: Region) -> int:
    return region.width * region.height


def boxes(regions: Iterable[Region]) -> list[list[Region]]:
    """The changed ``regions`` in groups whose bounding box wastes little (see :data:`WASTE`):
    the lines of one pane are one group, a pane and a line far from it are two."""
    groups = [(r, _area(r), [r]) for r in sorted(regions, key=lambda r: (r.x, r.y)) if r]
    merged = True
    while merged and len(groups) > 1:
        merged = False
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                (box, cells, members), (other, more, others) = groups[a], groups[b]
                union = box.union(other)
                if _area(union) <= WASTE * (cells + more):
                    groups[a] = (union, cells + more, members + others)
                    del groups[b]
                    merged = True
                    break
            if merged:
                break
    return [members for _, _, members in groups]


if CompositorUpdate is not None:

    class _Updates(CompositorUpdate):
        """Several partial updates written as one."""

        def __init__(self, updates: list[Any]) -> None:
            self.updates = updates

        def render_segments(self, console: Console) -> str:
            return "".join(update.render_segments(console) for update in self.updates)


class SeparateBoxes(Screen[None]):
    """A screen whose partial updates are rendered box by box (mixed into the volume screen)."""

    def _compositor_refresh(self) -> None:
        app = self.app
        compositor = getattr(self, "_compositor", None)
        dirty: set[Region] | None = getattr(compositor, "_dirty_regions", None)
        if (
            CompositorUpdate is None
            or compositor is None
            or dirty is None
            or len(dirty) < 2
            or app.is_inline
            or self is not app.screen
            or compositor.size.region in dirty
        ):
            super()._compositor_refresh()
            return
        groups = boxes(dirty)
        if len(groups) < 2:
            super()._compositor_refresh()
            return
        visible_screen_stack.set(app._background_screens)
        updates = []
        for group in groups:
            compositor._dirty_regions = set(group)
            update = compositor.render_partial_update()
            if update is not None:
                updates.append(update)
        dirty.clear()
        compositor._dirty_regions = dirty
        combined: Any = _Updates(updates) if updates else None  # Textual types it loosely
        app._display(self, combined)
        self._dirty_widgets.clear()
        app._update_mouse_over(self)
