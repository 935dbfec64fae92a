"""One seam for both transports: DIMSE (pynetdicom) and DICOMweb (QIDO/WADO/STOW-RS).

Screens, jobs, the worklist, reporting and the CLI call :func:`echo`, :func:`find`,
:func:`retrieve_study`, :func:`resume_study` and :func:`send_files` from here; each picks the
:class:`Transport` of the node's kind (:func:`transport_for`) and answers with the same typed
rows, results and errors, so no caller needs to know how a node is reached. The DICOMweb side
is imported only when a DICOMweb node is used.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

from pydicom.dataset import Dataset

from tuiviewer.config.nodes import Node
from tuiviewer.dicom.rows import QueryLevel, Row, to_row
from tuiviewer.net import retrieve as _retrieve
from tuiviewer.net.echo import EchoResult
from tuiviewer.net.echo import echo as _dimse_echo
from tuiviewer.net.find import FindQuery, QueryModel
from tuiviewer.net.find import find as _dimse_find
from tuiviewer.net.lead import warm_for_retrieve
from tuiviewer.net.leanfind import find_rows as _lean_find_rows
from tuiviewer.net.retrieve import (
    Method,
    ReaderFocus,
    RetrieveProgress,
    RetrieveResult,
    StudyInventory,
)
from tuiviewer.net.send import SendProgress, SendResult
from tuiviewer.net.send import send_files as _dimse_send
from tuiviewer.net.trace import AssociationTrace
from tuiviewer.net.upperlayer import UnsupportedPeer
from tuiviewer.net.warm import release_idle
from tuiviewer.store import LocalStore


def nothing_to_fetch(study_uid: str) -> RetrieveResult:
    """The result of a retrieve that had nothing to fetch (all is on disk already)."""
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
        method="get",
        total=0,
    )


class Transport(Protocol):
    """The network operations every node kind offers (see the DIMSE modules for details)."""

    def echo(self, node: Node, *, trace: AssociationTrace | None = None) -> EchoResult: ...

    def find(
        self,
        node: Node,
        query: FindQuery,
        *,
        model: QueryModel = QueryModel.STUDY_ROOT,
        cancel: threading.Event | None = None,
        trace: AssociationTrace | None = None,
    ) -> Iterator[Dataset]: ...

    def study_inventory(
        self,
        node: Node,
        study_uid: str,
        *,
        cancel: threading.Event | None = None,
        trace: AssociationTrace | None = None,
    ) -> StudyInventory: ...

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
    ) -> RetrieveResult: ...

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
    ) -> RetrieveResult: ...

    def send_files(
        self,
        node: Node,
        paths: Sequence[Path],
        *,
        progress: Callable[[SendProgress], None] | None = None,
        cancel: threading.Event | None = None,
        trace: AssociationTrace | None = None,
    ) -> SendResult: ...


class DimseTransport:
    """C-ECHO, C-FIND, C-GET/C-MOVE and C-STORE over pynetdicom."""

    def echo(self, node: Node, *, trace: AssociationTrace | None = None) -> EchoResult:
        return _dimse_echo(node, trace=trace)

    def find(
        self,
        node: Node,
        query: FindQuery,
        *,
        model: QueryModel = QueryModel.STUDY_ROOT,
        cancel: threading.Event | None = None,
        trace: AssociationTrace | None = None,
    ) -> Iterator[Dataset]:
        return _dimse_find(node, query, model=model, cancel=cancel, trace=trace)

    def study_inventory(
        self,
        node: Node,
        study_uid: str,
        *,
        cancel: threading.Event | None = None,
        trace: AssociationTrace | None = None,
    ) -> StudyInventory:
        return _retrieve.study_inventory(node, study_uid, cancel=cancel, trace=trace)

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
        return _retrieve.retrieve_study(
            node,
            study_uid,
            store=store,
            series_uids=series_uids,
            first_series=first_series,
            method=method,
            progress=progress,
            cancel=cancel,
            trace=trace,
            find_trace=find_trace,
            on_series_done=on_series_done,
            accept_deflated=accept_deflated,
        )

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
        return _retrieve.resume_study(
            node,
            study_uid,
            store=store,
            series_uids=series_uids,
            method=method,
            progress=progress,
            cancel=cancel,
            trace=trace,
            find_trace=find_trace,
            on_series_done=on_series_done,
            accept_deflated=accept_deflated,
        )

    def send_files(
        self,
        node: Node,
        paths: Sequence[Path],
        *,
        progress: Callable[[SendProgress], None] | None = None,
        cancel: threading.Event | None = None,
        trace: AssociationTrace | None = None,
    ) -> SendResult:
        return _dimse_send(node, paths, progress=progress, cancel=cancel, trace=trace)


_DIMSE = DimseTransport()
_OTHERS: dict[str, Transport] = {}


def register(kind: str, transport: Transport) -> None:
    """Make ``transport`` answer for nodes of ``kind`` (the Inbox of received studies is one:
    :mod:`tuiviewer.services.inbox`, above this layer, registers itself)."""
    _OTHERS[kind] = transport


def transport_for(node: Node) -> Transport:
    """The transport of ``node``'s kind (``node.kind``: ``"dimse"``, ``"dicomweb"`` or a
    registered one)."""
    if node.kind in _OTHERS:
        return _OTHERS[node.kind]
    if node.kind == "dicomweb":
        from tuiviewer.net.dicomweb.transport import WEB

        return WEB
    return _DIMSE


# --- the calls the rest of the program makes -----------------------------------------------------


def echo(node: Node, *, trace: AssociationTrace | None = None) -> EchoResult:
    """C-ECHO, or a one-study QIDO-RS search: is the node there, how fast does it answer."""
    return transport_for(node).echo(node, trace=trace)


def find(
    node: Node,
    query: FindQuery,
    *,
    model: QueryModel = QueryModel.STUDY_ROOT,
    cancel: threading.Event | None = None,
    trace: AssociationTrace | None = None,
) -> Iterator[Dataset]:
    """Yield each match of ``query`` as it arrives (C-FIND, or QIDO-RS page by page)."""
    return transport_for(node).find(node, query, model=model, cancel=cancel, trace=trace)


def find_rows(
    node: Node,
    query: FindQuery,
    *,
    model: QueryModel = QueryModel.STUDY_ROOT,
    cancel: threading.Event | None = None,
) -> Iterator[Row]:
    """The typed row (``to_row``) of each match of ``query`` as it arrives, as :func:`find`
    followed by ``to_row``, but cheaper for a DIMSE node: its plain-ASCII answers are read
    straight from their bytes (:func:`tuiviewer.net.leanfind.find_rows`, no pydicom Dataset
    per answer, which the worklist's 1,000 rows spent most of their time in, holding the GIL
    the app's event loop needs). Where the lean client cannot speak the query or the peer
    (it says so before its first row) the pynetdicom path answers instead.

    Raises:
        as :func:`find`.
    """
    level = QueryLevel(query.level)
    if node.kind == "dimse":
        rows = _lean_find_rows(node, query, model=model, cancel=cancel)
        try:
            try:
                first = next(rows)
            except StopIteration:
                return
            except UnsupportedPeer:
                pass  # nothing was yielded: the pynetdicom path answers
            else:
                yield first
                yield from rows
                return
        finally:
            rows.close()
    for ds in find(node, query, model=model, cancel=cancel):
        yield to_row(level, ds)


def study_inventory(
    node: Node,
    study_uid: str,
    *,
    cancel: threading.Event | None = None,
    trace: AssociationTrace | None = None,
) -> StudyInventory:
    """The study's series and instances (image-level C-FIND or QIDO-RS instance search)."""
    return transport_for(node).study_inventory(node, study_uid, cancel=cancel, trace=trace)


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
    """Retrieve a study into ``store`` series by series (C-GET/C-MOVE or WADO-RS).

    ``accept_deflated`` (DIMSE only) offers or accepts Deflated Explicit VR Little Endian,
    inflated within the reading limits on arrival; default the node's ``accept_deflated``.
    ``focus`` and ``associations`` (DIMSE only; ignored elsewhere): the first series where
    the reader is, and C-GET on that many associations at once; ``inventory`` (DIMSE only):
    the study's image-level C-FIND, asked moments ago, not asked again.
    """
    transport = transport_for(node)
    direct = focus is not None or associations > 1 or inventory is not None
    if direct and isinstance(transport, DimseTransport):
        return _retrieve.retrieve_study(
            node, study_uid, store=store, series_uids=series_uids, first_series=first_series,
            method=method, progress=progress, cancel=cancel, trace=trace, find_trace=find_trace,
            on_series_done=on_series_done, accept_deflated=accept_deflated, focus=focus,
            associations=associations, inventory=inventory,
        )  # fmt: skip
    return transport.retrieve_study(
        node,
        study_uid,
        store=store,
        series_uids=series_uids,
        first_series=first_series,
        method=method,
        progress=progress,
        cancel=cancel,
        trace=trace,
        find_trace=find_trace,
        on_series_done=on_series_done,
        accept_deflated=accept_deflated,
    )


def warm_retrieve(node: Node, associations: int) -> bool:
    """The reader rests on a study of ``node``: open the association its retrieve will use
    (DIMSE C-GET only, and only when ``associations`` >= 2 may be open at once; a no-op
    elsewhere). Released unused after :data:`tuiviewer.net.warm.IDLE_S`."""
    return warm_for_retrieve(node, associations)


def release_warm(wait_s: float = 2.0) -> None:
    """Release every warm association nobody took (A-RELEASE, so the PACS frees it at once
    rather than when its idle timeout ends), waiting at most ``wait_s`` seconds in all."""
    release_idle(wait_s=wait_s)


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
    """Fetch only what of a study is not in ``store`` yet (``accept_deflated`` as for
    :func:`retrieve_study`)."""
    return transport_for(node).resume_study(
        node,
        study_uid,
        store=store,
        series_uids=series_uids,
        method=method,
        progress=progress,
        cancel=cancel,
        trace=trace,
        find_trace=find_trace,
        on_series_done=on_series_done,
        accept_deflated=accept_deflated,
    )


def send_files(
    node: Node,
    paths: Sequence[Path],
    *,
    progress: Callable[[SendProgress], None] | None = None,
    cancel: threading.Event | None = None,
    trace: AssociationTrace | None = None,
) -> SendResult:
    """Send files and folders (C-STORE or STOW-RS), one outcome per file."""
    return transport_for(node).send_files(
        node, paths, progress=progress, cancel=cancel, trace=trace
    )
