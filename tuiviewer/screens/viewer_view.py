"""The slice viewer's view keys: window/level (keys, mouse drag, presets, the file's own),
invert, overlays, zoom, pan, actual pixels, fit, redraw and reset.

The arithmetic is in :mod:`tuiviewer.services.viewer.view`; these actions pick the new
:class:`~tuiviewer.services.viewer.slices.ViewState` and hand it to both panes, so a
side-by-side moves alike. In low-bandwidth mode a window change from a repeating key or a drag
is rendered at most every :data:`~tuiviewer.screens.viewer.LOW_BANDWIDTH_WINDOW_S`.

Mixed into :class:`~tuiviewer.screens.viewer.ViewerScreen`.
"""

from __future__ import annotations

from dataclasses import replace

from tuiviewer.render.lut import Window
from tuiviewer.screens.viewer_base import ViewerParts
from tuiviewer.services.viewer import view as views
from tuiviewer.services.viewer.slices import ViewState
from tuiviewer.widgets.image.view import ImageView


class ViewControls(ViewerParts):
    """Window, zoom, pan and the rest of the view (mixed into the viewer screen)."""

    def _set_view(self, view: ViewState, *, debounce: bool = False) -> None:
        """Show the slices with ``view``; ``debounce``: a window change from a repeating key or
        a drag, which low-bandwidth mode renders at most every LOW_BANDWIDTH_WINDOW_S."""
        if view != self.view:
            self.view = view
            if debounce and self.low_bandwidth:
                self._throttle()
            else:
                self._render_all()

    def _current_window(self) -> Window | None:
        now = self.pane.shown
        return views.current_window(self.view, now.image if now else None, self.pane.shown_slice())

    def action_window(self, level_steps: int, width_steps: int) -> None:
        window = self._current_window()
        if window is None:
            self.notify("Window/level applies to grey-scale images only.", severity="warning")
            return
        window = views.stepped_window(window, level_steps, width_steps)
        self._set_view(replace(self.view, window=window, preset=""), debounce=True)

    def on_image_view_dragged(self, message: ImageView.Dragged) -> None:
        window = self._current_window()
        if window is not None:
            window = views.dragged_window(window, message.dx, message.dy)
            self._set_view(replace(self.view, window=window, preset=""), debounce=True)

    def action_preset(self, number: int) -> None:
        if not 1 <= number <= len(self.presets):
            names = ", ".join(f"{k} {p.name}" for k, p in enumerate(self.presets, 1))
            offer = f"this image has {len(self.presets)}: {names}" if names else "none here"
            self.notify(f"No preset {number} ({offer}).", severity="warning", timeout=6)
            return
        preset = self.presets[number - 1]
        self._set_view(replace(self.view, window=preset.window, preset=preset.name))

    def action_file_window(self) -> None:
        self._set_view(replace(self.view, window=None, preset=""))

    def action_invert(self) -> None:
        self._set_view(replace(self.view, invert=not self.view.invert))

    def action_overlays(self) -> None:
        self._set_view(replace(self.view, overlays=not self.view.overlays))
        self.notify(f"DICOM overlays {'shown' if self.view.overlays else 'hidden'}.")

    def action_zoom(self, direction: int) -> None:
        self._set_view(views.zoomed(self.view, direction))

    def action_pan(self, dx: int, dy: int) -> None:
        self._set_view(views.panned(self.view, dx, dy, self.image_view.pixel_box()))

    def _actual(self, on: bool) -> None:
        for view in (self.image_view, self.link_view):
            view.actual_pixels = on

    def action_fit(self) -> None:
        self._actual(False)
        self._set_view(replace(self.view, zoom=1.0, pan=(0.0, 0.0)))
        self._render_all()

    def action_actual_pixels(self) -> None:
        """One source pixel on one terminal pixel (half-blocks: on half a cell); H/J/K/L pan
        where the image is larger than the pane. Again, or f, fits the image back."""
        if self.image_view.actual_pixels:
            self.action_fit()
            return
        mapping = self.pane.mapping
        if mapping is None:
            return
        self._actual(True)
        # Zoom so that a frame pixel covers exactly one source pixel.
        zoom = round(self.view.zoom * min(mapping.step_x, mapping.step_y), 6)
        self._set_view(replace(self.view, zoom=max(zoom, 1e-3)))
        self._render_all()

    def action_redraw(self) -> None:
        """Send the image again (after tmux or another program painted over it)."""
        self.image_view.redraw()
        if self.link is not None:
            self.link_view.redraw()

    def action_reset(self) -> None:
        self._actual(False)
        self.player.stop()
        self.pane.reset_pointer(keep_cursor=True)
        self._set_view(ViewState())
        self._update_texts()
