"""The slice viewer: one stack of a study, scrolled, windowed, zoomed, measured, with keys.

This screen composes and routes. Each image is a :class:`~tuiviewer.widgets.stack_pane.StackPane`
that renders its own stack in a worker and owns its cursor, ruler and title; the arithmetic of
the keys is in :mod:`tuiviewer.services.viewer.view`, the keys and help in
:mod:`tuiviewer.screens.viewer_keys`, cine in :mod:`tuiviewer.widgets.cine`. The screen holds
what the panes share (the view: window, invert, zoom, pan). The corner texts live beside the
image and the readouts (window, cursor) over it, never on it, so no graphics protocol has to
share cells with text and the notifications (bottom right) never cover a readout.

The tag panel (``t``) reads the tags of the slice the user stops on. The side-by-side (``b``)
shows a second stack of the study (or a prior) beside the first, linked by position along the
slice normal (not by index, so a 5 mm prior follows a 2.5 mm study). With either on, the column
of texts on the left gives way and each pane keeps patient, ID, study date and series on a title.

Low-bandwidth mode (``--low-bandwidth`` or ``[ui] low_bandwidth``) quantises what the image views
send and repaints only the rows that changed, renders window/level changes at most every
:data:`LOW_BANDWIDTH_WINDOW_S` while keys repeat or the mouse drags, caps cine, and says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from textual import events, on
from textual.app import ComposeResult
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Input, Static

from tuiviewer.dicom.scanning import InstanceRecord
from tuiviewer.graphics.probe import GraphicsDecision
from tuiviewer.render.lut import Window
from tuiviewer.render.presets import Preset
from tuiviewer.screens.base import StudyInView, workstation
from tuiviewer.screens.dialogs.choose import ChooseDialog
from tuiviewer.screens.dialogs.help import HelpScreen
from tuiviewer.screens.viewer_keys import VIEWER_BINDINGS, help_text
from tuiviewer.services.jobs import RetrieveJob
from tuiviewer.services.viewer import texts
from tuiviewer.services.viewer import view as views
from tuiviewer.services.viewer.arrival import ArrivingSeries, ArrivingStudy, settled
from tuiviewer.services.viewer.caches import RenderCoalescer
from tuiviewer.services.viewer.geometry import slice_position
from tuiviewer.services.viewer.slices import (
    DEFAULT_FRAME_CACHE_BYTES,
    RenderJob,
    SliceRef,
    ViewState,
    goto_index,
)
from tuiviewer.services.viewer.stack import Stack
from tuiviewer.widgets.arrivals import ArrivalFeed
from tuiviewer.widgets.cine import Cine, Throttle
from tuiviewer.widgets.image.view import ImageView, badge_text
from tuiviewer.widgets.key_footer import KeyFooter
from tuiviewer.widgets.key_images import KeyImageMarks
from tuiviewer.widgets.safe import shown
from tuiviewer.widgets.stack_pane import StackPane
from tuiviewer.widgets.tag_panel import TagPanel
from tuiviewer.widgets.tag_tree import TagTree
from tuiviewer.widgets.viewer_body import ViewerBody

#: Rendered frames kept for instant redisplay (a 120×80 grey frame is ~10 KB).
RENDERED_CACHE_BYTES = 16 * 1024 * 1024
LOW_BANDWIDTH_WINDOW_S = 0.15
"""In low-bandwidth mode, window/level changes are rendered at most this often."""


class ViewerScreen(Screen[None]):
    """Slices of one stack from instance ``start`` on; ``stacks`` (every stack of the study)
    allow next/previous series and the side-by-side."""

    CSS_PATH = "viewer.tcss"
    AUTO_FOCUS = ""  # the hidden go-to box would otherwise take every key
    BINDINGS = VIEWER_BINDINGS

    def __init__(
        self,
        records: Sequence[InstanceRecord],
        start: int = 0,
        *,
        stacks: Sequence[Sequence[InstanceRecord]] | None = None,
        priors: Sequence[Sequence[InstanceRecord]] | None = None,
        frame_cache_bytes: int = DEFAULT_FRAME_CACHE_BYTES,
        arriving: ArrivingSeries | None = None,
        job: RetrieveJob | None = None,
    ) -> None:
        """``arriving`` and ``job``: ``records`` are the first instances of a series that
        ``job`` is still retrieving; the stack grows as the rest lands."""
        super().__init__()
        self.stacks: list[list[InstanceRecord]] = [list(s) for s in stacks or [] if s]
        self.priors: list[list[InstanceRecord]] = [list(s) for s in priors or [] if s]
        """Stacks of the patient's other studies: offered for side by side, not for n/p."""
        records = list(records)
        own = [r.sop_instance_uid for r in records]
        keys = [[r.sop_instance_uid for r in s] for s in self.stacks]
        if own not in keys:
            self.stacks.insert(0, records)
        self.stack_pos = keys.index(own) if own in keys else 0
        self.frame_cache_bytes = frame_cache_bytes
        self.job = job
        self.arrivals = ArrivingStudy(arriving) if arriving is not None else None
        """Every series of the study while it arrives (the others grow too)."""
        self.stack = self._new_stack(self.stack_pos, records, half=False, arriving=arriving)
        """The stack of the left pane, the one the user reads."""
        first = records[start] if 0 <= start < len(records) else None
        self.stack.index = next((i for i, r in enumerate(self.slices) if r.record is first), 0)
        self.view = ViewState()
        self.presets: list[Preset] = []
        self.low_bandwidth = False
        """Set from the workstation on compose (``--low-bandwidth`` or ``[ui]``)."""
        self.player = Cine(self, self._cine_tick)
        self._throttle = Throttle(self, LOW_BANDWIDTH_WINDOW_S, self._render_all)
        self.texts_visible = True
        self.tags_visible = False
        self.keys = KeyImageMarks(self)
        """The key images of this study (the report editor's, else the saved draft's)."""

    def _new_stack(
        self,
        position: int,
        records: Sequence[InstanceRecord],
        *,
        half: bool,
        arriving: ArrivingSeries | None = None,
    ) -> Stack:
        share = 2 if half else 1
        if arriving is not None:
            arriving.add(records)
            records = arriving.records_by_slot()
        return Stack(
            records,
            stack=position,
            max_bytes=self.frame_cache_bytes // share,
            rendered_bytes=RENDERED_CACHE_BYTES // share,
            arriving=arriving,
        )

    # ---- what the keys and tests see --------------------------------------------------------
    @property
    def slices(self) -> list[SliceRef]:
        return self.stack.slices

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
    def link(self) -> Stack | None:
        """The stack shown beside this one, if any."""
        return self.body.link

    @property
    def body(self) -> ViewerBody:
        return self.query_one(ViewerBody)

    @property
    def pane(self) -> StackPane:
        return self.body.pane

    @property
    def link_pane(self) -> StackPane:
        return self.body.link_pane

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
    def cine(self) -> Timer | None:
        return self.player.timer

    @property
    def fps(self) -> int:
        return self.player.fps

    def study_in_view(self) -> StudyInView | None:
        """The study on show (ShowsStudy): F9 opens its report."""
        if not self.slices:
            return None
        record = self.slices[self.index].record
        return StudyInView(record.study_uid, record.path, None)

    # ---- layout -----------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        self.low_bandwidth = lean = workstation(self).low_bandwidth
        self.player.lean(lean)
        yield ViewerBody(self.decision, self.stack, low_bandwidth=lean, id="viewer")
        yield Input(placeholder="Slice number, or a percentage like 50% (Esc cancels)", id="goto")
        yield Static("", id="readout")
        yield Static("", id="badge")
        yield Static(self.decision.explanation(), id="why")
        yield KeyFooter()  # ranked and fitted to the width; ctrl+p still opens the palette
        if self.job is not None and self.stack.arriving is not None:
            yield ArrivalFeed(self.job, self.stack.arriving)

    def on_mount(self) -> None:
        if self.decision.warning:
            self.notify(self.decision.warning, title="Graphics", severity="warning", timeout=10)
        self.query_one("#goto", Input).display = False
        self.query_one("#readout").display = False
        if not self.slices:
            waits = self.stack.arriving is not None
            none = "Waiting for the first image…" if waits else "No image in this stack."
            self.body.set_slice_text(none)
            return
        self.keys.load(self.slices[0].record.study_uid)
        self._update_texts()
        self.call_after_refresh(self.pane.request)

    def on_screen_resume(self) -> None:
        if self.slices:  # the report editor may have changed the key images
            self.keys.load(self.slices[0].record.study_uid)
        self._update_texts()

    def on_resize(self, event: events.Resize) -> None:
        # The panes re-render when their own size changes (ImageView.Resized).
        self._relayout(event.size.width)

    def _relayout(self, width: int | None = None) -> None:
        self.body.relayout(
            width if width is not None else self.size.width,
            texts_visible=self.texts_visible,
            tags=self.tags_visible,
            linked=self.link is not None,
        )

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
        pane.update_title()
        if pane is not self.pane:
            self.body.update_link_text()
            return
        loaded = pane.shown_slice()
        if loaded is not None and not self.presets:
            self.presets = views.image_presets(loaded, workstation(self).config.presets)
        index = self.stack.shown_index
        if (
            self.link is not None
            and index is not None
            and slice_position(self.slices[index]) is None
        ):
            self._follow()  # a frame's position is known only once it is loaded
        if self.tags_visible and index is not None:
            self.tag_panel.at(self.slices[index], index, len(self.slices))
            self.tag_panel.schedule()
        self._update_texts()

    @on(StackPane.Waiting)
    def _pane_waiting(self, message: StackPane.Waiting) -> None:
        if message.pane is self.pane:
            self._update_texts()

    # ---- a series still arriving ------------------------------------------------------------
    @on(ArrivalFeed.Arrived)
    def _arrived(self, message: ArrivalFeed.Arrived) -> None:
        """Put what landed into its slots; the reader waiting on one of them sees it at once."""
        stack = self.stack
        series = stack.arriving
        if series is not None and (message.records or message.listed):
            opened = series.count == 0
            sop = stack.slices[stack.index].record.sop_instance_uid if stack.slices else ""
            moved = series.relist(message.listed)  # the C-FIND answered more
            moved = series.add(message.records) or moved
            if opened and series.count:  # the first slice is in: show it
                sop = series.nearest(series.slot(sop) or 0) or sop
                self.keys.load(series.study_uid)
            if moved or (opened and series.count):  # same slice, new index
                self.stack = self._new_stack(self.stack_pos, [], half=False, arriving=series)
                self.stack.index = series.slot(sop) or 0
                self.pane.replace_stack(self.stack)
                self.request_render()
                self._lead_retrieve()
            elif stack.index in stack.fill():
                self.request_render()
            self.stacks[self.stack_pos] = list(series.records.values())
        if self.arrivals is not None:
            self._others_grew(message)
        if message.stacks:
            self._settle(message.stacks, message.job)
        elif series is not None and not series.count and message.job.finished:
            self._nothing_arrived(message.job)
        self._update_texts()

    def _lead_retrieve(self) -> None:
        """The retrieve brings next what the reader is looking at, the way they scroll."""
        series, job = self.stack.arriving, self.job
        if series is None or job is None or job.focus is None:
            return
        sop, way = series.order[self.stack.index], self.stack.direction
        job.focus.set(series.series_uid, sop, -way if series.turned else way)

    def _others_grew(self, message: ArrivalFeed.Arrived) -> None:
        """The series besides the one on show appear and grow (n/p reach them at once)."""
        assert self.arrivals is not None
        current = self.stack.arriving
        for series in self.arrivals.take(message.records, message.job.inventory, current):
            uid = series.series_uid
            places = [k for k, s in enumerate(self.stacks) if s and s[0].series_uid == uid]
            if len(places) > 1 or (places and places[0] == self.stack_pos):
                continue  # settled from disk into several stacks, or the one on show
            if places:
                self.stacks[places[0]] = self.arrivals.arrived(series)
            else:
                self.stacks.append(self.arrivals.arrived(series))

    def _nothing_arrived(self, job: RetrieveJob) -> None:
        """The retrieve ended before any image came: say why, back to where the reader was."""
        error = f" {job.error}" if job.error else ""
        self.notify(f"Retrieve {job.id} {job.state}: no image arrived.{error}", severity="error")
        if self.is_current:
            self.app.pop_screen()

    def _settle(self, stacks: list[list[InstanceRecord]], job: RetrieveJob) -> None:
        """The series is complete or the retrieve ended: the stacks on disk from now on, at the
        slice on show (or the nearest that arrived)."""
        stack, series = self.stack, self.stack.arriving
        self.stacks = [list(s) for s in stacks]
        where = settled(series, stack.index, stacks) if series is not None else None
        if series is None and stack.slices:  # the ordinary viewer: the same stack, anew placed
            sop = stack.slices[0].record.sop_instance_uid
            found = [k for k, s in enumerate(stacks) if any(r.sop_instance_uid == sop for r in s)]
            self.stack_pos = stack.stack = found[0] if found else self.stack_pos
        if series is None or where is None:
            return  # the ordinary viewer already (a later series ended), or nothing to show
        self.stack_pos = position = where.position
        if where.same:
            stack.arriving = None  # complete, and in the order the slots had: nothing moves
            stack.stack = position
            return
        self.stack = self._new_stack(position, stacks[position], half=False)
        self.stack.source.frames = stack.source.frames  # decoded frames stay valid
        self.stack.index = where.index
        self.pane.replace_stack(self.stack)
        self.request_render()
        if job.finished and not series.complete:
            self.notify(
                f"The retrieve {job.state}: {series.count} of {series.total} slices of this "
                "series arrived (F4: the retrieve queue resumes the rest).",
                severity="warning",
                timeout=8,
            )

    @on(StackPane.Failed)
    def _pane_failed(self, message: StackPane.Failed) -> None:
        stack = message.pane.stack
        if stack is None:
            return
        name = stack.slices[message.job.index].path.name
        reason = shown(f"⚠ {name}: {message.reason}", "bold red")
        self.query_one("#badge" if message.pane is self.pane else "#link-info", Static).update(
            reason
        )
        self.notify(message.reason, title=f"Cannot show {name}", severity="error")

    @on(StackPane.PointerChanged)
    def _update_readout(self) -> None:
        widget = self.query_one("#readout", Static)
        text = self.pane.pointer_text()
        widget.display = bool(text)
        if text:
            widget.update(shown(text))

    # ---- texts ------------------------------------------------------------------------------
    def _slice_text(self) -> str:
        stack = self.stack
        text = texts.slice_text(
            stack.slices, stack.index, stack.shown_index, self.stack_pos, len(self.stacks)
        )
        if stack.arriving is not None:
            text += "\n" + stack.arriving.progress_text()
        return self.keys.text(self.slices[self.index], text)

    def _update_texts(self) -> None:
        if not self.slices:
            return
        self.body.set_slice_text(self._slice_text())
        if self.stack.arriving is not None and self.stack.waiting():
            self.query_one("#badge", Static).update(
                self.stack.arriving.waiting_text(self.index), layout=False
            )
            return
        now = self.pane.shown
        if now is None:
            return
        self.body.show(now, self.fps if self.player.running else None)
        mapping = self.pane.mapping
        step = max(mapping.step_x, mapping.step_y) if mapping is not None else 1.0
        badge = badge_text(self.image_view.shown, now.image, step, low_bandwidth=self.low_bandwidth)
        widget = self.query_one("#badge", Static)
        if widget.content != badge:
            widget.update(badge, layout=False)
        self._update_readout()

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
        self._lead_retrieve()
        self.request_render()
        self._follow()
        if stack.shown_index != index and stack.coalescer.pending is not None:
            # A held key: show where it is heading while the renders catch up. Otherwise the
            # frame arrives within a screen update or two and brings its texts along.
            self.body.set_slice_text(self._slice_text())

    def action_step(self, delta: int) -> None:
        self.go(self.index + delta)

    def action_arrow(self, dx: int, dy: int) -> None:
        if self.pane.pointer.active:
            self.pane.move_cursor(dx, dy)
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

    # ---- cine, cursor, ruler ----------------------------------------------------------------
    def action_cine(self) -> None:
        self.player.toggle()
        self._update_texts()

    def _cine_tick(self) -> None:
        if self.slices:
            self.stack.direction = 1
            self.go((self.index + 1) % len(self.slices))

    def action_fps(self, delta: int) -> None:
        self.notify(self.player.faster(delta), timeout=1.5)
        self._update_texts()

    def action_cursor(self) -> None:
        if self.pane.toggle_cursor():
            self.notify("Cursor: arrows move 1 pixel, Shift+arrows 10; c or Esc ends.", timeout=3)

    def action_measure(self) -> None:
        if not self.pane.pointer.active:
            self.action_cursor()
        refusal = self.pane.measure()
        if refusal is not None:
            self.notify(refusal)

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

    # ---- key images -------------------------------------------------------------------------
    def action_key_image(self) -> None:
        """Mark the slice (frame) on show as a key image of the study's report, or unmark it."""
        if self.slices:
            self.keys.toggle(self.slices[self.index])
            self.body.set_slice_text(self._slice_text())

    def action_key_images(self) -> None:
        """The key images of this study; the one chosen is shown."""
        if self.slices:
            self.keys.choose(self.slices[0].record.study_uid, self.stacks, self._jump)

    def _jump(self, stack: int, index: int) -> None:
        if stack != self.stack_pos:
            self.show_series(stack)
        self.go(index)

    # ---- side by side -----------------------------------------------------------------------
    def _beside(self) -> list[list[InstanceRecord]]:
        """What can be shown beside the current stack: this study's stacks, then priors."""
        return self.stacks + self.priors

    def _stack_label(self, position: int) -> str:
        return texts.series_label(self._beside()[position], prior=position >= len(self.stacks))

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
        share = 2 if self.link is not None else 1
        self.pane.limit(self.frame_cache_bytes // share, RENDERED_CACHE_BYTES // share)

    def open_link(self, position: int) -> None:
        """Show stack ``position`` of the study (or a prior) beside the current one."""
        self.close_link()
        link = self._new_stack(position, self._beside()[position], half=True)
        placed = self.body.open_link(link, self.view)
        self._share_budget()
        if not placed:
            self.notify(
                f"{self._stack_label(position)} cannot be linked by position (no Image "
                "Position/Orientation): it stays on its first slice.",
                severity="warning",
            )
        self._relayout()

    def close_link(self) -> None:
        """Back to one stack."""
        if self.link is not None:
            self.body.close_link()
            self._share_budget()
            self._relayout()

    def _follow(self) -> None:
        """Move the linked stack to the plane nearest the left slice."""
        self.body.follow(self.view)

    def action_volume(self) -> None:
        """Axial, coronal and sagittal of this stack at this slice (Esc comes back here)."""
        from tuiviewer.screens.volume import open_volume

        if self.slices:
            ref = self.slices[self.index]
            start = f"{ref.record.sop_instance_uid}#{ref.frame}"
            open_volume(
                self,
                self.stacks[self.stack_pos],
                start,
                stacks=self.stacks,
                priors=self.priors,
                arriving=self.stack.arriving,
            )

    # ---- series, texts, help, leaving -------------------------------------------------------
    def action_series(self, delta: int) -> None:
        if len(self.stacks) < 2:
            self.notify("This study has no other series to show.", severity="warning")
            return
        self.show_series((self.stack_pos + delta) % len(self.stacks))

    def show_series(self, position: int) -> None:
        """Stack ``position`` of the study on the left pane, at the same anatomy."""
        current = self.slices[self.index].record.image_position if self.slices else None
        self.stack_pos = position
        records = self.stacks[position]
        growing = self.arrivals.series_for(records[0].series_uid) if self.arrivals else None
        if growing is not None and growing.complete:
            growing = None  # all in: the ordinary stack
        self.stack = stack = self._new_stack(position, records, half=False, arriving=growing)
        if growing is not None:
            self.query_one(ArrivalFeed).series = growing  # still arriving: it grows in view
        self.pane.replace_stack(stack)
        self.presets = []
        self.pane.reset_pointer()
        stack.index = views.nearest_slice(stack.slices, current)
        if self.link is not None:
            self._share_budget()
        self._update_texts()
        self.request_render()
        self._follow()

    def action_texts(self) -> None:
        self.texts_visible = not self.texts_visible
        self._relayout()

    def action_help(self) -> None:
        text = help_text(self.BINDINGS, self.presets, self.decision.explanation())
        self.app.push_screen(HelpScreen(text))

    def action_back(self) -> None:
        goto = self.query_one("#goto", Input)
        if goto.display:
            goto.display = False
            self.set_focus(None)
            return
        if self.focused is not None:  # the tag tree: Esc gives the keys back to the image
            self.set_focus(None)
            return
        if self.pane.pointer.active:
            self.action_cursor()
            return
        if self.link is not None:
            self.close_link()
            return
        self.player.stop()
        self.app.pop_screen()
