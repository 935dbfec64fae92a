"""Retrieve jobs: one study (or some series) from one PACS into the local store, and the queue.

A job outlives the screen that started it; the retrieve queue shows every job's progress and
lets the user cancel and retry. Retrying a job that got part of the study fetches only what is
missing (image-level C-GET of the absent instances). The :class:`JobQueue` runs jobs and tells
whoever listens when one moves on (progress, a series done, the end): nothing polls it.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from tuiviewer.config.nodes import Node
from tuiviewer.dicom.display import display_date
from tuiviewer.dicom.rows import StudyRow
from tuiviewer.exceptions import TuiviewerError
from tuiviewer.net.retrieve import ReaderFocus, RetrieveProgress, RetrieveResult, StudyInventory
from tuiviewer.net.trace import AssociationTrace
from tuiviewer.net.transport import resume_study, retrieve_study
from tuiviewer.reports.drafts import DraftStore
from tuiviewer.store import LocalStore

_LOG = logging.getLogger(__name__)

JobState = Literal["queued", "running", "done", "partial", "failed", "cancelled"]

_ids = itertools.count(1)


def job_label(study: StudyRow) -> str:
    """What the retrieve queue shows for a study: patient, date, description."""
    name = study.patient_name.replace("^", " ").strip()
    return f"{name} · {display_date(study.date)} {study.description}"


def _size(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


@dataclass
class RetrieveJob:
    """One retrieve, its progress and its outcome."""

    what: ClassVar[str] = "Retrieve"
    """What the queue's notifications call this kind of job (a subclass sends instead)."""

    node: Node
    study_uid: str
    label: str
    """What the user sees in the queue (patient and study description: shown, never logged)."""
    series_uids: tuple[str, ...] | None = None
    first_series: str | None = None
    id: int = field(default_factory=lambda: next(_ids))
    state: JobState = "queued"
    progress: RetrieveProgress | None = None
    result: RetrieveResult | None = None
    error: str | None = None
    series_done: list[str] = field(default_factory=list)
    arrived: list[Path] = field(default_factory=list)
    """Instance files written by this run, in arrival order (a viewer shows them at once)."""
    inventory: StudyInventory | None = None
    """The study's instances as the PACS listed them, once the retrieve has asked."""
    focus: ReaderFocus | None = None
    """Set (before the job runs) to fetch the first series where the reader is: the viewer
    moves it as they step (DIMSE nodes)."""
    associations: int = 1
    """C-GET on up to this many associations at once (``[pacs] associations``)."""
    cancel: threading.Event = field(default_factory=threading.Event)
    trace: AssociationTrace | None = None
    attempts: int = 0

    @property
    def finished(self) -> bool:
        return self.state in ("done", "partial", "failed", "cancelled")

    def run(
        self,
        store: LocalStore,
        on_progress: Callable[[RetrieveJob], None] | None = None,
    ) -> RetrieveResult | None:
        """Retrieve (first attempt) or resume (later attempts); blocking, for a worker thread.

        Never raises for network failures: the outcome is in ``state``, ``error`` and
        ``result``, and every instance received stays in ``store``.
        """
        self.cancel.clear()
        self.state = "running"
        self.error = None
        self.series_done = []
        self.arrived = []
        self.trace = AssociationTrace()
        first = self.attempts == 0
        self.attempts += 1

        def progressed(progress: RetrieveProgress) -> None:
            if progress.path is not None:
                self.arrived.append(progress.path)
            if progress.inventory is not None:
                self.inventory = progress.inventory
            self.progress = progress
            if on_progress is not None:
                on_progress(self)

        def series_finished(series_uid: str) -> None:
            self.series_done.append(series_uid)
            if on_progress is not None:
                on_progress(self)

        try:
            if first:
                result = retrieve_study(
                    self.node,
                    self.study_uid,
                    store=store,
                    series_uids=self.series_uids,
                    first_series=self.first_series,
                    progress=progressed,
                    cancel=self.cancel,
                    trace=self.trace,
                    on_series_done=series_finished,
                    focus=self.focus,
                    associations=self.associations,
                    inventory=self.inventory,  # set beforehand: listed moments ago
                )
            else:
                result = resume_study(
                    self.node,
                    self.study_uid,
                    store=store,
                    series_uids=self.series_uids,
                    progress=progressed,
                    cancel=self.cancel,
                    trace=self.trace,
                    on_series_done=series_finished,
                )
        except TuiviewerError as exc:
            self.state = "failed"
            self.error = exc.message
            return None
        self.result = result
        if result.cancelled:
            self.state = "cancelled"
        elif result.error is not None:
            self.state = "partial" if result.received else "failed"
            self.error = result.error.message
        elif result.partial:
            self.state = "partial"
            self.error = self.outcome()
        else:
            self.state = "done"
        return result

    def outcome(self) -> str:
        """One line: what arrived and what did not."""
        result = self.result
        if result is None:
            return self.error or ""
        parts = [f"{len(result.received)} received"]
        if result.total is not None:
            parts[0] += f" of {result.total}"
        if result.failed:
            parts.append(f"{result.failed} failed")
        if result.warning:
            parts.append(f"{result.warning} with warnings")
        parts.extend(note.rstrip(".") for note in result.notes)
        if result.refused:
            parts.append(f"{len(result.refused)} refused by us ({result.refused[0][1]})")
        if result.cancelled:
            parts.append("cancelled")
        return ", ".join(parts)

    def summary(self) -> str:
        """Progress text for the queue: done/total, MB, MB/s, ETA."""
        progress = self.progress
        if self.state == "queued":
            return "waiting"
        if progress is None:
            return "connecting…" if self.state == "running" else (self.error or self.state)
        total = "?" if progress.total is None else str(progress.total)
        text = f"{progress.done}/{total}  {_size(progress.bytes)}  {progress.mb_per_s:.1f} MB/s"
        if self.state == "running":
            eta = progress.eta_s
            if eta is not None:
                text += f"  ETA {_duration(eta)}"
        else:
            text += f"  in {_duration(progress.elapsed_s)}"
        if progress.failed:
            text += f"  {progress.failed} failed"
        return text

    def fraction(self) -> float | None:
        """0..1 for a progress bar, None when the total is unknown."""
        progress = self.progress
        if progress is None or not progress.total:
            return 1.0 if self.state == "done" else None
        return min(1.0, (progress.done + progress.failed) / progress.total)


JobListener = Callable[[RetrieveJob], object]
"""Called (from the job's thread) when a job progressed, finished a series, or ended."""
FinishListener = Callable[[RetrieveJob, list[str]], object]
"""Called (from the job's thread) when a job ended, with the studies evicted after it."""


class JobQueue:
    """Every retrieve of this session: runs them and tells listeners when one moves on.

    ``start`` runs a callable in the background (the app passes a Textual thread worker; the
    default is a daemon thread), so the queue itself needs no UI. When a job ends, studies
    over the store's size cap are evicted, least recently used first, except those being
    retrieved and those with a report draft.
    """

    def __init__(
        self,
        store: LocalStore,
        *,
        drafts: DraftStore | None = None,
        start: Callable[[Callable[[], None]], object] | None = None,
    ) -> None:
        self.store = store
        self.drafts = drafts or DraftStore()
        self._start = start or _daemon_thread
        self._jobs: list[RetrieveJob] = []
        self._changed: list[JobListener] = []
        self._finished: list[FinishListener] = []
        self._lock = threading.Lock()

    def __iter__(self) -> Iterator[RetrieveJob]:
        return iter(self.jobs())

    def __len__(self) -> int:
        return len(self._jobs)

    def jobs(self) -> list[RetrieveJob]:
        """Every job, oldest first."""
        with self._lock:
            return list(self._jobs)

    def running(self) -> list[RetrieveJob]:
        return [job for job in self.jobs() if job.state == "running"]

    def active_for(self, study_uid: str) -> RetrieveJob | None:
        """The unfinished job retrieving ``study_uid``, if any (a report being sent back for
        it is no retrieve)."""
        return next(
            (
                j
                for j in self.jobs()
                if j.study_uid == study_uid and not j.finished and j.what == RetrieveJob.what
            ),
            None,
        )

    def on_change(self, listener: JobListener) -> Callable[[], None]:
        """Call ``listener`` whenever a job progresses or ends; returns the unsubscribe call."""
        return self._subscribe(self._changed, listener)

    def on_finished(self, listener: FinishListener) -> Callable[[], None]:
        """Call ``listener`` when a job ends, with the studies evicted after it; returns the
        unsubscribe call."""
        return self._subscribe(self._finished, listener)

    def _subscribe(self, listeners: list[Any], listener: Any) -> Callable[[], None]:
        with self._lock:
            listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in listeners:
                    listeners.remove(listener)

        return unsubscribe

    def submit(self, job: RetrieveJob) -> None:
        """Queue ``job`` and start it."""
        with self._lock:
            self._jobs.append(job)
        self._notify(self._changed, job)
        self._start(lambda: self._run(job))

    def retry(self, job: RetrieveJob) -> None:
        """Run a failed, partial or cancelled job again (it resumes: only what is missing)."""
        job.state = "queued"
        self._notify(self._changed, job)
        self._start(lambda: self._run(job))

    def _run(self, job: RetrieveJob) -> None:
        job.run(self.store, on_progress=lambda running: self._notify(self._changed, running))
        # Never evict a study being retrieved or one whose report is being written.
        protected = {j.study_uid for j in self.jobs() if not j.finished}
        protected |= {draft.study_uid for draft in self.drafts.list()}
        try:
            evicted = self.store.evict(protected=protected)
        except TuiviewerError as exc:  # the store stays over its cap; the retrieve is done
            _LOG.warning("Eviction after retrieve %s failed: %s", job.id, exc.message)
            evicted = []
        self._notify(self._changed, job)
        with self._lock:
            finished = list(self._finished)
        for listener in finished:
            listener(job, evicted)

    def _notify(self, listeners: list[JobListener], job: RetrieveJob) -> None:
        with self._lock:
            targets = list(listeners)
        for listener in targets:
            listener(job)


def _daemon_thread(work: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=work, name="tuiviewer-retrieve", daemon=True)
    thread.start()
    return thread
