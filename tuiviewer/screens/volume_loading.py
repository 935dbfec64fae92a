"""Reading the volume screen's series: the hanging rule that lays the panes out (matched on the
first file's header), then each series a pane shows read into a volume in a worker, every one
within its share of the screen's memory budget (a series too big for what is left is refused,
and its panes say why).

A series still arriving (the viewer's :class:`~tuiviewer.services.viewer.arrival.ArrivingSeries`,
which the viewer's feed keeps filling while this screen is on top) is read from what has
landed; a timer looks at it and, at most every :data:`GROW_EVERY` seconds or every
:data:`GROW_BATCH` instances, a worker adds the new files to the same
:class:`~tuiviewer.render.volume.VolumeBuilder` (its store sized once for every slice listed,
so the budget holds while it grows). Slices not there yet are gaps, never interpolated; the
crosshair, layout, windows and measurements stay as the reader set them. Once the series is
complete the volume is the one a fresh read of the files builds.

Mixed into :class:`~tuiviewer.screens.volume.VolumeScreen`; the shares are
:func:`tuiviewer.services.viewer.layouts.budget_for`'s.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from textual import on, work
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Static
from textual.worker import get_current_worker

from tuiviewer.dicom.reading import read_dicom
from tuiviewer.dicom.scanning import InstanceRecord
from tuiviewer.exceptions import TuiviewerError
from tuiviewer.render.presets import Preset, presets_for
from tuiviewer.render.volume import Rejected, Volume, VolumeBuilder, VolumeError, load_volume
from tuiviewer.screens.base import workstation
from tuiviewer.services.viewer import hanging as hr
from tuiviewer.services.viewer import layouts as ls
from tuiviewer.services.viewer import volume_view as vv
from tuiviewer.services.viewer.arrival import ArrivingSeries, ArrivingStudy
from tuiviewer.services.viewer.layouts import Hanging, Source
from tuiviewer.services.viewer.volume_view import VolumeView

GROW_EVERY = 1.5
"""Seconds between two reads of the instances that landed (unless a batch is due sooner)."""
GROW_BATCH = 16
"""Instances landed that are read at once, however soon after the last read."""
POLL_EVERY = 0.25
"""Seconds between two looks at the series arriving."""


@dataclass
class Hung:
    """The layout the hanging rules give, and what of the rule could not be done."""

    state: Hanging
    notes: list[str]


@dataclass
class VolumeLoaded(Message):
    """Source ``source`` was read into a volume; ``rejected``: slices left out and why."""

    volume: Volume
    rejected: tuple[Rejected, ...]
    source: int = 0


@dataclass
class VolumeWaiting(Message):
    """The series arriving has too few slices placed for a volume yet."""


@dataclass
class VolumeFailed(Message):
    """Source ``source`` is not a volume (or could not be read); ``reason`` says why."""

    reason: str
    source: int = 0


@dataclass
class VolumeProgress(Message):
    """``done`` of ``total`` files read."""

    done: int
    total: int

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, VolumeProgress)


@dataclass
class LayoutHung(Message):
    hung: Hung


class VolumeLoading(Screen[None]):
    """Hanging the layout and reading its series (mixed into the volume screen)."""

    records: list[InstanceRecord]
    start: str | None
    sources: list[Source]
    budget_bytes: int
    hanging: Hanging
    volumes: dict[int, Volume]
    views: dict[int, VolumeView]
    presets_of: dict[int, list[Preset]]
    reserved: dict[int, int]
    refused: dict[int, str]
    problem: str | None
    notes: list[str]
    hang_notes: list[str]
    arriving: ArrivingSeries | None
    """The series in view while it arrives (None once complete, or when it was on disk)."""
    _builder: VolumeBuilder | None
    _fed: set[str]
    """SOP Instance UIDs given to the builder."""
    _growing: bool
    """A read of the series arriving is under way (or the first read is)."""
    _arrival_timer: Timer | None = None
    _spacing: float | None
    """The series arriving's slice spacing from its slots (so far-apart slices are a gap)."""
    _grown_at: float
    grows: int
    """Reads of instances that landed after the screen opened."""

    def _follow_arrivals(self) -> None:
        """Called on mount: the series in view still arriving is read as it lands."""
        self._builder, self._fed, self._growing, self._grown_at, self.grows = (
            None,
            set[str](),
            True,  # until the first read is in
            time.monotonic(),
            0,
        )
        self._spacing = None
        if self.arriving is not None:
            self._fed = {r.sop_instance_uid for r in self.sources[0].records}
            self._spacing = vv.arriving_spacing(self.arriving)
            self._arrival_timer = self.set_interval(POLL_EVERY, self._poll_arrivals)

    def _arrival_text(self) -> str:
        """``37 of 300 arrived``: what the volume holds of the series arriving."""
        series = self.arriving
        if series is None:
            return ""
        if not series.listed:
            return f"{len(self._fed)} arrived"
        return f"{len(self._fed)} of {series.total} arrived"

    def _poll_arrivals(self) -> None:
        series = self.arriving
        if series is None or self._growing or self.problem is not None:
            return
        new = [r for sop, r in list(series.records.items()) if sop not in self._fed]
        if not new:
            return
        now = time.monotonic()
        if len(new) < GROW_BATCH and not series.complete and now - self._grown_at < GROW_EVERY:
            return  # debounced: a few more may land first
        self._fed.update(r.sop_instance_uid for r in new)
        # The label ("· 37 images") and the budget's estimate follow what the volume holds.
        self.sources[0] = replace(self.sources[0], records=tuple(ArrivingStudy.arrived(series)))
        self._growing, self._grown_at = True, now
        self.grows += 1
        whole = series.complete and len(self._fed) >= series.count
        self._spacing = None if whole else vv.arriving_spacing(series)  # whole: the files' own
        self._grow(list(dict.fromkeys(r.path for r in new)), self._spacing)

    @work(thread=True, exclusive=False, exit_on_error=False, group="volume", description="Grow")
    def _grow(self, paths: list[Path], spacing: float | None) -> None:
        cancel = get_current_worker().cancelled_event
        builder = self._builder
        assert builder is not None  # made by the first read, which is in
        try:
            builder.expect_spacing(spacing)
            builder.add_files(paths, cancel=cancel)
            volume = builder.volume()
        except TuiviewerError as exc:
            if builder.too_few:
                self.post_message(VolumeWaiting())
            else:
                self.post_message(VolumeFailed(exc.message, 0))
            return
        if not cancel.is_set():
            self.post_message(VolumeLoaded(volume, volume.plan.rejected, 0))

    def _arrivals_settled(self) -> None:
        """After each read of the series arriving: done when everything of it was read."""
        self._growing = False
        series = self.arriving
        if series is not None and series.complete and len(self._fed) >= series.count:
            if self._spacing is not None:  # planned with the slots' spacing: once more without
                self._spacing, self._growing = None, True
                self._grow([], None)
                return
            self.arriving = None  # complete: the volume a fresh read builds
            if self._arrival_timer is not None:
                self._arrival_timer.stop()

    def _lay_out(self) -> None:  # the screen's
        raise NotImplementedError

    def _update(self, shown_view: VolumeView | None = None) -> None:  # the screen's
        raise NotImplementedError

    def request_render(self) -> None:  # the screen's
        raise NotImplementedError

    def _reload_drawn(self, source: int) -> None:  # the measurements'
        raise NotImplementedError

    @work(thread=True, exclusive=False, exit_on_error=False, group="volume", description="Volume")
    def load_first(self) -> None:
        """Hang the layout (rules match on the first file's header), then read the series in
        view with its share of the budget."""
        cancel = get_current_worker().cancelled_event
        rules = workstation(self).config.hanging
        state, notes = Hanging(), list[str]()
        if rules:
            body_part = ""
            try:
                ds = read_dicom(
                    self.records[0].path,
                    stop_before_pixels=True,
                    specific_tags=["BodyPartExamined"],
                )
                body_part = str(ds.get("BodyPartExamined", "") or "")
            except (TuiviewerError, OSError):
                pass  # matched without the body part
            facts = hr.facts_of(self.records, body_part)
            state, notes = hr.hang(rules, facts, self.sources)
        self.post_message(LayoutHung(Hung(state, notes)))
        shown = [0, *(s for s in state.sources() if s != 0)]
        sizes = [ls.expected_bytes(self.sources[s].records) for s in shown]
        if self.arriving is not None:  # the whole series, not what has landed
            sizes[0] = sizes[0] * self.arriving.total // max(len(self.sources[0].records), 1)
        share = ls.start_budget(self.budget_bytes, sizes)
        self.reserved[0] = share
        self._read(0, share, cancel)

    @work(thread=True, exclusive=False, exit_on_error=False, group="volume", description="Volume")
    def load_source(self, source: int, budget: int) -> None:
        self._read(source, budget, get_current_worker().cancelled_event)

    def _read(self, source: int, budget: int, cancel: threading.Event) -> None:
        paths = list(dict.fromkeys(r.path for r in self.sources[source].records))
        last = [0.0]

        def progress(done: int, total: int) -> None:
            now = time.monotonic()
            if source == 0 and (now - last[0] > 0.1 or done == total):
                last[0] = now
                self.post_message(VolumeProgress(done, total))

        builder = None
        try:
            if source == 0 and self.arriving is not None:
                builder = self._builder = VolumeBuilder(
                    budget_bytes=budget, expected=self.arriving.total or None
                )
                builder.expect_spacing(self._spacing)
                builder.add_files(paths, cancel=cancel, progress=progress)
                volume = builder.volume()
                rejected = volume.plan.rejected
            else:
                volume, rejected = load_volume(
                    paths, budget_bytes=budget, cancel=cancel, progress=progress
                )
        except TuiviewerError as exc:
            if builder is not None and builder.too_few and isinstance(exc, VolumeError):
                self.post_message(VolumeWaiting())  # more slices will come
            else:
                self.post_message(VolumeFailed(exc.message, source))
            return
        if not cancel.is_set():
            self.post_message(VolumeLoaded(volume, rejected, source))

    def _load_needed(self) -> None:
        """Start reading the sources the layout shows that are not read (nor refused)."""
        if 0 not in self.volumes:
            return  # the series in view first: the others follow when it is in
        wanted = [s for s in self.hanging.sources() if s not in self.reserved]
        wanted = [s for s in wanted if s not in self.refused]
        if not wanted:
            return
        shown_now = set(self.hanging.sources()) | {0}
        for source in [s for s in self.volumes if s not in shown_now]:
            del self.volumes[source]  # off screen: its memory goes to the new ones
            self.reserved.pop(source, None)
            self.views.pop(source, None)
        for source in wanted:
            budget, reason = ls.budget_for(self.budget_bytes, self.reserved, wanted)
            if reason is not None:
                self.refused[source] = reason
                self.notify(f"{self.sources[source].label}: {reason}.", severity="warning")
                continue
            self.reserved[source] = budget
            self.load_source(source, budget)

    @on(LayoutHung)
    def _hung(self, message: LayoutHung) -> None:
        self.hang_notes = message.hung.notes
        if message.hung.state != self.hanging:
            self.hanging = message.hung.state
            self._lay_out()
        if message.hung.state.rule and message.hung.notes:
            # The notes line says which rule hung the study; a notification (over the
            # readout) only when part of the rule could not be done.
            self.notify(
                f"The hanging rule {message.hung.state.rule!r} was applied in part: "
                + "; ".join(message.hung.notes)
                + ".",
                title="Hanging",
                severity="warning",
                timeout=8,
            )

    @on(VolumeProgress)
    def _progress(self, message: VolumeProgress) -> None:
        self.query_one("#mpr-status", Static).update(
            f"Reading the series into a volume: {message.done} of {message.total} files…"
        )

    @on(VolumeWaiting)
    def _waiting(self) -> None:
        self._arrivals_settled()
        self.query_one("#mpr-status", Static).update(
            f"Waiting for the slices of the volume: {self._arrival_text()}…"
        )

    @on(VolumeFailed)
    def _volume_failed(self, message: VolumeFailed) -> None:
        if message.source == 0 and 0 in self.volumes:  # a read of what landed later
            self._growing, self.arriving = False, None
            self.notify(
                f"The volume stops growing: {message.reason}", title="MPR", severity="warning"
            )
            return
        if message.source == 0:
            self._growing = False
            self._failed(message.reason)
            return
        self.refused[message.source] = message.reason
        self.reserved.pop(message.source, None)
        self.notify(
            f"{self.sources[message.source].label}: {message.reason}",
            title="Not a volume",
            severity="warning",
        )
        self._update()

    def _failed(self, reason: str) -> None:
        self.problem = reason
        self.query_one("#mpr-status", Static).update(
            f"No MPR for this series: {reason}\nEsc goes back to the viewer."
        )
        self.notify(reason, title="Not a volume", severity="warning", timeout=10)

    def _notes_of(
        self, volume: Volume, rejected: tuple[Rejected, ...], source: int = 0
    ) -> list[str]:
        notes = volume.notes()
        if rejected:
            count = len(rejected)
            notes.insert(
                0, f"{count} image{'s' if count != 1 else ''} left out ({rejected[0].reason})"
            )
        if self.arriving is not None and source == 0:
            notes.insert(0, self._arrival_text())
        return notes

    def _volume_grew(self, message: VolumeLoaded) -> None:
        """More of the series arriving is in: the same view on the larger volume."""
        self.volumes[0] = message.volume
        self.reserved[0] = int(message.volume.data.nbytes)
        self._arrivals_settled()
        self.notes = self._notes_of(message.volume, message.rejected)
        self._update()
        self.request_render()

    @on(VolumeLoaded)
    def _volume_loaded(self, message: VolumeLoaded) -> None:
        source, volume = message.source, message.volume
        if source == 0 and 0 in self.volumes:
            self._volume_grew(message)
            return
        if source == 0:
            self._arrivals_settled()
        self.volumes[source] = volume
        self.reserved[source] = int(volume.data.nbytes)
        first = self.views.get(0)
        if source == 0:
            at = vv.start_point(volume, self.start)
        elif first is not None and ls.same_frame(self.volumes[0], volume):
            at = vv.pointed(volume, VolumeView(at=first.at), 0, first.at).at
        else:
            at = vv.start_point(volume, None)
        self.views[source] = VolumeView(at=at)
        k = volume.geometry.slices // 2
        values = None if volume.modality == "CT" else volume.slice_values(k)
        presets = presets_for(
            volume.modality, None, values, overrides=workstation(self).config.presets
        )
        self.presets_of[source] = presets
        self.hanging, missing = ls.resolve_presets(self.hanging, source, presets)
        self.hang_notes += missing
        self._reload_drawn(source)
        notes = self._notes_of(volume, message.rejected, source)
        if message.rejected:
            count, reason = len(message.rejected), message.rejected[0].reason
            self.notify(
                f"{count} image(s) of this series are not part of the volume: {reason}",
                title="MPR",
                severity="warning",
                timeout=8,
            )
        if source == 0:
            self.notes = notes
            self.query_one("#mpr-status").display = False
            self.query_one("#mpr-panes").display = True
            self.refresh_bindings()  # the keys that need a volume are live now
            self._load_needed()
        self._update()
        self.call_after_refresh(self.request_render)
