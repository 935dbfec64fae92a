"""The slice viewer: one stack of a study, scrolled, windowed, zoomed, measured, with keys.

Each image is a :class:`~tuiviewer.widgets.stack_pane.StackPane` that decodes and renders its
own stack in a worker; this screen holds what they share (the view: window, invert, zoom, pan)
and what the user does with them. The corner texts (:class:`CornerTexts`) live beside the
image rather than over it, so no graphics protocol has to share cells with text.

Two extras follow the slice on screen. The tag panel (``t``, :class:`TagPanel`) reads the tags
of the slice the user stops on. The side-by-side (``b``) shows a second stack of the study (or
a prior) in a second pane beside the first, linked by position along the slice normal (not by
index, so a 5 mm prior follows a 2.5 mm study); it shares the view with the left.

Low-bandwidth mode (``--low-bandwidth`` or ``[ui] low_bandwidth``, for SSH over a thin link)
quantises what the image views send and repaints only the rows that changed, renders
window/level changes at most every :data:`LOW_BANDWIDTH_WINDOW_S` while keys repeat or the
mouse drags, caps cine at :data:`LOW_BANDWIDTH_FPS`, and says so in the badge.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import replace

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Input, Static

from tuiviewer.dicom.scanning import InstanceRecord
from tuiviewer.graphics.probe import GraphicsDecision
from tuiviewer.render.lut import Window, full_range_window
from tuiviewer.render.presets import Preset, presets_for
from tuiviewer.screens.base import workstation
from tuiviewer.screens.dialogs.choose import ChooseDialog
from tuiviewer.screens.dialogs.help import HelpScreen, keys_of
from tuiviewer.services.viewer.caches import RenderCoalescer
from tuiviewer.services.viewer.geometry import edge_labels, slice_position
from tuiviewer.services.viewer.marks import Pointer
from tuiviewer.services.viewer.slices import (
    DEFAULT_FRAME_CACHE_BYTES,
    LoadedSlice,
    RenderJob,
    SliceRef,
    SliceSource,
    ViewState,
    adjust_window,
    goto_index,
)
from tuiviewer.services.viewer.stack import Stack
from tuiviewer.services.viewer.texts import (
    link_caption,
    patient_text,
    position_text,
    series_label,
    slice_text,
    view_text,
)
from tuiviewer.widgets.corner_texts import CornerTexts
from tuiviewer.widgets.image.view import ImageView, badge_text
from tuiviewer.widgets.safe import shown
from tuiviewer.widgets.stack_pane import StackPane
from tuiviewer.widgets.tag_panel import TagPanel
from tuiviewer.widgets.tag_tree import TagTree

#: Rendered frames kept for instant redisplay (a 120×80 grey frame is ~10 KB).
RENDERED_CACHE_BYTES = 16 * 1024 * 1024
ZOOM_STEP = 1.25
LEVEL_FINE, LEVEL_COARSE = 0.02, 0.2
"""Level steps as a fraction of the current width."""
WIDTH_FINE, WIDTH_COARSE = 0.05, 0.4
"""Width steps as a logarithm (×1.05, ×1.5)."""
FPS_MIN, FPS_MAX = 1, 30
LOW_BANDWIDTH_FPS = 5
"""Cine ceiling in low-bandwidth mode (5 frames of ~15-25 KB fit a 1 Mbit/s link)."""
LOW_BANDWIDTH_WINDOW_S = 0.15
"""In low-bandwidth mode, window/level changes are rendered at most this often."""


class ViewerScreen(Screen[None]):
    """Slices of one stack from instance ``start`` on; ``stacks`` (every stack of the study)
    allow next/previous series and the side-by-side."""

    CSS_PATH = "viewer.tcss"
    AUTO_FOCUS = ""  # the hidden go-to box would otherwise take every key
    BINDINGS = [
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
        Binding("g", "goto", "Go to"),
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
        Binding("n", "series(1)", "Next series"),
        Binding("p", "series(-1)", "Prev series", show=False),
        Binding("t", "tags", "Tags"),
        Binding("b", "beside", "Side by side"),
        Binding("o", "texts", "Hide texts", show=False),
        Binding("O", "overlays", "Overlays 60xx", show=False),
        Binding("r", "reset", "Reset"),
        Binding("k", "key_image", "Key image"),
    ]

    def __init__(
        self,
        records: Sequence[InstanceRecord],
        start: int = 0,
        *,
        stacks: Sequence[Sequence[InstanceRecord]] | None = None,
        priors: Sequence[Sequence[InstanceRecord]] | None = None,
        frame_cache_bytes: int = DEFAULT_FRAME_CACHE_BYTES,
    ) -> None:
        super().__init__()
        self.stacks: list[list[InstanceRecord]] = [list(s) for s in stacks or [] if s]
        self.priors: list[list[InstanceRecord]] = [list(s) for s in priors or [] if s]
        """Stacks of the patient's other studies: offered for side by side, not for n/p."""
        records = list(records)
        keys = [[r.sop_instance_uid for r in s] for s in self.stacks]
        own = [r.sop_instance_uid for r in records]
        if own in keys:
            self.stack_pos = keys.index(own)
        else:
            self.stacks.insert(0, records)
            self.stack_pos = 0
        self.frame_cache_bytes = frame_cache_bytes
        self.stack = Stack(
            records,
            stack=self.stack_pos,
            max_bytes=frame_cache_bytes,
            rendered_bytes=RENDERED_CACHE_BYTES,
        )
        """The stack of the left pane, the one the user reads."""
        first = records[start] if 0 <= start < len(records) else None
        self.stack.index = next((i for i, r in enumerate(self.slices) if r.record is first), 0)
        self.link: Stack | None = None
        """The stack shown beside this one, if any."""
        self.view = ViewState()
        self.presets: list[Preset] = []
        self.pointer = Pointer()
        self.low_bandwidth = False
        """Set from the workstation on compose (``--low-bandwidth`` or ``[ui]``)."""
        self.fps = 10
        self.cine: Timer | None = None
        self._window_timer: Timer | None = None
        self._window_rendered_at = -math.inf
        self.texts_visible = True
        self.tags_visible = False
        self.failures: list[str] = []

    # ---- the left stack, as the keys and tests see it -----------------------------------------
    @property
    def slices(self) -> list[SliceRef]:
        return self.stack.slices

    @property
    def source(self) -> SliceSource:
        return self.stack.source

    @property
    def coalescer(self) -> RenderCoalescer[RenderJob]:
        return self.stack.coalescer

    @property
    def index(self) -> int:
        """The slice the user asked for (what is shown once its render arrives)."""
        return self.stack.index

    @property
    def shown_index(self) -> int | None:
        return self.stack.shown_index

    @property
    def pane(self) -> StackPane:
        return self.query_one("#pane", StackPane)

    @property
    def link_pane(self) -> StackPane:
        return self.query_one("#pane-link", StackPane)

    @property
    def image_view(self) -> ImageView:
        return self.pane.image_view

    @property
    def link_view(self) -> ImageView:
        return self.link_pane.image_view

    @property
    def tag_panel(self) -> TagPanel:
        return self.query_one(TagPanel)

    @property
    def tag_tree(self) -> TagTree:
        return self.tag_panel.tag_tree

    @property
    def tags_reads(self) -> int:
        """Files read for the tag panel (a held key must not read one per slice)."""
        return self.tag_panel.reads

    @property
    def decision(self) -> GraphicsDecision:
        return workstation(self).graphics

    @property
    def fps_max(self) -> int:
        return LOW_BANDWIDTH_FPS if self.low_bandwidth else FPS_MAX

    # ---- layout -----------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        self.low_bandwidth = workstation(self).low_bandwidth
        self.fps = min(self.fps, self.fps_max)
        lean = self.low_bandwidth
        with Horizontal(id="viewer"):
            yield CornerTexts("left", id="info-left", classes="info")
            with Vertical(id="centre"):
                yield Static("", id="edge-top", classes="edge")
                with Horizontal(id="middle"):
                    yield Static("", id="edge-left", classes="edge side")
                    yield StackPane(
                        self.decision,
                        stack=self.stack,
                        low_bandwidth=lean,
                        view_id="image",
                        id="pane",
                    )
                    yield StackPane(
                        self.decision,
                        low_bandwidth=lean,
                        linked=True,
                        view_id="image-link",
                        id="pane-link",
                    )
                    yield Static("", id="edge-right", classes="edge side")
                yield Static("", id="edge-bottom", classes="edge")
                yield Static("", id="link-info")
            yield CornerTexts("right", id="info-right", classes="info")
            yield TagPanel(id="tags-panel")
        yield Input(placeholder="Slice number, or a percentage like 50% (Esc cancels)", id="goto")
        yield Static("", id="readout")
        yield Static("", id="badge")
        yield Static(self.decision.explanation(), id="why")
        yield Footer()

    def on_mount(self) -> None:
        if self.decision.warning:
            self.notify(self.decision.warning, title="Graphics", severity="warning", timeout=10)
        self.query_one("#goto", Input).display = False
        self.query_one("#readout").display = False
        if not self.slices:
            self.query_one("#info-right", CornerTexts).set_top("No image in this stack.")
            return
        self._update_texts()
        self.call_after_refresh(self.pane.request)

    def on_resize(self, event: events.Resize) -> None:
        # The panes re-render when their own size changes (ImageView.Resized).
        self._relayout(event.size.width)

    def _relayout(self, width: int | None = None) -> None:
        """Column widths and what is visible (each pane re-renders on its own resize)."""
        wide = (width if width is not None else self.size.width) >= 110
        # Narrow terminals give the image the room: the texts wrap in slimmer columns.
        for info in self.query(".info"):
            info.styles.width = 24 if wide else 16
        # Patient, study and series are in the tag tree, and the side-by-side caption says
        # where each image lies, so the left column gives way to the panel or the second image.
        linked = self.link is not None
        self.query_one("#info-left").display = self.texts_visible and not (
            self.tags_visible or linked
        )
        self.query_one("#info-right").display = self.texts_visible
        panel = self.tag_panel
        panel.display = self.tags_visible
        panel.styles.width = 44 if wide else 30
        self.link_pane.display = linked
        self.link_view.display = linked
        self.query_one("#link-info").display = linked

    def _render_all(self) -> None:
        for pane in (self.pane, self.link_pane):
            pane.view = self.view
            pane.request()

    def request_render(self) -> None:
        """Ask for the current slice and view; shown at once when already rendered."""
        self.pane.view = self.view
        self.pane.request()

    # ---- what the panes show ----------------------------------------------------------------
    @on(StackPane.Shown)
    def _pane_shown(self, message: StackPane.Shown) -> None:
        pane = message.pane
        pane.redraw()
        if pane is not self.pane:
            self._update_link_text()
            return
        loaded = pane.shown_slice()
        if loaded is not None and not self.presets:
            self.presets = self._presets_for(loaded)
        index = self.stack.shown_index
        if (
            index is not None
            and self.link is not None
            and slice_position(self.slices[index]) is None
        ):
            self._follow()  # a frame's position is known only once it is loaded
        if self.tags_visible and index is not None:
            self.tag_panel.at(self.slices[index], index, len(self.slices))
            self.tag_panel.schedule()
        self._update_texts()

    @on(StackPane.Failed)
    def _pane_failed(self, message: StackPane.Failed) -> None:
        stack = message.pane.stack
        if stack is None:
            return
        name = stack.slices[message.job.index].path.name
        reason = shown(f"⚠ {name}: {message.reason}", "bold red")
        if message.pane is self.pane:
            self.failures.append(message.reason)
            self.query_one("#badge", Static).update(reason)
        else:
            self.query_one("#link-info", Static).update(reason)
        self.notify(message.reason, title=f"Cannot show {name}", severity="error")

    def _presets_for(self, loaded: LoadedSlice) -> list[Preset]:
        if not loaded.frame.is_grey:
            return []
        values = None if loaded.info.modality == "CT" else loaded.frame.values()
        overrides = workstation(self).config.presets
        return presets_for(
            loaded.info.modality, loaded.ds, values, overrides=overrides, frame=loaded.frame.index
        )

    # ---- texts ------------------------------------------------------------------------------
    def _set(self, selector: str, content: str | Text) -> None:
        """Update a text only when it changed, without a layout pass (their sizes are fixed).

        Plain strings hold names and descriptions from the file: shown literally, cleaned.
        """
        widget = self.query_one(selector, Static)
        if isinstance(content, str):
            content = shown(content, lines=True)
        if widget.content != content:
            widget.update(content, layout=False)

    def _slice_text(self) -> str:
        stack = self.stack
        return slice_text(
            stack.slices, stack.index, stack.shown_index, self.stack_pos, len(self.stacks)
        )

    def _update_texts(self) -> None:
        if not self.slices:
            return
        right = self.query_one("#info-right", CornerTexts)
        right.set_top(self._slice_text())
        shown = self.pane.shown
        if shown is None:
            return
        info = shown.loaded.info
        left = self.query_one("#info-left", CornerTexts)
        left.set_top(patient_text(info))
        left.set_bottom(position_text(info))
        right.set_bottom(
            view_text(shown.job.state, shown.image, self.fps if self.cine is not None else None)
        )
        labels = edge_labels(info.orientation)
        for side in ("top", "bottom", "left", "right"):
            self._set(f"#edge-{side}", getattr(labels, side) if labels else "")
        mapping = self.pane.mapping
        step = max(mapping.step_x, mapping.step_y) if mapping is not None else 1.0
        badge = badge_text(
            self.image_view.shown, shown.image, step, low_bandwidth=self.low_bandwidth
        )
        self._set("#badge", badge)
        self._update_readout()

    def _update_readout(self) -> None:
        widget = self.query_one("#readout", Static)
        text = self.pointer.text(self.pane.shown_slice())
        widget.display = bool(text)
        if text:
            widget.update(shown(text))

    # ---- slices -----------------------------------------------------------------------------
    def go(self, index: int) -> None:
        """Show slice ``index`` (clamped to the stack)."""
        stack = self.stack
        if not stack.slices:
            return
        index = min(max(index, 0), len(stack.slices) - 1)
        if index == stack.index and stack.shown_index == index:
            return
        if index != stack.index:
            stack.direction = 1 if index > stack.index else -1
        stack.index = index
        self.request_render()
        self._follow()
        if stack.shown_index != index and stack.coalescer.pending is not None:
            # A held key: show where it is heading while the renders catch up. Otherwise the
            # frame arrives within a screen update or two and brings its texts along; an extra
            # text-only update would only delay it by one screen refresh.
            self.query_one("#info-right", CornerTexts).set_top(self._slice_text())

    def action_step(self, delta: int) -> None:
        self.go(self.index + delta)

    def action_arrow(self, dx: int, dy: int) -> None:
        if self.pointer.active:
            self._move_cursor(dx, dy)
        else:  # without the cursor, arrows step slices (Shift: 10 at a time)
            self.go(self.index + (dx or dy))

    def action_first(self) -> None:
        self.go(0)

    def action_last(self) -> None:
        self.go(len(self.slices) - 1)

    def action_goto(self) -> None:
        box = self.query_one("#goto", Input)
        box.value = ""
        box.display = True
        self.set_focus(box)

    @on(Input.Submitted, "#goto")
    def _goto_submitted(self, event: Input.Submitted) -> None:
        event.input.display = False
        self.set_focus(None)
        try:
            index = goto_index(event.value, len(self.slices))
        except ValueError as exc:
            self.notify(str(exc), severity="warning")
            return
        self.go(index)

    def on_image_view_wheeled(self, message: ImageView.Wheeled) -> None:
        self.go(self.index + message.step)

    # ---- window and view --------------------------------------------------------------------
    def _set_view(self, view: ViewState, *, debounce: bool = False) -> None:
        """Show the slices with ``view``; ``debounce``: a window change from a repeating key or
        a drag, which low-bandwidth mode renders at most every LOW_BANDWIDTH_WINDOW_S."""
        if view == self.view:
            return
        self.view = view
        if not (debounce and self.low_bandwidth):
            self._render_all()
            return
        if self._window_timer is not None:
            return  # a render is already due; it will use the latest view
        wait = self._window_rendered_at + LOW_BANDWIDTH_WINDOW_S - time.monotonic()
        if wait <= 0:
            self._debounced_render()
        else:
            self._window_timer = self.set_timer(wait, self._debounced_render)

    def _debounced_render(self) -> None:
        self._window_timer = None
        self._window_rendered_at = time.monotonic()
        self._render_all()

    def _current_window(self) -> Window | None:
        if self.view.window is not None:
            return self.view.window
        shown = self.pane.shown
        if shown is None:
            return None
        if shown.image.window is not None:
            return shown.image.window
        if shown.loaded.frame.is_grey:
            return full_range_window(shown.loaded.frame.values())
        return None

    def action_window(self, level_steps: int, width_steps: int) -> None:
        window = self._current_window()
        if window is None:
            self.notify("Window/level applies to grey-scale images only.", severity="warning")
            return
        level = level_steps * (LEVEL_FINE if abs(level_steps) <= 1 else LEVEL_COARSE / 10)
        width = width_steps * (WIDTH_FINE if abs(width_steps) <= 1 else WIDTH_COARSE / 8)
        self._set_view(
            replace(self.view, window=adjust_window(window, level=level, width=width), preset=""),
            debounce=True,
        )

    def action_preset(self, number: int) -> None:
        if not 1 <= number <= len(self.presets):
            available = len(self.presets)
            self.notify(f"No preset {number}: this image has {available}.", severity="warning")
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
        zoom = self.view.zoom * (ZOOM_STEP if direction > 0 else 1 / ZOOM_STEP)
        zoom = min(max(zoom, 0.25), 32.0)
        if abs(zoom - 1.0) < 1e-6:
            zoom = 1.0
        self._set_view(replace(self.view, zoom=round(zoom, 4)))

    def action_pan(self, dx: int, dy: int) -> None:
        box = self.image_view.pixel_box() or (100, 100)
        step_x, step_y = max(1, box[0] // 10), max(1, box[1] // 10)
        # Pan moves the image: "pan left" shows what lies to the right.
        pan = (self.view.pan[0] - dx * step_x, self.view.pan[1] - dy * step_y)
        self._set_view(replace(self.view, pan=pan))

    def action_fit(self) -> None:
        for view in (self.image_view, self.link_view):
            view.actual_pixels = False
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
        for view in (self.image_view, self.link_view):
            view.actual_pixels = True
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
        for view in (self.image_view, self.link_view):
            view.actual_pixels = False
        self.stop_cine()
        self.pointer.active = False
        self.pointer.ruler = []
        self._set_view(ViewState())
        self._redraw_marks()
        self._update_texts()

    def on_image_view_dragged(self, message: ImageView.Dragged) -> None:
        window = self._current_window()
        if window is None:
            return
        # Right widens, down raises the level (darker image), as most workstations do.
        new = adjust_window(window, level=message.dy * 0.01, width=message.dx * 0.02)
        self._set_view(replace(self.view, window=new, preset=""), debounce=True)

    # ---- cine -------------------------------------------------------------------------------
    def action_cine(self) -> None:
        if self.cine is not None:
            self.stop_cine()
        else:
            self.cine = self.set_interval(1.0 / self.fps, self._cine_tick)
        self._update_texts()

    def stop_cine(self) -> None:
        if self.cine is not None:
            self.cine.stop()
            self.cine = None

    def _cine_tick(self) -> None:
        if self.slices:
            self.stack.direction = 1
            self.go((self.index + 1) % len(self.slices))

    def action_fps(self, delta: int) -> None:
        self.fps = min(max(self.fps + delta, FPS_MIN), self.fps_max)
        if self.cine is not None:
            self.cine.stop()
            self.cine = self.set_interval(1.0 / self.fps, self._cine_tick)
        lean = self.low_bandwidth and self.fps == LOW_BANDWIDTH_FPS
        capped = " (the low-bandwidth maximum)" if lean else ""
        self.notify(f"Cine {self.fps} frames per second{capped}.", timeout=1.5)
        self._update_texts()

    # ---- cursor and ruler -------------------------------------------------------------------
    def _redraw_marks(self) -> None:
        self.pane.set_marks(self.pointer.marks())

    def action_cursor(self) -> None:
        loaded = self.pane.shown_slice()
        centre = (loaded.frame.columns // 2, loaded.frame.rows // 2) if loaded else (0, 0)
        self.pointer.toggle(centre)
        if self.pointer.active:
            self.notify("Cursor: arrows move 1 pixel, Shift+arrows 10; c or Esc ends.", timeout=3)
        self._redraw_marks()
        self._update_readout()

    def _move_cursor(self, dx: int, dy: int) -> None:
        loaded = self.pane.shown_slice()
        if loaded is None or self.pointer.cursor is None:
            return
        self.pointer.move(dx, dy, loaded.frame.columns, loaded.frame.rows)
        self._redraw_marks()
        self._update_readout()

    def on_image_view_clicked(self, message: ImageView.Clicked) -> None:
        mapping, loaded = self.pane.mapping, self.pane.shown_slice()
        if mapping is None or loaded is None:
            return
        col, row = mapping.to_source(message.x, message.y)
        if 0 <= col < loaded.frame.columns and 0 <= row < loaded.frame.rows:
            self.pointer.cursor = (col, row)
            self.pointer.active = True
            self._redraw_marks()
            self._update_readout()

    def action_measure(self) -> None:
        if not self.pointer.active:
            self.action_cursor()
        refusal = self.pointer.mark()
        if refusal is not None:
            self.notify(refusal)
            return
        self._redraw_marks()
        self._update_readout()

    # ---- tag panel --------------------------------------------------------------------------
    def action_tags(self) -> None:
        self.tags_visible = not self.tags_visible
        panel = self.tag_panel
        if not self.tags_visible:
            panel.stop()
            if self.focused is self.tag_tree:
                self.set_focus(None)
        self._relayout()
        if self.tags_visible and self.slices:
            index = self.shown_index if self.shown_index is not None else self.index
            panel.at(self.slices[index], index, len(self.slices))
            if self.shown_index is not None:
                panel.read_now()  # asked for: no reason to wait

    def action_key_image(self) -> None:
        """Mark the slice (frame) on screen as a key image of the study's report."""
        if not self.slices:
            return
        ref = self.slices[self.index]
        # A frame number only for multi-frame objects (dciodvfy rejects it otherwise).
        workstation(self).mark_key_image(ref.record, ref.frame + 1 if ref.frames > 1 else None)

    # ---- side by side -----------------------------------------------------------------------
    def _beside(self) -> list[list[InstanceRecord]]:
        """What can be shown beside the current stack: this study's stacks, then priors."""
        return self.stacks + self.priors

    def _stack_label(self, position: int) -> str:
        return series_label(self._beside()[position], prior=position >= len(self.stacks))

    def action_beside(self) -> None:
        if self.link is not None:
            self.close_link()
            return
        beside = self._beside()
        others = [k for k in range(len(beside)) if k != self.stack_pos and beside[k]]
        if not others:
            self.notify(
                "Neither this study nor a prior has another series to show beside this one.",
                severity="warning",
            )
            return

        def chosen(choice: int | None) -> None:
            if choice is not None:
                self.open_link(others[choice])

        labels = [self._stack_label(k) for k in others]
        self.app.push_screen(ChooseDialog("Show beside this series", labels), chosen)

    def _share_budget(self) -> None:
        """Two stacks on screen share the one memory budget of decoded and rendered frames."""
        half = self.link is not None
        self.pane.limit(
            self.frame_cache_bytes // 2 if half else self.frame_cache_bytes,
            RENDERED_CACHE_BYTES // 2 if half else RENDERED_CACHE_BYTES,
        )

    def open_link(self, position: int) -> None:
        """Show stack ``position`` of the study (or a prior) beside the current one."""
        self.close_link()
        link = Stack(
            self._beside()[position],
            stack=position,
            max_bytes=self.frame_cache_bytes // 2,
            rendered_bytes=RENDERED_CACHE_BYTES // 2,
        )
        self.link = link
        self.link_pane.set_stack(link)
        self.link_pane.view = self.view
        self._share_budget()
        if not link.follow(self._left_position()):
            self.notify(
                f"{self._stack_label(position)} cannot be linked by position (no Image "
                "Position/Orientation): it stays on its first slice.",
                severity="warning",
            )
        self._update_link_text()
        self._relayout()

    def close_link(self) -> None:
        """Back to one stack."""
        if self.link is None:
            return
        self.link = None
        self.link_pane.set_stack(None)
        self._share_budget()
        self._relayout()

    def _left_position(self) -> tuple[float, float, float] | None:
        if not self.slices:
            return None
        position = slice_position(self.slices[self.index])
        loaded = self.pane.shown_slice()
        if position is None and loaded is not None and self.shown_index == self.index:
            position = loaded.info.position
        return position

    def _follow(self) -> None:
        """Move the linked stack to the plane nearest the left slice."""
        link = self.link
        if link is None:
            return
        if link.follow(self._left_position()):
            self.link_pane.view = self.view
            self.link_pane.request()
        self._update_link_text()

    def _update_link_text(self) -> None:
        link = self.link
        if link is None or not link.slices:
            return
        position = self._left_position()
        left = link.geometry.location_of(position) if position is not None else None
        caption = link_caption(
            [ref.record for ref in link.slices[:1]],
            link.index,
            len(link),
            link.shown_index,
            link.geometry.locations[link.index],
            left,
        )
        self._set("#link-info", caption)

    # ---- series, texts, help, leaving -------------------------------------------------------
    def action_series(self, delta: int) -> None:
        if len(self.stacks) < 2:
            self.notify("This study has no other series to show.", severity="warning")
            return
        current = self.slices[self.index].record.image_position if self.slices else None
        self.stack_pos = (self.stack_pos + delta) % len(self.stacks)
        stack = Stack(
            self.stacks[self.stack_pos],
            stack=self.stack_pos,
            max_bytes=self.frame_cache_bytes,
            rendered_bytes=RENDERED_CACHE_BYTES,
        )
        self.stack = stack
        self.pane.replace_stack(stack)
        self.presets = []
        self.pointer.reset()
        self.pane.marks = self.pointer.marks()
        stack.index = self._nearest(current)
        if self.link is not None:
            self._share_budget()
        self._update_texts()
        self.request_render()
        self._follow()

    def _nearest(self, position: tuple[float, float, float] | None) -> int:
        """The slice closest to ``position`` (same anatomy when switching series), else 0."""
        if position is None:
            return 0
        best, best_distance = 0, math.inf
        for i, ref in enumerate(self.slices):
            other = ref.record.image_position
            if other is not None:
                distance = math.dist(position, other)
                if distance < best_distance:
                    best, best_distance = i, distance
        return best

    def action_texts(self) -> None:
        self.texts_visible = not self.texts_visible
        self._relayout()

    def action_help(self) -> None:
        lines = []
        for binding in self.BINDINGS:
            if isinstance(binding, Binding) and not binding.action.startswith("preset"):
                lines.append(f"{keys_of(binding):>14}  {binding.description}")
        names = ", ".join(p.name for p in self.presets)
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
        lines.append("")
        lines.append(f"Graphics: {self.decision.explanation()}")
        self.app.push_screen(HelpScreen("\n".join(lines)))

    def action_back(self) -> None:
        goto = self.query_one("#goto", Input)
        if goto.display:
            goto.display = False
            self.set_focus(None)
            return
        if self.focused is not None:  # the tag tree: Esc gives the keys back to the image
            self.set_focus(None)
            return
        if self.pointer.active:
            self.action_cursor()
            return
        if self.link is not None:
            self.close_link()
            return
        self.stop_cine()
        self.app.pop_screen()
