"""The volume screen: axial, coronal and sagittal reformats of the series in view, a crosshair
they share, slabs, and ROIs and lengths that go into the report.

Opened from the viewer (``M``) on the series and slice on show; Esc comes back to the viewer as
it was. The series is read into a volume in a worker (:func:`tuiviewer.render.volume.load_volume`,
within its memory budget); a series that is not a volume says why, and nothing else happens.
All the rules (where a key moves the crosshair, slab steps, what a measurement measures) live in
:mod:`tuiviewer.services.viewer.volume_view`; this screen routes keys, runs the renders of every
visible pane in one worker (one at a time: keys that arrive meanwhile collapse into the next
render, so a held key skips positions instead of queueing them) and writes the texts.

Measurements: ``m`` (length), ``e`` (ellipse), ``r`` (rectangle) start at the crosshair in the
active pane, the arrows move the other end, the same key finishes and ``Esc`` drops the one being
drawn. Finished ones are kept in the study's
:class:`~tuiviewer.reports.measurements.MeasurementStore` at once (so a dropped link loses
nothing), where the report picks them up (text and TID 1500 SR); ``l`` lists them to remove one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Static
from textual.worker import Worker, WorkerState, get_current_worker

from tuiviewer.dicom.scanning import InstanceRecord
from tuiviewer.exceptions import TuiviewerError
from tuiviewer.graphics.probe import GraphicsDecision
from tuiviewer.render.lut import Window
from tuiviewer.render.mpr import Plane, PlaneImage
from tuiviewer.render.presets import Preset, presets_for
from tuiviewer.render.volume import Rejected, Volume, load_volume
from tuiviewer.reports.measurements import Measurement, MeasurementKind
from tuiviewer.screens.base import StudyInView, workstation
from tuiviewer.screens.dialogs.choose import ChooseDialog
from tuiviewer.screens.dialogs.help import HelpScreen
from tuiviewer.screens.volume_keys import KINDS, VOLUME_BINDINGS, help_text
from tuiviewer.services.viewer import view as views
from tuiviewer.services.viewer import volume_view as vv
from tuiviewer.services.viewer.volume_view import Drawing, Drawn, Layout, PaneFrame, VolumeView
from tuiviewer.widgets.key_footer import KeyFooter
from tuiviewer.widgets.mpr_pane import MprPane
from tuiviewer.widgets.safe import shown


@dataclass
class VolumeLoaded(Message):
    """The series was read into a volume; ``rejected``: the slices left out and why."""

    volume: Volume
    rejected: tuple[Rejected, ...]


@dataclass
class VolumeFailed(Message):
    """The series is not a volume (or could not be read); ``reason`` says why."""

    reason: str


@dataclass
class VolumeProgress(Message):
    """``done`` of ``total`` files read."""

    done: int
    total: int

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, VolumeProgress)


@dataclass
class PanesRendered(Message):
    """The panes of ``view`` are ready."""

    view: VolumeView
    frames: list[PaneFrame]


def open_volume(screen: Screen[Any], records: Sequence[InstanceRecord], start: str) -> None:
    """Push the volume screen for ``records`` from ``screen`` (the viewer), or say at once why
    the series cannot be one (nothing else happens then)."""
    reason = vv.why_not_a_volume(records)
    if reason is not None:
        screen.notify(reason, title="No MPR", severity="warning", timeout=8)
        return
    screen.app.push_screen(VolumeScreen(records, start))


class VolumeScreen(Screen[None]):
    """MPR of one series: three panes (or one full size), a shared crosshair, measurements."""

    CSS_PATH = "volume.tcss"
    AUTO_FOCUS = ""
    BINDINGS = VOLUME_BINDINGS

    def __init__(self, records: Sequence[InstanceRecord], start: str | None = None) -> None:
        super().__init__()
        self.records = list(records)
        self.start = start
        """The viewer's slice (``"<SOP UID>#<frame>"``): where the crosshair starts."""
        self.volume: Volume | None = None
        self.view: VolumeView | None = None
        self.presets: list[Preset] = []
        self.problem: str | None = None
        """Why there is no volume, once that is known."""
        self.frames: dict[int, PaneFrame] = {}
        self.session: list[Drawn] = []
        """Measurements drawn in this screen (reformats included), to draw on their pane."""
        self.drawn_uids: dict[str, Drawn] = {}
        self.notes: list[str] = []
        """What the reader should know of the volume (gaps, tilt, averaging, slices left out)."""
        self._rendering = False
        self._dirty = False
        self.renders = 0
        """Renders started (a burst of keys makes fewer)."""
        self.last_step_ms: float | None = None
        """Time from a key to its panes shown, for the benchmark."""
        self._asked_at = 0.0

    @property
    def study_uid(self) -> str:
        return self.records[0].study_uid if self.records else ""

    def study_in_view(self) -> StudyInView | None:
        """The study on show (ShowsStudy): F9 opens its report."""
        if not self.records:
            return None
        return StudyInView(self.study_uid, self.records[0].path, None)

    @property
    def decision(self) -> GraphicsDecision:
        return workstation(self).graphics

    @property
    def panes(self) -> list[MprPane]:
        return list(self.query(MprPane))

    # ---- layout -----------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        lean = workstation(self).low_bandwidth
        with Horizontal(id="mpr-panes"):
            for pane in range(len(vv.PANES)):
                yield MprPane(self.decision, pane, low_bandwidth=lean, id=f"mpr-pane-{pane}")
        yield Static("Reading the series into a volume…", id="mpr-status", markup=False)
        yield Static("", id="mpr-info", markup=False)
        yield Static("", id="mpr-notes", markup=False)
        yield KeyFooter()  # ranked and fitted to the width; ctrl+p still opens the palette

    def on_mount(self) -> None:
        self.query_one("#mpr-panes").display = False
        for pane in self.panes:
            pane.set_edges(*vv.pane_edges(Plane.standard(vv.PANES[pane.pane])))
        reason = vv.why_not_a_volume(self.records)
        if reason is not None:
            self._failed(reason)
            return
        self.load([r.path for r in self.records])

    # ---- reading the volume -----------------------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="volume", description="Volume")
    def load(self, paths: list[object]) -> None:
        cancel = get_current_worker().cancelled_event
        unique = list(dict.fromkeys(paths))
        last = [0.0]

        def progress(done: int, total: int) -> None:
            now = time.monotonic()
            if now - last[0] > 0.1 or done == total:
                last[0] = now
                self.post_message(VolumeProgress(done, total))

        try:
            volume, rejected = load_volume(
                unique,  # type: ignore[arg-type]
                cancel=cancel,
                progress=progress,
            )
        except TuiviewerError as exc:
            self.post_message(VolumeFailed(exc.message))
            return
        if not cancel.is_set():
            self.post_message(VolumeLoaded(volume, rejected))

    @on(VolumeProgress)
    def _progress(self, message: VolumeProgress) -> None:
        self.query_one("#mpr-status", Static).update(
            f"Reading the series into a volume: {message.done} of {message.total} files…"
        )

    @on(VolumeFailed)
    def _volume_failed(self, message: VolumeFailed) -> None:
        self._failed(message.reason)

    def _failed(self, reason: str) -> None:
        self.problem = reason
        self.query_one("#mpr-status", Static).update(
            f"No MPR for this series: {reason}\nEsc goes back to the viewer."
        )
        self.notify(reason, title="Not a volume", severity="warning", timeout=10)

    @on(VolumeLoaded)
    def _volume_loaded(self, message: VolumeLoaded) -> None:
        volume = self.volume = message.volume
        self.view = VolumeView(at=vv.start_point(volume, self.start))
        k = volume.geometry.slices // 2
        values = None if volume.modality == "CT" else volume.slice_values(k)
        self.presets = presets_for(
            volume.modality, None, values, overrides=workstation(self).config.presets
        )
        self._reload_drawn()
        self.query_one("#mpr-status").display = False
        self.query_one("#mpr-panes").display = True
        notes = volume.notes()
        if message.rejected:
            count = len(message.rejected)
            first = message.rejected[0].reason
            notes.insert(0, f"{count} image{'s' if count != 1 else ''} left out ({first})")
            self.notify(
                f"{count} image(s) of this series are not part of the volume: {first}",
                title="MPR",
                severity="warning",
                timeout=8,
            )
        self.notes = notes
        self.refresh_bindings()  # the keys that need a volume are live now
        self._update()
        self.call_after_refresh(self.request_render)

    def _reload_drawn(self) -> None:
        if self.volume is None:
            return
        try:
            saved = workstation(self).measurements.load(self.study_uid)
        except TuiviewerError as exc:
            self.notify(exc.message, severity="error")
            return
        for m in saved:
            drawn = vv.drawn_of(m, self.volume)
            if drawn is not None:
                self.drawn_uids.setdefault(m.uid, drawn)

    # ---- rendering --------------------------------------------------------------------------
    def request_render(self) -> None:
        """Render the visible panes for the current view (after the render running, if any)."""
        volume, view = self.volume, self.view
        if volume is None or view is None:
            return
        self._asked_at = time.perf_counter()
        if self._rendering:
            self._dirty = True
            return
        panes = self.panes
        boxes = {}
        for index in view.visible:
            box = panes[index].pixel_box()
            if box is not None:
                boxes[index] = box
        if not boxes:
            return
        self._rendering = True
        self.renders += 1
        aspect = panes[view.active].image_view.pixel_aspect
        previous = [f.image for f in self.frames.values()]
        self.render_panes(volume, view, boxes, aspect, list(self.drawn_uids.values()), previous)

    @work(thread=True, exclusive=False, exit_on_error=False, group="mpr", description="MPR")
    def render_panes(
        self,
        volume: Volume,
        view: VolumeView,
        boxes: dict[int, tuple[int, int]],
        aspect: float,
        drawn: list[Drawn],
        previous: list[PlaneImage],
    ) -> None:
        cancel: threading.Event = get_current_worker().cancelled_event
        try:
            frames = vv.render_panes(
                volume, view, boxes, aspect=aspect, drawn=drawn, previous=previous, cancel=cancel
            )
        except TuiviewerError as exc:
            self.post_message(VolumeFailed(exc.message))
            frames = None
        self.post_message(PanesRendered(view, frames or []))

    @on(PanesRendered)
    def _rendered(self, message: PanesRendered) -> None:
        self._rendering = False
        for frame in message.frames:
            self.frames[frame.pane] = frame
            self.panes[frame.pane].show(frame, hurry=self._dirty)
        self._update(message.view)
        if self._dirty:
            self._dirty = False
            self.request_render()
        elif message.frames:
            self.last_step_ms = (time.perf_counter() - self._asked_at) * 1000

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        if event.state != WorkerState.ERROR:
            return
        error = event.worker.error
        reason = error.message if isinstance(error, TuiviewerError) else repr(error)
        if event.worker.group == "mpr":
            self._rendering = False
        self.notify(f"MPR failed: {reason}", severity="error")

    def on_image_view_resized(self, message: object) -> None:
        self.request_render()

    @on(MprPane.Pointed)
    def _pointed(self, message: MprPane.Pointed) -> None:
        if self.volume is not None and self.view is not None:
            self._set(vv.pointed(self.volume, self.view, message.pane, message.at))

    @on(MprPane.Scrolled)
    def _scrolled(self, message: MprPane.Scrolled) -> None:
        if self.volume is not None and self.view is not None:
            view = replace(self.view, active=message.pane)
            self._set(vv.moved_through(self.volume, view, message.step))

    # ---- texts ------------------------------------------------------------------------------
    def _update(self, shown_view: VolumeView | None = None) -> None:
        volume, view = self.volume, self.view
        if volume is None or view is None:
            return
        for pane in self.panes:
            frame = self.frames.get(pane.pane)
            image = frame.image if frame is not None else None
            pane.set_title(vv.pane_title(volume, view, pane.pane, None))
            pane.set_edges(*vv.pane_edges(view.plane_of(pane.pane)))
            pane.set_badge(image.fidelity.badge if image is not None else "")
            pane.set_active(pane.pane == view.active)
            visible = pane.pane in view.visible
            if pane.display != visible:
                pane.display = visible
        window = self._window_now()
        wl = f"W {window.width:g} L {window.center:g}" if window is not None else "W/L file"
        preset = f" {view.preset}" if view.preset else ""
        parts = [
            vv.PANES[view.active].capitalize(),
            vv.crosshair_text(volume, view),
            wl + preset + (" inverted" if view.invert else ""),
            f"slab {vv.slab_text(view)}",
        ]
        drawing = view.drawing
        if drawing is not None:
            key = {"length": "m", "angle": "v", "ellipse": "e", "rectangle": "r"}[
                drawing.kind.value
            ]
            step = "places the vertex" if drawing.kind is MeasurementKind.ANGLE else "ends"
            if drawing.vertex is not None:
                step = "ends"
            parts.append(f"drawing {drawing.kind.value}: arrows, {key} {step}, Esc drops")
        else:
            count = len(self._saved())
            if count:
                parts.append(f"{count} measurement{'s' if count != 1 else ''} (l)")
        self._update_notes()
        widget = self.query_one("#mpr-info", Static)
        content = shown(" · ".join(parts))
        if widget.content != content:
            widget.update(content, layout=False)  # fixed height: no layout pass per step

    def _update_notes(self) -> None:
        """How the active pane reaches the screen (protocol, pixels, greys), then the notes."""
        parts = []
        view = self.view
        now = self.panes[view.active].image_view.shown if view is not None else None
        if now is not None:
            what = f"{now.protocol} {now.width}×{now.height} px"
            if now.grey_levels is not None and now.source_greys is not None:
                if now.grey_levels < now.source_greys:
                    what += f", {now.grey_levels} of {now.source_greys} grey levels"
            if now.cheap:
                what += ", draft while keys repeat"
            parts.append(what)
        widget = self.query_one("#mpr-notes", Static)
        text = " · ".join([*parts, *self.notes])
        if str(widget.content) != text:
            widget.update(text, layout=False)

    def _saved(self) -> list[Measurement]:
        try:
            return workstation(self).measurements.load(self.study_uid)
        except TuiviewerError:
            return []

    # ---- keys -------------------------------------------------------------------------------
    def _set(self, view: VolumeView) -> None:
        if view != self.view:
            self.view = view
            self.request_render()
            if self._dirty or not self._rendering:
                # A held key (renders catching up) or nothing to render yet: say where it is
                # heading now. Otherwise the panes arrive within an update or two and bring
                # their texts along, in the same screen update.
                self._update()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("back", "help"):
            return True
        return self.view is not None

    def action_pane(self, delta: int) -> None:
        if self.view is not None:
            self._set(replace(self.view, active=(self.view.active + delta) % len(vv.PANES)))

    def action_layout(self) -> None:
        if self.view is not None:
            one = self.view.layout is Layout.THREE
            self._set(replace(self.view, layout=Layout.ONE if one else Layout.THREE))

    def action_move(self, dx: int, dy: int) -> None:
        if self.volume is not None and self.view is not None:
            self._set(vv.moved_in_plane(self.volume, self.view, dx, dy))

    def action_through(self, steps: int) -> None:
        if self.volume is not None and self.view is not None:
            self._set(vv.moved_through(self.volume, self.view, steps))

    def action_end(self, last: int) -> None:
        if self.volume is not None and self.view is not None:
            self._set(vv.moved_to_end(self.volume, self.view, bool(last)))

    def _window_now(self) -> Window | None:
        if self.view is None:
            return None
        if self.view.window is not None:
            return self.view.window
        frame = self.frames.get(self.view.active)
        if frame is not None:
            return frame.image.window
        windows = self.volume.windows if self.volume is not None else ()
        return windows[0] if windows else None  # what the first planes will be drawn with

    def action_window(self, level_steps: int, width_steps: int) -> None:
        window = self._window_now()
        if window is not None and self.view is not None:
            window = views.stepped_window(window, level_steps, width_steps)
            self._set(replace(self.view, window=window, preset=""))

    def action_preset(self, number: int) -> None:
        if self.view is None:
            return
        if not 1 <= number <= len(self.presets):
            names = ", ".join(f"{k} {p.name}" for k, p in enumerate(self.presets, 1))
            self.notify(f"No preset {number} ({names or 'none here'}).", severity="warning")
            return
        preset = self.presets[number - 1]
        self._set(replace(self.view, window=preset.window, preset=preset.name))

    def action_file_window(self) -> None:
        if self.view is not None:
            self._set(replace(self.view, window=None, preset=""))

    def action_invert(self) -> None:
        if self.view is not None:
            self._set(replace(self.view, invert=not self.view.invert))

    def action_projection(self) -> None:
        if self.view is not None:
            self._set(vv.next_projection(self.view))

    def action_slab(self, direction: int) -> None:
        if self.view is not None:
            self._set(vv.thicker(self.view, direction))

    def action_tilt(self, horizontal: int, vertical: int) -> None:
        if self.view is not None:
            self._set(vv.tilted(self.view, horizontal, vertical))

    def action_straighten(self) -> None:
        if self.view is not None:
            self._set(vv.straightened(self.view))

    def action_redraw(self) -> None:
        for pane in self.panes:
            pane.image_view.redraw()

    # ---- measurements -----------------------------------------------------------------------
    def action_draw(self, kind: str) -> None:
        volume, view = self.volume, self.view
        if volume is None or view is None:
            return
        wanted = KINDS[kind]
        drawing = view.drawing
        if drawing is None or drawing.kind is not wanted:
            self._set(replace(view, drawing=Drawing(wanted, view.active, view.at, view.plane)))
            return
        if wanted is MeasurementKind.ANGLE and drawing.vertex is None:
            self._set(replace(view, drawing=replace(drawing, vertex=view.at)))
            return
        count = len(self._saved()) + 1
        try:
            measurement = vv.measure(
                volume,
                drawing,
                view.at,
                view,
                self.records,
                label=f"{wanted.value.capitalize()} {count}",
            )
        except TuiviewerError as exc:
            self.notify(exc.message, severity="warning")
            return
        try:
            workstation(self).measurements.add(self.study_uid, measurement)
        except TuiviewerError as exc:
            self.notify(exc.message, title="Not saved", severity="error")
            return
        self.drawn_uids[measurement.uid] = Drawn(
            wanted, drawing.pane, drawing.start, view.at, drawing.vertex
        )
        self.notify(f"{measurement.name}: {measurement.summary}", title="Measured", timeout=6)
        self._set(replace(view, drawing=None))

    def action_list(self) -> None:
        saved = self._saved()
        if not saved:
            self.notify("No measurement in this study yet: m, e or r draws one.")
            return
        labels = [f"{m.name}: {m.summary}" + (f" ({m.where})" if m.where else "") for m in saved]

        def chosen(choice: int | None) -> None:
            if choice is None:
                return
            target = saved[choice]
            try:
                workstation(self).measurements.remove(self.study_uid, target.uid)
            except TuiviewerError as exc:
                self.notify(exc.message, severity="error")
                return
            self.drawn_uids.pop(target.uid, None)
            self.notify(f"{target.name} removed.")
            self._update()
            self.request_render()

        self.app.push_screen(
            ChooseDialog(
                f"Measurements of this study ({len(saved)})",
                labels,
                hint="Enter removes the chosen one; Esc keeps them all.",
            ),
            chosen,
        )

    # ---- help, leaving ----------------------------------------------------------------------
    def action_help(self) -> None:
        text = help_text(self.BINDINGS, self.presets)
        self.app.push_screen(HelpScreen(text, title="Volume keys"))

    def action_back(self) -> None:
        if self.view is not None and self.view.drawing is not None:
            self._set(replace(self.view, drawing=None))
            return
        self.workers.cancel_group(self, "volume")
        self.app.pop_screen()
