"""One stack on screen: its image view, its stack and the render pipeline that fills the view.

The viewer has one pane for the stack the user reads and one for the stack shown beside it (a
future MPR view would have three); each decodes and renders in its own thread worker and shows
the result itself. At most one render per pane is in flight (its stack's
:class:`~tuiviewer.services.viewer.caches.RenderCoalescer`): requests made meanwhile collapse
to the latest, so a held key skips slices instead of queueing renders, and a result older than
what is shown is dropped. Neighbouring slices are decoded ahead in the scroll direction.
What the pane showed, or failed to show, reaches the screen as :class:`StackPane.Shown` and
:class:`StackPane.Failed`; the screen owns the view (window, zoom, ...) both panes share.

The pane also owns what belongs to its image alone: the cursor and the ruler (a click, the
arrows in cursor mode; :class:`StackPane.PointerChanged` tells the screen the readout changed),
following another pane by position (the side-by-side) and its caption, and the title line that
keeps patient, ID, study date and series on the pane when the column of texts gives way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from textual import events, on, work
from textual.app import ComposeResult
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static
from textual.worker import Worker, WorkerState, get_current_worker

from tuiviewer.exceptions import TuiviewerError
from tuiviewer.graphics.probe import GraphicsDecision
from tuiviewer.messages import FrameRendered, RenderFailed
from tuiviewer.services.viewer.geometry import Vector, ViewMapping, slice_position, view_mapping
from tuiviewer.services.viewer.marks import Marks, Pointer, draw_marks
from tuiviewer.services.viewer.slices import LoadedSlice, RenderJob, ViewState, prefetch_order
from tuiviewer.services.viewer.stack import Stack, render_job, size_for
from tuiviewer.services.viewer.texts import link_caption, pane_title
from tuiviewer.widgets.image.view import ImageView
from tuiviewer.widgets.safe import shown


class LinkedImageView(ImageView):
    """The image of a pane beside the first: the wheel and a drag act as on the first image, a
    click does not (the cursor belongs to the first image)."""

    def on_click(self, event: events.Click) -> None:
        event.prevent_default()


class StackPane(Widget):
    """An image view and the stack it shows, rendered in a worker of its own."""

    DEFAULT_CSS = """
    StackPane {
        width: 1fr;
        height: 1fr;
    }
    StackPane > .pane-title {
        display: none;
        width: 1fr;
        height: 2;
        text-wrap: nowrap;
        text-overflow: ellipsis;
        color: $text;
    }
    """

    @dataclass
    class Shown(Message):
        """A new frame of ``pane`` is ready (``pane.shown``): the screen draws it with
        :meth:`redraw` in the same update as the texts that describe it."""

        pane: StackPane

    @dataclass
    class Failed(Message):
        """A slice of ``pane`` could not be read or rendered."""

        pane: StackPane
        job: RenderJob
        reason: str

    @dataclass
    class Waiting(Message):
        """The slice asked for has not arrived yet (a series still being retrieved): the
        image is blank until it lands."""

        pane: StackPane

    @dataclass
    class PointerChanged(Message):
        """The cursor or the ruler of ``pane`` moved: its readout (:meth:`pointer_text`)
        changed."""

        pane: StackPane

    def __init__(
        self,
        decision: GraphicsDecision,
        *,
        stack: Stack | None = None,
        low_bandwidth: bool = False,
        linked: bool = False,
        view_id: str,
        id: str | None = None,  # noqa: A002
    ) -> None:
        super().__init__(id=id)
        self.decision = decision
        self.low_bandwidth = low_bandwidth
        self.linked = linked
        self.view_id = view_id
        self.stack = stack
        """The stack shown (None: nothing, e.g. a closed side-by-side)."""
        self.view = ViewState()
        """How to show it (window, zoom, ...): the screen's, which both panes share."""
        self.shown: FrameRendered | None = None
        """The frame on screen, with what it was rendered from."""
        self.mapping: ViewMapping | None = None
        """Where the source pixels of the frame on screen are in the rendered image."""
        self.marks: Marks = (None, None)
        self.pointer = Pointer()
        """The cursor and the ruler of this image."""
        self._seq = 0
        self._handed_over = False

    def compose(self) -> ComposeResult:
        yield Static("", classes="pane-title")
        cls = LinkedImageView if self.linked else ImageView
        yield cls(self.decision, low_bandwidth=self.low_bandwidth, id=self.view_id)

    # ---- the title line: who and what, when the column of texts is hidden ------------------
    def show_title(self, visible: bool) -> None:
        self.query_one(".pane-title").display = visible
        self.update_title()

    def update_title(self) -> None:
        title = self.query_one(".pane-title", Static)
        loaded = self.shown_slice()
        if not title.display or loaded is None:
            return
        content = shown(pane_title(loaded.info), lines=True)
        if title.content != content:
            title.update(content, layout=False)  # fixed size: no repaint of the image

    @property
    def image_view(self) -> ImageView:
        return self.query_one(ImageView)

    # ---- what is shown ----------------------------------------------------------------------
    def set_stack(self, stack: Stack | None) -> None:
        """Show ``stack`` from now on (None: nothing): its renders and reads start afresh."""
        self.workers.cancel_group(self, "render")
        self.workers.cancel_group(self, "prefetch")
        self.stack = stack
        self.shown = None
        self.mapping = None
        if stack is None:
            self.image_view.clear()

    def replace_stack(self, stack: Stack) -> None:
        """Move on to ``stack`` (another series of the same pane): a render still running for
        the old one finishes and hands over to the new one's request, as a held key does."""
        if self.stack is not None:
            stack.coalescer = self.stack.coalescer
        self.stack = stack
        self._handed_over = True  # what is in flight is the old stack's, even at this index
        self.shown = None
        self.mapping = None

    @staticmethod
    def cache_key(job: RenderJob) -> tuple[object, ...]:
        return (job.stack, job.index, job.state, job.box, job.cap_to_source, job.pixel_aspect)

    def request(self) -> None:
        """Ask for the stack's current slice with :attr:`view`; ready at once when rendered
        already, else rendered in the pane's worker (or after the one running)."""
        stack = self.stack
        if stack is None or not stack.slices:
            return
        if stack.waiting():
            self.shown = None
            self.mapping = None
            self.image_view.clear()
            self.post_message(self.Waiting(self))
            return
        box = self.image_view.pixel_box()
        if box is None:
            return
        self._seq += 1
        job = RenderJob(
            seq=self._seq,
            stack=stack.stack,
            index=stack.index,
            state=self.view,
            box=box,
            cap_to_source=self.image_view.native_pixels,
            pixel_aspect=self.image_view.pixel_aspect,
            asked_at=time.perf_counter(),
        )
        image = stack.rendered.get(self.cache_key(job))
        ref = stack.slices[stack.index]
        loaded = stack.source.frames.get((ref.path, ref.frame))
        if image is not None and loaded is not None:
            self._display(FrameRendered(job, image, loaded, size_for(job, loaded), stack))
            return
        running = stack.coalescer.in_flight
        handed_over, self._handed_over = self._handed_over, False
        if running is not None and stack.coalescer.pending is None and not handed_over:
            if self.cache_key(running) == self.cache_key(job):
                return  # already being rendered (a resize and a key asked for the same frame)
        start = stack.coalescer.request(job)
        if start is not None:
            self.render_slice(stack, start)

    def on_image_view_resized(self, message: ImageView.Resized) -> None:
        message.stop()
        self.request()

    # ---- rendering --------------------------------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="render", description="Render")
    def render_slice(self, stack: Stack, job: RenderJob) -> None:
        try:
            done = render_job(stack.source, job, get_current_worker().cancelled_event)
        except TuiviewerError as exc:
            self.post_message(RenderFailed(job, exc.message, stack))
            return
        if done is not None:
            self.post_message(FrameRendered(job, *done, stack))

    @work(thread=True, exclusive=True, exit_on_error=False, group="prefetch", description="Read")
    def prefetch(self, stack: Stack, indices: list[int]) -> None:
        cancel = get_current_worker().cancelled_event
        for index in indices:
            if cancel.is_set():
                return
            try:
                stack.source.load(index, cancel)
            except TuiviewerError:
                continue  # shown as an error when the user gets there

    def _next(self, stack: Stack) -> None:
        """The render of ``stack`` ended: start the one waiting, else decode ahead."""
        following = stack.coalescer.finished()
        current = self.stack
        if current is None or current.coalescer is not stack.coalescer:
            return  # closed, or the renders of a stack no longer shown
        if following is not None:
            self.render_slice(current, following)
        elif current.shown_index is not None:
            order = prefetch_order(current.shown_index, current.direction, len(current.slices))
            self.prefetch(current, [i for i in order if not current.waiting(i)])

    @on(FrameRendered)
    def _frame_rendered(self, message: FrameRendered) -> None:
        message.stop()
        stack = message.stack
        stack.rendered.put(self.cache_key(message.job), message.image, message.image.pixels.nbytes)
        self._next(stack)
        self._display(message)

    @on(RenderFailed)
    def _render_failed(self, message: RenderFailed) -> None:
        message.stop()
        self._next(message.stack)
        if message.stack is self.stack:
            self.post_message(self.Failed(self, message.job, message.reason))

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group == "render" and event.state == WorkerState.ERROR:
            if self.stack is not None:
                self._next(self.stack)
            error = worker.error
            message = error.message if isinstance(error, TuiviewerError) else repr(error)
            self.notify(f"Render failed: {message}", severity="error")

    def _display(self, message: FrameRendered) -> None:
        stack, job = message.stack, message.job
        if stack is not self.stack or job.seq < stack.shown_seq:
            return  # another stack is shown now, or a newer frame is up
        stack.shown_seq = job.seq
        stack.shown_index = job.index
        self.shown = message
        frame = message.loaded.frame
        self.mapping = view_mapping(
            frame.rows, frame.columns, frame.pixel_spacing, message.size, job.state.zoom,
            job.state.pan, job.pixel_aspect,
        )  # fmt: skip
        self.post_message(self.Shown(self))

    def set_marks(self, marks: Marks) -> None:
        """Draw the cursor and ruler into the frame on screen (and every frame after)."""
        self.marks = marks
        self.redraw()

    # ---- cursor and ruler -------------------------------------------------------------------
    def _pointer_moved(self) -> None:
        self.set_marks(self.pointer.marks())
        self.post_message(self.PointerChanged(self))

    def toggle_cursor(self) -> bool:
        """Cursor mode on (at the centre of the image the first time) or off; whether on."""
        loaded = self.shown_slice()
        centre = (loaded.frame.columns // 2, loaded.frame.rows // 2) if loaded else (0, 0)
        self.pointer.toggle(centre)
        self._pointer_moved()
        return self.pointer.active

    def move_cursor(self, dx: int, dy: int) -> None:
        loaded = self.shown_slice()
        if loaded is None or self.pointer.cursor is None:
            return
        self.pointer.move(dx, dy, loaded.frame.columns, loaded.frame.rows)
        self._pointer_moved()

    def measure(self) -> str | None:
        """The ruler's start, or its end, or start over; a sentence when it cannot."""
        refusal = self.pointer.mark()
        if refusal is None:
            self._pointer_moved()
        return refusal

    def reset_pointer(self, *, keep_cursor: bool = False) -> None:
        """No ruler and cursor mode off; the cursor forgotten too unless ``keep_cursor``
        (r keeps where it was, another series does not)."""
        cursor = self.pointer.cursor
        self.pointer.reset()
        if keep_cursor:
            self.pointer.cursor = cursor
        self._pointer_moved()

    def pointer_text(self) -> str:
        """The readout: the pixel under the cursor and its value, the ruler's length."""
        return self.pointer.text(self.shown_slice())

    def on_image_view_clicked(self, message: ImageView.Clicked) -> None:
        message.stop()
        mapping, loaded = self.mapping, self.shown_slice()
        if mapping is None or loaded is None:
            return
        col, row = mapping.to_source(message.x, message.y)
        if 0 <= col < loaded.frame.columns and 0 <= row < loaded.frame.rows:
            self.pointer.cursor = (col, row)
            self.pointer.active = True
            self._pointer_moved()

    # ---- position: the side-by-side ---------------------------------------------------------
    def position(self) -> Vector | None:
        """Where the slice asked for lies (from the file's header, else once it is loaded)."""
        stack = self.stack
        if stack is None or not stack.slices:
            return None
        position = slice_position(stack.slices[stack.index])
        loaded = self.shown_slice()
        if position is None and loaded is not None and stack.shown_index == stack.index:
            position = loaded.info.position
        return position

    def follow(self, position: Vector | None) -> bool:
        """Move to the slice nearest ``position`` (rendered if it moved); False when this
        stack cannot be placed by position."""
        stack = self.stack
        if stack is None:
            return False
        if not stack.follow(position):
            return False
        self.request()
        return True

    def caption(self, left: Vector | None) -> str | None:
        """Where this (linked) pane's slice lies, and how far from ``left``."""
        stack = self.stack
        if stack is None or not stack.slices:
            return None
        where = stack.geometry.location_of(left) if left is not None else None
        return link_caption(
            [ref.record for ref in stack.slices[:1]],
            stack.index,
            len(stack),
            stack.shown_index,
            stack.geometry.locations[stack.index],
            where,
        )

    def redraw(self) -> None:
        """Send the frame that is ready, with the marks drawn in (nothing if it was sent)."""
        message = self.shown
        if message is None or self.mapping is None:
            return
        cursor, ruler = self.marks
        pixels = draw_marks(message.image.pixels, self.mapping, cursor, ruler)
        # A newer frame already being rendered means keys are coming: a draft may do.
        key = (*self.cache_key(message.job), cursor, ruler)
        self.image_view.show(pixels, key, hurry=message.stack.coalescer.busy)

    def shown_slice(self) -> LoadedSlice | None:
        """The decoded slice on screen, if any."""
        return self.shown.loaded if self.shown is not None else None

    def limit(self, frame_bytes: int, rendered_bytes: int) -> None:
        """Change the memory budget of the stack's decoded and rendered frames."""
        if self.stack is not None:
            self.stack.source.frames.limit(frame_bytes)
            self.stack.rendered.limit(rendered_bytes)
