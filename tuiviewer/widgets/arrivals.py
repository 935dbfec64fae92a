"""The instances of a retrieve as they land, for a viewer that opened on the first of them.

A widget without a look of its own: it listens to the retrieve queue for one job, reads the
headers of the files that job wrote since it last looked (in a thread worker, never on the
event loop) and posts :class:`ArrivalFeed.Arrived` to its screen. The first image of the series
on show is decoded there too, as soon as it lands, so the viewer's first frame only has to be
sized and drawn. When the series being read is complete, or the job ends however it ends, the
study's stacks are scanned from disk once more and come with the last message, so the viewer
can become the ordinary one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from textual import on, work
from textual.message import Message
from textual.widget import Widget

from tuiviewer.dicom.scanning import InstanceRecord, read_record
from tuiviewer.exceptions import TuiviewerError
from tuiviewer.screens.base import workstation
from tuiviewer.services.jobs import RetrieveJob
from tuiviewer.services.viewer.arrival import ArrivingSeries, listing
from tuiviewer.services.viewer.slices import LoadedSlice, SliceRef, SliceSource
from tuiviewer.services.viewer.stack import study_stacks

#: A decoded slice and its key in a stack's cache of decoded frames (path, frame).
Decoded = tuple[tuple[Path, int], LoadedSlice]


def _record(path: Path) -> InstanceRecord | None:
    try:
        return read_record(path)
    except TuiviewerError:
        return None  # shown as unreadable once the stack is settled


def _decode_first(records: list[InstanceRecord], series_uid: str) -> list[Decoded]:
    """The first image of ``series_uid`` (any series when not known yet) among ``records``,
    decoded; nothing when there is none or it cannot be decoded (the viewer says why)."""
    first = next((r for r in records if r.rows and series_uid in ("", r.series_uid)), None)
    if first is None:
        return []
    try:
        loaded = SliceSource([SliceRef(first)]).load(0)
    except TuiviewerError:
        return []
    return [((first.path, 0), loaded)] if loaded is not None else []


def _first_series(records: list[InstanceRecord]) -> str:
    """The series of the first image among ``records`` ("" when none is an image)."""
    return next((r.series_uid for r in records if r.rows), "")


class ArrivalFeed(Widget):
    """Follows ``job`` and posts what it wrote; ``series`` is the series on show (its UID may
    be known only once its first image is in)."""

    DEFAULT_CSS = "ArrivalFeed { display: none; }"

    class Moved(Message):
        """The job wrote an instance, finished a series or ended; a flood collapses to one."""

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, ArrivalFeed.Moved)

    @dataclass
    class Arrived(Message):
        """Records of instances that landed since the last message; ``stacks`` (every image
        stack of the study on disk) when the series is complete and when the job ended (then
        ``job.finished``); ``listed``: the PACS's list of the series so far (it grows while
        the C-FIND answers)."""

        records: list[InstanceRecord]
        stacks: list[list[InstanceRecord]] | None
        job: RetrieveJob
        listed: list[tuple[str, int | None]] = field(default_factory=list)
        decoded: list[Decoded] = field(default_factory=list)
        """The first image of the series on show, decoded ahead for the first frame."""

    def __init__(self, job: RetrieveJob, series: ArrivingSeries) -> None:
        super().__init__()
        self.job = job
        self.series = series
        self.seen = 0
        """How many of ``job.arrived`` were read."""
        self.ended: set[str] = set()
        """Series that were on show when they completed (the stacks were sent then)."""
        self.settled = False
        """The job ended and the last message (with the stacks) was sent: nothing more comes."""
        self._unsubscribe: Callable[[], None] = lambda: None
        self._busy = False
        self._reads = 0
        self._decoded = False
        """The first image of the series was decoded ahead (once is enough)."""

    def on_mount(self) -> None:
        job = self.job

        def changed(moved: RetrieveJob) -> None:
            if moved is job:
                self.post_message(self.Moved())

        self._unsubscribe = workstation(self).queue.on_change(changed)
        self.post_message(self.Moved())  # what landed before the viewer opened

    def on_unmount(self) -> None:
        self._unsubscribe()

    @on(Moved)
    def _moved(self) -> None:
        if self.settled or self._busy:
            return  # a read is running: it looks again when it is done
        job = self.job
        # Read the end before the list: a job that ended has written everything it lists.
        finished = job.finished
        uid = self.series.series_uid
        ended = bool(uid) and uid in job.series_done and uid not in self.ended
        paths = job.arrived[self.seen :]
        self.seen += len(paths)
        if ended:
            self.ended.add(uid)
        self.settled = finished
        if paths or ended or finished:
            self._busy = True  # one read at a time, so the messages come in order
            self._read(list(paths), ended or finished, self._reads == 0)
            self._reads += 1

    @on(Arrived)
    def _read_done(self) -> None:
        self._busy = False  # the message goes on to the screen
        self._moved()

    @work(thread=True, exclusive=False, exit_on_error=False, group="arrivals", description="Read")
    def _read(self, paths: list[Path], ended: bool, first: bool) -> None:
        records: list[InstanceRecord] = []
        stacks = None
        decoded: list[Decoded] = []
        try:
            uid = self.series.series_uid
            if first and uid:  # the first read: files an earlier attempt left too
                folder = workstation(self).store.series_dir(self.job.study_uid, uid)
                if folder.is_dir():
                    paths = [*sorted(folder.glob("*.dcm")), *paths]
            records = [r for r in map(_record, paths) if r is not None]
            if not self._decoded:
                decoded = _decode_first(records, uid)
                self._decoded = bool(decoded)
            if ended:
                store = workstation(self).store
                found = study_stacks(self.job.study_uid, store.study_dir(self.job.study_uid))
                stacks = [stack for stack in found or [] if any(r.rows for r in stack)]
        finally:  # even when a read failed: the feed must not stall
            listed = listing(self.job.inventory, uid or _first_series(records))
            self.post_message(self.Arrived(records, stacks, self.job, listed, decoded))
