"""One way to open an association, shared by echo, find, get, move and store.

Follows pynetdicom's client flow (``apps/echoscu``): an AE with the node's calling AE title and
timeouts, the requested presentation contexts, optional TLS, ``associate``, a check of
``is_established``, and ``release()``/``abort()`` in ``finally``. Every way it can fail becomes
one of the typed errors in :mod:`tuiviewer.net.errors`, and the whole exchange is recorded in
an :class:`~tuiviewer.net.trace.AssociationTrace`.
"""

from __future__ import annotations

import copy
import functools
import socket
import ssl
import sys
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE, _config, build_context, build_role, evt
from pynetdicom.association import Association
from pynetdicom.pdu import A_ABORT_RQ
from pynetdicom.presentation import PresentationContext
from pynetdicom.transport import AssociationSocket

from tuiviewer.config.nodes import Node
from tuiviewer.net.errors import (
    AssociationAborted,
    AssociationRejected,
    ConnectionFailed,
    DimseStatusError,
    NetError,
    NetTimeout,
    NoAcceptedContext,
    TlsFailed,
    format_status,
    status_meaning,
)
from tuiviewer.net.tls import handshake_failed, handshake_reset, ssl_context, ssl_reason
from tuiviewer.net.trace import AssociationTrace, uid_name
from tuiviewer.net.upperlayer import BUSY_PAUSE_S, address_infos, busy_with_ours, note_closed
from tuiviewer.safetext import clean

# pynetdicom logs whole C-FIND/C-GET identifiers (patient names, IDs) at INFO by default.
_config.LOG_REQUEST_IDENTIFIERS = False
_config.LOG_RESPONSE_IDENTIFIERS = False

#: PS3.8 9.3.2.2: context IDs are odd numbers 1-255, so at most 128 contexts per association.
MAX_CONTEXTS = 128
DEFAULT_MAX_PDU = 16382 * 16

ContextSpec = PresentationContext | tuple[str, Sequence[str]]

#: Called with a node that rejected an association: True when that freed one of ours to it
#: (an idle warm association, :mod:`tuiviewer.net.warm`), so asking once more may succeed
#: with a PACS that takes one association at a time.
ON_REJECTED: list[Callable[[Node], bool]] = []
_AGAIN = 8


@dataclass
class _Session:
    """What :func:`check_status` needs to explain an empty status."""

    node: Node
    trace: AssociationTrace


_SESSIONS: weakref.WeakKeyDictionary[Association, _Session] = weakref.WeakKeyDictionary()


class _DiagnosingSocket(AssociationSocket):
    """Keeps the OS/SSL error pynetdicom swallows when the connection fails.

    ``AssociationSocket.connect`` catches ``OSError``, logs it and calls ``_shutdown_socket``
    from inside its ``except`` block, so the exception is still in ``sys.exc_info()`` there.
    """

    connect_error: OSError | None = None

    def _shutdown_socket(self) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError) and not self._is_connected:
            self.connect_error = exc
        super()._shutdown_socket()


def _create_socket(
    assoc: Association, address: Any, tls_args: tuple[ssl.SSLContext, str] | None
) -> AssociationSocket:
    sock = _DiagnosingSocket(assoc, address=address)
    sock.tls_args = tls_args
    return sock


def disable_nagle(event: Any) -> None:
    """Send each PDU at once: with Nagle's algorithm on, every C-STORE waits ~40 ms for a
    delayed ACK (measured against Orthanc: 40 stores took 1.9 s with it, 0.13 s without)."""
    sock = getattr(getattr(event.assoc.dul, "socket", None), "socket", None)
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # pragma: no cover - e.g. a socket type without TCP options
            pass


def apply_timeouts(ae: AE, node: Node) -> None:
    """Copy the node's four timeouts onto ``ae`` (new associations inherit them)."""
    ae.connection_timeout = node.connect_timeout
    ae.acse_timeout = node.acse_timeout
    ae.dimse_timeout = node.dimse_timeout
    ae.network_timeout = node.network_timeout


class CheapCopyContexts(list[Any]):
    """Presentation contexts that pynetdicom copies cheaply for each association.

    pynetdicom deep-copies the contexts of every association: a requestor's when it asks, a
    server's for every association it accepts. With every storage class that is 0.1–0.25 s
    on an idle machine, before the first byte is sent. A context holds immutable values and
    one list (its transfer syntaxes), so a shallow copy with that list copied is the same
    copy, in a few milliseconds.
    """

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        return [_twin(context) for context in self]


def _twin(context: PresentationContext) -> PresentationContext:
    twin = copy.copy(context)
    twin._transfer_syntax = list(context._transfer_syntax)
    return twin


@functools.lru_cache(maxsize=1024)
def _built(abstract: str, transfer_syntaxes: tuple[str, ...]) -> PresentationContext:
    """A context built once (building validates every UID: 0.6 ms each)."""
    return build_context(abstract, list(transfer_syntaxes))


def _to_context(spec: ContextSpec) -> PresentationContext:
    if isinstance(spec, PresentationContext):
        return spec
    abstract, transfer_syntaxes = spec
    return _twin(_built(str(abstract), tuple(str(ts) for ts in transfer_syntaxes)))


def _resolve(node: Node) -> str:
    """The IP address to dial (pynetdicom needs an address, and says nothing on DNS failures)."""
    return str(address_infos(node)[0][4][0])


@contextmanager
def associate(
    node: Node,
    contexts: Sequence[ContextSpec],
    *,
    trace: AssociationTrace | None = None,
    roles: Sequence[tuple[str, bool, bool]] = (),
    handlers: Sequence[tuple[Any, ...]] = (),
    ae: AE | None = None,
    max_pdu: int = DEFAULT_MAX_PDU,
    ask_again: bool = True,
    _again: int = 0,
) -> Iterator[Association]:
    """Open an association with ``node`` proposing ``contexts``; release it on exit.

    Args:
        node: the peer, its calling AE title, timeouts and TLS settings.
        contexts: presentation contexts, as pynetdicom ``PresentationContext`` objects or
            ``(abstract_syntax_uid, [transfer_syntax_uid, ...])`` tuples (at most 128).
        trace: filled with the negotiation and DIMSE exchanges; a fresh one is used if None.
        roles: SCP/SCU role selection items ``(sop_class_uid, scu_role, scp_role)``, e.g.
            ``(CTImageStorage, False, True)`` to receive C-GET sub-operations.
        handlers: extra pynetdicom event handlers ``(evt.EVT_*, handler[, args])``, such as
            ``(evt.EVT_C_STORE, on_store)`` for C-GET.
        ae: an AE to use instead of a new one (its timeouts are set from ``node``).
        max_pdu: our maximum PDU receive size in bytes.
        ask_again: a transient rejection just after we closed an association to ``node``
            is asked again for up to 2 s (the peer may still count the one we closed); False
            for an association that is only extra capacity.

    Yields:
        The established association.

    Raises:
        ConnectionFailed: DNS failure, TCP refused or unreachable.
        TlsFailed: the TLS handshake or certificate verification failed.
        NetTimeout: the connect or ACSE timeout expired.
        AssociationRejected: the peer rejected the association (with result/source/reason).
        AssociationAborted: the peer aborted or dropped the connection during negotiation.
        NoAcceptedContext: the peer accepted none of the proposed contexts.
        NetError: more than 128 contexts were given.
    """
    if node.kind != "dimse":
        raise NetError(
            f"{node.describe()} is a {node.kind} node: it has no DICOM association; reach it "
            "through tuiviewer.net.transport."
        )
    trace = trace if trace is not None else AssociationTrace()
    requested = CheapCopyContexts(_to_context(spec) for spec in contexts)
    if not requested:
        raise NetError(f"No presentation context to propose to {node.describe()}.")
    if len(requested) > MAX_CONTEXTS:
        raise NetError(
            f"Cannot propose {len(requested)} presentation contexts to {node.describe()}: "
            f"an association carries at most {MAX_CONTEXTS} (PS3.8 9.3.2.2)."
        )
    if ae is None:
        ae = AE(ae_title=node.calling_aet)
    apply_timeouts(ae, node)
    # Instance attribute, not a subclass: callers may hand us an AE they configured.
    ae._create_socket = _create_socket  # type: ignore[method-assign]

    trace.called_aet = node.ae_title
    trace.host = node.host
    trace.port = node.port
    trace.calling_aet = node.calling_aet
    trace.tls = node.tls is not None
    trace.max_pdu_ours = max_pdu
    trace.roles = list(roles)
    trace.started = time.monotonic()

    address = _resolve(node)
    tls_args: tuple[ssl.SSLContext, str] | None = None
    if node.tls is not None:
        # pynetdicom types the host name as str, but passes it on to wrap_socket, where
        # None means "no SNI, no host name check".
        tls_args = (ssl_context(node.tls), node.tls.server_hostname)  # type: ignore[assignment]

    def on_open(event: Any) -> None:
        trace.connect_ms = trace.elapsed_ms()
        trace.note("connection opened")
        disable_nagle(event)

    def on_pdu_recv(event: Any) -> None:
        if isinstance(event.pdu, A_ABORT_RQ):
            trace.peer_aborted = True
            trace.note(
                f"A-ABORT received (source {event.pdu.source}, "
                f"reason {event.pdu.reason_diagnostic})"
            )

    def on_pdu_sent(event: Any) -> None:
        if isinstance(event.pdu, A_ABORT_RQ) and not trace.peer_aborted:
            trace.we_aborted = True
            trace.note("A-ABORT sent")

    def on_close(event: Any) -> None:
        trace.connection_closed = True
        trace.note("connection closed")

    def on_dimse_sent(event: Any) -> None:
        trace.on_dimse_sent(event.message)

    def on_dimse_recv(event: Any) -> None:
        trace.on_dimse_recv(event.message)

    evt_handlers: list[tuple[Any, ...]] = [
        (evt.EVT_CONN_OPEN, on_open),
        (evt.EVT_CONN_CLOSE, on_close),
        (evt.EVT_PDU_RECV, on_pdu_recv),
        (evt.EVT_PDU_SENT, on_pdu_sent),
        (evt.EVT_DIMSE_SENT, on_dimse_sent),
        (evt.EVT_DIMSE_RECV, on_dimse_recv),
        *handlers,
    ]
    for index, context in enumerate(requested):
        context.context_id = 2 * index + 1
    trace.record_proposed(requested)

    assoc = ae.associate(
        address,
        node.port,
        contexts=requested,
        ae_title=node.ae_title,
        max_pdu=max_pdu,
        ext_neg=[build_role(uid, scu_role=scu, scp_role=scp) for uid, scu, scp in roles] or None,
        tls_args=tls_args,
        evt_handlers=evt_handlers,
    )
    if not assoc.is_established:
        error = _failure(node, assoc, trace)
        trace.set_outcome(f"failed: {error.message}")
        if isinstance(error, AssociationRejected) and ask_again:
            freed = bool(_again or any([free(node) for free in ON_REJECTED]))
            if freed or busy_with_ours(node, error):
                # The peer may count the one we closed for a moment longer: up to 2 s of tries.
                trace.note("asked again: the peer may still count an association we closed")
                time.sleep(BUSY_PAUSE_S)
                with associate(
                    node, requested, trace=trace, roles=roles, handlers=handlers,
                    max_pdu=max_pdu, _again=(_again or _AGAIN) - 1 if freed else 0,
                ) as again:  # fmt: skip
                    yield again
                return
        raise error

    trace.associate_ms = trace.elapsed_ms()
    trace.max_pdu_peer = assoc.acceptor.maximum_length
    trace.record_negotiated(assoc.accepted_contexts, assoc.rejected_contexts)
    _SESSIONS[assoc] = _Session(node, trace)
    failed = False
    try:
        if not assoc.accepted_contexts:
            raise _no_context(node, [str(cx.abstract_syntax) for cx in requested])
        yield assoc
    except BaseException:
        failed = True
        raise
    finally:
        _close(assoc, trace, abort=failed)
        note_closed(node)


def _close(assoc: Association, trace: AssociationTrace, *, abort: bool) -> None:
    if assoc.is_established:
        if abort:
            assoc.abort()
            trace.set_outcome("aborted by us after an error or cancellation")
        else:
            assoc.release()
            trace.set_outcome("released" if assoc.is_released else "release failed; aborted")
    elif trace.peer_aborted:
        trace.set_outcome("aborted by the peer (A-ABORT)")
    elif trace.we_aborted:
        trace.set_outcome("aborted by us (timeout or protocol error)")
    else:
        trace.set_outcome("connection dropped")


def _no_context(node: Node, abstract_syntaxes: Sequence[str]) -> NoAcceptedContext:
    names = ", ".join(f"{uid_name(uid)} ({uid})" for uid in dict.fromkeys(abstract_syntaxes))
    return NoAcceptedContext(
        f"{node.describe()} accepted none of the presentation contexts needed: {names}.",
        abstract_syntaxes,
    )


def _failure(node: Node, assoc: Association, trace: AssociationTrace) -> NetError:
    """Turn a non-established association into the error that says why."""
    where = node.describe()
    if assoc.is_rejected:
        primitive = assoc.acceptor.primitive
        result = str(getattr(primitive, "result_str", "rejected"))
        source = str(getattr(primitive, "source_str", "unknown source"))
        reason = str(getattr(primitive, "reason_str", "no reason given"))
        trace.note(f"A-ASSOCIATE-RJ: {result}, {source}: {reason}")
        return AssociationRejected(
            f"{where} rejected the association from {node.calling_aet!r} "
            f"({result}, {source}: {reason}).",
            result=result,
            source=source,
            reason=reason,
        )
    sock = assoc.dul.socket
    error = getattr(sock, "connect_error", None)
    if trace.connect_ms is None:
        verb = "over TLS " if node.tls is not None else ""
        if isinstance(error, ssl.SSLError):
            return handshake_failed(where, ssl_reason(error))
        if isinstance(error, TimeoutError | socket.timeout):
            return NetTimeout(
                f"Connecting {verb}to {where} timed out after {node.connect_timeout:g} s "
                "(connect timeout).",
                "connect",
            )
        if isinstance(error, ConnectionResetError) and node.tls is not None:
            return handshake_reset(where)
        reason = ssl_reason(error) if error is not None else "reason unknown"
        return ConnectionFailed(f"Cannot connect {verb}to {where}: {reason}.")
    if assoc.rejected_contexts and not assoc.accepted_contexts:
        # pynetdicom aborts by itself when the A-ASSOCIATE-AC accepts no context.
        trace.record_negotiated([], assoc.rejected_contexts)
        return _no_context(node, [str(cx.abstract_syntax) for cx in assoc.rejected_contexts])
    if assoc.is_aborted and trace.we_aborted and not trace.peer_aborted:
        return NetTimeout(
            f"{where} did not answer the association request within {node.acse_timeout:g} s "
            "(ACSE timeout).",
            "ACSE",
        )
    if trace.peer_aborted:
        return AssociationAborted(f"{where} aborted the association during negotiation.")
    if node.tls is not None:
        return TlsFailed(
            f"{where} closed the TLS connection during association negotiation "
            "(it may have refused our client certificate)."
        )
    name = node.name or "NAME"
    return AssociationAborted(
        f"{where} closed the connection during association negotiation; the port may accept "
        f"DICOM TLS only: if so, give the node TLS settings ([nodes.{name}.tls] in nodes.toml)."
    )


def require_context(assoc: Association, abstract_syntaxes: Sequence[str]) -> str:
    """Return the first of ``abstract_syntaxes`` the peer accepted (for us as SCU).

    Raises:
        NoAcceptedContext: none of them was accepted; the message names them.
    """
    accepted = {str(cx.abstract_syntax) for cx in assoc.accepted_contexts if cx.as_scu}
    for uid in abstract_syntaxes:
        if uid in accepted:
            return uid
    session = _SESSIONS.get(assoc)
    node = session.node if session else _anonymous_node(assoc)
    raise _no_context(node, abstract_syntaxes)


def _anonymous_node(assoc: Association) -> Node:
    info = assoc.acceptor.address_info
    host, port = (str(info.address), int(info.port)) if info is not None else ("?", 0)
    return Node(name="", ae_title=str(assoc.acceptor.ae_title), host=host, port=port)


def check_status(service: str, status: Dataset | None, assoc: Association | None = None) -> int:
    """Return the status code of a DIMSE response, raising on failure.

    pynetdicom reports a lost response as an empty ``Dataset``: this tells a DIMSE timeout
    (we aborted) from an abort by the peer or a dropped connection, using ``assoc``'s trace.

    Raises:
        DimseStatusError: failure or cancel status (``code``, ``meaning``, ``category``).
        NetTimeout: no response within the DIMSE timeout.
        AssociationAborted: the peer aborted or the connection dropped.
    """
    session = _SESSIONS.get(assoc) if assoc is not None else None
    where = session.node.describe() if session else "the peer"
    if status is None or "Status" not in status:
        if session is not None and session.trace.we_aborted and not session.trace.peer_aborted:
            return _raise_timeout(service, session.node)
        if session is not None and session.trace.peer_aborted:
            raise AssociationAborted(f"{where} aborted the association during {service}.")
        if session is not None and session.trace.connection_closed:
            # The peer vanished (killed, crashed, cable pulled): pynetdicom reports an
            # A-P-ABORT without sending or receiving an A-ABORT, and is_aborted stays False.
            raise AssociationAborted(
                f"The connection to {where} was lost during {service}, before it answered."
            )
        if session is not None and assoc is not None and not assoc.is_aborted:
            return _raise_timeout(service, session.node)
        raise AssociationAborted(
            f"The connection to {where} was lost during {service}, before it answered."
        )
    code = int(status.Status)
    category, description = status_meaning(service, code)
    if category in ("Failure", "Cancel"):
        meaning = description or category
        if category == "Cancel":
            text = f"{where} cancelled the {service} request ({format_status(service, code)})."
        else:
            text = f"{where} answered the {service} request with {format_status(service, code)}."
        comment = status.get("ErrorComment")
        if comment:
            text = text[:-1] + f" ({clean(str(comment)[:200])})."
        raise DimseStatusError(text, code=code, meaning=meaning, category=category)
    return code


def _raise_timeout(service: str, node: Node) -> int:
    raise NetTimeout(
        f"{node.describe()} did not answer the {service} request within "
        f"{node.dimse_timeout:g} s (DIMSE timeout); the association was aborted.",
        "DIMSE",
    )
