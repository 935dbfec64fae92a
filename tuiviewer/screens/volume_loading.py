"""Reading the volume screen's series: the hanging rule that lays the panes out (matched on the
first file's header), then each series a pane shows read into a volume in a worker, every one
within its share of the screen's memory budget (a series too big for what is left is refused,
and its panes say why).

Mixed into :class:`~tuiviewer.screens.volume.VolumeScreen`; the shares are
:func:`tuiviewer.services.viewer.layouts.budget_for`'s.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from textual import on, work
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Static
from textual.worker import get_current_worker

from tuiviewer.dicom.reading import read_dicom
from tuiviewer.dicom.scanning import InstanceRecord
from tuiviewer.exceptions import TuiviewerError
from tuiviewer.render.presets import Preset, presets_for
from tuiviewer.render.volume import Rejected, Volume, load_volume
from tuiviewer.screens.base import workstation
from tuiviewer.services.viewer import hanging as hr
from tuiviewer.services.viewer import layouts as ls
from tuiviewer.services.viewer import volume_view as vv
from tuiviewer.services.viewer.layouts import Hanging, Source
from tuiviewer.services.viewer.volume_view import VolumeView


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

        try:
            volume, rejected = load_volume(
                paths, budget_bytes=budget, cancel=cancel, progress=progress
            )
        except TuiviewerError as exc:
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

    @on(VolumeFailed)
    def _volume_failed(self, message: VolumeFailed) -> None:
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

    @on(VolumeLoaded)
    def _volume_loaded(self, message: VolumeLoaded) -> None:
        source, volume = message.source, message.volume
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
        notes = volume.notes()
        if message.rejected:
            count = len(message.rejected)
            reason = message.rejected[0].reason
            notes.insert(0, f"{count} image{'s' if count != 1 else ''} left out ({reason})")
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
