"""The slice viewer: one stack of a study, scrolled, windowed, zoomed, measured, with keys.

Decoding and rendering run in a thread worker; its result comes back as :class:`FrameRendered`.
At most one render is in flight (:class:`tuiviewer.viewing.RenderCoalescer`): keys that arrive
meanwhile only move the target, so a held key skips slices instead of queueing renders, and a
result older than what is on screen is dropped. Neighbouring slices are decoded ahead in the
scroll direction, into a cache bounded in bytes; rendered frames are kept in a second, small
byte-bounded cache so scrolling back or looping a cine costs nothing. The corner texts live
beside the image rather than over it, so no graphics protocol has to share cells with text.

Two extras follow the slice on screen. The tag panel (``t``) reads the tags of the slice the
user stops on: the read is debounced, so scrolling through a stack does not read every file on
the way. The side-by-side (``b``) shows a second stack of the study beside the first, linked by
position along the slice normal (not by index, so a 5 mm prior follows a 2.5 mm study); it has
its own caches and coalescer, and shares the view (window, invert, zoom, pan) with the left.

Low-bandwidth mode (``--low-bandwidth`` or ``[ui] low_bandwidth``, for SSH over a thin link)
quantises what the image widget sends and repaints only the rows that changed, renders
window/level changes at most every :data:`LOW_BANDWIDTH_WINDOW_S` while keys repeat or the
mouse drags, caps cine at :data:`LOW_BANDWIDTH_FPS`, and says so in the badge.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.timer import Timer
from textual.widgets import Footer, Input, Static
from textual.worker import Worker, WorkerState, get_current_worker

from tuiviewer.config import Config
from tuiviewer.dicom.display import display_date
from tuiviewer.dicom.loading import LoadedFile, load_file
from tuiviewer.dicom.scanning import InstanceRecord
from tuiviewer.exceptions import TuiviewerError
from tuiviewer.messages import FrameRendered, RenderFailed
from tuiviewer.render.lut import Window, full_range_window
from tuiviewer.render.pipeline import RenderedImage, RenderRequest, render_frame
from tuiviewer.render.presets import Preset, presets_for
from tuiviewer.screens.dialogs.choose import ChooseDialog
from tuiviewer.viewing import (
    DEFAULT_FRAME_CACHE_BYTES,
    ByteLRU,
    LinkedStack,
    LoadedSlice,
    RenderCoalescer,
    RenderJob,
    SliceSource,
    StackGeometry,
    ViewMapping,
    ViewState,
    adjust_window,
    capped_box,
    draw_marks,
    edge_labels,
    goto_index,
    measure,
    prefetch_order,
    readout,
    slice_position,
    slices_of,
    view_mapping,
)
from tuiviewer.widgets.image.probe import GraphicsDecision, GraphicsMode
from tuiviewer.widgets.image.view import ImageView, badge_text
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
TAGS_DEBOUNCE_S = 0.15
"""The tag panel reads a slice once it has stayed on screen this long (a held key never does)."""


class HelpScreen(ModalScreen[None]):
    """Every viewer key, from the viewer's own bindings."""

    BINDINGS = [Binding("escape,question_mark,q", "app.pop_screen", "Close")]

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Static("Viewer keys", classes="dialog-title")
            with VerticalScroll():
                yield Static(self.text, id="help-text")
            yield Static("Esc or ? closes.", classes="dialog-hint")


def _keys(binding: Binding) -> str:
    names = {
        "question_mark": "?",
        "plus": "+",
        "minus": "-",
        "space": "Space",
        "escape": "Esc",
        "pageup": "PgUp",
        "pagedown": "PgDn",
        "full_stop": ".",
    }
    return " ".join(names.get(k, k) for k in binding.key.split(","))


class LinkedImageView(ImageView):
    """The right image of a side-by-side: the wheel and a drag act as on the left image, a
    click does not (the cursor belongs to the left image)."""

    def on_click(self, event: events.Click) -> None:
        event.prevent_default()


class ViewerScreen(Screen[None]):
    """Slices of one stack from instance ``start`` on; ``stacks`` (every stack of the study)
    allow next/previous series and the side-by-side."""

    @dataclass
    class TagsLoaded(Message):
        """The tags of a file were read for the tag panel."""

        loaded: LoadedFile

    @dataclass
    class TagsFailed(Message):
        """A file could not be read for the tag panel."""

        path: Path
        reason: str

    @dataclass
    class LinkRendered(Message):
        """A slice of the linked (right) stack was rendered."""

        link: LinkedStack
        job: RenderJob
        image: RenderedImage
        loaded: LoadedSlice
        size: tuple[int, int] | None

    @dataclass
    class LinkFailed(Message):
        """A slice of the linked (right) stack could not be read or rendered."""

        link: LinkedStack
        job: RenderJob
        reason: str

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
        self.slices = slices_of(records)
        self.source = SliceSource(self.slices, max_bytes=frame_cache_bytes)
        first = records[start] if 0 <= start < len(records) else None
        self.index = next((i for i, ref in enumerate(self.slices) if ref.record is first), 0)
        """The slice the user asked for (what is shown once its render arrives)."""
        self.shown_index: int | None = None
        self.view = ViewState()
        self.coalescer: RenderCoalescer[RenderJob] = RenderCoalescer()
        self.rendered: ByteLRU[tuple[object, ...], RenderedImage] = ByteLRU(RENDERED_CACHE_BYTES)
        self.presets: list[Preset] = []
        self.direction = 1
        self.cursor: tuple[int, int] | None = None
        self.cursor_mode = False
        self.ruler: list[tuple[int, int]] = []
        self.low_bandwidth = False
        """Set from the app on mount (``--low-bandwidth`` or ``[ui] low_bandwidth``)."""
        self.fps = 10
        self.cine: Timer | None = None
        self._window_timer: Timer | None = None
        self._window_rendered_at = -math.inf
        self.texts_visible = True
        self._seq = 0
        self._shown_seq = -1
        self._shown: FrameRendered | None = None
        self._mapping: ViewMapping | None = None
        self.failures: list[str] = []
        self.tags_visible = False
        self.tags_reads = 0
        """Files read for the tag panel (a held key must not read one per slice)."""
        self._tags_timer: Timer | None = None
        self._tags_wanted: Path | None = None
        self._tags_loaded: LoadedFile | None = None
        self.link: LinkedStack | None = None
        """The stack shown beside this one, if any."""

    # ---- layout -----------------------------------------------------------------------------
    @property
    def decision(self) -> GraphicsDecision:
        decision = getattr(self.app, "graphics", None)
        if isinstance(decision, GraphicsDecision):
            return decision
        return GraphicsDecision(GraphicsMode.HALFCELL, "default")

    @property
    def fps_max(self) -> int:
        return LOW_BANDWIDTH_FPS if self.low_bandwidth else FPS_MAX

    def compose(self) -> ComposeResult:
        self.low_bandwidth = bool(getattr(self.app, "low_bandwidth", False))
        self.fps = min(self.fps, self.fps_max)
        lean = self.low_bandwidth
        with Horizontal(id="viewer"):
            with Vertical(id="info-left", classes="info"):
                yield Static("", id="overlay-tl")
                yield Static("", classes="spacer")
                yield Static("", id="overlay-bl")
            with Vertical(id="centre"):
                yield Static("", id="edge-top", classes="edge")
                with Horizontal(id="middle"):
                    yield Static("", id="edge-left", classes="edge side")
                    yield ImageView(self.decision, low_bandwidth=lean, id="image")
                    yield LinkedImageView(self.decision, low_bandwidth=lean, id="image-link")
                    yield Static("", id="edge-right", classes="edge side")
                yield Static("", id="edge-bottom", classes="edge")
                yield Static("", id="link-info")
            with Vertical(id="info-right", classes="info"):
                yield Static("", id="overlay-tr")
                yield Static("", classes="spacer")
                yield Static("", id="overlay-br")
            with Vertical(id="tags-panel"):
                yield Static("", id="tags-title")
                yield TagTree(id="tags")
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
            self.query_one("#overlay-tr", Static).update("No image in this stack.")
            return
        self._update_texts()
        self.call_after_refresh(self.request_render)

    def on_resize(self, event: events.Resize) -> None:
        # The image views re-render when their own size changes (ImageView.Resized).
        self._relayout(event.size.width)

    def _relayout(self, width: int | None = None) -> None:
        """Column widths and what is visible (each image view re-renders on its own resize)."""
        wide = (width if width is not None else self.size.width) >= 110
        # Narrow terminals give the image the room: the texts wrap in slimmer columns.
        for info in self.query(".info"):
            info.styles.width = 24 if wide else 16
        # Patient, study and series are in the tag tree, and the side-by-side caption says
        # where each image lies, so the left column gives way to the panel or the second image.
        self.query_one("#info-left").display = self.texts_visible and not (
            self.tags_visible or self.link is not None
        )
        self.query_one("#info-right").display = self.texts_visible
        panel = self.query_one("#tags-panel")
        panel.display = self.tags_visible
        panel.styles.width = 44 if wide else 30
        self.query_one("#image-link").display = self.link is not None
        self.query_one("#link-info").display = self.link is not None

    def _render_all(self) -> None:
        self.request_render()
        self.request_link_render()

    @property
    def image_view(self) -> ImageView:
        return self.query_one("#image", ImageView)

    @property
    def link_view(self) -> ImageView:
        return self.query_one("#image-link", ImageView)

    # ---- rendering --------------------------------------------------------------------------
    def _job(self) -> RenderJob | None:
        box = self.image_view.pixel_box()
        if box is None or not self.slices:
            return None
        self._seq += 1
        return RenderJob(
            seq=self._seq,
            stack=self.stack_pos,
            index=self.index,
            state=self.view,
            box=box,
            cap_to_source=self.image_view.native_pixels,
            pixel_aspect=self.image_view.pixel_aspect,
            asked_at=time.perf_counter(),
        )

    @staticmethod
    def _cache_key(job: RenderJob) -> tuple[object, ...]:
        return (job.stack, job.index, job.state, job.box, job.cap_to_source, job.pixel_aspect)

    def request_render(self) -> None:
        """Ask for the current slice and view; shown at once when already rendered."""
        job = self._job()
        if job is None:
            return
        image = self.rendered.get(self._cache_key(job))
        loaded = self.source.frames.get(self._slice_key(job.index))
        if image is not None and loaded is not None:
            self._display(FrameRendered(job, image, loaded, self._size_for(job, loaded)))
            return
        running = self.coalescer.in_flight
        if running is not None and self.coalescer.pending is None:
            if self._cache_key(running) == self._cache_key(job):
                return  # already being rendered (a resize and a key asked for the same frame)
        start = self.coalescer.request(job)
        if start is not None:
            self.render_slice(start)

    def _slice_key(self, index: int) -> tuple[Path, int]:
        ref = self.slices[index]
        return (ref.path, ref.frame)

    @staticmethod
    def _size_for(job: RenderJob, loaded: LoadedSlice) -> tuple[int, int] | None:
        if job.box is None or not job.cap_to_source:
            return job.box
        frame = loaded.frame
        return capped_box(frame.rows, frame.columns, frame.pixel_spacing, job.box)

    @classmethod
    def _render_job(
        cls, source: SliceSource, job: RenderJob
    ) -> tuple[RenderedImage, LoadedSlice, tuple[int, int] | None] | None:
        """Decode and render ``job`` (in a worker thread); None when cancelled first."""
        loaded = source.load(job.index, get_current_worker().cancelled_event)
        if loaded is None:
            return None
        size = cls._size_for(job, loaded)
        state = job.state
        request = RenderRequest(
            frame=loaded.frame.index,
            window=state.window,
            invert=state.invert,
            overlays=state.overlays,
            size=size,
            zoom=state.zoom,
            pan=state.pan,
            pixel_aspect=job.pixel_aspect,
        )
        return render_frame(loaded.ds, loaded.frame, request), loaded, size

    @work(thread=True, exclusive=True, exit_on_error=False, group="render", description="Render")
    def render_slice(self, job: RenderJob) -> None:
        try:
            done = self._render_job(self.source, job)
        except TuiviewerError as exc:
            self.post_message(RenderFailed(job, exc.message))
            return
        if done is not None:
            self.post_message(FrameRendered(job, *done))

    def _next(self) -> None:
        following = self.coalescer.finished()
        if following is not None:
            self.render_slice(following)
        elif self.shown_index is not None:
            self.prefetch(prefetch_order(self.shown_index, self.direction, len(self.slices)))

    @on(FrameRendered)
    def _frame_rendered(self, message: FrameRendered) -> None:
        self.rendered.put(self._cache_key(message.job), message.image, message.image.pixels.nbytes)
        self._next()
        self._display(message)

    @on(RenderFailed)
    def _render_failed(self, message: RenderFailed) -> None:
        self._next()
        if message.job.stack != self.stack_pos:
            return
        self.failures.append(message.reason)
        name = self.slices[message.job.index].path.name
        self.query_one("#badge", Static).update(Text(f"⚠ {name}: {message.reason}", "bold red"))
        self.notify(message.reason, title=f"Cannot show {name}", severity="error")

    @work(thread=True, exclusive=True, exit_on_error=False, group="prefetch", description="Read")
    def prefetch(self, indices: list[int]) -> None:
        self._prefetch(self.source, indices)

    @staticmethod
    def _prefetch(source: SliceSource, indices: list[int]) -> None:
        cancel = get_current_worker().cancelled_event
        for index in indices:
            if cancel.is_set():
                return
            try:
                source.load(index, cancel)
            except TuiviewerError:
                continue  # shown as an error when the user gets there

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group == "render" and event.state == WorkerState.ERROR:
            self._next()
            error = worker.error
            message = error.message if isinstance(error, TuiviewerError) else repr(error)
            self.notify(f"Render failed: {message}", severity="error")
        elif worker.group == "link" and event.state == WorkerState.ERROR:
            if self.link is not None:
                self._next_link(self.link)
            self.notify(f"Render failed: {worker.error!r}", severity="error")
        elif worker.group == "tags" and event.state == WorkerState.ERROR:
            self._tags_wanted = None
            self.notify(f"Reading the tags failed: {worker.error!r}", severity="error")

    def _display(self, message: FrameRendered) -> None:
        job = message.job
        if job.stack != self.stack_pos or job.seq < self._shown_seq:
            return  # stale: the user has moved on to another series, or a newer frame is up
        self._shown_seq = job.seq
        self._shown = message
        self.shown_index = job.index
        if not self.presets:
            self.presets = self._presets_for(message.loaded)
        if self.link is not None and slice_position(self.slices[job.index]) is None:
            self._follow()  # a frame's position is known only once it is loaded
        if self.tags_visible:
            self._schedule_tags()
        frame = message.loaded.frame
        self._mapping = view_mapping(
            frame.rows, frame.columns, frame.pixel_spacing, message.size, job.state.zoom,
            job.state.pan, job.pixel_aspect,
        )  # fmt: skip
        self._redraw()
        self._update_texts()

    def _redraw(self) -> None:
        message = self._shown
        if message is None or self._mapping is None:
            return
        cursor = self.cursor if self.cursor_mode else None
        ruler = (self.ruler[0], self.ruler[1]) if len(self.ruler) == 2 else None
        if len(self.ruler) == 1 and cursor is not None:
            ruler = (self.ruler[0], cursor)
        pixels = draw_marks(message.image.pixels, self._mapping, cursor, ruler)
        job = message.job
        # A newer frame already being rendered means keys are coming: a draft may do.
        key = (*self._cache_key(job), cursor, ruler)
        self.image_view.show(pixels, key, hurry=self.coalescer.busy)

    def _presets_for(self, loaded: LoadedSlice) -> list[Preset]:
        if not loaded.frame.is_grey:
            return []
        values = None if loaded.info.modality == "CT" else loaded.frame.values()
        config = getattr(self.app, "config", None)
        overrides = config.presets if isinstance(config, Config) else None
        return presets_for(
            loaded.info.modality, loaded.ds, values, overrides=overrides, frame=loaded.frame.index
        )

    # ---- texts ------------------------------------------------------------------------------
    def _set(self, selector: str, content: str | Text) -> None:
        """Update a text only when it changed, without a layout pass (their sizes are fixed)."""
        widget = self.query_one(selector, Static)
        if widget.content != content:
            widget.update(content, layout=False)

    def _slice_text(self) -> str:
        ref = self.slices[self.index]
        text = f"slice {self.index + 1}/{len(self.slices)}"
        if self.shown_index is not None and self.shown_index != self.index:
            text += " …"
        if ref.frames > 1:
            text += f"\nframe {ref.frame + 1}/{ref.frames}"
        if len(self.stacks) > 1:
            text += f"\nseries {self.stack_pos + 1}/{len(self.stacks)}"
        return text

    def _update_texts(self) -> None:
        if not self.slices:
            return
        shown = self._shown
        self._set("#overlay-tr", self._slice_text())
        if shown is None:
            return
        info = shown.loaded.info
        self._set("#overlay-tl", f"{info.patient}\n{info.study}\n{info.series}")
        lines = []
        if info.position is not None:
            x, y, z = info.position  # patient coordinates (LPS), mm
            lines += [f"x {x:.1f} y {y:.1f}", f"z {z:.1f}"]
        elif info.slice_location is not None:
            lines.append(f"loc {info.slice_location:.1f}")
        if info.thickness is not None:
            lines.append(f"thick {info.thickness:g} mm")
        self._set("#overlay-bl", "\n".join(lines))
        self._set("#overlay-br", self._view_text(shown))
        labels = edge_labels(info.orientation)
        for side in ("top", "bottom", "left", "right"):
            self._set(f"#edge-{side}", getattr(labels, side) if labels else "")
        self._update_badge(shown.image)
        self._update_readout()

    def _view_text(self, shown: FrameRendered) -> str:
        state = shown.job.state
        window = shown.image.window
        lines = []
        if window is not None:
            name = state.preset or window.explanation or ("file" if state.window is None else "")
            lines.append(f"W {window.width:g} L {window.center:g}" + (f" {name}" if name else ""))
        elif shown.image.notes:
            lines.append(shown.image.notes[0])
        lines.append(f"zoom {state.zoom:.2f}×")
        if state.invert:
            lines.append("inverted")
        if self.cine is not None:
            lines.append(f"cine {self.fps} fps")
        return "\n".join(lines)

    def _update_badge(self, image: RenderedImage) -> None:
        mapping = self._mapping
        step = max(mapping.step_x, mapping.step_y) if mapping is not None else 1.0
        shown = self.image_view.shown
        self._set("#badge", badge_text(shown, image, step, low_bandwidth=self.low_bandwidth))

    def _update_readout(self) -> None:
        widget = self.query_one("#readout", Static)
        shown = self._shown
        if not self.cursor_mode or self.cursor is None or shown is None:
            widget.display = bool(self.ruler)
            if not self.ruler:
                return
        parts = []
        if self.cursor_mode and self.cursor is not None and shown is not None:
            parts.append(readout(shown.loaded.frame, *self.cursor, shown.loaded.info.units))
        if len(self.ruler) == 2 and shown is not None:
            frame = shown.loaded.frame
            spacing, kind = frame.pixel_spacing, frame.spacing_kind
            distance = measure(self.ruler[0], self.ruler[1], spacing, kind)
            parts.append(f"distance {distance.text}")
        elif len(self.ruler) == 1:
            parts.append("ruler: move the cursor, m sets the end")
        widget.display = bool(parts)
        widget.update("  ·  ".join(parts))

    # ---- slices -----------------------------------------------------------------------------
    def go(self, index: int) -> None:
        """Show slice ``index`` (clamped to the stack)."""
        if not self.slices:
            return
        index = min(max(index, 0), len(self.slices) - 1)
        if index == self.index and self.shown_index == index:
            return
        if index != self.index:
            self.direction = 1 if index > self.index else -1
        self.index = index
        self.request_render()
        self._follow()
        if self.shown_index != index and self.coalescer.pending is not None:
            # A held key: show where it is heading while the renders catch up. Otherwise the
            # frame arrives within a screen update or two and brings its texts along; an extra
            # text-only update would only delay it by one screen refresh.
            self._set("#overlay-tr", self._slice_text())

    def action_step(self, delta: int) -> None:
        self.go(self.index + delta)

    def action_arrow(self, dx: int, dy: int) -> None:
        if self.cursor_mode:
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

    def on_image_view_resized(self, message: ImageView.Resized) -> None:
        if message.view is self.image_view:
            self.request_render()
        else:
            self.request_link_render()

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
        shown = self._shown
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
        mapping = self._mapping
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
        self.cursor_mode = False
        self.ruler = []
        self._set_view(ViewState())
        self._redraw()
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
            self.direction = 1
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
    def _centre_pixel(self) -> tuple[int, int]:
        shown = self._shown
        if shown is None:
            return (0, 0)
        return (shown.loaded.frame.columns // 2, shown.loaded.frame.rows // 2)

    def action_cursor(self) -> None:
        self.cursor_mode = not self.cursor_mode
        if self.cursor_mode and self.cursor is None:
            self.cursor = self._centre_pixel()
        if self.cursor_mode:
            self.notify("Cursor: arrows move 1 pixel, Shift+arrows 10; c or Esc ends.", timeout=3)
        self._redraw()
        self._update_readout()

    def _move_cursor(self, dx: int, dy: int) -> None:
        shown = self._shown
        if shown is None or self.cursor is None:
            return
        frame = shown.loaded.frame
        col = min(max(self.cursor[0] + dx, 0), frame.columns - 1)
        row = min(max(self.cursor[1] + dy, 0), frame.rows - 1)
        self.cursor = (col, row)
        self._redraw()
        self._update_readout()

    def on_image_view_clicked(self, message: ImageView.Clicked) -> None:
        if self._mapping is None or self._shown is None:
            return
        col, row = self._mapping.to_source(message.x, message.y)
        frame = self._shown.loaded.frame
        if 0 <= col < frame.columns and 0 <= row < frame.rows:
            self.cursor = (col, row)
            self.cursor_mode = True
            self._redraw()
            self._update_readout()

    def action_measure(self) -> None:
        if not self.cursor_mode:
            self.action_cursor()
        if self.cursor is None:
            return
        if len(self.ruler) == 2:
            self.ruler = []
        elif len(self.ruler) == 1 and self.ruler[0] == self.cursor:
            self.notify("Move the cursor away from the start before setting the end.")
            return
        else:
            self.ruler.append(self.cursor)
        self._redraw()
        self._update_readout()

    # ---- tag panel --------------------------------------------------------------------------
    @property
    def tag_tree(self) -> TagTree:
        return self.query_one("#tags", TagTree)

    def action_tags(self) -> None:
        self.tags_visible = not self.tags_visible
        if not self.tags_visible:
            if self._tags_timer is not None:
                self._tags_timer.stop()
                self._tags_timer = None
            if self.focused is self.tag_tree:
                self.set_focus(None)
        self._relayout()
        if self.tags_visible:
            self._read_tags()  # asked for: no reason to wait

    def _schedule_tags(self) -> None:
        """Read the tags once the slice on screen has stayed there for a moment."""
        if self._tags_timer is not None:
            self._tags_timer.stop()
        self._tags_timer = self.set_timer(TAGS_DEBOUNCE_S, self._read_tags)
        self._update_tags_title()

    def _read_tags(self) -> None:
        self._tags_timer = None
        if not self.tags_visible or self.shown_index is None:
            return
        path = self.slices[self.shown_index].path
        loaded = self._tags_loaded
        if (loaded is not None and loaded.path == path) or self._tags_wanted == path:
            self._update_tags_title()  # another frame of the same object, or already on its way
            return
        self._tags_wanted = path
        self.tags_reads += 1
        self._update_tags_title()
        self.read_tags(path)

    @work(thread=True, exclusive=True, exit_on_error=False, group="tags", description="Tags")
    def read_tags(self, path: Path) -> None:
        try:
            loaded = load_file(path)
        except TuiviewerError as exc:
            self.post_message(self.TagsFailed(path, exc.message))
            return
        self.post_message(self.TagsLoaded(loaded))

    @on(TagsLoaded)
    def _tags_loaded_message(self, message: TagsLoaded) -> None:
        if message.loaded.path != self._tags_wanted:
            return  # the user has moved on; the newer read is under way
        self._tags_wanted = None
        self._tags_loaded = message.loaded
        tree = self.tag_tree
        # The element the reader follows (say Slice Location) stays under the cursor.
        keep = tree.cursor_path if tree.rows else None
        tree.show(message.loaded, keep_path=keep)
        self._update_tags_title()

    @on(TagsFailed)
    def _tags_failed(self, message: TagsFailed) -> None:
        if message.path != self._tags_wanted:
            return
        self._tags_wanted = None
        self._tags_loaded = None
        self.tag_tree.clear()
        self._set("#tags-title", Text(f"⚠ {message.path.name}: {message.reason}", "bold red"))

    def _update_tags_title(self) -> None:
        """Two lines: which slice (or frame) the tags belong to, then the file."""
        if not self.tags_visible or not self.slices:
            return
        loaded = self._tags_loaded
        index = self.shown_index if self.shown_index is not None else self.index
        ref = self.slices[index]
        if loaded is None or loaded.path != ref.path:
            self._set("#tags-title", f"Tags · reading slice {index + 1} …\n{ref.path.name}")
            return
        where = f"slice {index + 1}/{len(self.slices)}"
        if ref.frames > 1:
            where = f"frame {ref.frame + 1}/{ref.frames} (whole object)"
        self._set("#tags-title", f"Tags · {where}\n{loaded.path.name}")

    def action_key_image(self) -> None:
        """Mark the slice (frame) on screen as a key image of the study's report."""
        marker = getattr(self.app, "mark_key_image", None)
        if marker is None or not self.slices:
            return
        ref = self.slices[self.index]
        # A frame number only for multi-frame objects (dciodvfy rejects it otherwise).
        marker(ref.record, ref.frame + 1 if ref.frames > 1 else None)

    # ---- side by side -----------------------------------------------------------------------
    def _beside(self) -> list[list[InstanceRecord]]:
        """What can be shown beside the current stack: this study's stacks, then priors."""
        return self.stacks + self.priors

    def _stack_label(self, position: int) -> str:
        records = self._beside()[position]
        first = records[0]
        number = first.series_number if first.series_number is not None else "?"
        label = f"#{number} {first.modality} {first.series_description}".rstrip()
        if position >= len(self.stacks):
            date = first.study_date
            date = display_date(date) or "?"
            label = f"prior {date}: {label}"
        slices = slices_of(records)
        label += f" · {len(slices)} {'image' if len(slices) == 1 else 'images'}"
        spacing = StackGeometry.of(slices).spacing
        if spacing is not None:
            label += f" · {spacing:g} mm apart"
        return label

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
        linked = self.link is not None
        self.source.frames.limit(self.frame_cache_bytes // 2 if linked else self.frame_cache_bytes)
        self.rendered.limit(RENDERED_CACHE_BYTES // 2 if linked else RENDERED_CACHE_BYTES)

    def open_link(self, position: int) -> None:
        """Show stack ``position`` of :attr:`stacks` beside the current one, linked by position."""
        self.close_link()
        link = LinkedStack(
            self._beside()[position],
            stack=position,
            max_bytes=self.frame_cache_bytes // 2,
            rendered_bytes=RENDERED_CACHE_BYTES // 2,
        )
        self.link = link
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
        self.workers.cancel_group(self, "link")
        self.workers.cancel_group(self, "link-prefetch")
        self.link_view.clear()
        self._share_budget()
        self._relayout()

    def _left_position(self) -> tuple[float, float, float] | None:
        if not self.slices:
            return None
        position = slice_position(self.slices[self.index])
        shown = self._shown
        if position is None and shown is not None and self.shown_index == self.index:
            position = shown.loaded.info.position
        return position

    def _follow(self) -> None:
        """Move the linked stack to the plane nearest the left slice."""
        link = self.link
        if link is None:
            return
        if link.follow(self._left_position()):
            self.request_link_render()
        self._update_link_text()

    def request_link_render(self) -> None:
        link = self.link
        if link is None or not link.slices:
            return
        box = self.link_view.pixel_box()
        if box is None:
            return
        self._seq += 1
        job = RenderJob(
            seq=self._seq,
            stack=link.stack,
            index=link.index,
            state=self.view,
            box=box,
            cap_to_source=self.link_view.native_pixels,
            pixel_aspect=self.link_view.pixel_aspect,
            asked_at=time.perf_counter(),
        )
        image = link.rendered.get(self._cache_key(job))
        ref = link.slices[link.index]
        loaded = link.source.frames.get((ref.path, ref.frame))
        if image is not None and loaded is not None:
            size = self._size_for(job, loaded)
            self._display_link(self.LinkRendered(link, job, image, loaded, size))
            return
        running = link.coalescer.in_flight
        if running is not None and link.coalescer.pending is None:
            if self._cache_key(running) == self._cache_key(job):
                return
        start = link.coalescer.request(job)
        if start is not None:
            self.render_link(link, start)

    @work(thread=True, exclusive=True, exit_on_error=False, group="link", description="Render")
    def render_link(self, link: LinkedStack, job: RenderJob) -> None:
        try:
            done = self._render_job(link.source, job)
        except TuiviewerError as exc:
            self.post_message(self.LinkFailed(link, job, exc.message))
            return
        if done is not None:
            self.post_message(self.LinkRendered(link, job, *done))

    @work(thread=True, exclusive=True, exit_on_error=False, group="link-prefetch")
    def prefetch_link(self, link: LinkedStack, indices: list[int]) -> None:
        self._prefetch(link.source, indices)

    def _next_link(self, link: LinkedStack) -> None:
        following = link.coalescer.finished()
        if link is not self.link:
            return
        if following is not None:
            self.render_link(link, following)
        elif link.shown_index is not None:
            self.prefetch_link(
                link, prefetch_order(link.shown_index, link.direction, len(link.slices))
            )

    @on(LinkRendered)
    def _link_rendered(self, message: LinkRendered) -> None:
        link = message.link
        link.rendered.put(self._cache_key(message.job), message.image, message.image.pixels.nbytes)
        self._next_link(link)
        self._display_link(message)

    @on(LinkFailed)
    def _link_failed(self, message: LinkFailed) -> None:
        self._next_link(message.link)
        if message.link is not self.link:
            return
        name = message.link.slices[message.job.index].path.name
        self._set("#link-info", Text(f"⚠ {name}: {message.reason}", "bold red"))
        self.notify(message.reason, title=f"Cannot show {name}", severity="error")

    def _display_link(self, message: LinkRendered) -> None:
        link, job = message.link, message.job
        if link is not self.link or job.seq < link.shown_seq:
            return  # closed, or a newer frame is up
        link.shown_seq = job.seq
        link.shown_index = job.index
        self.link_view.show(message.image.pixels, self._cache_key(job), hurry=link.coalescer.busy)
        self._update_link_text()

    def _update_link_text(self) -> None:
        link = self.link
        if link is None or not link.slices:
            return
        first = link.slices[0].record
        number = first.series_number if first.series_number is not None else "?"
        series = f"#{number} {first.modality} {first.series_description}".rstrip()
        text = f"right: slice {link.index + 1}/{len(link)}"
        if link.shown_index != link.index:
            text += " …"
        location = link.geometry.locations[link.index]
        position = self._left_position()
        left = link.geometry.location_of(position) if position is not None else None
        if location is None or left is None:
            text += " · not linked: no slice position"
        else:
            text += f" at {location:.1f} mm (left {left:.1f}, Δ {location - left:+.1f})"
        self._set("#link-info", f"{text} · {series} · view shared")

    # ---- series, texts, help, leaving -------------------------------------------------------
    def action_series(self, delta: int) -> None:
        if len(self.stacks) < 2:
            self.notify("This study has no other series to show.", severity="warning")
            return
        current = self.slices[self.index].record.image_position if self.slices else None
        self.stack_pos = (self.stack_pos + delta) % len(self.stacks)
        self.slices = slices_of(self.stacks[self.stack_pos])
        self.source = SliceSource(self.slices, max_bytes=self.frame_cache_bytes)
        self.rendered.clear()
        self.presets = []
        self.ruler = []
        self.cursor = None
        self.cursor_mode = False
        self.shown_index = None
        self.index = self._nearest(current)
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
                lines.append(f"{_keys(binding):>14}  {binding.description}")
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
        if self.cursor_mode:
            self.action_cursor()
            return
        if self.link is not None:
            self.close_link()
            return
        self.stop_cine()
        self.app.pop_screen()
