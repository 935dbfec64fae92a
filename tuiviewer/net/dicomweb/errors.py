"""Typed errors for DICOMweb, as subclasses of the DIMSE ones so callers need not know the
transport: a refused login is an :class:`~tuiviewer.net.errors.AssociationRejected` (the
server turned us away), an HTTP failure status a :class:`~tuiviewer.net.errors.DimseStatusError`
(the server answered the request with a failure), a stream that breaks off an
:class:`~tuiviewer.net.errors.AssociationAborted`.

Messages name the node and the HTTP status, never a query value (which may be a patient name).
"""

from __future__ import annotations

from tuiviewer.net.errors import AssociationRejected, DimseStatusError


class AccessDenied(AssociationRejected):
    """HTTP 401 or 403, or credentials that could not be read: the server will not serve us."""

    title = "Access denied"

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message, result="rejected", source="server", reason="access denied")
        self.status = status


class HttpStatusError(DimseStatusError):
    """The server answered with an HTTP failure status (4xx, 5xx); ``code`` is that status."""

    title = "Request failed"

    def __init__(self, message: str, status: int, reason: str) -> None:
        super().__init__(message, code=status, meaning=reason, category="Failure")
        self.status = status
