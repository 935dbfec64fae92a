"""Running a retrieve's plan: one request after another on one association, or on several
at once (each lane taking the next request), with the C-MOVE storage SCP when it moves.

Its own module because it is where a PACS's refusals are absorbed: a second association
refused (one is used), IMAGE-level requests refused or ignored (the rest at SERIES level), a
dead link (what arrived stays, the error is in the result). Every lane writes through one
:class:`~tuiviewer.net.move.InstanceWriter`, so nothing is written twice or lost.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import evt

from tuiviewer.config.nodes import Node
from tuiviewer.net.association import MAX_CONTEXTS, associate, require_context
from tuiviewer.net.errors import DimseStatusError, NetError, TlsFailed
from tuiviewer.net.find import _CancelWatcher
from tuiviewer.net.follow import ReaderFocus, _Source
from tuiviewer.net.inventory import StudyInventory
from tuiviewer.net.move import Expected, InstanceWriter, StorageScp, listen_address, peer_addresses
from tuiviewer.net.request import (
    _QR_SYNTAXES,
    GET_MODEL,
    MOVE_MODEL,
    Method,
    RetrieveProgress,
    RetrieveResult,
    _identifier,
    _image_refused,
    _Request,
    _Run,
    _run_request,
    _storage_contexts,
)
from tuiviewer.net.sopclasses import scp_roles
from tuiviewer.net.tls import server_ssl_context
from tuiviewer.net.trace import AssociationTrace
from tuiviewer.net.warm import held_or_new
from tuiviewer.store import LocalStore


def _plan(
    inventory: StudyInventory | None,
    series_uids: Sequence[str] | None,
    first_series: str | None,
) -> list[_Request]:
    if inventory is not None:
        order = list(series_uids) if series_uids else list(inventory.series)
    else:
        order = list(series_uids) if series_uids else []
    if first_series:
        order = [first_series, *[uid for uid in order if uid != first_series]]
    requests = [_Request(series_uid=uid) for uid in dict.fromkeys(order)]
    if inventory is None and not series_uids:
        # Without a series list, the rest of the study comes in one study-level request.
        requests.append(_Request(series_uid=None))
    return requests


def _resolve_method(node: Node, method: Method | None) -> Method:
    chosen = method or node.retrieve
    if chosen not in ("get", "move"):
        raise ValueError(f"Retrieve method {chosen!r} must be 'get' or 'move'.")
    return chosen


class _Lane:
    """One association of a retrieve: sends what the source hands it, one request at a time;
    what arrives goes to the retrieve's one writer, checked against this lane's request."""

    def __init__(self, run: _Run, writer: InstanceWriter, study_uid: str) -> None:
        self.run = run
        self.writer = writer
        self.expected = Expected(study_uid)
        self.cancelled = False
        self.error: NetError | None = None

    def handle(self, event: Any) -> int | Dataset:
        return self.writer.handle(event, expected=self.expected)

    def drive_own(
        self,
        node: Node,
        contexts: list[tuple[str, list[str]]],
        roles: Any,
        source: _Source,
        cancel: threading.Event | None,
        on_series_done: Callable[[str], None] | None,
        started: threading.Event,
    ) -> None:
        """A second (third...) association of a C-GET, opened once the first instance is in
        (so the reader's first slice does not share the setup); a PACS that will not have it
        leaves the work to the others, and the result says so."""
        started.wait(node.dimse_timeout or 30)
        if cancel is not None and cancel.is_set():
            return
        try:
            handlers = [(evt.EVT_C_STORE, self.handle)]
            with associate(
                node, contexts, roles=roles, handlers=handlers, ask_again=False
            ) as assoc:
                require_context(assoc, [GET_MODEL])
                self.drive(assoc, source, node, "get", cancel, on_series_done)
        except NetError as exc:
            if self.run.final.completed == 0 and self.error is None:
                source.notes.append(
                    f"The PACS did not take a second association ({exc.message.rstrip('.')});"
                    " the retrieve used one."
                )
            elif self.error is None:
                self.error = exc

    def drive(
        self,
        assoc: Any,
        source: _Source,
        node: Node,
        method: Method,
        cancel: threading.Event | None,
        on_series_done: Callable[[str], None] | None,
    ) -> None:
        service = "C-GET" if method == "get" else "C-MOVE"
        model = GET_MODEL if method == "get" else MOVE_MODEL
        run, msg_id = self.run, 0
        while True:
            if cancel is not None and cancel.is_set():
                self.cancelled = True
                return
            request = source.take()
            if request is None:
                return
            msg_id += 1
            asked = _asked(request, source.inventory)
            self.expected = Expected(self.expected.study_uid, request.series_uid, frozenset(asked))
            run.series_uid = request.series_uid or ""
            identifier = _identifier(run.study_uid, request)
            if method == "get":
                responses = assoc.send_c_get(identifier, model, msg_id=msg_id)
            else:
                responses = assoc.send_c_move(identifier, node.calling_aet, model, msg_id=msg_id)
            watcher = _CancelWatcher(assoc, model, msg_id, cancel)
            counted = (replace(run.final), len(run.failed_sops))
            try:
                outcome = _run_request(assoc, service, responses, run, watcher)
            except NetError as exc:
                self.error = exc
                return
            finally:
                watcher.stop()
            if outcome.cancelled:
                self.cancelled = True
                return
            ignored = outcome.error is None and (run.final.completed, run.final.failed) == (
                counted[0].completed,
                counted[0].failed,
            )
            refused = isinstance(outcome.error, DimseStatusError) or ignored
            if request.follow_chunk and refused:
                run.final = counted[0]
                del run.failed_sops[counted[1] :]
                source.fall_back(request, _image_refused(service, outcome.error))
                continue
            if outcome.error is not None:
                self.error = outcome.error
                return
            self.writer.flush()  # the series is on disk before anyone is told
            if source.finished(request) and on_series_done is not None:
                on_series_done(request.series_uid or "")


def _execute(
    node: Node,
    study_uid: str,
    *,
    store: LocalStore,
    plan: list[_Request],
    inventory: StudyInventory | None,
    total: int | None,
    method: Method,
    progress: Callable[[RetrieveProgress], None] | None,
    cancel: threading.Event | None,
    trace: AssociationTrace | None,
    on_series_done: Callable[[str], None] | None,
    deflate: bool = False,
    focus: ReaderFocus | None = None,
    associations: int = 1,
    writer: InstanceWriter | None = None,
) -> RetrieveResult:
    """The retrieve of ``plan``; ``writer``: one that already holds instances (the lead's),
    which this retrieve does not ask for again and counts as received."""
    run = _Run(study_uid, total, progress)
    run.inventory = inventory
    notes: list[str] = []
    first_in = threading.Event()

    def written(path: Path, size: int) -> None:
        first_in.set()
        run.report(path)

    have: set[str] = set()
    if writer is None:
        writer = InstanceWriter(store, study_uid, on_written=written)
    else:
        writer.flush()
        have = set(writer.skip)
        writer.on_written = written
        if writer.received:
            first_in.set()
    run.writer = writer
    lane = _Lane(run, writer, study_uid)
    trace = trace if trace is not None else AssociationTrace()
    series_done: list[str] = []
    cancelled = False
    error: NetError | None = None
    model = GET_MODEL if method == "get" else MOVE_MODEL

    if method == "get":
        series = [r.series_uid for r in plan if r.series_uid]
        storage = _storage_contexts(inventory, series, MAX_CONTEXTS - 1, deflate)
        contexts: list[tuple[str, list[str]]] = [(model, _QR_SYNTAXES), *storage]
        roles = scp_roles(uid for uid, _ in storage)
        handlers: list[tuple[Any, ...]] = [(evt.EVT_C_STORE, lane.handle)]
    else:
        contexts, roles, handlers = [(model, _QR_SYNTAXES)], [], []

    with store.in_use(study_uid):
        scp: StorageScp | None = None
        if method == "move":
            scp = StorageScp(
                node.calling_aet,
                node.move_port,
                lane.handle,
                host=listen_address(node),
                # The PACS calls back with the PHI: over TLS too when we call it over TLS.
                ssl_context=server_ssl_context(node.tls) if node.tls is not None else None,
                trace=trace,
                network_timeout=node.network_timeout,
                dimse_timeout=node.dimse_timeout,
                acse_timeout=node.acse_timeout,
                # Only the PACS we move from may deliver: its AE title, from its address.
                peer_aets=[node.ae_title],
                peer_addresses=peer_addresses(node),
                accept_deflated=deflate,
            )
            scp.start()
        source = _Source(plan, inventory, focus, have)
        extras: list[tuple[threading.Thread, _Lane]] = []
        try:
            if method == "get":  # the lead's, or one the worklist opened: no setup to wait for
                needed = inventory.classes(series)[0] if inventory is not None else {}
                opened = held_or_new(
                    node, contexts, trace=trace, roles=roles, handlers=handlers, classes=needed
                )
            else:
                opened = associate(node, contexts, trace=trace, roles=roles, handlers=handlers)
            with opened as assoc:
                require_context(assoc, [model])
                parallel = len(plan) > 1 or any(r.follow for r in plan)
                for _ in range(associations - 1 if method == "get" and parallel else 0):
                    extra = _Lane(_Run(study_uid, total, progress), writer, study_uid)
                    extra.run.writer = writer
                    thread = threading.Thread(
                        target=extra.drive_own,
                        args=(node, contexts, roles, source, cancel, on_series_done, first_in),
                        name="tuiviewer-retrieve-lane",
                        daemon=True,
                    )
                    thread.start()
                    extras.append((thread, extra))
                lane.drive(assoc, source, node, method, cancel, on_series_done)
                first_in.set()  # nothing came, or all was handed out: the others need not wait
                for thread, _extra in extras:
                    thread.join()
        finally:
            first_in.set()
            for thread, _extra in extras:
                thread.join()
            cancelled = lane.cancelled or any(extra.cancelled for _, extra in extras)
            error = lane.error or next((e.error for _, e in extras if e.error), None)
            for _thread, extra in extras:
                run.final.completed += extra.run.final.completed
                run.final.failed += extra.run.final.failed
                run.final.warning += extra.run.final.warning
                run.failed_sops.extend(extra.run.failed_sops)
            series_done.extend(source.series_done)
            notes.extend(source.notes)
            if scp is not None:
                scp.stop()
            writer.close()

    received = list(writer.received)
    if error is not None and scp is not None and scp.tls_failures:
        error = _tls_hint(error, node, scp)
    if error is not None and not received and run.final.completed == 0:
        # Nothing arrived: there is no partial result to hand back, only the failure.
        if method == "move" and isinstance(error, DimseStatusError):
            raise _move_hint(error, node) from None
        raise error
    return RetrieveResult(
        study_uid=study_uid,
        series_done=series_done,
        completed=run.final.completed,
        failed=run.final.failed,
        warning=run.final.warning,
        failed_sops=list(dict.fromkeys(run.failed_sops)),
        received=received,
        cancelled=cancelled,
        error=error,
        method=method,
        total=total,
        bytes=writer.bytes,
        elapsed_s=time.monotonic() - run.started,
        refused=list(writer.refused),
        rejected_calls=list(scp.rejections) if scp is not None else [],
        inventory_used=inventory is not None,
        notes=notes,
    )


def _asked(request: _Request, inventory: StudyInventory | None) -> tuple[str, ...]:
    """The instances a request asks for: named ones, else the series' from the C-FIND."""
    if request.sop_uids:
        return request.sop_uids
    if inventory is not None and request.series_uid:
        return tuple(item.sop_uid for item in inventory.series.get(request.series_uid, []))
    return ()


def _tls_hint(error: NetError, node: Node, scp: StorageScp) -> TlsFailed:
    """The C-MOVE failed after the PACS could not connect back over TLS: say that first.

    OpenSSL's reason tells who refused whom: "wrong version number" is a plain DICOM
    A-ASSOCIATE-RQ where a ClientHello belongs; an "alert" is the PACS refusing our
    certificate (Orthanc answers "unsupported certificate" when it lacks serverAuth); a
    failed verification or a missing certificate is us refusing the PACS's.
    """
    failure = scp.tls_failures[0]
    ours = str(node.tls.cert_file) if node.tls is not None and node.tls.cert_file else "ours"
    if "wrong version number" in failure or "http request" in failure:
        advice = (
            f"the PACS connected without TLS: configure {node.calling_aet!r} there as a "
            "C-MOVE destination with DICOM TLS"
        )
    elif " alert " in failure:
        advice = (
            f"the PACS refused our certificate {ours!r}: it must be signed by a CA the PACS "
            "trusts and, if it lists extended key usages, allow serverAuth as well as "
            "clientAuth"
        )
    elif "verify failed" in failure or "did not return a certificate" in failure:
        advice = (
            "we refused the PACS's client certificate: it must be signed by the CA in the "
            "node's ca_file"
        )
    else:
        advice = (
            f"configure {node.calling_aet!r} on the PACS as a C-MOVE destination with DICOM "
            "TLS and a client certificate signed by the CA in the node's ca_file"
        )
    return TlsFailed(
        f"{node.describe()} could not deliver the C-MOVE to our storage SCP on "
        f"{scp.where}, which accepts DICOM TLS only: {failure}; {advice}. {error.message}"
    )


def _move_hint(error: DimseStatusError, node: Node) -> DimseStatusError:
    """Say what a refused C-MOVE usually means: the PACS does not know us as a destination.

    pynetdicom's qrscp answers 0xA801 (Move destination unknown); Orthanc 1.10 answers a bare
    0xC000 for the same mistake, so the hint is given for any failure with nothing moved.
    """
    where = f"this computer's address and port {node.move_port}"
    if error.code == 0xA801:
        hint = (
            f" The PACS does not know {node.calling_aet!r} as a C-MOVE destination: add it "
            f"there with {where}, where tuiviewer listens during the retrieve."
        )
    else:
        hint = (
            f" If the PACS does not know {node.calling_aet!r} as a C-MOVE destination (some "
            f"PACS, Orthanc for one, answer 0xC000 then), add it there with {where}."
        )
    return DimseStatusError(
        error.message + hint, code=error.code, meaning=error.meaning, category=error.category
    )
