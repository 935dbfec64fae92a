"""The slice viewer: one stack of a study, scrolled, windowed, zoomed, measured, with keys.

This screen composes and routes. Each image is a :class:`~tuiviewer.widgets.stack_pane.StackPane`
that renders its own stack in a worker and owns its cursor, ruler and title; the arithmetic of
the keys is in :mod:`tuiviewer.services.viewer.view`, the keys and help in
:mod:`tuiviewer.screens.viewer_keys`, cine in :mod:`tuiviewer.widgets.cine`. The screen holds
what the panes share (the view: window, invert, zoom, pan). The corner texts live beside the
image and the readouts (window, cursor) over it, never on it, so no graphics protocol has to
share cells with text and the notifications (bottom right) never cover a readout.

The screen is made of parts, each a mixin in its own module on the shared state of
:class:`~tuiviewer.screens.viewer_base.ViewerParts`: the view keys (window, zoom, pan) in
:mod:`~tuiviewer.screens.viewer_view`, the side by side and series switching in
:mod:`~tuiviewer.screens.viewer_beside`, and what happens as a study still arriving lands in
:mod:`~tuiviewer.screens.viewer_arrival`. What is left here is the layout, the texts, stepping
through the slices, cine, the cursor, the tag panel, key images and leaving.

The tag panel (``t``) reads the tags of the slice the user stops on. The side-by-side (``b``)
shows a second stack of the study (or a prior) beside the first, linked by position along the
slice normal (not by index, so a 5 mm prior follows a 2.5 mm study). With either on, the column
of texts on the left gives way and each pane keeps patient, ID, study date and series on a title.

Low-bandwidth mode (``--low-bandwidth`` or ``[ui] low_bandwidth``) quantises what the image views
send and repaints only the rows that changed, renders window/level changes at most every
:data:`LOW_BANDWIDTH_WINDOW_S` while keys repeat or the mouse drags, caps cine, and says so.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from textual import events, on
from textual.app import App, ComposeResult
from textual.containers import Horizontal, Vertical
from textual.dom import DOMNode
from textual.widgets import Input, Static

from tuiviewer.dicom.scanning import InstanceRecord
from tuiviewer.render.presets import Preset
from tuiviewer.screens.base import StudyInView, workstation
from tuiviewer.screens.dialogs.help import HelpScreen
from tuiviewer.screens.viewer_arrival import ArrivalHooks
from tuiviewer.screens.viewer_beside import SideBySide
from tuiviewer.screens.viewer_keys import VIEWER_BINDINGS, help_text
from tuiviewer.screens.viewer_view import ViewControls
from tuiviewer.services.jobs import RetrieveJob
from tuiviewer.services.viewer import collector, texts
from tuiviewer.services.viewer import view as views
from tuiviewer.services.viewer.arrival import ArrivingSeries, ArrivingStudy
from tuiviewer.services.viewer.geometry import slice_position
from tuiviewer.services.viewer.slices import (
    DEFAULT_FRAME_CACHE_BYTES,
    ViewState,
    goto_index,
)
from tuiviewer.widgets.arrivals import ArrivalFeed
from tuiviewer.widgets.cine import Cine, Throttle
from tuiviewer.widgets.corner_texts import CornerTexts
from tuiviewer.widgets.image.view import ImageView, badge_text
from tuiviewer.widgets.key_footer import KeyFooter
from tuiviewer.widgets.key_images import KeyImageMarks
from tuiviewer.widgets.safe import shown
from tuiviewer.widgets.stack_pane import LinkedImageView, StackPane
from tuiviewer.widgets.tag_panel import TagPanel
from tuiviewer.widgets.viewer_body import ViewerBody

LOW_BANDWIDTH_WINDOW_S = 0.15
"""In low-bandwidth mode, window/level changes are rendered at most this often."""
COLLECT_AFTER_FIRST_S = 0.25
"""Garbage collection resumes this long after the first image is drawn (once it is sent)."""


_WIDGETS: tuple[type[DOMNode], ...] = (
    ViewerBody, CornerTexts, Horizontal, Vertical, StackPane, ImageView, LinkedImageView,
    TagPanel, Input, Static, KeyFooter, ArrivalFeed,
)  # fmt: skip
"""The widget classes a viewer is made of (their default styles are parsed ahead)."""


class _Bases:
    """What Textual's ``_get_default_css`` reads of a node, for a class (no instance)."""

    def __init__(self, cls: type[DOMNode]) -> None:
        self._node_bases = DOMNode._css_bases(cls)


def prepare_styles(app: App[Any]) -> None:
    """Parse the viewer's style sheet and its widgets' default styles now, at a quiet moment,
    not when the first viewer of the session is pushed: there Textual reparses every style
    sheet of the app (80-110 ms on a busy machine) between Enter and the viewer's layout, and
    the retrieve's thread waits for the event loop meanwhile. Once is enough."""
    sheet = app.stylesheet
    changed = False
    # As Textual makes a screen's CSS_PATH absolute, so that the push finds it read.
    path = str((Path(inspect.getfile(ViewerScreen)).parent / ViewerScreen.CSS_PATH).resolve())
    if not sheet.has_source(path):
        sheet.read(path)
        changed = True
    for cls in _WIDGETS:
        for read_from, css, tie_breaker, scope in DOMNode._get_default_css(_Bases(cls)):  # type: ignore[arg-type]
            if not sheet.has_source(*read_from):
                sheet.add_source(
                    css, read_from=read_from, is_default_css=True, tie_breaker=tie_breaker,
                    scope=scope,
                )  # fmt: skip
                changed = True
    if changed:
        sheet.reparse()
        sheet.update(app)


class ViewerScreen(ViewControls, SideBySide, ArrivalHooks):
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
        self._collector_held = False

    def study_in_view(self) -> StudyInView | None:
        """The study on show (ShowsStudy): F9 opens its report."""
        if not self.slices:
            return None
        record = self.slices[self.index].record
        return StudyInView(record.study_uid, record.path, None)

    # ---- layout -----------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        # No garbage collection (a pause of every thread, the retrieve's too) until the first
        # image is on screen: laying the viewer out would trigger a full one.
        self._hold_collector(True)
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

    def _hold_collector(self, held: bool) -> None:
        if held != self._collector_held:
            self._collector_held = held
            (collector.hold if held else collector.release)()

    def on_unmount(self) -> None:
        self._hold_collector(False)

    def on_mount(self) -> None:
        self.set_timer(collector.HOLD_LIMIT_S, lambda: self._hold_collector(False))
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

    # ---- what the panes show ----------------------------------------------------------------
    @on(StackPane.Shown)
    def _pane_shown(self, message: StackPane.Shown) -> None:
        pane = message.pane
        pane.redraw()
        pane.update_title()
        if pane is self.pane and self._collector_held:
            # The first image is on its way to the terminal: the collections held back since
            # Enter wait until the writer thread has sent it.
            self.set_timer(COLLECT_AFTER_FIRST_S, lambda: self._hold_collector(False))
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

    def on_image_view_refined(self, message: ImageView.Refined) -> None:
        self._update_texts()  # the badge: no longer "draft"

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

    # ---- the volume -------------------------------------------------------------------------
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
                arrivals=self.arrivals,
            )

    # ---- texts, help, leaving ---------------------------------------------------------------
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
