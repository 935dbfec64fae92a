"""Retrieve jobs: one study (or some series) from one PACS into the local store.

A job outlives the screen that started it; the retrieve queue shows every job's progress and
lets the user cancel and retry. Retrying a job that got part of the study fetches only what is
missing (image-level C-GET of the absent instances).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from tuiviewer.dicom.display import display_date
from tuiviewer.exceptions import TuiviewerError
from tuiviewer.net.find import StudyRow
from tuiviewer.net.nodes import Node
from tuiviewer.net.retrieve import RetrieveProgress, RetrieveResult
from tuiviewer.net.trace import AssociationTrace
from tuiviewer.net.transport import resume_study, retrieve_study
from tuiviewer.store import LocalStore

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
        self.trace = AssociationTrace()
        first = self.attempts == 0
        self.attempts += 1

        def progressed(progress: RetrieveProgress) -> None:
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
