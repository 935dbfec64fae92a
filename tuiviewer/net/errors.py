"""Typed network errors, so the CLI and the screens can say in words what went wrong.

Every message is a full sentence naming the node (name, AE title, host:port) and never
carries PHI: identifiers, patient names and IDs stay out of errors and logs.
"""

from __future__ import annotations

from collections.abc import Sequence

from tuiviewer.exceptions import TuiviewerError

#: Status tables per DIMSE service (PS3.4 annexes, as pynetdicom transcribes them).
_STATUS_TABLES = {
    "C-ECHO": "VERIFICATION_SERVICE_CLASS_STATUS",
    "C-STORE": "STORAGE_SERVICE_CLASS_STATUS",
    "C-FIND": "QR_FIND_SERVICE_CLASS_STATUS",
    "C-MOVE": "QR_MOVE_SERVICE_CLASS_STATUS",
    "C-GET": "QR_GET_SERVICE_CLASS_STATUS",
}


def status_meaning(service: str, code: int) -> tuple[str, str]:
    """Return ``(category, description)`` of a DIMSE status ``code`` for ``service``.

    ``service`` is a DIMSE name such as ``"C-FIND"``; unknown services fall back to the
    general statuses of PS3.7 Annex C. The category is pynetdicom's (``"Success"``,
    ``"Pending"``, ``"Warning"``, ``"Failure"``, ``"Cancel"``); the description is empty
    when the standard gives none.
    """
    # Imported here: the command line's lean C-FIND (net/leanfind.py) raises these errors
    # without importing pynetdicom, and needs its tables only for an unusual status.
    from pynetdicom import status as _status

    name = _STATUS_TABLES.get(service.upper())
    table: dict[int, tuple[str, str]] = (
        getattr(_status, name) if name is not None else _status.GENERAL_STATUS
    )
    category, description = table.get(code) or _status.GENERAL_STATUS.get(code) or ("", "")
    if not category:
        return str(_status.code_to_category(code)), ""
    # PS3.4 C.4 words the A7xx/A8xx failures as "Refused: ..."; pynetdicom drops the
    # prefix for some (0xA801) and keeps it for others, and users should read the same form.
    if 0xA700 <= code <= 0xA8FF and description and not description.startswith("Refused"):
        description = f"Refused: {description}"
    return category, description


def format_status(service: str, code: int) -> str:
    """``"0xA801: Refused: Move destination unknown"`` style text for a status code."""
    category, description = status_meaning(service, code)
    return f"0x{code:04X}: {description or category}"


class NetError(TuiviewerError):
    """Base of every DICOM networking failure."""

    title = "Network error"


class ConnectionFailed(NetError):
    """No TCP connection: refused, unreachable, or the host name did not resolve."""

    title = "Connection failed"


class AssociationRejected(NetError):
    """The peer answered the association request with A-ASSOCIATE-RJ."""

    title = "Association rejected"

    def __init__(self, message: str, result: str = "", source: str = "", reason: str = "") -> None:
        super().__init__(message)
        self.result = result
        self.source = source
        self.reason = reason


class AssociationAborted(NetError):
    """The association ended abruptly (A-ABORT from the peer or a dropped connection)."""

    title = "Association aborted"


class NetTimeout(NetError):
    """A timeout expired; ``which`` is ``"connect"``, ``"ACSE"``, ``"DIMSE"`` or ``"network"``."""

    title = "Timed out"

    def __init__(self, message: str, which: str) -> None:
        super().__init__(message)
        self.which = which


class DimseStatusError(NetError):
    """The peer answered a DIMSE request with a failure (or cancel) status."""

    title = "Request failed"

    def __init__(self, message: str, code: int, meaning: str, category: str) -> None:
        super().__init__(message)
        self.code = code
        self.meaning = meaning
        self.category = category


class TlsFailed(NetError):
    """The TLS handshake or certificate verification failed."""

    title = "TLS failed"


class NoAcceptedContext(NetError):
    """The peer accepted none of the presentation contexts an operation needs."""

    title = "Service not supported"

    def __init__(self, message: str, abstract_syntaxes: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.abstract_syntaxes = tuple(abstract_syntaxes)
