"""The DICOMweb :class:`~tuiviewer.net.transport.Transport`: QIDO-RS, WADO-RS and STOW-RS
behind the same calls as C-FIND, C-GET and C-STORE."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from pydicom.dataset import Dataset

from tuiviewer.config.dicomweb import DicomWebNode
from tuiviewer.config.nodes import Node
from tuiviewer.net.dicomweb import qido, stow, wado
from tuiviewer.net.echo import EchoResult
from tuiviewer.net.find import FindQuery, QueryModel
from tuiviewer.net.retrieve import Method, RetrieveProgress, RetrieveResult, StudyInventory
from tuiviewer.net.send import SendProgress, SendResult
from tuiviewer.net.trace import AssociationTrace
from tuiviewer.store import LocalStore


def _web(node: Node) -> DicomWebNode:
    if not isinstance(node, DicomWebNode):
        raise TypeError(f"Node {node.name!r} is not a DICOMweb node.")
    return node


class DicomWebTransport:
    """QIDO-RS for echo and queries, WADO-RS for retrieves, STOW-RS for sending."""

    def echo(self, node: Node, *, trace: AssociationTrace | None = None) -> EchoResult:
        return qido.echo(_web(node), trace=trace)

    def find(
        self,
        node: Node,
        query: FindQuery,
        *,
        model: QueryModel = QueryModel.STUDY_ROOT,
        cancel: threading.Event | None = None,
        trace: AssociationTrace | None = None,
    ) -> Iterator[Dataset]:
        # QIDO-RS has one information model; patient-level rows are built from studies.
        return qido.search(_web(node), query, cancel=cancel, trace=trace)

    def study_inventory(
        self,
        node: Node,
        study_uid: str,
        *,
        cancel: threading.Event | None = None,
        trace: AssociationTrace | None = None,
    ) -> StudyInventory:
        return wado.study_inventory(_web(node), study_uid, cancel=cancel, trace=trace)

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
        _no_move(node, method)
        return wado.retrieve_study(
            _web(node),
            study_uid,
            store=store,
            series_uids=series_uids,
            first_series=first_series,
            progress=progress,
            cancel=cancel,
            trace=trace,
            find_trace=find_trace,
            on_series_done=on_series_done,
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
        _no_move(node, method)
        return wado.resume_study(
            _web(node),
            study_uid,
            store=store,
            series_uids=series_uids,
            progress=progress,
            cancel=cancel,
            trace=trace,
            find_trace=find_trace,
            on_series_done=on_series_done,
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
        return stow.send_files(_web(node), paths, progress=progress, cancel=cancel, trace=trace)


def _no_move(node: Node, method: Method | None) -> None:
    if method == "move":
        raise ValueError(
            f"{node.describe()} is a DICOMweb node: it retrieves over WADO-RS, not C-MOVE."
        )


WEB = DicomWebTransport()
