"""Reading the volume screen's series: the hanging rule that lays the panes out (matched on the
first file's header), then each series a pane shows read into a volume in a worker, every one
within its share of the screen's memory budget (a series too big for what is left is refused,
and its panes say why).

A series still arriving (the viewer's :class:`~tuiviewer.services.viewer.arrival.ArrivingSeries`,
which the viewer's feed keeps filling while this screen is on top), the one in view or another
series of the study that a pane shows, is read from what has landed; a timer looks at each
and, at most every :data:`GROW_EVERY` seconds or every :data:`GROW_BATCH` instances, a worker
adds the new files to that series' :class:`~tuiviewer.render.volume.VolumeBuilder` (its store
sized once for every slice listed, so the budget holds while it grows; one read at a time per
series). Slices not there yet are gaps, never interpolated; the
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
class Growth:
    """A series a pane shows while it arrives: what of it the volume holds, and how it grows."""

    series: ArrivingSeries
    fed: set[str]
    """SOP Instance UIDs given to the builder (or to the first read)."""
    builder: VolumeBuilder | None = None
    """Made by the first read; every later read adds to it."""
    busy: bool = True
    """A read of it is under way (or the first read has not started or come in)."""
    spacing: float | None = None
    """The slice spacing from its slots (so far-apart slices are a gap)."""
    grown_at: float = 0.0


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
    growth: Growth | None = None
    """The growth this read belongs to (a read for one dropped since is not applied)."""


@dataclass
class VolumeWaiting(Message):
    """The series arriving (of ``source``) has too few slices placed for a volume yet."""

    source: int = 0


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
    arrivals: ArrivingStudy | None
    """The viewer's study still arriving (its other series, for the other panes)."""
    growth: dict[int, Growth]
    """The sources still arriving, by source index (a source leaves once complete)."""
    _arrival_timer: Timer | None = None
    grows: int
    """Reads of instances that landed after the screen opened."""

    def _growth_of(self, source: int) -> Growth | None:
        """Source ``source`` as a series still arriving (None: on disk, or complete)."""
        if source == 0:
            series = self.arriving
        elif self.arrivals is None or self.sources[source].prior:
            return None
        else:
            series = self.arrivals.series_for(self.sources[source].first.series_uid)
        if series is None or series.complete:
            return None
        fed = {r.sop_instance_uid for r in self.sources[source].records}
        return Growth(series, fed, spacing=vv.arriving_spacing(series), grown_at=time.monotonic())

    def _follow_arrivals(self) -> None:
        """Called on mount: the series still arriving (the one in view, the study's others a
        pane may show) are read as they land."""
        self.grows = 0
        self.growth = {}
        for source in range(len(self.sources)):
            if (growth := self._growth_of(source)) is not None:
                self.growth[source] = growth
        if self.growth:
            self._arrival_timer = self.set_interval(POLL_EVERY, self._poll_arrivals)

    def _arrival_text(self, source: int = 0) -> str:
        """``37 of 300 arrived``: what the volume holds of a series arriving."""
        growth = self.growth.get(source)
        if growth is None:
            return ""
        if not growth.series.listed:
            return f"{len(growth.fed)} arrived"
        return f"{len(growth.fed)} of {growth.series.total} arrived"

    def _poll_arrivals(self) -> None:
        for source, growth in list(self.growth.items()):
            if growth.busy or (source == 0 and self.problem is not None):
                continue
            self._poll(source, growth)

    def _poll(self, source: int, growth: Growth) -> None:
        series = growth.series
        new = [r for sop, r in list(series.records.items()) if sop not in growth.fed]
        if not new:
            return
        now = time.monotonic()
        if len(new) < GROW_BATCH and not series.complete and now - growth.grown_at < GROW_EVERY:
            return  # debounced: a few more may land first
        growth.fed.update(r.sop_instance_uid for r in new)
        # The label ("· 37 images") and the budget's estimate follow what the volume holds.
        arrived = tuple(ArrivingStudy.arrived(series))
        self.sources[source] = replace(self.sources[source], records=arrived)
        growth.busy, growth.grown_at = True, now
        self.grows += 1
        whole = series.complete and len(growth.fed) >= series.count
        growth.spacing = None if whole else vv.arriving_spacing(series)  # whole: the files'
        self._grow(source, growth, list(dict.fromkeys(r.path for r in new)))

    @work(thread=True, exclusive=False, exit_on_error=False, group="volume", description="Grow")
    def _grow(self, source: int, growth: Growth, paths: list[Path]) -> None:
        cancel = get_current_worker().cancelled_event
        builder = growth.builder
        assert builder is not None  # made by the first read, which is in
        try:
            builder.expect_spacing(growth.spacing)
            builder.add_files(paths, cancel=cancel)
            volume = builder.volume()
        except TuiviewerError as exc:
            if builder.too_few:
                self.post_message(VolumeWaiting(source))
            else:
                self.post_message(VolumeFailed(exc.message, source))
            return
        if not cancel.is_set():
            self.post_message(VolumeLoaded(volume, volume.plan.rejected, source, growth))

    def _arrivals_settled(self, source: int = 0) -> None:
        """After each read of a series arriving: done when everything of it was read."""
        growth = self.growth.get(source)
        if growth is None:
            return
        growth.busy = False
        series = growth.series
        if series.complete and len(growth.fed) >= series.count:
            if growth.spacing is not None:  # planned with the slots' spacing: once more without
                growth.spacing, growth.busy = None, True
                self._grow(source, growth, [])
                return
            del self.growth[source]  # complete: the volume a fresh read builds
            if source == 0:
                self.arriving = None
            if not self.growth and self._arrival_timer is not None:
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
        for n, source in enumerate(shown):
            if (growth := self.growth.get(source)) is not None:  # all of it, not what landed
                landed = max(len(self.sources[source].records), 1)
                sizes[n] = sizes[n] * growth.series.total // landed
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
        growth = self.growth.get(source)
        try:
            if growth is not None:
                builder = growth.builder = VolumeBuilder(
                    budget_bytes=budget, expected=growth.series.total or None
                )
                builder.expect_spacing(growth.spacing)
                builder.add_files(paths, cancel=cancel, progress=progress)
                volume = builder.volume()
                rejected = volume.plan.rejected
            else:
                volume, rejected = load_volume(
                    paths, budget_bytes=budget, cancel=cancel, progress=progress
                )
        except TuiviewerError as exc:
            if builder is not None and builder.too_few and isinstance(exc, VolumeError):
                self.post_message(VolumeWaiting(source))  # more slices will come
            else:
                self.post_message(VolumeFailed(exc.message, source))
            return
        if not cancel.is_set():
            self.post_message(VolumeLoaded(volume, rejected, source, growth))

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
            if source in self.growth:  # read afresh, and grown, if a pane shows it again
                growth = self._growth_of(source)
                if growth is None:
                    del self.growth[source]
                else:
                    self.growth[source] = growth
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
    def _waiting(self, message: VolumeWaiting) -> None:
        self._arrivals_settled(message.source)
        if message.source != 0:
            return  # its panes say "reading…" until it is a volume
        self.query_one("#mpr-status", Static).update(
            f"Waiting for the slices of the volume: {self._arrival_text()}…"
        )

    @on(VolumeFailed)
    def _volume_failed(self, message: VolumeFailed) -> None:
        self.growth.pop(message.source, None)
        if message.source == 0:
            self.arriving = None
        if message.source in self.volumes:  # a read of what landed later
            label = self.sources[message.source].label
            self.notify(
                f"The volume of {label} stops growing: {message.reason}",
                title="MPR",
                severity="warning",
            )
            return
        if message.source == 0:
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
        if source in self.growth:
            notes.insert(0, self._arrival_text(source))
        return notes

    def _volume_grew(self, message: VolumeLoaded) -> None:
        """More of a series arriving is in: the same view on the larger volume."""
        source = message.source
        self.volumes[source] = message.volume
        self.reserved[source] = int(message.volume.data.nbytes)
        self._arrivals_settled(source)
        if source == 0:
            self.notes = self._notes_of(message.volume, message.rejected)
        self._update()
        self.request_render()

    @on(VolumeLoaded)
    def _volume_loaded(self, message: VolumeLoaded) -> None:
        source, volume = message.source, message.volume
        if message.growth is not None and self.growth.get(source) is not message.growth:
            return  # read for a growth dropped since (its pane went away, or it failed)
        if source in self.volumes:
            self._volume_grew(message)
            return
        self._arrivals_settled(source)
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
