"""Opening a study from a list of studies on a PACS: at once when it is on disk, else retrieve it
and open it as soon as the first image of its first image series has arrived (the viewer then
grows its stack as the rest lands: :mod:`tuiviewer.widgets.arrivals`).

A widget without a look of its own, so that it can follow the retrieve queue (it posts itself
:class:`StudyOpener.RetrieveMoved` when a job moves on) and open the viewer when the reader is
still on its screen, or say that the study is ready when they have moved on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from textual import on, work
from textual.message import Message
from textual.timer import Timer
from textual.widget import Widget

from tuiviewer.config.nodes import Node
from tuiviewer.dicom.rows import StudyRow
from tuiviewer.dicom.scanning import InstanceRecord, read_record
from tuiviewer.exceptions import TuiviewerError
from tuiviewer.net.retrieve import ReaderFocus, StudyInventory
from tuiviewer.net.transport import study_inventory
from tuiviewer.screens.base import workstation
from tuiviewer.services.jobs import RetrieveJob, job_label
from tuiviewer.services.viewer.arrival import ArrivingSeries, listing
from tuiviewer.services.worklist import first_image_series, images_on_disk, is_retrieved

#: How long the reader rests on a row before its instances are listed (a second study-level
#: query per row scrolled past would be wasted).
REST_S = 0.3
#: A listing older than this is asked for again at Enter (the PACS may have received more).
LISTING_KEPT_S = 60.0


class StudyOpener(Widget):
    """Opens studies, retrieving those not on disk yet."""

    DEFAULT_CSS = "StudyOpener { display: none; }"

    class RetrieveMoved(Message):
        """A retrieve progressed, finished a series or ended; a flood collapses to one."""

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, StudyOpener.RetrieveMoved)

    def __init__(self) -> None:
        super().__init__()
        self.listed: dict[str, tuple[float, StudyInventory]] = {}
        """Studies the reader rested on: their image-level C-FIND, and when it answered."""
        self._rest: Timer | None = None
        self._rest_cancel = threading.Event()
        self.awaiting: dict[str, tuple[RetrieveJob, str]] = {}
        """Studies to open when their first image is in: their job and what to call them."""
        self._looked: dict[int, int] = {}
        """Per job: how many of its arrived files were read looking for the first image."""

    def on_mount(self) -> None:
        self._unsubscribe: Callable[[], None] = workstation(self).queue.on_change(
            lambda _job: self.post_message(self.RetrieveMoved())
        )
        self.call_after_refresh(self._prepare_viewer)

    def _prepare_viewer(self) -> None:
        """The viewer's styles parsed while the list is on show, not between Enter and it."""
        from tuiviewer.screens.viewer import prepare_styles  # the viewer is above this widget

        prepare_styles(self.app)

    def on_unmount(self) -> None:
        self._unsubscribe()

    def rest(self, study: StudyRow, node: Node | None) -> None:
        """The reader is on ``study``'s row: if they stay :data:`REST_S`, list its instances
        (cheap metadata, no pixels), so that Enter sends the first C-GET at once."""
        if self._rest is not None:
            self._rest.stop()
        self._rest_cancel.set()  # the last row's listing, if running, is not wanted now
        if node is None or study.uid in self.listed:
            return
        self._rest = self.set_timer(REST_S, lambda: self._rested(study, node))

    def _rested(self, study: StudyRow, node: Node) -> None:
        if not self.screen.is_current:
            return  # the reader went elsewhere
        store = workstation(self).store
        if is_retrieved(store, study) or images_on_disk(store, study.uid):
            return
        self._rest_cancel = threading.Event()
        self._list(node, study.uid, self._rest_cancel)

    @work(thread=True, exclusive=True, exit_on_error=False, group="rest", description="List")
    def _list(self, node: Node, study_uid: str, cancel: threading.Event) -> None:
        try:
            inventory = study_inventory(node, study_uid, cancel=cancel)
        except TuiviewerError:
            return  # the retrieve asks again, and says what went wrong
        if not cancel.is_set() and inventory.series:
            self.app.call_from_thread(self._listed, study_uid, inventory)

    def _listed(self, study_uid: str, inventory: StudyInventory) -> None:
        self.listed[study_uid] = (time.monotonic(), inventory)

    def _fresh_listing(self, study_uid: str) -> StudyInventory | None:
        """The listing of a rest, when recent enough to trust."""
        at, inventory = self.listed.pop(study_uid, (0.0, None))
        return inventory if time.monotonic() - at <= LISTING_KEPT_S else None

    def open(self, study: StudyRow, node: Node | None) -> None:
        """View ``study``: at once when on disk, else retrieve it from ``node`` and view the
        first series as soon as it has arrived."""
        if self._rest is not None:
            self._rest.stop()
        self._rest_cancel.set()  # a listing still running: the retrieve lists for itself
        store = workstation(self).store
        if is_retrieved(store, study):
            self.view(study.uid)
            return
        running = workstation(self).queue.active_for(study.uid)
        if running is not None:  # opens on what it brought, growing as the rest lands
            self.view_arriving(running, None)
            return
        on_disk = images_on_disk(store, study.uid)
        if on_disk:
            self.view(study.uid)
        if node is None:
            self.notify("No PACS to retrieve the study from (F5: nodes).", severity="warning")
            return
        self.notify(f"Retrieving {job_label(study)} (F4: retrieve queue)")
        if on_disk or study.series_count == 1:  # nothing to ask first: no thread to wait for
            self._queue(node, study, None, bool(on_disk))
        else:
            self.prepare_retrieve(node, study, resume=False)

    @work(thread=True, exclusive=False, exit_on_error=False, group="open", description="Series")
    def prepare_retrieve(self, node: Node, study: StudyRow, *, resume: bool) -> None:
        # One series: it is the one to read first, and asking which costs an association.
        only = study.series_count == 1
        first = None if resume or only else first_image_series(node, study.uid)
        self.app.call_from_thread(self._queue, node, study, first, resume)

    def _queue(self, node: Node, study: StudyRow, first: str | None, resume: bool) -> None:
        # A later attempt resumes: only what is not on disk yet is fetched.
        label = job_label(study)
        job = RetrieveJob(
            node=node,
            study_uid=study.uid,
            label=label,
            first_series=first,
            attempts=1 if resume else 0,
            focus=ReaderFocus(),  # the viewer, once open, says where the reader is
            associations=workstation(self).config.pacs.associations,
        )
        if not resume:
            job.inventory = self._fresh_listing(study.uid)
        workstation(self).queue_retrieve(job)
        if resume:
            return
        if self.screen.is_current:  # the viewer at once: it waits for the first image there
            # After the job's thread is off: laying the viewer out would hold it back.
            self.call_later(self.view_arriving, job, None)
        else:
            self.awaiting[study.uid] = (job, label)

    @on(RetrieveMoved)
    def _check_awaiting(self) -> None:
        """Open a study being retrieved once an image series is on disk."""
        store = workstation(self).store
        for uid, (job, label) in list(self.awaiting.items()):
            first = self._first_image(job)
            if first is not None and not job.finished:
                del self.awaiting[uid]
                if self.screen.is_current:
                    self.view_arriving(job, first)
                else:
                    self.notify(f"{label}: the first images are in (worklist: Enter opens).")
                continue
            if not job.series_done and not job.finished:
                continue
            if images_on_disk(store, uid):
                del self.awaiting[uid]
                if self.screen.is_current:
                    self.view(uid)
                else:
                    self.notify(f"{label}: the first series is on disk (worklist: Enter opens).")
            elif job.finished:
                del self.awaiting[uid]
                self.notify(
                    f"Retrieve {job.id} {job.state}: no image arrived. {job.error or ''}".strip(),
                    severity="error",
                )

    def _first_image(self, job: RetrieveJob) -> InstanceRecord | None:
        """The first image the job wrote of the series to read first (any image series when
        the PACS did not list series); None until one is there."""
        start = self._looked.get(job.id, 0)
        paths = job.arrived[start:]
        self._looked[job.id] = start + len(paths)
        for path in paths:
            try:
                record = read_record(path)  # a header: a fraction of a millisecond
            except TuiviewerError:
                continue
            if record is None or not record.rows:  # no pixels: a report, a key object…
                continue
            if job.first_series is None or record.series_uid == job.first_series:
                return record
        return None

    def view_arriving(self, job: RetrieveJob, first: InstanceRecord | None) -> None:
        """The viewer on the series of ``first`` while ``job`` brings the rest of it; without
        ``first``, on the job's first series (or the first image series that arrives), waiting
        for its first image: the screen is laid out while the first slice is on its way."""
        from tuiviewer.screens.viewer import ViewerScreen  # the viewer is above this widget

        listed = list(job.inventory.series) if job.inventory is not None else []
        only = listed[0] if len(listed) == 1 else ""  # listed by a rest on the row
        series_uid = first.series_uid if first is not None else job.first_series or only
        arriving = ArrivingSeries(job.study_uid, series_uid, listing(job.inventory, series_uid))
        records = [first] if first is not None else []
        self.app.push_screen(ViewerScreen(records, stacks=[records], arriving=arriving, job=job))

    def view(self, study_uid: str) -> None:
        """The viewer on a study on disk."""
        store = workstation(self).store
        store.touch(study_uid)
        workstation(self).view_study(study_uid, store.study_dir(study_uid))
