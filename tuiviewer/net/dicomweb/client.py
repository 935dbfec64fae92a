"""One DICOMweb node's HTTP session: authentication, TLS, timeouts, the trace and typed errors.

The session is a ``requests.Session`` set up with dicomweb-client's session utilities (CA
bundle, client certificate) and handed to a ``dicomweb_client.DICOMwebClient``, which builds
the QIDO-RS requests with the node's service prefixes and decodes DICOM JSON. WADO-RS and
STOW-RS stream bodies through the same session (:mod:`~tuiviewer.net.dicomweb.wado`,
:mod:`~tuiviewer.net.dicomweb.stow`), because dicomweb-client decodes every part into a
dataset in memory and builds STOW bodies in memory.

Every request lands in the node's :class:`~tuiviewer.net.trace.AssociationTrace` as an
:class:`~tuiviewer.net.trace.HttpRecord`: method, path, status, bytes and time, with query
values that could hold PHI hidden. dicomweb-client logs full URLs (with patient names) at
DEBUG, so its logger is held at WARNING.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import requests
from dicomweb_client import DICOMwebClient
from dicomweb_client.session_utils import add_certs_to_session

from tuiviewer.config.dicomweb import CredentialError, DicomWebNode
from tuiviewer.net.dicomweb.errors import AccessDenied, HttpStatusError
from tuiviewer.net.errors import (
    AssociationAborted,
    ConnectionFailed,
    NetError,
    NetTimeout,
    TlsFailed,
)
from tuiviewer.net.tls import ssl_reason
from tuiviewer.net.trace import AssociationTrace, HttpRecord, safe_url

logging.getLogger("dicomweb_client").setLevel(logging.WARNING)

USER_AGENT = "tuiviewer"
#: dicomweb-client percent-encodes ``*`` and ``?`` in query values (``quote_plus``); PS3.18
#: 8.3.4.1 wildcards are plain characters of the query, and some servers (Orthanc's plugin)
#: do not decode them, so they go out literally. ``quote_plus`` turns a literal ``%`` into
#: ``%25``, so ``%2A`` and ``%3F`` in its output only ever stand for the wildcards.
_WILDCARDS = (("%2A", "*"), ("%2a", "*"), ("%3F", "?"), ("%3f", "?"))


class _Session(requests.Session):
    """A session that sends QIDO wildcards as the characters they are."""

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        if isinstance(url, str) and "?" in url:
            path, _, query = url.partition("?")
            for encoded, plain in _WILDCARDS:
                query = query.replace(encoded, plain)
            url = f"{path}?{query}"
        return super().request(method, url, *args, **kwargs)


def _ssl_cause(exc: BaseException) -> ssl.SSLError | None:
    """The OpenSSL error somewhere in the chain requests and urllib3 wrap around it."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, ssl.SSLError):
            return item
        linked = (item.__cause__, item.__context__, getattr(item, "reason", None), *item.args)
        stack.extend(x for x in linked if isinstance(x, BaseException))
    return None


def _detail(response: requests.Response) -> str:
    """A short reason from the body of an error response (Orthanc's JSON ``Message``)."""
    try:
        if "json" in response.headers.get("Content-Type", ""):
            payload = json.loads(response.content[:4096] or b"{}")
            message = payload.get("Message") if isinstance(payload, dict) else None
            if isinstance(message, str):
                return message[:200]
    except (ValueError, requests.RequestException):
        pass
    return ""


class WebSession:
    """Talks to one DICOMweb node; use as a context manager, one per operation (thread).

    Raises (from every request method): the typed errors of :mod:`tuiviewer.net.errors`.
    """

    def __init__(self, node: DicomWebNode, trace: AssociationTrace | None = None) -> None:
        """Set up authentication and TLS for ``node``.

        Raises:
            AccessDenied: the password or token cannot be read.
            TlsFailed: the CA bundle or client certificate file does not exist.
        """
        self.node = node
        self.trace = trace if trace is not None else AssociationTrace()
        self.trace.base_url = node.url
        self.trace.host, self.trace.port = node.host, node.port
        self.timeout = (node.connect_timeout, node.network_timeout)
        session = _Session()
        session.headers["User-Agent"] = USER_AGENT
        try:
            secret = node.auth.secret()
        except CredentialError as exc:
            raise AccessDenied(
                f"Cannot authenticate to {node.describe()}: {exc}", status=None
            ) from exc
        if node.auth.type == "basic":
            session.auth = (node.auth.username, secret)
        elif node.auth.type == "bearer":
            session.headers["Authorization"] = f"Bearer {secret}"
        tls = node.tls
        if tls is not None:
            try:
                add_certs_to_session(
                    session,
                    ca_bundle=str(tls.ca_file) if tls.ca_file else None,
                    cert=str(tls.cert_file) if tls.cert_file and not tls.key_file else None,
                )
            except OSError as exc:
                raise TlsFailed(f"TLS settings of {node.describe()}: {exc}.") from exc
            if tls.cert_file and tls.key_file:
                session.cert = (str(tls.cert_file), str(tls.key_file))
            if not tls.verify:
                session.verify = False
        session.hooks["response"].append(self._on_response)
        self.session = session
        self.client = DICOMwebClient(
            url=node.url,
            session=session,
            qido_url_prefix=node.qido_prefix or None,
            wado_url_prefix=node.wado_prefix or None,
            stow_url_prefix=node.stow_prefix or None,
            timeout=self.timeout,
        )
        # No retries: dicomweb-client's retry also repeats every exception (a refused
        # connection, a 60 s read timeout) with back-off, and a reader is waiting. The
        # retrieve queue retries on request, resuming what is missing.
        self.client.set_http_retry_params(retry=False)
        self._local = threading.local()
        self.trace.started = time.monotonic()

    def __enter__(self) -> WebSession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()
        self.trace.set_outcome("closed")

    # --- tracing ------------------------------------------------------------------------------

    def _on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        request = response.request
        body = request.body
        sent = len(body) if isinstance(body, (bytes, str)) else getattr(self._local, "sent", 0)
        record = HttpRecord(
            method=str(request.method),
            url=safe_url(str(request.url)),
            status=response.status_code,
            content_type=response.headers.get("Content-Type", ""),
            sent=sent,
            elapsed_ms=response.elapsed.total_seconds() * 1000,
        )
        if not kwargs.get("stream"):
            record.received = len(response.content)
        self.trace.record_http(record)
        self._local.record = record
        self._local.sent = 0

    def last_record(self) -> HttpRecord | None:
        """The record of this thread's latest response, to add streamed bytes and time."""
        return getattr(self._local, "record", None)

    # --- requests -----------------------------------------------------------------------------

    @contextmanager
    def errors(self, what: str, url: str = "") -> Iterator[None]:
        """Turn requests' exceptions inside the block into typed errors naming ``what``."""
        try:
            yield
        except requests.HTTPError as exc:
            raise self.status_error(exc.response, what) from None
        except requests.RequestException as exc:
            error = self.transport_error(exc, what)
            self.trace.record_http(
                HttpRecord(
                    method="GET" if not exc.request else str(exc.request.method),
                    url=safe_url(str(exc.request.url)) if exc.request else safe_url(url),
                    note=error.message,
                )
            )
            self.trace.set_outcome(f"failed: {error.message}")
            raise error from None

    def status_error(self, response: requests.Response | None, what: str) -> NetError:
        """The typed error for an HTTP failure status answering ``what``."""
        where = self.node.describe()
        if response is None:
            return AssociationAborted(f"{where} gave no answer to {what}.")
        status = response.status_code
        reason = response.reason or "error"
        detail = _detail(response)
        tail = f" ({detail})" if detail else ""
        if status in (401, 403):
            how = (
                "check the node's auth settings"
                if self.node.auth.type != "none"
                else "the node needs an [auth] table in nodes.toml"
            )
            error: NetError = AccessDenied(
                f"{where} refused {what}: HTTP {status} {reason}{tail}; {how}.", status=status
            )
        elif status == 413:
            error = HttpStatusError(
                f"{where} refused {what} as too large: HTTP 413 {reason}{tail}.", status, reason
            )
        else:
            error = HttpStatusError(
                f"{where} answered {what} with HTTP {status} {reason}{tail}.", status, reason
            )
        self.trace.set_outcome(f"failed: HTTP {status}")
        return error

    def transport_error(self, exc: requests.RequestException, what: str) -> NetError:
        """The typed error for a request that got no (complete) answer."""
        where = self.node.describe()
        if isinstance(exc, requests.exceptions.SSLError):
            cause = _ssl_cause(exc)
            reason = ssl_reason(cause) if cause is not None else str(exc)
            return TlsFailed(f"The TLS handshake with {where} failed: {reason}.")
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return NetTimeout(
                f"Connecting to {where} timed out after {self.node.connect_timeout:g} s "
                "(connect timeout).",
                "connect",
            )
        if isinstance(exc, requests.exceptions.ReadTimeout):
            return NetTimeout(
                f"{where} sent nothing for {self.node.network_timeout:g} s during {what} "
                "(network timeout).",
                "network",
            )
        if isinstance(exc, requests.exceptions.ChunkedEncodingError):
            return AssociationAborted(f"The connection to {where} was lost during {what}.")
        if isinstance(exc, requests.exceptions.ConnectionError):
            text = str(exc)
            if "Connection refused" in text:
                reason = "connection refused"
            elif "Name or service not known" in text or "nodename nor servname" in text:
                reason = f"the host name {self.node.host!r} does not resolve"
            elif "RemoteDisconnected" in text or "Connection aborted" in text:
                return AssociationAborted(
                    f"{where} closed the connection during {what}, before it answered."
                )
            else:
                reason = type(exc).__name__
            return ConnectionFailed(f"Cannot connect to {where}: {reason}.")
        return NetError(f"{what} to {where} failed: {type(exc).__name__}.")

    def get(
        self, url: str, what: str, *, headers: Mapping[str, str] | None = None, stream: bool = False
    ) -> requests.Response:
        """GET ``url``; a failure status raises (the response is closed then)."""
        with self.errors(what, url):
            response = self.session.get(
                url, headers=dict(headers or {}), stream=stream, timeout=self.timeout
            )
        if response.status_code >= 400:
            error = self.status_error(response, what)
            response.close()
            raise error
        return response

    def post(
        self,
        url: str,
        what: str,
        *,
        data: Any,
        sent: int,
        headers: Mapping[str, str],
    ) -> requests.Response:
        """POST ``data`` (bytes or a file-like body of ``sent`` bytes) and return the answer,
        whatever its status (STOW-RS answers partial failures with a body to read)."""
        self._local.sent = sent
        with self.errors(what, url):
            return self.session.post(url, data=data, headers=dict(headers), timeout=self.timeout)
