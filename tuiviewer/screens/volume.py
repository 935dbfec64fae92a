"""The volume screen: reformats of the series in view (and of other series of the study or of
a prior) in a layout of panes, a crosshair they share, slabs, zoom, and ROIs and lengths that go
into the report.

Opened from the viewer (``M``) on the series and slice on show; Esc comes back to the viewer as
it was. The first ``[[hanging]]`` rule of the config that matches the study lays the panes out
(else the three-pane MPR); each series a pane shows is read into a volume in a worker
(:func:`tuiviewer.render.volume.load_volume`), every volume within its share of one memory
budget. A series that is not a volume says why, and nothing else happens.

The rules live below Textual: the crosshair, slabs and measurements in
:mod:`tuiviewer.services.viewer.volume_view`, the panes, hanging rules and linked scrolling in
:mod:`tuiviewer.services.viewer.layouts`. This screen routes keys (the layout keys in
:mod:`tuiviewer.screens.volume_panes`, the measurement keys in
:mod:`tuiviewer.screens.volume_measure`), runs the renders of every visible pane in one worker
(one at a time: keys that arrive meanwhile collapse into the next render, so a held key skips
positions instead of queueing them) and writes the texts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Container
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Static
from textual.worker import Worker, WorkerState, get_current_worker

from tuiviewer.dicom.scanning import InstanceRecord
from tuiviewer.exceptions import TuiviewerError
from tuiviewer.graphics.probe import GraphicsDecision
from tuiviewer.render.lut import Window
from tuiviewer.render.mpr import Plane
from tuiviewer.render.presets import Preset
from tuiviewer.render.volume import DEFAULT_VOLUME_BYTES, Volume
from tuiviewer.screens.base import StudyInView, workstation
from tuiviewer.screens.dialogs.help import HelpScreen
from tuiviewer.screens.volume_keys import VOLUME_BINDINGS, help_text
from tuiviewer.screens.volume_loading import VolumeFailed, VolumeLoading
from tuiviewer.screens.volume_measure import MeasureActions
from tuiviewer.screens.volume_panes import LayoutActions
from tuiviewer.services.viewer import layout_texts as lt
from tuiviewer.services.viewer import layouts as ls
from tuiviewer.services.viewer import view as views
from tuiviewer.services.viewer import volume_view as vv
from tuiviewer.services.viewer.arrival import ArrivingSeries, ArrivingStudy
from tuiviewer.services.viewer.layouts import Hanging, PaneSpec, Source
from tuiviewer.services.viewer.volume_view import Drawn, PaneFrame, VolumeView
from tuiviewer.widgets.key_footer import KeyFooter
from tuiviewer.widgets.mpr_pane import MprPane
from tuiviewer.widgets.safe import shown

MAX_PANES = 4


@dataclass
class PanesRendered(Message):
    """The panes of ``view`` are ready."""

    view: VolumeView | None
    frames: list[PaneFrame]
    state: Hanging | None = None
    """The layout they were drawn for (each pane's zoom and pan)."""


def open_volume(
    screen: Screen[Any],
    records: Sequence[InstanceRecord],
    start: str,
    *,
    stacks: Sequence[Sequence[InstanceRecord]] = (),
    priors: Sequence[Sequence[InstanceRecord]] = (),
    arriving: ArrivingSeries | None = None,
    arrivals: ArrivingStudy | None = None,
) -> None:
    """Push the volume screen for ``records`` from ``screen`` (the viewer), or say at once why
    the series cannot be one (nothing else happens then). ``stacks`` and ``priors``: the
    study's other series and the patient's other studies, for the layouts; ``arriving``: the
    series while it arrives (``records`` are what landed), read as it lands; ``arrivals``: the
    study while it arrives, so the panes of its other series grow too."""
    if arriving is not None and arriving.complete:
        arriving = None
    reason = vv.why_not_a_volume(records, arriving=arriving is not None)
    if reason is not None:
        screen.notify(reason, title="No MPR", severity="warning", timeout=8)
        return
    screen.app.push_screen(
        VolumeScreen(
            records, start, stacks=stacks, priors=priors, arriving=arriving, arrivals=arrivals
        )
    )


class VolumeScreen(LayoutActions, MeasureActions, VolumeLoading):
    """Reformats in a layout of panes, a shared crosshair, measurements."""

    CSS_PATH = "volume.tcss"
    AUTO_FOCUS = ""
    BINDINGS = VOLUME_BINDINGS
    BUDGET_BYTES: ClassVar[int] = DEFAULT_VOLUME_BYTES
    """Memory for the pixels of every volume on screen together."""

    def __init__(
        self,
        records: Sequence[InstanceRecord],
        start: str | None = None,
        *,
        stacks: Sequence[Sequence[InstanceRecord]] = (),
        priors: Sequence[Sequence[InstanceRecord]] = (),
        budget_bytes: int | None = None,
        arriving: ArrivingSeries | None = None,
        arrivals: ArrivingStudy | None = None,
    ) -> None:
        super().__init__()
        self.records = list(records)
        self.arriving = arriving
        self.arrivals = arrivals
        self.growth = {}
        self.grows = 0
        self.start = start
        """The viewer's slice (``"<SOP UID>#<frame>"``): where the crosshair starts."""
        self.sources: list[Source] = ls.sources_of(self.records, stacks, priors)
        self.budget_bytes = budget_bytes or self.BUDGET_BYTES
        self.hanging = Hanging()
        self.volumes: dict[int, Volume] = {}
        self.views: dict[int, VolumeView] = {}
        self.presets_of: dict[int, list[Preset]] = {}
        self.reserved: dict[int, int] = {}
        """Bytes given to each volume read or being read."""
        self.refused: dict[int, str] = {}
        """Sources that could not be read, and why."""
        self.problem: str | None = None
        """Why there is no volume of the series in view, once that is known."""
        self.frames: dict[int, PaneFrame] = {}
        self.framed: dict[int, PaneSpec] = {}
        """The pane as each frame on screen was drawn (its zoom and pan)."""
        self.drawn: dict[int, dict[str, Drawn]] = {}
        self.notes: list[str] = []
        """What the reader should know of the volume (gaps, tilt, averaging, slices left out)."""
        self.hang_notes: list[str] = []
        self._rendering = False
        self._dirty = False
        self.renders = 0
        """Renders started (a burst of keys makes fewer)."""
        self._pane_widgets: list[MprPane] | None = None
        self.last_step_ms: float | None = None
        """Time from a key to its panes shown, for the benchmark."""
        self._asked_at = 0.0

    # ---- state ------------------------------------------------------------------------------
    @property
    def volume(self) -> Volume | None:
        """The volume of the active pane's series."""
        return self.volumes.get(self.hanging.spec.source)

    @property
    def view(self) -> VolumeView | None:
        """The crosshair, slab and drawing of the active pane's series, its plane active."""
        return ls.active_view(self.hanging, self.views)

    @property
    def presets(self) -> list[Preset]:
        return self.presets_of.get(self.hanging.spec.source, [])

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
        """The panes of the layout, in order (hidden spare ones left out)."""
        if self._pane_widgets is None:  # a DOM query per key costs more than a step's texts
            self._pane_widgets = list(self.query(MprPane))
        return self._pane_widgets[: len(self.hanging.panes)]

    # ---- layout -----------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        lean = workstation(self).low_bandwidth
        with Container(id="mpr-panes"):
            for pane in range(MAX_PANES):
                yield MprPane(self.decision, pane, low_bandwidth=lean, id=f"mpr-pane-{pane}")
        yield Static("Reading the series into a volume…", id="mpr-status", markup=False)
        yield Static("", id="mpr-info", markup=False)
        yield Static("", id="mpr-notes", markup=False)
        yield KeyFooter()  # ranked and fitted to the width; ctrl+p still opens the palette

    def on_mount(self) -> None:
        self.query_one("#mpr-panes").display = False
        self._lay_out()
        reason = vv.why_not_a_volume(self.records, arriving=self.arriving is not None)
        if reason is not None:
            self._failed(reason)
            return
        self._follow_arrivals()
        self.load_first()

    def _lay_out(self) -> None:
        """Show the panes of the layout in its grid (one pane when full size)."""
        state = self.hanging
        container = self.query_one("#mpr-panes")
        count = len(state.visible)
        columns = 1 if state.full else state.grid.columns
        container.styles.grid_size_columns = columns
        container.styles.grid_size_rows = max(1, -(-count // columns))
        for pane in self.query(MprPane):
            visible = pane.pane in state.visible and pane.pane < len(state.panes)
            if pane.display != visible:
                pane.display = visible
        for index, spec in enumerate(state.panes):
            pane = self.query_one(f"#mpr-pane-{index}", MprPane)
            pane.set_edges(*vv.pane_edges(Plane.standard(vv.PANES[spec.plane])))

    def _set_hanging(self, state: Hanging) -> None:
        if state == self.hanging:
            return
        old = self.hanging
        grid_changed = (state.grid, state.visible, len(state.panes)) != (
            old.grid,
            old.visible,
            len(old.panes),
        )
        for pane, spec in enumerate(state.panes):
            was = old.panes[pane] if pane < len(old.panes) else None
            if was is None or (was.source, was.plane) != (spec.source, spec.plane):
                self.frames.pop(pane, None)
                self.framed.pop(pane, None)
        for pane in [p for p in self.frames if p >= len(state.panes)]:
            del self.frames[pane]
            self.framed.pop(pane, None)
        self.hanging = state
        if grid_changed:
            self._lay_out()
        self._load_needed()
        self._update()
        self.request_render()

    # ---- reading the volumes ----------------------------------------------------------------

    # ---- rendering --------------------------------------------------------------------------
    def request_render(self) -> None:
        """Render the visible panes for the current view (after the render running, if any)."""
        if not self.volumes:
            return
        self._asked_at = time.perf_counter()
        if self._rendering:
            self._dirty = True
            return
        panes = self.panes
        boxes = {}
        for index in self.hanging.visible:
            box = panes[index].pixel_box()
            if box is not None and self.hanging.panes[index].source in self.volumes:
                boxes[index] = box
        if not boxes:
            return
        self._rendering = True
        self.renders += 1
        aspect = panes[self.hanging.active].image_view.pixel_aspect
        shown = list(self.frames.values())
        drawn = {s: list(marks.values()) for s, marks in self.drawn.items()}
        self.render_panes(
            dict(self.volumes), self.hanging, dict(self.views), boxes, aspect, drawn, shown
        )

    @work(thread=True, exclusive=False, exit_on_error=False, group="mpr", description="MPR")
    def render_panes(
        self,
        volumes: dict[int, Volume],
        state: Hanging,
        views: dict[int, VolumeView],
        boxes: dict[int, tuple[int, int]],
        aspect: float,
        drawn: dict[int, list[Drawn]],
        shown: list[PaneFrame],
    ) -> None:
        cancel: threading.Event = get_current_worker().cancelled_event
        try:
            frames = ls.render_layout(
                volumes,
                state,
                views,
                boxes,
                aspect=aspect,
                drawn=drawn,
                previous=[frame.image for frame in shown],
                shown=shown,
                cancel=cancel,
            )
        except TuiviewerError as exc:
            self.post_message(VolumeFailed(exc.message))
            frames = None
        self.post_message(PanesRendered(ls.active_view(state, views), frames or [], state))

    @on(PanesRendered)
    def _rendered(self, message: PanesRendered) -> None:
        self._rendering = False
        panes = self.panes
        for frame in message.frames:
            if frame.pane < len(panes):
                self.frames[frame.pane] = frame
                if message.state is not None and frame.pane < len(message.state.panes):
                    self.framed[frame.pane] = message.state.panes[frame.pane]
                panes[frame.pane].show(frame, hurry=self._dirty)
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

    def on_image_view_refined(self, message: object) -> None:
        self._update_notes()  # how the active pane is shown: no longer "draft"

    def on_image_view_resized(self, message: object) -> None:
        self.request_render()

    def _activate(self, pane: int) -> VolumeView | None:
        """Pane ``pane`` made the active one; its view."""
        if pane < len(self.hanging.panes) and pane != self.hanging.active:
            self.hanging = replace(self.hanging, active=pane)
        return self.view

    @on(MprPane.Pointed)
    def _pointed(self, message: MprPane.Pointed) -> None:
        view = self._activate(message.pane)
        if self.volume is not None and view is not None:
            self._set(vv.pointed(self.volume, view, view.active, message.at), force=True)

    @on(MprPane.Scrolled)
    def _scrolled(self, message: MprPane.Scrolled) -> None:
        view = self._activate(message.pane)
        if self.volume is not None and view is not None:
            self._set(vv.moved_through(self.volume, view, message.step), force=True)

    @on(MprPane.Zoomed)
    def _wheel_zoomed(self, message: MprPane.Zoomed) -> None:
        if self._activate(message.pane) is not None:
            size = self._picture_size()
            self._set_hanging(ls.zoomed(self.hanging, message.direction, size, message.at))

    # ---- texts ------------------------------------------------------------------------------
    def _update(self, shown_view: VolumeView | None = None) -> None:
        volume, view, state = self.volume, self.view, self.hanging
        if not self.volumes:
            return
        for pane in self.panes:
            frame = self.frames.get(pane.pane)
            fidelity = frame.image.fidelity.badge if frame is not None else ""
            texts = lt.pane_texts(
                state, pane.pane, self.sources, self.volumes, self.views, self.refused, fidelity
            )
            pane.set_active(pane.pane == state.active)
            pane.set_edges(*texts.edges)
            pane.set_title(texts.title)
            pane.set_badge(texts.badge)
        if volume is None or view is None:
            source = state.spec.source
            why = self.refused.get(source, "being read")
            line = f"{self.sources[source].label}: {why}"
        else:
            line = lt.info_text(
                state, self.sources, volume, view, self._window_now(), len(self._saved())
            )
        self._update_notes()
        widget = self.query_one("#mpr-info", Static)
        content = shown(line)
        if widget.content != content:
            widget.update(content, layout=False)  # fixed height: no layout pass per step

    def _update_notes(self) -> None:
        """The layout, how the active pane reaches the screen (protocol, pixels, greys), then
        the notes."""
        parts = [lt.layout_text(self.hanging, self.hang_notes, self.volumes)]
        view = self.view
        now = self.panes[self.hanging.active].image_view.shown if view is not None else None
        if now is not None:
            what = f"{now.protocol} {now.width}×{now.height} px"
            if now.grey_levels is not None and now.source_greys is not None:
                if now.grey_levels < now.source_greys:
                    what += f", {now.grey_levels} of {now.source_greys} grey levels"
            if now.cheap:
                what += ", draft while keys repeat"
            parts.append(what)
        volume = self.volume
        notes = self.notes if self.hanging.spec.source == 0 or volume is None else volume.notes()
        widget = self.query_one("#mpr-notes", Static)
        text = " · ".join(p for p in [*parts, *notes] if p)
        if str(widget.content) != text:
            widget.update(text, layout=False)

    # ---- keys -------------------------------------------------------------------------------
    def _set(self, view: VolumeView, *, force: bool = False) -> None:
        """``view`` as the active pane's series' view; with linked scrolling, the series of
        its frame of reference follow its crosshair."""
        spec = self.hanging.spec
        old = self.views.get(spec.source)
        if old is None:
            return
        new = replace(view, active=spec.plane)
        if new == old and not force:
            return
        changed = dict(self.views)
        changed[spec.source] = new
        if self.hanging.linked and new.at != old.at:
            changed, _ = ls.linked_views(self.volumes, changed, spec.source)
        self.views = changed
        self._follow_crosshair()
        self.request_render()
        if self._dirty or not self._rendering:
            # A held key (renders catching up) or nothing to render yet: say where it is
            # heading now. Otherwise the panes arrive within an update or two and bring
            # their texts along, in the same screen update.
            self._update()

    def _follow_crosshair(self) -> None:
        """Zoomed panes pan to keep the crosshair in view. The crosshair's pixel is found in
        the frame on screen, then carried to the zoom and pan the pane has now: keys in a
        burst (z z → →) change them before that frame's successor is drawn, and a pixel of
        the old grid taken as one of the new let the crosshair run out of the pane."""
        where = {}
        for pane in self.hanging.visible:
            spec, frame = self.hanging.panes[pane], self.frames.get(pane)
            view = self.views.get(spec.source)
            if spec.zoom > 1.0 and frame is not None and view is not None:
                height, width = frame.image.pixels.shape[:2]
                drawn = self.framed.get(pane, spec)
                at = ls.regridded(frame.image.pixel_of(view.at), drawn, spec, (width, height))
                where[pane] = (at, (width, height))
        if where:
            self.hanging = ls.followed(self.hanging, where)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("back", "help"):
            return True
        # Once the series in view is read; keys for a pane whose series is still being read
        # (or was refused) do nothing, those of the layout still work.
        return 0 in self.volumes

    def action_pane(self, delta: int) -> None:
        count = len(self.hanging.panes)
        self._set_hanging(replace(self.hanging, active=(self.hanging.active + delta) % count))

    def action_layout(self) -> None:
        self._set_hanging(replace(self.hanging, full=not self.hanging.full))

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
        spec = self.hanging.spec
        if spec.window is not None:
            return spec.window
        frame = self.frames.get(self.hanging.active)
        if frame is not None:
            return frame.image.window
        volume = self.volume
        windows = volume.windows if volume is not None else ()
        return windows[0] if windows else None  # what the first planes will be drawn with

    def action_window(self, level_steps: int, width_steps: int) -> None:
        window = self._window_now()
        if window is not None and self.view is not None:
            window = views.stepped_window(window, level_steps, width_steps)
            self._set_hanging(ls.windowed(self.hanging, window))

    def action_preset(self, number: int) -> None:
        if self.view is None:
            return
        if not 1 <= number <= len(self.presets):
            names = ", ".join(f"{k} {p.name}" for k, p in enumerate(self.presets, 1))
            self.notify(f"No preset {number} ({names or 'none here'}).", severity="warning")
            return
        preset = self.presets[number - 1]
        self._set_hanging(ls.windowed(self.hanging, preset.window, preset.name))

    def action_file_window(self) -> None:
        if self.view is not None:
            self._set_hanging(ls.windowed(self.hanging, None))

    def action_invert(self) -> None:
        if self.view is not None:
            self._set_hanging(ls.inverted(self.hanging))

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
