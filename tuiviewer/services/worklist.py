"""The reading worklist's core: which studies on the PACS still need reading, and their priors.

A radiologist's first question is "what is left to read?". The PACS does not say: it only
holds the studies and, beside their images, the SR documents written about them. So a study's
report state is worked out here from those documents (PS3.3 C.17.2 SR Document General):

* a *report* is a general-purpose SR (Basic Text, Enhanced, Comprehensive...) whose root
  CONTAINER is titled from CID 7000 (:func:`tuiviewer.reports.sr.read.is_report`); radiation dose
  SRs (their own SOP class, or a Comprehensive SR titled ``113701``), CAD SRs and key object
  selections are not, so a study holding only a dose SR is still *unreported*;
* a report listed in another report's Predecessor Documents Sequence is superseded; the state
  comes from the newest report nothing supersedes: *final* when complete, verified and not
  marked preliminary, *preliminary* otherwise;
* an unreported study with a local draft is *draft*;
* a study whose report document cannot be read within the reading limits (a deflated SR that
  inflates to gigabytes, say) is *unreadable report*: the document is quarantined in the
  store, so it is neither read nor fetched again at the next start.

What decides the state (the root's class, value type, title and template, the flags, the times
and the Predecessor Documents Sequence) is asked for in the image-level C-FIND itself; a PACS
that reads them from the stored document (Orthanc does) answers all of it, and the study is
settled without retrieving anything. Where the answer lacks what decides it (a PACS that returns
no sequences, a Type 1 key left empty, an optional key this PACS never returned), the SR
documents are retrieved (a few kilobytes, never twice: an SR already in the local store is read
from disk) and read. The reader's report pane retrieves a report when it opens it. Nothing here
imports Textual.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Protocol

from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.sequence import Sequence

from tuiviewer import locations
from tuiviewer.config.nodes import Node
from tuiviewer.dicom.reading import ReadLimitError, read_dicom
from tuiviewer.dicom.rows import QueryLevel, SeriesRow, StudyRow, to_row
from tuiviewer.exceptions import TuiviewerError
from tuiviewer.files import write_private
from tuiviewer.net.errors import (
    AssociationAborted,
    AssociationRejected,
    ConnectionFailed,
    NetError,
    NetTimeout,
    TlsFailed,
)
from tuiviewer.net.find import FindQuery, FindSession, find_session
from tuiviewer.net.retrieve import InstanceInfo, retrieve_instances
from tuiviewer.net.transport import find, resume_study
from tuiviewer.reports.drafts import DraftStore
from tuiviewer.reports.model import ReportStatus
from tuiviewer.reports.sr import BASIC_TEXT_SR, ENHANCED_SR, SR_STORAGE_CLASSES, is_sr_class
from tuiviewer.reports.sr.read import is_report, report_status
from tuiviewer.services.reporting import RemoteReport, find_reports_on_pacs
from tuiviewer.store import LocalStore

__all__ = [
    "DEFAULT_DAYS",
    "PACS_DOWN",
    "STATES",
    "ReportState",
    "StateCache",
    "StudyStatus",
    "WorklistQuery",
    "WorklistView",
    "load_view",
    "merge_answers",
    "save_view",
    "classify",
    "find_priors",
    "first_image_series",
    "images_on_disk",
    "is_retrieved",
    "report_states",
]

DEFAULT_DAYS = 7
"""The worklist shows the last week unless the reader asks for another range."""

_SR_PREFIX = "1.2.840.10008.5.1.4.1.1.88."
#: Modalities of series that hold no images to look at first (PS3.3 C.7.3.1.1.1).
_NON_IMAGE_MODALITIES = frozenset({"SR", "KO", "PR", "DOC", "REG", "SEG", "RTSTRUCT", "RTPLAN"})
#: Errors that mean the PACS is not answering at all (not a problem of one study): stop asking.
PACS_DOWN = (ConnectionFailed, AssociationRejected, AssociationAborted, NetTimeout, TlsFailed)


class ReportState(Enum):
    """Where a study stands in the reading loop (PS3.3 C.17.2 flags of its newest report).

    ``UNREPORTED``: no report document; ``DRAFT``: none on the PACS but a local draft;
    ``PRELIMINARY``: the newest report is not complete, verified and final; ``FINAL``:
    Completion Flag COMPLETE, Verification Flag VERIFIED, Preliminary Flag not PRELIMINARY;
    ``UNREADABLE``: a report document goes beyond the reading limits (it is quarantined).
    """

    UNREPORTED = "unreported"
    DRAFT = "draft"
    PRELIMINARY = "preliminary"
    FINAL = "final"
    UNREADABLE = "unreadable report"


class RemoteReportLike(Protocol):
    """What a C-FIND answer tells about an SR document without retrieving it."""

    @property
    def sop_instance_uid(self) -> str: ...

    @property
    def sop_class_uid(self) -> str: ...

    @property
    def completion_flag(self) -> str: ...

    @property
    def verification_flag(self) -> str: ...

    @property
    def content_date(self) -> str: ...


@dataclass(frozen=True)
class _Document:
    sop_uid: str
    when: str
    """``YYYYMMDDHHMMSS.ffffff`` (as far as known), so that string order is time order."""
    predecessors: frozenset[str]
    status: ReportStatus


def _str(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    return "" if value is None else str(value).strip()


def _predecessors(ds: Dataset) -> frozenset[str]:
    """SOP Instance UIDs in the Predecessor Documents Sequence (PS3.3 C.17.2, hierarchical)."""
    found: set[str] = set()
    for study in ds.get("PredecessorDocumentsSequence", []) or []:
        for series in study.get("ReferencedSeriesSequence", []) or []:
            for sop in series.get("ReferencedSOPSequence", []) or []:
                uid = str(sop.get("ReferencedSOPInstanceUID", "") or "").strip()
                if uid:
                    found.add(uid)
    return frozenset(found)


def _moment(date: str, time: str) -> str:
    return (date[:8] + (time or "").split(".")[0].ljust(6, "0")[:6]) if date else ""


def _from_dataset(ds: Dataset) -> _Document:
    when = _moment(_str(ds, "ContentDate"), _str(ds, "ContentTime")) or _moment(
        _str(ds, "InstanceCreationDate"), _str(ds, "InstanceCreationTime")
    )
    return _Document(_str(ds, "SOPInstanceUID"), when, _predecessors(ds), report_status(ds))


def _remote_counts(remote: RemoteReportLike) -> bool:
    """Whether a document known only from C-FIND counts as a report.

    Its root concept is unknown, so only the classes that cannot hold a dose report count:
    TID 10001 needs a Comprehensive SR or its own class, a narrative report fits Basic Text
    or Enhanced SR.
    """
    return remote.sop_class_uid in (BASIC_TEXT_SR, ENHANCED_SR)


def _from_remote(remote: RemoteReportLike) -> _Document:
    verified = remote.verification_flag.upper() == "VERIFIED"
    complete = remote.completion_flag.upper() == "COMPLETE"
    status = ReportStatus.FINAL if verified and complete else ReportStatus.PRELIMINARY
    return _Document(remote.sop_instance_uid, _moment(remote.content_date, ""), frozenset(), status)


def classify(
    study_uid: str,
    reports: Iterable[Dataset | RemoteReportLike],
    has_draft: bool,
) -> ReportState:
    """The report state of study ``study_uid`` from the SR documents found for it.

    Args:
        study_uid: the study; a dataset of another study (misfiled) is ignored.
        reports: retrieved SR datasets and, for documents that could not be retrieved,
            C-FIND answers (:class:`~tuiviewer.services.reporting.RemoteReport`). A dataset
            wins over an answer for the same SOP Instance UID. Datasets that are not reports
            (dose, CAD, key objects, measurement reports) are ignored.
        has_draft: a local draft of this study exists.

    Returns:
        FINAL or PRELIMINARY from the newest report that no other report lists as its
        predecessor; DRAFT or UNREPORTED when there is no report.
    """
    documents: dict[str, _Document] = {}
    remotes: list[RemoteReportLike] = []
    seen: set[str] = set()
    for item in reports:
        if isinstance(item, Dataset):
            uid = _str(item, "SOPInstanceUID")
            seen.add(uid)
            owner = _str(item, "StudyInstanceUID")
            if (owner and owner != study_uid) or not is_report(item):
                continue
            documents[uid] = _from_dataset(item)
        else:
            remotes.append(item)
    for remote in remotes:
        if remote.sop_instance_uid not in seen and _remote_counts(remote):
            documents.setdefault(remote.sop_instance_uid, _from_remote(remote))
    return _choose(list(documents.values()), has_draft)


def _choose(documents: list[_Document], has_draft: bool) -> ReportState:
    """The state from a study's report documents (see :func:`classify`)."""
    if not documents:
        return ReportState.DRAFT if has_draft else ReportState.UNREPORTED
    superseded = set().union(*(d.predecessors for d in documents))
    live = [d for d in documents if d.sop_uid not in superseded]
    # Documents that supersede each other in a circle: no way to tell, take the newest.
    newest = max(live or documents, key=lambda d: d.when)
    return ReportState.FINAL if newest.status is ReportStatus.FINAL else ReportState.PRELIMINARY


# --- the worklist query ---------------------------------------------------------------------


@dataclass(frozen=True)
class WorklistQuery:
    """The worklist's filters that the PACS applies: a study date range and a modality."""

    date_from: dt.date | None = None
    """First study date shown (None: open-ended)."""
    date_to: dt.date | None = None
    """Last study date shown (None: open-ended)."""
    modality: str = ""
    """Modalities In Study to match ("" for any)."""

    @classmethod
    def last_days(cls, days: int = DEFAULT_DAYS, *, today: dt.date | None = None) -> WorklistQuery:
        """Studies of the last ``days`` days, today included."""
        if days < 1:
            raise ValueError(f"The worklist needs at least one day, not {days!r}.")
        today = today or dt.date.today()
        return cls(today - dt.timedelta(days=days - 1), today)

    def to_find_query(self) -> FindQuery:
        """The study-level C-FIND (a DA range, PS3.4 C.2.2.2.5.1).

        Raises:
            ValueError: the range ends before it starts.
        """
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError(
                f"The date range {self.date_from:%Y-%m-%d} to {self.date_to:%Y-%m-%d} ends "
                "before it starts."
            )
        start = f"{self.date_from:%Y%m%d}" if self.date_from else ""
        end = f"{self.date_to:%Y%m%d}" if self.date_to else ""
        dates = start if start and start == end else (f"{start}-{end}" if start or end else "")
        return FindQuery(
            level=QueryLevel.STUDY, study_date=dates, modality=self.modality.strip().upper()
        )


@dataclass(frozen=True)
class WorklistView:
    """The worklist's date window and filters, remembered between launches.

    A window that ended today is kept as a number of days, so it moves on with the calendar
    (the last 7 days stay the last 7 days); any other range is kept as its dates.
    """

    days: int | None = DEFAULT_DAYS
    """Days up to today, today included (None: the dates below)."""
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    modality: str = ""
    status: str = "all"
    """The report-state filter: all, unreported, draft, preliminary or final."""

    @classmethod
    def of(
        cls,
        date_from: dt.date | None,
        date_to: dt.date | None,
        modality: str,
        status: str,
        *,
        today: dt.date | None = None,
    ) -> WorklistView:
        """The view for what the filters show now."""
        today = today or dt.date.today()
        if date_to == today and date_from is not None and date_from <= today:
            return cls((today - date_from).days + 1, None, None, modality, status)
        return cls(None, date_from, date_to, modality, status)

    def window(self, *, today: dt.date | None = None) -> tuple[dt.date | None, dt.date | None]:
        """The first and last study dates to show."""
        today = today or dt.date.today()
        if self.days is not None:
            return today - dt.timedelta(days=max(self.days, 1) - 1), today
        return self.date_from, self.date_to


_STATUSES = ("all", *(state.value for state in ReportState))


def view_path() -> Path:
    """``worklist.json`` in the config dir: app state, written by the worklist, not by hand."""
    return locations.config_dir() / "worklist.json"


def load_view(path: Path | None = None) -> WorklistView:
    """The remembered view; the default (last 7 days, no filter) when there is none or it is
    unreadable (it is only a convenience: a bad file is ignored, not an error)."""
    path = path or view_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        days = data.get("days")
        status = str(data.get("status", "all"))
        return WorklistView(
            days=int(days) if days is not None and int(days) >= 1 else None,
            date_from=_day(data.get("from")),
            date_to=_day(data.get("to")),
            modality=str(data.get("modality", ""))[:16],
            status=status if status in _STATUSES else "all",
        )
    except (OSError, ValueError, TypeError, AttributeError):
        return WorklistView()


def _day(value: object) -> dt.date | None:
    return dt.date.fromisoformat(str(value)) if value else None


def save_view(view: WorklistView, path: Path | None = None) -> Path:
    """Write ``view`` atomically (:func:`tuiviewer.files.write_private`: temporary file, fsync,
    rename), readable by the owner only.

    Raises:
        SaveError: the config dir cannot be written (the caller says so; nothing is lost).
    """
    path = path or view_path()
    data = {
        "days": view.days,
        "from": view.date_from.isoformat() if view.date_from else None,
        "to": view.date_to.isoformat() if view.date_to else None,
        "modality": view.modality,
        "status": view.status,
    }
    return write_private(path, json.dumps(data))


# --- report states from the PACS -------------------------------------------------------------


@dataclass(frozen=True)
class StudyStatus:
    """The report state of one study, and where its report documents are on disk."""

    study_uid: str
    state: ReportState
    reports: tuple[Path, ...] = ()
    """Report SR files of the study in the local store, newest first (the first one sets the
    state unless a newer one supersedes it)."""
    error: str | None = None
    """Why the state may be incomplete (an SR could not be retrieved); None when all is known."""


def with_local_drafts(states: Iterable[StudyStatus], drafts: DraftStore) -> list[StudyStatus]:
    """The states that a draft saved or removed since they were found changes.

    Only ``UNREPORTED`` and ``DRAFT`` depend on the local drafts (a report on the PACS wins over
    a draft); each is one look at the drafts folder, so it is cheap enough for every return to
    the worklist from the report editor.
    """
    changed: list[StudyStatus] = []
    for status in states:
        if status.state not in (ReportState.UNREPORTED, ReportState.DRAFT):
            continue
        now = ReportState.DRAFT if drafts.has_draft(status.study_uid) else ReportState.UNREPORTED
        if now is not status.state:
            changed.append(replace(status, state=now))
    return changed


def _read(path: Path) -> Dataset | None:
    """The SR document at ``path``, None if it is not readable DICOM.

    Raises:
        ReadLimitError: it goes beyond the reading limits (the caller quarantines it).
    """
    try:
        return read_dicom(path, stop_before_pixels=True)
    except ReadLimitError:
        raise
    except (InvalidDicomError, OSError, ValueError, EOFError, TypeError, KeyError, TuiviewerError):
        return None


def _fetchable(remote: RemoteReport) -> bool:
    """Classes that may hold a narrative report ("" when the PACS does not say)."""
    return not remote.sop_class_uid or remote.sop_class_uid in SR_STORAGE_CLASSES


def _study_status(
    node: Node,
    study_uid: str,
    store: LocalStore,
    has_draft: bool,
    cancel: threading.Event | None,
    remotes: list[RemoteReport] | None = None,
    fetched: tuple[str | None] | None = None,
) -> StudyStatus:
    """The state of one study from its SR documents on the PACS (``remotes``, asked for here
    when None): the ones that may be reports and are not on disk are retrieved (unless that
    was done already: ``fetched`` holds the error, if any), then read."""
    if remotes is None:
        remotes = find_reports_on_pacs(node, study_uid, cancel=cancel)
    wanted = [r for r in remotes if _fetchable(r)]
    # Known bad documents are never fetched or read again (they could kill every start).
    unreadable = {q.sop_uid: q.reason for q in store.quarantined(study_uid)}
    missing = _missing(store, study_uid, wanted, unreadable)
    error: str | None = None
    if fetched is not None:
        error = fetched[0]
        unreadable.update({q.sop_uid: q.reason for q in store.quarantined(study_uid)})
    elif missing and not (cancel is not None and cancel.is_set()):
        series = list(dict.fromkeys(r.series_uid for r in missing))
        try:
            # Report documents travel deflated when stored so, and are inflated within the
            # reading limits on arrival: a bomb is refused and quarantined there, never read.
            result = resume_study(
                node,
                study_uid,
                store=store,
                series_uids=series,
                cancel=cancel,
                accept_deflated=True,
            )
        except PACS_DOWN:
            raise
        except NetError as exc:
            error = exc.message
        else:
            if result.error is not None:
                error = result.error.message
        # Documents refused on arrival beyond the limits are quarantined by then (the PACS
        # may well answer the refusal with a failure status, which raised above).
        unreadable.update({q.sop_uid: q.reason for q in store.quarantined(study_uid)})
    items: list[Dataset | RemoteReportLike] = list(remotes)
    found: list[tuple[str, Path]] = []
    for remote in wanted:
        if remote.sop_instance_uid in unreadable:
            continue
        path = store.instance_path(study_uid, remote.series_uid, remote.sop_instance_uid)
        try:
            ds = _read(path) if path.is_file() else None
        except ReadLimitError as exc:
            store.quarantine(study_uid, remote.series_uid, remote.sop_instance_uid, exc.message)
            unreadable[remote.sop_instance_uid] = exc.message
            continue
        if ds is not None:
            items.append(ds)
            if is_report(ds):
                found.append((_from_dataset(ds).when, path))
    ordered = [path for _, path in sorted(found, key=lambda item: item[0], reverse=True)]
    if unreadable:
        reason = next(iter(unreadable.values()))
        return StudyStatus(study_uid, ReportState.UNREADABLE, tuple(ordered), reason)
    state = classify(study_uid, items, has_draft)
    return StudyStatus(study_uid, state, tuple(ordered), error)


def _missing(
    store: LocalStore, study_uid: str, wanted: list[RemoteReport], unreadable: dict[str, str]
) -> list[RemoteReport]:
    """The documents to retrieve: not on disk, not quarantined."""
    return [
        r
        for r in wanted
        if r.sop_instance_uid not in unreadable
        and not store.has_instance(study_uid, r.series_uid, r.sop_instance_uid)
    ]


def _fetch_all(
    node: Node,
    store: LocalStore,
    reports: dict[str, list[RemoteReport]],
    cancel: threading.Event | None,
) -> dict[str, tuple[str | None]]:
    """Retrieve the missing report documents of every study on one C-GET association; the
    error of each study fetched (None when all came). Studies with nothing missing are left
    out; so is everything when the association cannot be set up (then each study tries on
    its own)."""
    wanted: dict[str, dict[str, list[InstanceInfo]]] = {}
    for study_uid, remotes in reports.items():
        unreadable = {q.sop_uid: q.reason for q in store.quarantined(study_uid)}
        fetchable = [r for r in remotes if _fetchable(r)]
        for r in _missing(store, study_uid, fetchable, unreadable):
            series = wanted.setdefault(study_uid, {}).setdefault(r.series_uid, [])
            series.append(InstanceInfo(r.sop_instance_uid, r.sop_class_uid))
    if not wanted or (cancel is not None and cancel.is_set()):
        return {}
    try:
        # Report documents travel deflated when stored so, and are inflated within the
        # reading limits on arrival: a bomb is refused and quarantined there, never read.
        results = retrieve_instances(node, wanted, store=store, cancel=cancel, accept_deflated=True)
    except NetError:
        return {}
    return {
        uid: (result.error.message if result.error is not None else None,)
        for uid, result in results.items()
    }


# --- asking the PACS about many studies at once ------------------------------------------------

#: Study Instance UIDs per list-matching C-FIND (PS3.4 C.2.2.2.2); 64 bytes each at most.
UIDS_PER_QUERY = 250
#: Return keys that decide a document's part in the state (PS3.3 C.17.2 SR Document General,
#: C.17.3 SR Document Content): its flags and time, and the root's value type.
_REPORT_KEYS = (
    "CompletionFlag",
    "VerificationFlag",
    "PreliminaryFlag",
    "ContentDate",
    "ContentTime",
    "ValueType",
)
#: The sequences that decide it too: the root's title and template (report or dose/CAD SR,
#: :func:`~tuiviewer.reports.sr.read.is_report`) and the documents it supersedes. Asked for as
#: empty return keys; a PACS that refuses them is asked without.
_REPORT_SEQUENCES = (
    "ConceptNameCodeSequence",
    "ContentTemplateSequence",
    "PredecessorDocumentsSequence",
)
#: Keys of Type 1 in every SR document: an answer without them did not come from the document
#: (the PACS does not return the key, or could not read the file), so it decides nothing.
_TYPE1_KEYS = ("ValueType", "ConceptNameCodeSequence", "CompletionFlag", "VerificationFlag")
#: Keys of Type 3 or 1C: an empty answer means "absent" only from a PACS that has returned the
#: key with a value for another document of the same call.
_OPTIONAL_KEYS = ("PreliminaryFlag", "ContentTemplateSequence", "PredecessorDocumentsSequence")


def _has_sr(row: StudyRow | None) -> bool | None:
    """Whether the PACS says the study holds an SR series (None: it does not say)."""
    if row is None or not row.modalities:
        return None
    return any(m.strip().upper() == "SR" for m in row.modalities)


def _remote(study_uid: str, series_uid: str, image: Dataset) -> RemoteReport:
    return RemoteReport(
        study_uid,
        series_uid,
        _str(image, "SOPInstanceUID"),
        _str(image, "SOPClassUID"),
        _str(image, "CompletionFlag"),
        _str(image, "VerificationFlag"),
        _str(image, "ContentDate"),
    )


def _image_identifier(study_uids: list[str], series_uid: str, sequences: bool) -> Dataset:
    """An image-level C-FIND for SR documents with the keys that decide the state.

    Without ``series_uid``: one query for many studies, a list of Study Instance UIDs and
    Modality SR (relational, not hierarchical: Orthanc and our demo PACS answer it; a PACS that
    does not is asked study by study). With it: the instances of one series (hierarchical).
    """
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.QueryRetrieveLevel = "IMAGE"
    ds.StudyInstanceUID = study_uids if len(study_uids) > 1 else study_uids[0]
    ds.SeriesInstanceUID = series_uid
    ds.SOPInstanceUID = ""
    ds.SOPClassUID = ""
    if not series_uid:
        ds.Modality = "SR"
    for keyword in _REPORT_KEYS:
        setattr(ds, keyword, "")
    for keyword in _REPORT_SEQUENCES if sequences else ():
        setattr(ds, keyword, [])
    return ds


def _wide_reports(
    session: FindSession,
    study_uids: list[str],
    cancel: threading.Event | None,
    answers: dict[str, Dataset],
    sequences: bool,
) -> dict[str, list[RemoteReport]]:
    """The SR documents of ``study_uids``, by study, from list-matching queries; each answer
    goes into ``answers`` by SOP Instance UID.

    Raises:
        NetError: a query failed (the caller falls back to one study at a time).
    """
    asked = set(study_uids)
    found: dict[str, list[RemoteReport]] = {}
    for start in range(0, len(study_uids), UIDS_PER_QUERY):
        chunk = study_uids[start : start + UIDS_PER_QUERY]
        for image in session.find(_image_identifier(chunk, "", sequences), cancel=cancel):
            study_uid = _str(image, "StudyInstanceUID")
            sop_class = _str(image, "SOPClassUID")
            sop_uid = _str(image, "SOPInstanceUID")
            # A PACS that ignores Modality at this level answers with the images too.
            is_sr = is_sr_class(sop_class) if sop_class else _str(image, "Modality") == "SR"
            if study_uid in asked and is_sr and sop_uid:
                found.setdefault(study_uid, []).append(
                    _remote(study_uid, _str(image, "SeriesInstanceUID"), image)
                )
                answers[sop_uid] = image
    return found


def _one_study_reports(
    session: FindSession,
    study_uid: str,
    cancel: threading.Event | None,
    answers: dict[str, Dataset],
    sequences: bool,
) -> list[RemoteReport]:
    """The SR documents of one study: its SR series, then their instances (hierarchical)."""
    series = [
        _str(ds, "SeriesInstanceUID")
        for ds in session.find(
            FindQuery(level=QueryLevel.SERIES, study_uid=study_uid, modality="SR"), cancel=cancel
        )
    ]
    found: list[RemoteReport] = []
    for series_uid in dict.fromkeys(uid for uid in series if uid):
        query = _image_identifier([study_uid], series_uid, sequences)
        for image in session.find(query, cancel=cancel):
            sop_class = _str(image, "SOPClassUID")
            if not sop_class or is_sr_class(sop_class):
                found.append(_remote(study_uid, series_uid, image))
                if _str(image, "SOPInstanceUID"):
                    answers[_str(image, "SOPInstanceUID")] = image
    return found


@dataclass
class _Asked:
    """What the PACS said: SR documents by study, errors by study, and why it stopped."""

    reports: dict[str, list[RemoteReport]]
    errors: dict[str, str]
    known: set[str]
    """Studies the PACS has answered for in full."""
    down: NetError | None = None
    answers: dict[str, Dataset] = field(default_factory=dict)
    """The C-FIND answer for each SR document, by SOP Instance UID."""


def _ask_pacs(
    node: Node,
    studies: list[tuple[str, StudyRow | None]],
    cancel: threading.Event | None,
) -> _Asked:
    """The SR documents of ``studies`` on one association: list-matching queries first, then
    one study at a time for what they cannot be trusted with.

    A study the PACS lists with an SR series but the wide answer left out is asked again on
    its own; so are studies whose modalities are unknown when the wide answer was empty (the
    PACS may have matched the UID list as one literal value). A PACS that goes away keeps
    what it answered so far (``down``).
    """
    asked = _Asked({}, {}, set())
    uids = [uid for uid, _ in studies]
    sequences = True
    try:
        with find_session(node) as session:
            try:
                try:
                    asked.reports = _wide_reports(session, uids, cancel, asked.answers, True)
                except PACS_DOWN:
                    raise
                except (NetError, ValueError):
                    # A PACS may refuse sequences as return keys: ask again without them.
                    sequences = False
                    asked.answers.clear()
                    asked.reports = _wide_reports(session, uids, cancel, asked.answers, False)
                trusted = bool(asked.reports)
            except PACS_DOWN:
                raise
            except (NetError, ValueError):
                asked.reports, trusted = {}, False
            again = [
                uid
                for uid, row in studies
                if uid not in asked.reports
                and (_has_sr(row) is True or (_has_sr(row) is None and not trusted))
            ]
            asked.known.update(set(uids) - set(again))
            for uid in again:
                if cancel is not None and cancel.is_set():
                    break
                try:
                    asked.reports[uid] = _one_study_reports(
                        session, uid, cancel, asked.answers, sequences
                    )
                    asked.known.add(uid)
                except PACS_DOWN:
                    raise
                except (NetError, ValueError) as exc:
                    asked.errors[uid] = str(exc)
    except PACS_DOWN as exc:
        asked.down = exc
    except NetError as exc:  # the query model refused: nothing can be asked
        asked.errors.update(dict.fromkeys(uids, exc.message))
    return asked


# --- states from the answers alone ------------------------------------------------------------


def _given(ds: Dataset, keyword: str) -> bool:
    """The answer carries a value for ``keyword`` (an item, for a sequence)."""
    value = ds.get(keyword)
    if value is None:
        return False
    if isinstance(value, Sequence):
        return len(value) > 0
    return bool(str(value).strip())


def _proven(answers: Iterable[Dataset]) -> frozenset[str]:
    """The optional keys this PACS has returned with a value for some document."""
    answers = list(answers)
    return frozenset(k for k in _OPTIONAL_KEYS if any(_given(a, k) for a in answers))


def _decides(answer: Dataset, proven: frozenset[str]) -> bool | None:
    """Whether the C-FIND answer for a document is a report, when it says all that
    retrieving the document would tell about its part in the state (report or not by class,
    value type, title and template; for a report, final or not); None when it does not."""

    def known(keyword: str) -> bool:
        return _given(answer, keyword) or keyword in proven

    sop_class = _str(answer, "SOPClassUID")
    if not sop_class or not _str(answer, "SOPInstanceUID"):
        return None
    if sop_class not in SR_STORAGE_CLASSES:
        return False  # dose, CAD, key objects: never a report (is_report says so by class)
    if not all(_given(answer, k) for k in _TYPE1_KEYS):
        return None
    if not is_report(answer):
        # Not titled as a report: only a TID 2000 template could still make it one.
        return False if known("ContentTemplateSequence") else None
    signed = (
        _str(answer, "CompletionFlag").upper() == "COMPLETE"
        and _str(answer, "VerificationFlag").upper() == "VERIFIED"
    )
    return True if not signed or known("PreliminaryFlag") else None


def _settled(
    study_uid: str,
    remotes: list[RemoteReport],
    answers: dict[str, Dataset],
    proven: frozenset[str],
    store: LocalStore,
    has_draft: bool,
) -> StudyStatus | None:
    """The state of a study from the C-FIND answers for its SR documents, without retrieving
    any, when they say all that decides it (:func:`classify` reads the answers as it would
    read the documents); None when they do not, or a document is quarantined (the study goes
    the retrieving way, which settles both).

    The report files are given only when every report is on disk already; otherwise the
    reader retrieves them when it opens a report (``report_states(..., fetch=True)``).
    """
    if store.quarantined(study_uid):
        return None
    reports: list[tuple[_Document, str, Dataset]] = []
    for remote in remotes:
        answer = answers.get(remote.sop_instance_uid)
        report = None if answer is None else _decides(answer, proven)
        if answer is None or report is None:
            return None
        if report and _str(answer, "StudyInstanceUID") in ("", study_uid):
            reports.append((_from_dataset(answer), remote.series_uid, answer))
    if len({document.status for document, _, _ in reports}) > 1:
        # Which report counts depends on their times and on which supersedes which.
        for _, _, answer in reports:
            dated = _given(answer, "ContentDate") and _given(answer, "ContentTime")
            chained = _given(answer, "PredecessorDocumentsSequence") or (
                "PredecessorDocumentsSequence" in proven
            )
            if not (dated and chained):
                return None
    state = _choose([document for document, _, _ in reports], has_draft)
    newest = sorted(reports, key=lambda item: item[0].when, reverse=True)
    try:
        where = [(series, document.sop_uid) for document, series, _ in newest]
        on_disk = all(store.has_instance(study_uid, series, sop) for series, sop in where)
        paths = [store.instance_path(study_uid, series, sop) for series, sop in where]
    except TuiviewerError:
        return None
    return StudyStatus(study_uid, state, tuple(paths) if on_disk else ())


# --- remembered states -------------------------------------------------------------------------


class StateCache:
    """Report states kept between refreshes, keyed by what the PACS says of each study.

    The study-level answer carries the modalities and the numbers of series and instances; a
    new or deleted report changes them, so a study whose figures (and local draft) are as they
    were keeps its state without a query. States with an error are never kept.
    """

    def __init__(self, limit: int = 50_000) -> None:
        self._states: dict[tuple[str, ...], tuple[tuple[object, ...], StudyStatus]] = {}
        self._limit = limit
        self._lock = threading.Lock()

    @staticmethod
    def _key(node: Node, store: LocalStore, study_uid: str) -> tuple[str, ...]:
        where = f"{node.kind}:{node.ae_title}@{node.host}:{node.port}"
        return (where, str(store.root), study_uid)

    def get(
        self, node: Node, store: LocalStore, study_uid: str, mark: tuple[object, ...]
    ) -> StudyStatus | None:
        """The state kept for the study if ``mark`` is the one it was kept with."""
        with self._lock:
            kept = self._states.get(self._key(node, store, study_uid))
        return kept[1] if kept is not None and kept[0] == mark else None

    def clear(self) -> None:
        """Forget every state (as a new launch)."""
        with self._lock:
            self._states.clear()

    def put(
        self, node: Node, store: LocalStore, status: StudyStatus, mark: tuple[object, ...]
    ) -> None:
        """Keep ``status`` (not when it has an error)."""
        if status.error is not None:
            return
        with self._lock:
            if len(self._states) >= self._limit:
                self._states.clear()
            self._states[self._key(node, store, status.study_uid)] = (mark, status)


#: The process's remembered states (the worklist refreshes every minute or so).
STATES = StateCache()


def merge_answers(first: StudyRow, again: StudyRow) -> StudyRow:
    """One row for two study-level answers with the same Study Instance UID (a PACS that keys
    studies by patient too, such as Orthanc, answers twice for a document filed under another
    Patient ID): the modalities of both, and no counts, so its state is asked for, not kept."""
    modalities = tuple(dict.fromkeys((*first.modalities, *again.modalities)))
    return replace(first, modalities=modalities, series_count=None, instance_count=None)


def _mark(row: StudyRow | None, has_draft: bool) -> tuple[object, ...] | None:
    """What must stay the same for a kept state to hold (None: nothing to tell by)."""
    if row is None or not row.modalities or row.instance_count is None:
        return None
    modalities = tuple(sorted(m.strip().upper() for m in row.modalities))
    return (modalities, row.series_count, row.instance_count, has_draft)


def report_states(
    node: Node,
    studies: Iterable[str | StudyRow],
    store: LocalStore,
    *,
    drafts: DraftStore | None = None,
    cancel: threading.Event | None = None,
    progress: Callable[[StudyStatus], None] | None = None,
    parallel: int = 4,
    cache: StateCache | None = None,
    fetch: bool = False,
) -> Iterator[StudyStatus]:
    """Yield the report state of each study as soon as it is known.

    Studies given as rows (the study-level answer) tell their modalities: one the PACS lists
    without SR is unreported (or draft) without a query, and one whose figures did not change
    since the last call keeps its state (``cache``). Those come first. For a DIMSE node the
    others' SR documents are asked for on one association (one list-matching C-FIND for many
    studies, or a study at a time where the PACS needs that), with the keys that decide the
    state: a study whose answers carry them all is settled from them (:func:`_settled`).
    Other nodes are asked study by study. For the rest, the documents that may be reports and
    are not in ``store`` are retrieved (image-level C-GET/C-MOVE of those instances only),
    ``parallel`` studies at a time, then :func:`classify` reads what is on disk.

    Args:
        node: the PACS.
        studies: Study Instance UIDs or study rows, most important first.
        store: where SR documents are kept between calls (never fetched twice).
        drafts: where local drafts are (default: the user's).
        cancel: stops between studies and interrupts the running queries.
        progress: called with each status as well (for callers that do not iterate).
        parallel: studies retrieved at the same time (1 for one association at a time).
            A node retrieving with C-MOVE retrieves one study at a time: each retrieve
            listens on the node's one storage port.
        cache: states kept between calls (default: the process's :data:`STATES`).
        fetch: retrieve the report documents too, so that ``reports`` names them on disk
            (for reading a report). Without it a study whose C-FIND answers say what decides
            its state (title, flags, predecessors) is settled from them, and only the others'
            documents are retrieved.

    Raises:
        NetError: the PACS cannot be reached, refused us or stopped answering (connection,
            association, timeout, TLS); the states known by then were yielded. A failure for
            one study only (a DIMSE error, an SR that cannot be retrieved) is in that study's
            ``error`` instead.
    """
    drafts = drafts or DraftStore()
    cache = STATES if cache is None else cache
    stopped = threading.Event()

    def cancelled() -> bool:
        return stopped.is_set() or (cancel is not None and cancel.is_set())

    def emit(status: StudyStatus, mark: tuple[object, ...] | None) -> StudyStatus:
        if mark is not None:
            cache.put(node, store, status, mark)
        if progress is not None:
            progress(status)
        return status

    pending: list[tuple[str, StudyRow | None, bool, tuple[object, ...] | None]] = []
    for study in studies:
        uid, row = (study.uid, study) if isinstance(study, StudyRow) else (study, None)
        has_draft = drafts.has_draft(uid)
        mark = _mark(row, has_draft)
        kept = cache.get(node, store, uid, mark) if mark is not None else None
        if kept is not None:
            yield emit(kept, None)
        elif _has_sr(row) is False:
            yield emit(StudyStatus(uid, _unreported(has_draft)), mark)
        else:
            pending.append((uid, row, has_draft, mark))
        if cancelled():
            return
    if not pending:
        return
    asked: _Asked | None = None
    fetched: dict[str, tuple[str | None]] = {}
    if node.kind == "dimse":
        asked = _ask_pacs(node, [(uid, row) for uid, row, _, _ in pending], cancel)
        if asked.down is not None:
            # What the PACS answered before it went away is settled; the rest stays unknown.
            pending = [p for p in pending if p[0] in asked.known]
        if not fetch:
            proven = _proven(asked.answers.values())
            rest = []
            for item in pending:
                uid, _, has_draft, mark = item
                settled = None
                if uid in asked.known and uid not in asked.errors:
                    remotes = asked.reports.get(uid, [])
                    settled = _settled(uid, remotes, asked.answers, proven, store, has_draft)
                if settled is None:
                    rest.append(item)
                else:
                    yield emit(settled, mark)
                if cancelled():
                    return
            pending = rest
        if asked.down is None and node.retrieve == "get":
            wanted = {p[0] for p in pending}
            reports = {uid: r for uid, r in asked.reports.items() if uid in wanted}
            fetched = _fetch_all(node, store, reports, cancel)

    def one(
        item: tuple[str, StudyRow | None, bool, tuple[object, ...] | None],
    ) -> StudyStatus | None:
        uid, _, has_draft, _ = item
        if cancelled():
            return None
        if asked is not None and uid in asked.errors:
            return StudyStatus(uid, _unreported(has_draft), (), asked.errors[uid])
        known = None if asked is None else asked.reports.get(uid, [])
        try:
            return _study_status(
                node, uid, store, has_draft, cancel or stopped, known, fetched.get(uid)
            )
        except PACS_DOWN:
            raise
        except TuiviewerError as exc:
            return StudyStatus(uid, _unreported(has_draft), (), exc.message)

    width = 1 if node.retrieve == "move" else max(1, parallel)
    with ThreadPoolExecutor(max_workers=width, thread_name_prefix="report-states") as pool:
        try:
            for item, status in zip(pending, pool.map(one, pending), strict=True):
                if status is None or cancelled():
                    return
                yield emit(status, item[3])
        finally:
            # A consumer that stops early (cancel, PACS down, closed generator) stops the rest.
            stopped.set()
            pool.shutdown(wait=False, cancel_futures=True)
    if asked is not None and asked.down is not None:
        raise asked.down


def _unreported(has_draft: bool) -> ReportState:
    return ReportState.DRAFT if has_draft else ReportState.UNREPORTED


# --- priors and opening ------------------------------------------------------------------------


def find_priors(
    node: Node, study: StudyRow, *, cancel: threading.Event | None = None
) -> list[StudyRow]:
    """The patient's other studies on ``node``, newest first.

    Matching is on Patient ID alone (the PACS's key); an empty ID matches nothing rather than
    every patient, and IDs that only match through a wildcard are dropped.

    Raises:
        NetError: the query failed.
    """
    return patient_studies(node, study.patient_id, exclude=study.uid, cancel=cancel)


def patient_studies(
    node: Node, patient_id: str, *, exclude: str = "", cancel: threading.Event | None = None
) -> list[StudyRow]:
    """The studies of Patient ID ``patient_id`` on ``node`` but ``exclude``, newest first (see
    :func:`find_priors`)."""
    patient_id = patient_id.strip()
    if not patient_id:
        return []
    rows: dict[str, StudyRow] = {}
    for ds in find(node, FindQuery(level=QueryLevel.STUDY, patient_id=patient_id), cancel=cancel):
        row = to_row(QueryLevel.STUDY, ds)
        if isinstance(row, StudyRow) and row.patient_id.strip() == patient_id:
            if row.uid and row.uid != exclude:
                rows.setdefault(row.uid, row)
    return sorted(rows.values(), key=lambda r: (r.date, r.time), reverse=True)


def first_image_series(
    node: Node, study_uid: str, *, cancel: threading.Event | None = None
) -> str | None:
    """The series to retrieve first: the lowest-numbered one holding images (not SR, KO, PR…).

    Returns None when the study has no such series or the PACS does not list series.
    """
    rows: list[SeriesRow] = []
    try:
        for ds in find(
            node, FindQuery(level=QueryLevel.SERIES, study_uid=study_uid), cancel=cancel
        ):
            row = to_row(QueryLevel.SERIES, ds)
            if isinstance(row, SeriesRow) and row.uid:
                rows.append(row)
    except NetError:
        return None
    images = [r for r in rows if r.modality.upper() not in _NON_IMAGE_MODALITIES]
    if not images:
        return None
    images.sort(key=lambda r: (r.number is None, r.number or 0))
    return images[0].uid


def images_on_disk(store: LocalStore, study_uid: str) -> int:
    """How many instances of the study's image series are in the store (SR series excluded).

    The worklist puts report SRs in the store too, so "the study directory exists" does not
    mean the images were retrieved. One file per series is read to tell.
    """
    try:
        folder = store.study_dir(study_uid)
    except TuiviewerError:
        return 0
    if not folder.is_dir():
        return 0
    count = 0
    for series in sorted(p for p in folder.iterdir() if p.is_dir()):
        files = [f for f in series.iterdir() if f.is_file() and f.suffix == ".dcm"]
        if not files:
            continue
        try:
            head = read_dicom(files[0], stop_before_pixels=True, specific_tags=["SOPClassUID"])
        except (InvalidDicomError, OSError, ValueError, EOFError, TuiviewerError):
            continue
        if not str(head.get("SOPClassUID", "")).startswith(_SR_PREFIX):
            count += len(files)
    return count


def is_retrieved(store: LocalStore, study: StudyRow) -> bool:
    """Every instance the PACS counts is on disk (or, without a count, some images are)."""
    try:
        have = len(store.instance_uids(study.uid))
    except TuiviewerError:
        return False
    if study.instance_count:
        return have >= study.instance_count
    return images_on_disk(store, study.uid) > 0
