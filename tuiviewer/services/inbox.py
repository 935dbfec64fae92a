"""The Inbox: studies senders pushed to us, their report state, and the report going back.

The listener (:mod:`tuiviewer.net.listen`) writes received studies into the local store and
who sent them into its journal. This module reads both back as if the store were one more
PACS: an :class:`InboxNode` reached through the transport seam (``kind = "inbox"``) answers
study-, series- and image-level queries from the files' headers, so the worklist screen, its
report states (from the SRs written locally) and the report editor work on the Inbox as on
any node, with no code of their own.

A report written for a received study goes back to its sender: the node the calling AE title
maps to (``[listen.reply]`` in config.toml, else the node with that AE title), over DIMSE or
DICOMweb. Each attempt is recorded in ``.replies.jsonl`` (0600) beside the journal, which the
Inbox shows on the study's row; a :class:`SendBackJob` in the retrieve queue retries a
failed one. Nothing here imports Textual.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from tuiviewer.config.listen import ListenConfig
from tuiviewer.config.nodes import Node
from tuiviewer.dicom.reading import read_dicom
from tuiviewer.dicom.rows import QueryLevel
from tuiviewer.exceptions import TuiviewerError
from tuiviewer.files import append_line
from tuiviewer.net.echo import EchoResult
from tuiviewer.net.errors import NetError
from tuiviewer.net.find import FindQuery, QueryModel
from tuiviewer.net.listen import Received, journal_path, received_studies
from tuiviewer.net.retrieve import Method, RetrieveProgress, RetrieveResult, StudyInventory
from tuiviewer.net.send import SendProgress, SendResult
from tuiviewer.net.trace import AssociationTrace
from tuiviewer.net.transport import nothing_to_fetch, register, transport_for
from tuiviewer.services.jobs import RetrieveJob
from tuiviewer.store import InvalidUIDError, LocalStore, validate_uid

KIND = "inbox"
REPLIES = ".replies.jsonl"

_STUDY_TAGS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "StudyDescription",
    "AccessionNumber",
    "ReferringPhysicianName",
)
_SERIES_TAGS = (
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "Modality",
    "SeriesNumber",
    "SeriesDescription",
    "BodyPartExamined",
)
_IMAGE_TAGS = (
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "SOPClassUID",
    "InstanceNumber",
    "CompletionFlag",
    "VerificationFlag",
    "ContentDate",
)


@dataclass(frozen=True)
class InboxNode(Node):
    """The Inbox as a node; for one study, also where its reports go back (``reply_to``)."""

    store_root: Path = Path()
    """The local store whose received studies this node lists."""
    sender: str = ""
    """The calling AE title of the study's sender ("" for the Inbox as a whole)."""
    reply_to: Node | None = None
    """The node reports of this study are sent to; None when no node is mapped to the sender."""

    @property
    def kind(self) -> str:
        return KIND

    @property
    def address(self) -> str:
        if self.reply_to is not None:
            return f"{self.reply_to.address}, the sender {self.sender!r}"
        return "studies received" if not self.sender else f"the sender {self.sender!r}"

    def describe(self) -> str:
        if self.reply_to is not None:
            return f"{self.reply_to.describe()}, the sender {self.sender!r}"
        return "the Inbox (studies received)"


def inbox_node(store: LocalStore) -> InboxNode:
    """The Inbox of ``store``, as the worklist queries it."""
    return InboxNode(name="Inbox", ae_title="", host="", port=0, store_root=store.root)


def reply_node(
    store: LocalStore,
    study_uid: str,
    listen: ListenConfig | None,
    nodes: Mapping[str, Node],
) -> InboxNode:
    """The node for writing the report of received study ``study_uid``: it lists the Inbox and
    sends reports to the study's sender (``reply_to`` None when no node maps to it)."""
    record = received_studies(store).get(study_uid)
    sender = record.calling_aet if record is not None else ""
    target = (listen or ListenConfig()).reply_node(sender, nodes) if sender else None
    name = target.name if target is not None else (sender or "Inbox")
    return InboxNode(
        name=name,
        ae_title="",
        host=target.host if target is not None else "",
        port=target.port if target is not None else 0,
        store_root=store.root,
        sender=sender,
        reply_to=target,
    )


# --- the Inbox answering queries ------------------------------------------------------------------


def _header(path: Path, tags: Sequence[str]) -> Dataset | None:
    try:
        # A pushed file is someone else's bytes: read within the limits like every other.
        return read_dicom(path, stop_before_pixels=True, specific_tags=list(tags))
    except (InvalidDicomError, OSError, ValueError, EOFError, TypeError, KeyError, TuiviewerError):
        return None


def _files(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.suffix == ".dcm" and p.is_file())
    except OSError:
        return []


def _series_dirs(study: Path) -> list[Path]:
    try:
        return sorted(p for p in study.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []


def _copy(ds: Dataset, source: Dataset, keywords: Sequence[str]) -> None:
    for keyword in keywords:
        if keyword in source:
            ds[keyword] = source[keyword]


def _matches(value: str, wanted: str) -> bool:
    """DICOM matching of a plain value against ``wanted`` ("" any; ``*``/``?`` wildcards)."""
    if not wanted:
        return True
    import fnmatch

    return fnmatch.fnmatchcase(value, wanted.replace("[", "[[]"))


def _study_dataset(store: LocalStore, study_uid: str) -> Dataset | None:
    folder = store.study_dir(study_uid)
    ds = Dataset()
    modalities: list[str] = []
    series_count = instances = 0
    for series in _series_dirs(folder):
        files = _files(series)
        if not files:
            continue
        header = _header(files[0], (*_STUDY_TAGS, "Modality"))
        if header is None:
            continue
        series_count += 1
        instances += len(files)
        modality = str(header.get("Modality", "") or "")
        if modality and modality not in modalities:
            modalities.append(modality)
        if "PatientID" not in ds or modality not in ("SR", "KO", "PR"):
            _copy(ds, header, _STUDY_TAGS)
    if not series_count:
        return None
    ds.StudyInstanceUID = study_uid
    ds.ModalitiesInStudy = modalities
    ds.NumberOfStudyRelatedSeries = series_count
    ds.NumberOfStudyRelatedInstances = instances
    return ds


class InboxTransport:
    """Answers queries from the received studies on disk; sends reports to the sender."""

    def _store(self, node: Node) -> LocalStore:
        if not isinstance(node, InboxNode):
            raise TypeError(f"Node {node.name!r} is not the Inbox.")
        return LocalStore(node.store_root)

    def echo(self, node: Node, *, trace: AssociationTrace | None = None) -> EchoResult:
        self._store(node)
        return EchoResult(node=node, status=0, rtt_ms=0.0, trace=trace or AssociationTrace())

    def find(
        self,
        node: Node,
        query: FindQuery,
        *,
        model: QueryModel = QueryModel.STUDY_ROOT,
        cancel: threading.Event | None = None,
        trace: AssociationTrace | None = None,
    ) -> Iterator[Dataset]:
        store = self._store(node)
        level = QueryLevel(query.level)
        if level in (QueryLevel.PATIENT, QueryLevel.STUDY):
            yield from self._studies(store, query, cancel)
        elif level is QueryLevel.SERIES:
            yield from self._series(store, query)
        else:
            yield from self._images(store, query)

    def _studies(
        self, store: LocalStore, query: FindQuery, cancel: threading.Event | None
    ) -> Iterator[Dataset]:
        # Every received study still in the store, whatever its date: a pushed study is to
        # be read whenever it was acquired.
        for uid in received_studies(store):
            if cancel is not None and cancel.is_set():
                return
            if query.study_uid and uid != query.study_uid:
                continue
            ds = _study_dataset(store, uid)
            if ds is None:
                continue
            if query.patient_id and str(ds.get("PatientID", "")).strip() != query.patient_id:
                continue
            if query.modality and query.modality not in list(ds.ModalitiesInStudy):
                continue
            yield ds

    def _series(self, store: LocalStore, query: FindQuery) -> Iterator[Dataset]:
        if not query.study_uid:
            return
        for folder in _series_dirs(store.study_dir(query.study_uid)):
            files = _files(folder)
            header = _header(files[0], _SERIES_TAGS) if files else None
            if header is None:
                continue
            if query.series_uid and folder.name != query.series_uid:
                continue
            if not _matches(str(header.get("Modality", "") or ""), query.modality):
                continue
            ds = Dataset()
            _copy(ds, header, _SERIES_TAGS)
            ds.SeriesInstanceUID = folder.name
            ds.NumberOfSeriesRelatedInstances = len(files)
            yield ds

    def _images(self, store: LocalStore, query: FindQuery) -> Iterator[Dataset]:
        if not query.study_uid:
            return
        for folder in _series_dirs(store.study_dir(query.study_uid)):
            if query.series_uid and folder.name != query.series_uid:
                continue
            for path in _files(folder):
                header = _header(path, _IMAGE_TAGS)
                if header is not None:
                    yield header

    def study_inventory(
        self,
        node: Node,
        study_uid: str,
        *,
        cancel: threading.Event | None = None,
        trace: AssociationTrace | None = None,
    ) -> StudyInventory:
        return StudyInventory(study_uid=study_uid, series={})

    def _nothing(self, study_uid: str) -> RetrieveResult:
        """Received studies are on disk already: a retrieve has nothing to fetch."""
        validate_uid(study_uid, "Study Instance UID")
        return nothing_to_fetch(study_uid)

    def retrieve_study(
        self,
        node: Node,
        study_uid: str,
        *,
        store: LocalStore,
        series_uids: Sequence[str] | None = None,
        first_series: str | None = None,
        method: Method | None = None,
        progress: Callable[[RetrieveProgress], None] | None = None,
        cancel: threading.Event | None = None,
        trace: AssociationTrace | None = None,
        find_trace: AssociationTrace | None = None,
        on_series_done: Callable[[str], None] | None = None,
        accept_deflated: bool | None = None,
    ) -> RetrieveResult:
        return self._nothing(study_uid)

    def resume_study(
        self,
        node: Node,
        study_uid: str,
        *,
        store: LocalStore,
        series_uids: Sequence[str] | None = None,
        method: Method | None = None,
        progress: Callable[[RetrieveProgress], None] | None = None,
        cancel: threading.Event | None = None,
        trace: AssociationTrace | None = None,
        find_trace: AssociationTrace | None = None,
        on_series_done: Callable[[str], None] | None = None,
        accept_deflated: bool | None = None,
    ) -> RetrieveResult:
        return self._nothing(study_uid)

    def send_files(
        self,
        node: Node,
        paths: Sequence[Path],
        *,
        progress: Callable[[SendProgress], None] | None = None,
        cancel: threading.Event | None = None,
        trace: AssociationTrace | None = None,
    ) -> SendResult:
        """Send a report of a received study back to its sender, and record how it went.

        Raises:
            NetError: no node is mapped to the sender, or the send failed as a whole.
        """
        store = self._store(node)
        assert isinstance(node, InboxNode)
        target = node.reply_to
        studies = {_study_of(path) for path in paths} - {""}
        if target is None:
            error = NetError(
                f"No node to send the report back to: the sender {node.sender or '(unknown)'!r} "
                "maps to no node of nodes.toml; add one with that AE title, or name one "
                f'under [listen.reply] in config.toml ({node.sender or "AET"} = "node").'
            )
            for study in studies:
                record_reply(store, study, node.name, "failed", error.message)
            raise error
        try:
            result = transport_for(target).send_files(
                target, paths, progress=progress, cancel=cancel, trace=trace
            )
        except NetError as exc:
            for study in studies:
                record_reply(store, study, target.name, "failed", exc.message)
            raise
        failed = {_study_of(path) for path, _ in result.failed}
        for study in studies:
            if study in failed or result.cancelled:
                reason = next((r for p, r in result.failed if _study_of(p) == study), "cancelled")
                record_reply(store, study, target.name, "failed", reason)
            else:
                record_reply(store, study, target.name, "sent", "")
        return result


def _study_of(path: Path) -> str:
    header = _header(path, ("StudyInstanceUID",))
    return str(header.get("StudyInstanceUID", "") or "") if header is not None else ""


register(KIND, InboxTransport())


# --- what was sent back ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """The latest attempt to send a received study's report back."""

    study_uid: str
    node: str
    state: str
    """``"sent"`` or ``"failed"``."""
    at: str
    error: str = ""


def record_reply(store: LocalStore, study_uid: str, node: str, state: str, error: str) -> None:
    """Append one attempt to ``.replies.jsonl`` (0600, fsynced)."""
    try:
        validate_uid(study_uid, "Study Instance UID")
    except InvalidUIDError:
        return
    at = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    line = json.dumps(
        {"study_uid": study_uid, "node": node, "state": state, "at": at, "error": error[:300]},
        sort_keys=True,
    )
    append_line(store.root / REPLIES, line)


def replies(store: LocalStore) -> dict[str, Reply]:
    """The latest send-back attempt of each study."""
    try:
        text = (store.root / REPLIES).read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    found: dict[str, Reply] = {}
    for line in text.splitlines():
        try:
            reply = Reply(**json.loads(line))
        except (ValueError, TypeError):
            continue
        found[reply.study_uid] = reply
    return found


def inbox_changed_since(store: LocalStore, stamp: tuple[float, float]) -> tuple[float, float]:
    """The journal's and replies' modification times: differ from ``stamp`` when a study
    arrived (from this process or a ``tuiviewer listen`` service) or a report went back."""
    times = []
    for path in (journal_path(store), store.root / REPLIES):
        try:
            times.append(path.stat().st_mtime)
        except FileNotFoundError:
            times.append(0.0)
    return times[0], times[1]


# --- the queue ------------------------------------------------------------------------------------


@dataclass
class SendBackJob(RetrieveJob):
    """A report going back to a sender, in the retrieve queue (retry resends it)."""

    paths: tuple[Path, ...] = ()
    send_result: SendResult | None = None
    started_at: float = 0.0
    what: ClassVar[str] = "Send-back"

    def run(
        self,
        store: LocalStore,
        on_progress: Callable[[RetrieveJob], None] | None = None,
    ) -> RetrieveResult | None:
        """Send the report (blocking); the outcome is in ``state`` and ``error``."""
        self.cancel.clear()
        self.state = "running"
        self.error = None
        self.attempts += 1
        self.started_at = time.monotonic()
        self.trace = AssociationTrace()
        try:
            result = transport_for(self.node).send_files(
                self.node, list(self.paths), cancel=self.cancel, trace=self.trace
            )
        except TuiviewerError as exc:
            self.state = "failed"
            self.error = exc.message
            return None
        self.send_result = result
        if result.failed:
            self.state = "failed"
            self.error = result.failed[0][1]
        elif result.cancelled:
            self.state = "cancelled"
        else:
            self.state = "done"
        return None

    def outcome(self) -> str:
        result = self.send_result
        if result is None:
            return self.error or ""
        return f"{len(result.sent)} sent, {len(result.failed)} failed"

    def summary(self) -> str:
        if self.state == "queued":
            return "waiting"
        if self.state == "running":
            return "sending the report…"
        if self.state == "done":
            return f"report sent to {self.node.name}"
        return self.error or self.state

    def fraction(self) -> float | None:
        return 1.0 if self.state == "done" else None


def send_back_job(node: Node, path: Path, study_uid: str, label: str) -> SendBackJob:
    """A queue job sending the report ``path`` of ``study_uid`` to ``node`` (an InboxNode)."""
    return SendBackJob(node=node, study_uid=study_uid, label=label, paths=(path,))


def senders(store: LocalStore) -> dict[str, Received]:
    """The latest reception record of each received study (who sent it, when)."""
    return received_studies(store)
