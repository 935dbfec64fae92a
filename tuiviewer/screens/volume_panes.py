"""The layout keys of the volume screen: the grid (``g``, ``G``), what the active pane shows
(``n``/``N`` series, ``o``/``O`` plane, ``c`` a chooser of both), linked scrolling (``u``),
W/L shared or per pane (``P``), zoom (``z``/``Z``/``=``) and pan (``H J K L``).

Every rule is in :mod:`tuiviewer.services.viewer.layouts`; these actions only pick the new
:class:`~tuiviewer.services.viewer.layouts.Hanging` and hand it to the screen.
"""

from __future__ import annotations

from dataclasses import replace

from textual.screen import Screen

from tuiviewer.screens.dialogs.choose import ChooseDialog
from tuiviewer.services.viewer import layouts as ls
from tuiviewer.services.viewer.layouts import GRIDS, Hanging, Source
from tuiviewer.services.viewer.volume_view import PANES, PaneFrame


class LayoutActions(Screen[None]):
    """Actions that change the panes (mixed into the volume screen)."""

    sources: list[Source]
    hanging: Hanging
    frames: dict[int, PaneFrame]

    def _set_hanging(self, state: Hanging) -> None:  # the screen's
        raise NotImplementedError

    def _picture_size(self) -> tuple[int, int] | None:
        """(width, height) of the active pane's picture at zoom 1, for clamping the pan."""
        frame = self.frames.get(self.hanging.active)
        if frame is None:
            return None
        # The picture keeps its size as it zooms (the same box, magnified inside).
        height, width = frame.image.pixels.shape[:2]
        return (width, height)

    def action_grid(self, delta: int) -> None:
        self._set_hanging(ls.next_grid(self.hanging, delta, self.sources))

    def action_choose_grid(self) -> None:
        labels = [
            "MPR: axial, coronal and sagittal of one series",
            "1×1: the active pane alone",
            "1×2: two panes side by side (the second on a prior when there is one)",
            "2×2: four panes (two planes of two series)",
        ]

        def chosen(choice: int | None) -> None:
            if choice is not None:
                self._set_hanging(ls.with_grid(self.hanging, GRIDS[choice], self.sources))

        self.app.push_screen(
            ChooseDialog("Layout", labels, hint="Enter lays out; Esc leaves it as it is."),
            chosen,
        )

    def action_series(self, delta: int) -> None:
        if len(self.sources) < 2:
            self.notify(
                "Neither this study nor a prior in the local store has another series that can "
                "be a volume.",
                severity="warning",
            )
            return
        source = (self.hanging.spec.source + delta) % len(self.sources)
        self._set_hanging(ls.with_source(self.hanging, source))

    def action_plane(self, delta: int) -> None:
        self._set_hanging(ls.with_plane(self.hanging, self.hanging.spec.plane + delta))

    def action_choose(self) -> None:
        """A chooser of every series × plane for the active pane."""
        choices = [(s, p) for s in range(len(self.sources)) for p in range(len(PANES))]
        labels = [f"{PANES[p].capitalize()} · {self.sources[s].label}" for s, p in choices]
        pane = self.hanging.active

        def chosen(choice: int | None) -> None:
            if choice is None or pane >= len(self.hanging.panes):
                return
            source, plane = choices[choice]
            state = replace(self.hanging, active=pane)
            self._set_hanging(ls.with_plane(ls.with_source(state, source), plane))

        self.app.push_screen(
            ChooseDialog(
                f"Pane {pane + 1} shows",
                labels,
                hint="Enter shows it in the pane; Esc leaves the pane as it was.",
            ),
            chosen,
        )

    def action_link(self) -> None:
        linked = not self.hanging.linked
        self._set_hanging(replace(self.hanging, linked=linked))
        self.notify(
            "Scrolling linked by position (same frame of reference)."
            if linked
            else "Scrolling unlinked: each series moves on its own.",
            timeout=3,
        )

    def action_shared_window(self) -> None:
        state = ls.toggled_shared(self.hanging)
        self._set_hanging(state)
        self.notify(
            "W/L shared by every pane." if state.shared_window else "W/L per pane.",
            timeout=3,
        )

    def action_zoom(self, direction: int) -> None:
        self._set_hanging(ls.zoomed(self.hanging, direction, self._picture_size()))

    def action_pan(self, dx: int, dy: int) -> None:
        if self.hanging.spec.zoom <= 1.0:
            self.notify("Zoom in (z) first: at fit the whole image is in the pane.", timeout=3)
            return
        self._set_hanging(ls.panned(self.hanging, dx, dy, self._picture_size()))
