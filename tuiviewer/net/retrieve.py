"""Retrieving a study from a PACS into the local store: C-GET or C-MOVE, series by series.

The flow, and why:

1. An image-level C-FIND lists the study's series, instances and SOP classes
   (:mod:`tuiviewer.net.inventory`). It tells the C-GET which storage contexts to propose (a
   class we fail to offer is silently lost), the progress its total, and a resume what is
   missing. A PACS that will not answer it gets the broad fallback set of
   :mod:`tuiviewer.net.sopclasses`.
2. While that C-FIND still answers, a lead association fetches the first instances listed, so
   the reader sees a slice before the PACS has listed the study (:mod:`tuiviewer.net.lead`).
3. The plan, one C-GET (or C-MOVE) per series, the one the user opened first, runs on one
   association or several (:mod:`tuiviewer.net.execute`); the series in view comes by
   image-level requests in the order the reader needs them (:mod:`tuiviewer.net.follow`).
4. Each instance is written to disk the moment it arrives (:class:`~tuiviewer.net.move.
   InstanceWriter`); an association that dies mid-way leaves every instance received so far
   on disk, and :func:`resume_study` fetches only what is missing with image-level requests.

This module holds the entry points and re-exports the names other layers use, so they need
not know how the work is split. Nothing here imports Textual; ``progress`` is called from
worker threads (see retrieve_study).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import replace
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import evt

from tuiviewer.config.nodes import Node
from tuiviewer.net.association import MAX_CONTEXTS, associate, require_context
from tuiviewer.net.errors import (
    AssociationAborted,
    AssociationRejected,
    ConnectionFailed,
    DimseStatusError,
    NetError,
    NetTimeout,
    NoAcceptedContext,
)
from tuiviewer.net.execute import _execute, _plan, _resolve_method
from tuiviewer.net.find import _CancelWatcher
from tuiviewer.net.follow import FOLLOW_PER_REQUEST, ReaderFocus
from tuiviewer.net.inventory import (
    InstanceInfo,
    StudyInventory,
    _inventory_or_none,
    instance_number,
    study_inventory,
)
from tuiviewer.net.lead import LEAD_PER_REQUEST, _Lead
from tuiviewer.net.move import InstanceWriter
from tuiviewer.net.request import (
    _QR_SYNTAXES,
    GET_MODEL,
    MAX_UIDS_PER_REQUEST,
    MOVE_MODEL,
    Method,
    RetrieveProgress,
    RetrieveResult,
    _identifier,
    _Request,
    _Run,
    _run_request,
    _storage_contexts,
)
from tuiviewer.net.sopclasses import scp_roles
from tuiviewer.net.trace import AssociationTrace
from tuiviewer.store import LocalStore, foreign_uid, uid_name

__all__ = [
    "FOLLOW_PER_REQUEST",
    "GET_MODEL",
    "LEAD_PER_REQUEST",
    "MAX_UIDS_PER_REQUEST",
    "MOVE_MODEL",
    "STUDIES_PER_REQUEST",
    "InstanceInfo",
    "Method",
    "ReaderFocus",
    "RetrieveProgress",
    "RetrieveResult",
    "StudyInventory",
    "instance_number",
    "resume_study",
    "retrieve_instances",
    "retrieve_study",
    "study_inventory",
]


def retrieve_study(
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
    focus: ReaderFocus | None = None,
    associations: int = 1,
    inventory: StudyInventory | None = None,
) -> RetrieveResult:
    """Retrieve a study (or some of its series) into ``store``, series by series.

    Args:
        node: the PACS.
        study_uid: Study Instance UID.
        store: where instances are written (``<study>/<series>/<sop>.dcm``, 0600 in 0700).
        series_uids: only these series (default: every series of the study).
        first_series: retrieved before the others (e.g. the one the user opened).
        method: ``"get"`` (C-GET) or ``"move"`` (C-MOVE to our storage SCP on
            ``node.move_port``, with our calling AE title as destination; the SCP accepts
            only DICOM TLS when the node has TLS settings, and listens on loopback when the
            PACS is on this computer); default ``node.retrieve``.
        progress: called after every instance written and every pending response that changes
            the failure counts, from the store's commit thread or the retrieving thread.
        cancel: set it to send C-CANCEL; the result then says ``cancelled`` and keeps what
            arrived.
        trace: filled with the C-GET/C-MOVE association (and for C-MOVE our storage SCP's
            incoming associations and C-STOREs).
        find_trace: filled with the image-level C-FIND association.
        on_series_done: called with each series' UID once its request finished.
        accept_deflated: offer (C-GET) or accept (C-MOVE) Deflated Explicit VR Little Endian;
            default ``node.accept_deflated``. Deflated instances are inflated within the
            reading limits as they arrive, and refused (and quarantined) beyond them.
        focus: the first series comes by image-level requests of
            :data:`FOLLOW_PER_REQUEST` instances, each starting where the reader is (set it
            from the viewer); a PACS that refuses them gets the series level for the rest
            (``result.notes`` says so). Needs the image-level C-FIND's list.
        associations: C-GET on up to this many associations at once, each taking the next
            request (a PACS that refuses the second leaves one; ``result.notes`` says so).
        inventory: the study's image-level C-FIND, asked for moments ago (while the reader
            rested on its row): not asked again, so the first C-GET goes out at once.

    Returns:
        What arrived, the PACS's sub-operation counts and failed instances, and the error
        (``result.error``) if the association died or a request failed mid-way.

    Raises:
        InvalidUIDError: ``study_uid`` (or a series UID) is empty or not an identifier.
        NetError: the retrieve could not start (connection, association, TLS, no Q/R
            context), or it failed before any instance arrived (e.g. 0xA801 "Move
            destination unknown", an abort before the first instance).
        TlsFailed: (a NetError) also when the PACS could not connect back to our storage
            SCP over TLS for a C-MOVE; the message gives the handshake's reason.
    """
    foreign_uid(study_uid, "Study Instance UID")
    for uid in [*(series_uids or ()), *([first_series] if first_series else [])]:
        foreign_uid(uid, "Series Instance UID")
    chosen = _resolve_method(node, method)
    deflate = node.accept_deflated if accept_deflated is None else accept_deflated
    lead: _Lead | None = None
    listed = inventory
    if listed is not None:
        pass  # asked for moments ago
    elif focus is not None and not focus.placed and chosen == "get" and not series_uids:
        # Nobody reads yet (the viewer waits for its first slice): no need to wait for the
        # whole list before fetching the first instance.
        lead = _Lead(node, study_uid, store, first_series, focus, progress, cancel, deflate)
        lead.start()
    try:
        try:
            inventory = listed or _inventory_or_none(
                node,
                study_uid,
                cancel,
                find_trace or (lead.trace if lead is not None else None),
                on_match=lead.on_match if lead is not None else None,
            )
        except AssociationRejected:
            if lead is None or not lead.warm:
                raise
            # The lead holds a warm association and the PACS takes one only: it gets it back.
            lead.release()
            inventory = _inventory_or_none(node, study_uid, cancel, find_trace)
    finally:
        writer = lead.finish() if lead is not None else None
        if writer is not None and sys.exc_info()[0] is not None:
            writer.close()  # the C-FIND failed: what the lead brought stays on disk
    found_nothing = inventory is not None and not inventory.series
    if found_nothing:
        inventory = None
    plan = _plan(inventory, series_uids, first_series)
    refused = lead.refused if lead is not None else None
    if focus is not None and plan and plan[0].series_uid and refused is None:
        plan[0] = replace(plan[0], follow=True)
    total: int | None = None
    if inventory is not None:
        total = sum(len(inventory.series.get(r.series_uid or "", [])) for r in plan)
    try:
        result = _execute(
            node,
            study_uid,
            store=store,
            plan=plan,
            inventory=inventory,
            total=total,
            method=chosen,
            progress=progress,
            cancel=cancel,
            trace=trace,
            on_series_done=on_series_done,
            deflate=deflate,
            focus=focus,
            associations=associations,
            writer=writer,
        )
        if refused is not None:
            result.notes.insert(0, refused)
        if lead is not None:  # what it brought counts; what it missed was asked for again
            done = lead.run.final
            result = replace(
                result,
                completed=result.completed + done.completed,
                warning=result.warning + done.warning,
            )
        return result
    except DimseStatusError as exc:
        if not found_nothing:
            raise
        # Orthanc answers a bare 0xC000 for a study it does not hold; say what we know.
        raise DimseStatusError(
            f"{exc.message} Its image-level C-FIND found no instance of study {study_uid} "
            "either: the PACS probably does not hold that study.",
            code=exc.code,
            meaning=exc.meaning,
            category=exc.category,
        ) from None


def resume_study(
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
    """Fetch only the instances of a study that are not in ``store`` yet.

    An image-level C-FIND lists the study; what ``store.instance_uids`` lacks is requested
    with image-level C-GETs (or C-MOVEs) naming the missing SOP Instance UIDs, at most
    :data:`MAX_UIDS_PER_REQUEST` per request, one series after the other. ``total`` in the
    result and progress is the number of missing instances. ``accept_deflated`` as for
    :func:`retrieve_study`.

    Raises:
        NetError: as :func:`retrieve_study`; also when the PACS does not answer the
            image-level C-FIND, since then nothing tells what is missing.
    """
    foreign_uid(study_uid, "Study Instance UID")
    chosen = _resolve_method(node, method)
    try:
        inventory = study_inventory(node, study_uid, cancel=cancel, trace=find_trace)
    except (DimseStatusError, NoAcceptedContext) as exc:
        raise type(exc)(
            f"Cannot resume study {study_uid}: {exc.message} Without an image-level C-FIND "
            "nothing tells which instances are missing; retrieve the whole study again.",
            *_error_args(exc),
        ) from exc
    have = store.instance_uids(study_uid)
    wanted = list(series_uids) if series_uids else list(inventory.series)
    plan: list[_Request] = []
    for series in wanted:
        missing = [
            i.sop_uid for i in inventory.series.get(series, []) if uid_name(i.sop_uid) not in have
        ]
        chunks = [
            missing[start : start + MAX_UIDS_PER_REQUEST]
            for start in range(0, len(missing), MAX_UIDS_PER_REQUEST)
        ]
        for index, chunk in enumerate(chunks):
            plan.append(_Request(series, tuple(chunk), ends_series=index == len(chunks) - 1))
    total = sum(len(r.sop_uids) for r in plan)
    if not plan:
        return RetrieveResult(
            study_uid=study_uid,
            series_done=[],
            completed=0,
            failed=0,
            warning=0,
            failed_sops=[],
            received=[],
            cancelled=False,
            error=None,
            method=chosen,
            total=0,
        )
    return _execute(
        node,
        study_uid,
        store=store,
        plan=plan,
        inventory=inventory,
        total=total,
        method=chosen,
        progress=progress,
        cancel=cancel,
        trace=trace,
        on_series_done=on_series_done,
        deflate=node.accept_deflated if accept_deflated is None else accept_deflated,
    )


def _error_args(exc: NetError) -> tuple[Any, ...]:
    if isinstance(exc, DimseStatusError):
        return (exc.code, exc.meaning, exc.category)
    if isinstance(exc, NoAcceptedContext):
        return (exc.abstract_syntaxes,)
    return ()


class _Switch:
    """The C-STORE handler of an association that retrieves several studies: each instance
    goes to the writer of the study it was asked for (which checks it belongs there)."""

    def __init__(self, owner: dict[str, str]) -> None:
        self.owner = owner
        self.writers: dict[str, InstanceWriter] = {}

    def handle(self, event: Any) -> int | Dataset:
        sop_uid = str(event.request.AffectedSOPInstanceUID or "").strip()
        writer = self.writers.get(self.owner.get(sop_uid, ""))
        if writer is None:
            return 0xA700  # Out of resources: an instance nobody asked for
        return writer.handle(event)


#: Studies per C-GET when several are asked for in one request (a writer thread each).
STUDIES_PER_REQUEST = 100


def retrieve_instances(
    node: Node,
    wanted: dict[str, dict[str, list[InstanceInfo]]],
    *,
    store: LocalStore,
    cancel: threading.Event | None = None,
    trace: AssociationTrace | None = None,
    accept_deflated: bool | None = None,
) -> dict[str, RetrieveResult]:
    """C-GET the instances ``wanted`` (study → series → instances) on one association.

    For callers that need a few small instances of many studies (the worklist's report
    documents). First one image-level C-GET lists the instances of up to
    :data:`STUDIES_PER_REQUEST` studies (their Study, Series and SOP Instance UIDs as lists:
    relational, which Orthanc and our demo PACS answer); what that did not bring is asked for
    study by study, one request per series, on the same association. Each study is written
    by its own :class:`~tuiviewer.net.move.InstanceWriter`, which refuses an instance of
    another study.

    Returns:
        A result per study asked for: what arrived, and the error that stopped it (a failure
        status; an association that dies gives it to every study not finished by then).

    Raises:
        NetError: the association could not be set up.
    """
    deflate = node.accept_deflated if accept_deflated is None else accept_deflated
    keyed = {
        f"{study}/{series}": items
        for study, by_series in wanted.items()
        for series, items in by_series.items()
    }
    storage = _storage_contexts(StudyInventory("", keyed), list(keyed), MAX_CONTEXTS - 1, deflate)
    owner = {
        item.sop_uid: study
        for study, by_series in wanted.items()
        for items in by_series.values()
        for item in items
    }
    switch = _Switch(owner)
    started = time.monotonic()
    errors: dict[str, NetError] = {}
    done: dict[str, list[str]] = {uid: [] for uid in wanted}
    trace = trace if trace is not None else AssociationTrace()
    with ExitStack() as stack:
        for study_uid in wanted:
            stack.enter_context(store.in_use(study_uid))
            writer = InstanceWriter(store, study_uid)
            switch.writers[study_uid] = writer
            stack.callback(writer.close)
        assoc = stack.enter_context(
            associate(
                node,
                [(GET_MODEL, _QR_SYNTAXES), *storage],
                trace=trace,
                roles=scp_roles(uid for uid, _ in storage),
                handlers=[(evt.EVT_C_STORE, switch.handle)],
            )
        )
        require_context(assoc, [GET_MODEL])
        getter = _Getter(assoc, cancel)
        studies = list(wanted)
        lost: NetError | None = None
        for start in range(0, len(studies), STUDIES_PER_REQUEST):
            chunk = studies[start : start + STUDIES_PER_REQUEST]
            sops = [i.sop_uid for uid in chunk for items in wanted[uid].values() for i in items]
            if len(sops) > MAX_UIDS_PER_REQUEST or getter.cancelled():
                break
            ds = Dataset()
            ds.QueryRetrieveLevel = "IMAGE"
            ds.StudyInstanceUID = chunk
            ds.SeriesInstanceUID = list(dict.fromkeys(s for uid in chunk for s in wanted[uid]))
            ds.SOPInstanceUID = sops
            for uid in chunk:
                switch.writers[uid].expect(None, [i for i in sops if owner[i] == uid])
            try:
                getter.get(ds)
            except (AssociationAborted, NetTimeout, ConnectionFailed) as exc:
                lost = exc
                break
            except NetError:
                break  # asked study by study below
        for study_uid in studies:
            writer = switch.writers[study_uid]
            writer.flush()
            have = {p.stem for p in writer.received}
            for series_uid, items in wanted[study_uid].items():
                if lost is not None:
                    errors[study_uid] = lost
                    break
                if getter.cancelled():
                    break
                missing = tuple(i.sop_uid for i in items if uid_name(i.sop_uid) not in have)
                if missing:
                    writer.expect(series_uid, missing)
                    try:
                        getter.get(_identifier(study_uid, _Request(series_uid, missing)))
                    except (AssociationAborted, NetTimeout, ConnectionFailed) as exc:
                        errors[study_uid] = lost = exc
                        break
                    except NetError as exc:
                        errors[study_uid] = exc
                        break
                    writer.flush()
                done[study_uid].append(series_uid)
    results: dict[str, RetrieveResult] = {}
    for study_uid, writer in switch.writers.items():
        asked = sum(len(items) for items in wanted[study_uid].values())
        results[study_uid] = RetrieveResult(
            study_uid=study_uid,
            series_done=done[study_uid],
            completed=len(writer.received),
            failed=asked - len(writer.received),
            warning=0,
            failed_sops=[],
            received=list(writer.received),
            cancelled=getter.cancelled(),
            error=errors.get(study_uid),
            method="get",
            total=asked,
            bytes=writer.bytes,
            elapsed_s=time.monotonic() - started,
            refused=list(writer.refused),
        )
    return results


class _Getter:
    """C-GETs one after the other on one association; raises the failure of each."""

    def __init__(self, assoc: Any, cancel: threading.Event | None) -> None:
        self._assoc = assoc
        self._cancel = cancel
        self._msg_id = 0

    def cancelled(self) -> bool:
        return self._cancel is not None and self._cancel.is_set()

    def get(self, identifier: Dataset) -> None:
        """Send one C-GET and wait for its end.

        Raises:
            DimseStatusError: it ended with a failure status.
            NetError: the association died or timed out.
        """
        self._msg_id += 1
        responses = self._assoc.send_c_get(identifier, GET_MODEL, msg_id=self._msg_id)
        watcher = _CancelWatcher(self._assoc, GET_MODEL, self._msg_id, self._cancel)
        try:
            outcome = _run_request(self._assoc, "C-GET", responses, _Run("", None, None), watcher)
        finally:
            watcher.stop()
        if outcome.error is not None:
            raise outcome.error
