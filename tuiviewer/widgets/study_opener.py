"""Opening a study from a list of studies on a PACS: at once when it is on disk, else retrieve it
and open it as soon as its first image series has arrived.

A widget without a look of its own, so that it can follow the retrieve queue (it posts itself
:class:`StudyOpener.RetrieveMoved` when a job moves on) and open the viewer when the reader is
still on its screen, or say that the study is ready when they have moved on.
"""

from __future__ import annotations

from collections.abc import Callable

from textual import on, work
from textual.message import Message
from textual.widget import Widget

from tuiviewer.config.nodes import Node
from tuiviewer.dicom.rows import StudyRow
from tuiviewer.screens.base import workstation
from tuiviewer.services.jobs import RetrieveJob, job_label
from tuiviewer.services.worklist import first_image_series, images_on_disk, is_retrieved


class StudyOpener(Widget):
    """Opens studies, retrieving those not on disk yet."""

    DEFAULT_CSS = "StudyOpener { display: none; }"

    class RetrieveMoved(Message):
        """A retrieve progressed, finished a series or ended; a flood collapses to one."""

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, StudyOpener.RetrieveMoved)

    def __init__(self) -> None:
        super().__init__()
        self.awaiting: dict[str, tuple[RetrieveJob, str]] = {}
        """Studies to open when their first series is in: their job and what to call them."""

    def on_mount(self) -> None:
        self._unsubscribe: Callable[[], None] = workstation(self).queue.on_change(
            lambda _job: self.post_message(self.RetrieveMoved())
        )

    def on_unmount(self) -> None:
        self._unsubscribe()

    def open(self, study: StudyRow, node: Node | None) -> None:
        """View ``study``: at once when on disk, else retrieve it from ``node`` and view the
        first series as soon as it has arrived."""
        store = workstation(self).store
        if is_retrieved(store, study):
            self.view(study.uid)
            return
        running = workstation(self).queue.active_for(study.uid)
        on_disk = images_on_disk(store, study.uid)
        if on_disk:
            self.view(study.uid)
        if running is not None:
            if not on_disk:
                self.awaiting[study.uid] = (running, job_label(study))
                self.notify(f"Retrieving {job_label(study)}: it opens when the first series is in.")
            return
        if node is None:
            self.notify("No PACS to retrieve the study from (F5: nodes).", severity="warning")
            return
        self.notify(f"Retrieving {job_label(study)} (F4: retrieve queue)")
        self.prepare_retrieve(node, study, resume=bool(on_disk))

    @work(thread=True, exclusive=False, exit_on_error=False, group="open", description="Series")
    def prepare_retrieve(self, node: Node, study: StudyRow, *, resume: bool) -> None:
        first = None if resume else first_image_series(node, study.uid)
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
        )
        workstation(self).queue_retrieve(job)
        if not resume:
            self.awaiting[study.uid] = (job, label)

    @on(RetrieveMoved)
    def _check_awaiting(self) -> None:
        """Open a study being retrieved once an image series is on disk."""
        store = workstation(self).store
        for uid, (job, label) in list(self.awaiting.items()):
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

    def view(self, study_uid: str) -> None:
        """The viewer on a study on disk."""
        store = workstation(self).store
        store.touch(study_uid)
        workstation(self).view_study(study_uid, store.study_dir(study_uid))
