"""TODO requests"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from tuiviewer.net.association import check_status
from tuiviewer.net.errors import DimseStatusError, NetError, status_meaning
from tuiviewer.net.find import _CancelWatcher
from tuiviewer.net.inventory import StudyInventory, _values
from tuiviewer.net.move import InstanceWriter, Refusal
from tuiviewer.net.sopclasses import broad_storage_contexts, storage_contexts

#: Study Root Query/Retrieve Information Model - GET and - MOVE (PS3.4 C.6.2).
GET_MODEL = "1.2.840.10008.5.1.4.1.2.2.3"
MOVE_MODEL = "1.2.840.10008.5.1.4.1.2.2.2"
_QR_SYNTAXES = [str(ExplicitVRLittleEndian), str(ImplicitVRLittleEndian)]

#: SOP Instance UIDs per image-level request. A UI element holds at most 65,534 bytes in
#: Explicit VR (2-byte length, PS3.5 7.1.2), i.e. about 1,000 UIDs of 64 characters.
MAX_UIDS_PER_REQUEST = 500

Method = Literal["get", "move"]


@dataclass(frozen=True)
class RetrieveProgress:
    """Where a retrieve stands; sent after every instance written and every pending response."""

    study_uid: str
    series_uid: str
    """The series being retrieved ("" when the whole study is requested at once)."""
    done: int
    """Instances written to disk so far."""
    total: int | None
    """Instances expected (image-level C-FIND, else the PACS's counts); None when unknown."""
    failed: int
    """Sub-operations the PACS reports as failed so far."""
    warning: int
    bytes: int
    """Bytes of data sets received so far."""
    elapsed_s: float
    path: Path | None = None
    """The instance whose commit this report follows (None: a PACS response): a viewer shows
    a series while it arrives from these."""
    inventory: StudyInventory | None = None
    """The study's instances as the C-FIND listed them, where each will lie (None: unknown)."""

    @property
    def mb_per_s(self) -> float:
        """Throughput in megabytes (10^6 bytes) per second."""
        return self.bytes / 1e6 / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the current rate; None until something arrived or without a total."""
        if self.total is None or self.done == 0 or self.elapsed_s <= 0:
            return None
        left = max(self.total - self.done - self.failed, 0)
        return left * self.elapsed_s / self.done


@dataclass(frozen=True)
class RetrieveResult:
    """What a retrieve did. Every file in ``received`` is on disk, whatever else happened."""

    study_uid: str
    series_done: list[str]
    """Series whose request finished (possibly with failed sub-operations), in order."""
    completed: int
    """Sub-operations the PACS reports completed (for C-MOVE: whatever destination)."""
    failed: int
    warning: int
    failed_sops: list[str]
    """SOP Instance UIDs from the PACS's Failed SOP Instance UID List (0008,0058)."""
    received: list[Path]
    cancelled: bool
    error: NetError | None
    """Set when the association died or a request failed after instances had arrived."""
    method: Method = "get"
    total: int | None = None
    """Instances the retrieve asked for (from the image-level C-FIND), None when unknown."""
    bytes: int = 0
    elapsed_s: float = 0.0
    refused: list[Refusal] = field(default_factory=list)
    """Instances we did not keep, and why (disk full, another study, a SOP Instance UID that
    differs from its C-STORE's, beyond the reading limits)."""
    rejected_calls: list[str] = field(default_factory=list)
    """C-MOVE: associations our storage SCP rejected (not the PACS, or not its address)."""
    inventory_used: bool = True
    """False when the image-level C-FIND failed and the broad context set was proposed."""
    notes: list[str] = field(default_factory=list)
    """What the retrieve did differently from what it asked for, and why (a fallback)."""

    @property
    def partial(self) -> bool:
        """True unless every requested instance arrived without failure."""
        return bool(self.failed or self.cancelled or self.error is not None or self.refused) or (
            self.total is not None and len(self.received) < self.total
        )


@dataclass(frozen=True)
class _Request:
    """One C-GET/C-MOVE: a series (or the whole study), optionally limited to some instances."""

    series_uid: str | None
    sop_uids: tuple[str, ...] = ()
    ends_series: bool = True
    follow: bool = False
    """Image-level requests, a few instances each, in the order the reader needs them
    (:class:`ReaderFocus`); the series level if the PACS refuses those."""
    follow_chunk: bool = False
    """One of those image-level requests."""


@dataclass
class _Counts:
    completed: int = 0
    failed: int = 0
    warning: int = 0
    remaining: int | None = None


class _Run:
    """State of one retrieve, shared by the response loop and the C-STORE handler."""

    def __init__(
        self,
        study_uid: str,
        total: int | None,
        progress: Callable[[RetrieveProgress], None] | None,
    ) -> None:
        self.study_uid = study_uid
        self.total = total
        self.progress = progress
        self.started = time.monotonic()
        self.final = _Counts()
        self.pending = _Counts()
        self.series_uid = ""
        self.failed_sops: list[str] = []
        self.writer: InstanceWriter | None = None
        self.inventory: StudyInventory | None = None
        self._lock = threading.Lock()

    def report(self, path: Path | None = None) -> None:
        if self.progress is None:
            return
        with self._lock:
            writer = self.writer
            done = len(writer.received) if writer is not None else 0
            total = self.total
            if total is None and self.pending.remaining is not None:
                total = (
                    self.final.completed
                    + self.final.failed
                    + self.final.warning
                    + self.pending.completed
                    + self.pending.failed
                    + self.pending.warning
                    + self.pending.remaining
                )
            snapshot = RetrieveProgress(
                study_uid=self.study_uid,
                series_uid=self.series_uid,
                done=done,
                total=total,
                failed=self.final.failed + self.pending.failed,
                warning=self.final.warning + self.pending.warning,
                bytes=writer.bytes if writer is not None else 0,
                elapsed_s=time.monotonic() - self.started,
                path=path,
                inventory=self.inventory,
            )
        self.progress(snapshot)


def _identifier(study_uid: str, request: _Request) -> Dataset:
    ds = Dataset()
    if request.sop_uids:
        ds.QueryRetrieveLevel = "IMAGE"
    elif request.series_uid:
        ds.QueryRetrieveLevel = "SERIES"
    else:
        ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = study_uid
    if request.series_uid:
        ds.SeriesInstanceUID = request.series_uid
    if request.sop_uids:
        ds.SOPInstanceUID = list(request.sop_uids)
    return ds


def _count(status: Dataset, keyword: str) -> int | None:
    value = status.get(keyword)
    return int(value) if value is not None else None


@dataclass
class _Outcome:
    cancelled: bool = False
    error: NetError | None = None


def _run_request(
    assoc: Any,
    service: str,
    responses: Any,
    run: _Run,
    watcher: _CancelWatcher,
) -> _Outcome:
    """Consume one C-GET/C-MOVE's responses, updating ``run``; raise if the association dies."""
    outcome = _Outcome()
    for status, identifier in responses:
        if watcher.sent and status and "Status" in status:
            category, _ = status_meaning(service, int(status.Status))
        else:
            code = _checked(service, status, assoc)
            category, _ = status_meaning(service, code) if code is not None else ("Failure", "")
        counts = _Counts(
            completed=_count(status, "NumberOfCompletedSuboperations") or 0,
            failed=_count(status, "NumberOfFailedSuboperations") or 0,
            warning=_count(status, "NumberOfWarningSuboperations") or 0,
            remaining=_count(status, "NumberOfRemainingSuboperations"),
        )
        if category == "Pending":
            changed = (counts.failed, counts.warning) != (run.pending.failed, run.pending.warning)
            run.pending = counts
            if changed or run.total is None:
                run.report()
            watcher.poll()
            continue
        run.pending = _Counts()
        run.final.completed += counts.completed
        run.final.failed += counts.failed
        run.final.warning += counts.warning
        if category == "Cancel" or watcher.sent:
            outcome.cancelled = True
        elif identifier is not None:
            run.failed_sops.extend(_values(identifier, "FailedSOPInstanceUIDList"))
        if category == "Failure":
            try:
                check_status(service, status, assoc)
            except DimseStatusError as exc:
                outcome.error = exc
        run.report()
        break
    return outcome


def _checked(service: str, status: Dataset | None, assoc: Any) -> int | None:
    """The status code; failure statuses return their code, lost responses raise."""
    if status is None or "Status" not in status:
        check_status(service, status, assoc)  # raises NetTimeout / AssociationAborted
        return None
    return int(status.Status)


def _storage_contexts(
    inventory: StudyInventory | None, series: Sequence[str], budget: int, deflate: bool
) -> list[tuple[str, list[str]]]:
    if inventory is not None:
        classes, complete = inventory.classes(series)
        if complete and classes and len(classes) <= budget:
            return storage_contexts(classes, budget, deflate=deflate)
        known = list(classes)
    else:
        known = []
    # Classes the C-FIND did report go first so the broad set cannot crowd them out.
    broad = broad_storage_contexts(budget)
    first = [(uid, ts) for uid, ts in broad if uid in known]
    missing = [(uid, list(broad[0][1])) for uid in known if uid not in {u for u, _ in first}]
    rest = [(uid, ts) for uid, ts in broad if uid not in known]
    return [*first, *missing, *rest][:budget]


def _image_refused(service: str, error: NetError | None) -> str:
    """The note of a PACS that would not retrieve by instance."""
    why = error.message if error is not None else "it sent nothing"
    return (
        f"{service} at IMAGE level was refused ({why.rstrip('.')}); the rest of the series was "
        "asked for at SERIES level."
    )
