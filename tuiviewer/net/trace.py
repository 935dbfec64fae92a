"""What happened on an association, for admins debugging a PACS link, without PHI.

An :class:`AssociationTrace` is filled from pynetdicom's notification events (bound by
:func:`tuiviewer.net.association.associate`) and from the negotiated presentation contexts.
It records only AE titles, addresses, UIDs, transfer syntaxes, DIMSE statuses and timings:
never an identifier's contents, so it can be printed (``--trace``) and shown in the UI.

A DICOMweb node fills the same trace with its HTTP requests instead (:class:`HttpRecord`:
method, URL with the values of query parameters that could hold PHI replaced by ``…``, status,
bytes and timing), so every screen and ``--trace`` show either kind without knowing which.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from pydicom.uid import UID

from tuiviewer.net.errors import status_meaning


def uid_name(uid: str) -> str:
    """The dictionary name of a UID (``'Verification SOP Class'``), or the UID itself."""
    name = UID(uid).name
    return str(name) if name else str(uid)


@dataclass
class ContextRecord:
    """One proposed presentation context and what the peer made of it."""

    context_id: int | None
    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...]
    result: str = "Pending"
    chosen_transfer_syntax: str = ""
    as_scu: bool | None = None
    as_scp: bool | None = None


@dataclass
class DimseRecord:
    """One DIMSE request we sent (or the peer sent us) and the responses it got."""

    service: str
    message_id: int | None
    direction: str
    started: float
    status: int | None = None
    pending: int = 0
    cancel_sent: bool = False
    elapsed_ms: float | None = None
    count: int = 1
    failures: int = 0


@dataclass
class HttpRecord:
    """One HTTP request to a DICOMweb server and its answer (no PHI: see :func:`safe_url`)."""

    method: str
    url: str
    """Path and query with matching values hidden (``PatientName=…``)."""
    status: int | None = None
    """HTTP status; None when no answer came (connection lost, timeout)."""
    content_type: str = ""
    sent: int = 0
    """Bytes of the request body."""
    received: int = 0
    """Bytes of the response body (as far as read)."""
    elapsed_ms: float | None = None
    """From sending the request to the end of the response body (or to the failure)."""
    note: str = ""
    """What went wrong, in words without PHI ("connection lost after 12 parts")."""


#: Query parameters of PS3.18 8.3.4 whose values are never PHI.
_SAFE_QUERY_KEYS = frozenset({"limit", "offset", "includefield", "fuzzymatching"})


def safe_url(url: str) -> str:
    """``url``'s path with the values of matching query parameters replaced by ``…``.

    UIDs in the path stay (they are what the trace is for); ``PatientName=DOE^JOHN`` becomes
    ``PatientName=…``; ``limit``, ``offset``, ``includefield`` and ``fuzzymatching`` are kept.
    """
    from urllib.parse import parse_qsl, urlsplit

    parts = urlsplit(url)
    values: dict[str, list[str]] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        values.setdefault(key, []).append(value if key in _SAFE_QUERY_KEYS else "…")
    shown = [f"{key}={','.join(dict.fromkeys(items))}" for key, items in values.items()]
    return parts.path + ("?" + "&".join(shown) if shown else "")


@dataclass
class AssociationTrace:
    """Timeline of one association: negotiation, DIMSE exchanges and how it ended.

    Thread-safe: pynetdicom calls the event handlers from its own threads.
    """

    called_aet: str = ""
    host: str = ""
    port: int = 0
    calling_aet: str = ""
    tls: bool = False
    max_pdu_ours: int | None = None
    max_pdu_peer: int | None = None
    started: float = field(default_factory=time.monotonic)
    connect_ms: float | None = None
    associate_ms: float | None = None
    contexts: list[ContextRecord] = field(default_factory=list)
    roles: list[tuple[str, bool, bool]] = field(default_factory=list)
    dimse: list[DimseRecord] = field(default_factory=list)
    outcome: str = ""
    events: list[str] = field(default_factory=list)
    peer_aborted: bool = False
    we_aborted: bool = False
    connection_closed: bool = False
    base_url: str = ""
    """Set for a DICOMweb node: its base URL (then ``http`` holds the exchange)."""
    http: list[HttpRecord] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    # --- recording (called by association.py) -------------------------------------------------

    def elapsed_ms(self) -> float:
        """Milliseconds since the trace started."""
        return (time.monotonic() - self.started) * 1000

    def note(self, text: str) -> None:
        """Add a free-text line (no PHI!) stamped with the elapsed time."""
        with self._lock:
            self.events.append(f"{self.elapsed_ms():8.1f} ms  {text}")

    def set_outcome(self, outcome: str) -> None:
        """Record how the association ended (first outcome wins: the cause, not the cleanup)."""
        with self._lock:
            if not self.outcome:
                self.outcome = outcome

    def record_http(self, record: HttpRecord) -> HttpRecord:
        """Add one HTTP exchange (DICOMweb); the caller may fill in bytes and timing later."""
        with self._lock:
            self.http.append(record)
        return record

    def record_proposed(self, contexts: list[Any]) -> None:
        """Record the presentation contexts we propose (pynetdicom ``PresentationContext``)."""
        with self._lock:
            self.contexts = [
                ContextRecord(
                    context_id=cx.context_id,
                    abstract_syntax=str(cx.abstract_syntax),
                    transfer_syntaxes=tuple(str(ts) for ts in cx.transfer_syntax),
                )
                for cx in contexts
            ]

    def record_negotiated(self, accepted: list[Any], rejected: list[Any]) -> None:
        """Fill each proposed context's result from the association's negotiated contexts."""
        by_id = {cx.context_id: cx for cx in [*accepted, *rejected]}
        with self._lock:
            for record in self.contexts:
                cx = by_id.get(record.context_id)
                if cx is None:
                    continue
                record.result = str(cx.status)
                if cx.result == 0 and cx.transfer_syntax:
                    record.chosen_transfer_syntax = str(cx.transfer_syntax[0])
                record.as_scu = cx.as_scu
                record.as_scp = cx.as_scp

    def on_dimse_sent(self, message: Any) -> None:
        """EVT_DIMSE_SENT: a request we send opens a record; responses we send are counted."""
        kind = type(message).__name__
        cs = message.command_set
        with self._lock:
            if kind.endswith("_RQ"):
                service = _service(kind)
                msg_id = getattr(cs, "MessageID", None)
                if service == "C-CANCEL":
                    target = getattr(cs, "MessageIDBeingRespondedTo", None)
                    for rec in reversed(self.dimse):
                        if rec.direction == "out" and rec.message_id == target:
                            rec.cancel_sent = True
                            break
                    return
                self.dimse.append(DimseRecord(service, msg_id, "out", time.monotonic()))
            elif kind.endswith("_RSP"):
                incoming = self._incoming(_service(kind))
                status = getattr(cs, "Status", None)
                if incoming is not None and status is not None:
                    incoming.status = int(status)
                    category, _ = status_meaning(incoming.service, int(status))
                    if category == "Failure":
                        incoming.failures += 1

    def on_dimse_recv(self, message: Any) -> None:
        """EVT_DIMSE_RECV: a response updates its request's record; requests are aggregated."""
        kind = type(message).__name__
        cs = message.command_set
        with self._lock:
            if kind.endswith("_RSP"):
                target = getattr(cs, "MessageIDBeingRespondedTo", None)
                status = getattr(cs, "Status", None)
                for rec in reversed(self.dimse):
                    if rec.direction == "out" and rec.message_id == target:
                        if status is None:
                            break
                        category, _ = status_meaning(rec.service, int(status))
                        if category == "Pending":
                            rec.pending += 1
                        else:
                            rec.status = int(status)
                            rec.elapsed_ms = (time.monotonic() - rec.started) * 1000
                        break
            elif kind.endswith("_RQ"):
                service = _service(kind)
                incoming = self._incoming(service)
                if incoming is None:
                    self.dimse.append(DimseRecord(service, None, "in", time.monotonic()))
                else:
                    incoming.count += 1
                    incoming.elapsed_ms = (time.monotonic() - incoming.started) * 1000

    def _incoming(self, service: str) -> DimseRecord | None:
        for rec in reversed(self.dimse):
            if rec.direction == "in" and rec.service == service:
                return rec
        return None

    # --- output ---------------------------------------------------------------------------------

    def format(self) -> str:
        """Multi-line human-readable trace (AE titles, UIDs, statuses, timings; no PHI)."""
        with self._lock:
            return "\n".join(self._lines())

    def _lines(self) -> list[str]:
        if self.base_url:
            return self._http_lines()
        lines = [
            f"Association {self.calling_aet or '?'} -> {self.called_aet} at "
            f"{self.host}:{self.port} ({'TLS' if self.tls else 'plain TCP'})",
        ]
        if self.connect_ms is not None:
            lines.append(f"  Connected in {self.connect_ms:.1f} ms")
        if self.associate_ms is not None:
            lines.append(f"  Associated in {self.associate_ms:.1f} ms")
        if self.max_pdu_ours is not None or self.max_pdu_peer is not None:
            lines.append(
                f"  Max PDU: ours {_pdu(self.max_pdu_ours)}, peer's {_pdu(self.max_pdu_peer)}"
            )
        if self.contexts:
            lines.append("  Presentation contexts:")
            for cx in self.contexts:
                lines.append(
                    f"    [{cx.context_id}] {uid_name(cx.abstract_syntax)} ({cx.abstract_syntax})"
                )
                proposed = ", ".join(uid_name(ts) for ts in cx.transfer_syntaxes)
                lines.append(f"        proposed: {proposed}")
                if cx.result == "Accepted":
                    lines.append(
                        f"        accepted: {uid_name(cx.chosen_transfer_syntax)} "
                        f"({cx.chosen_transfer_syntax}){_role(cx)}"
                    )
                else:
                    lines.append(f"        rejected: {cx.result}")
        if self.roles:
            lines.append("  SCP/SCU role selection proposed:")
            for uid, scu, scp in self.roles:
                lines.append(f"    {uid_name(uid)}: SCU={_yn(scu)} SCP={_yn(scp)}")
        if self.dimse:
            lines.append("  DIMSE:")
            for rec in self.dimse:
                lines.append("    " + _dimse_line(rec))
        for event in self.events:
            lines.append(f"  {event}")
        lines.append(f"  Outcome: {self.outcome or 'open'}")
        return lines

    def _http_lines(self) -> list[str]:
        secure = "TLS" if self.base_url.startswith("https://") else "plain HTTP"
        lines = [f"DICOMweb {self.base_url} ({secure})"]
        if self.http:
            lines.append("  HTTP:")
            for rec in self.http:
                lines.append("    " + _http_line(rec))
        for event in self.events:
            lines.append(f"  {event}")
        lines.append(f"  Outcome: {self.outcome or 'open'}")
        return lines


def _http_line(rec: HttpRecord) -> str:
    text = f"{rec.method} {rec.url} -> "
    text += f"HTTP {rec.status}" if rec.status is not None else "no answer"
    if rec.content_type:
        text += f" ({rec.content_type.split(';')[0].strip()})"
    if rec.sent:
        text += f", sent {_bytes(rec.sent)}"
    if rec.received:
        text += f", received {_bytes(rec.received)}"
    if rec.elapsed_ms is not None:
        text += f" in {rec.elapsed_ms:.1f} ms"
    if rec.note:
        text += f"; {rec.note}"
    return text


def _bytes(count: int) -> str:
    if count < 10_000:
        return f"{count} B"
    if count < 10_000_000:
        return f"{count / 1e3:.1f} kB"
    return f"{count / 1e6:.1f} MB"


def _service(kind: str) -> str:
    """``C_FIND_RQ`` -> ``C-FIND``."""
    return kind.rsplit("_", 1)[0].replace("_", "-")


def _pdu(value: int | None) -> str:
    if value is None:
        return "?"
    return "unlimited" if value == 0 else f"{value} bytes"


def _yn(value: bool | None) -> str:
    return "?" if value is None else ("yes" if value else "no")


def _role(cx: ContextRecord) -> str:
    if cx.as_scu is None or cx.as_scp is None:
        return ""
    roles = [r for r, on in (("SCU", cx.as_scu), ("SCP", cx.as_scp)) if on]
    return f", our role: {' and '.join(roles) or 'none'}"


def _dimse_line(rec: DimseRecord) -> str:
    if rec.direction == "in":
        text = f"<- {rec.service} requests from peer: {rec.count}"
        if rec.failures:
            text += f" ({rec.failures} answered with failure)"
        return text
    text = f"-> {rec.service} (message {rec.message_id})"
    if rec.pending:
        text += f": {rec.pending} pending"
    if rec.cancel_sent:
        text += ", C-CANCEL sent"
    if rec.status is not None:
        category, description = status_meaning(rec.service, rec.status)
        meaning = f"{category}" + (f" - {description}" if description else "")
        text += f"; final status 0x{rec.status:04X} ({meaning})"
    else:
        text += "; no final status"
    if rec.elapsed_ms is not None:
        text += f" in {rec.elapsed_ms:.1f} ms"
    return text
