"""SSL contexts for DICOM TLS (PS3.15 Annex B.1), built from a node's settings.

The client context secures the associations we open; the server context secures the one the
PACS opens back to our storage SCP during a C-MOVE, with the same certificate and CA.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from tuiviewer.config.nodes import TlsSettings
from tuiviewer.net.errors import TlsFailed


def ssl_context(settings: TlsSettings) -> ssl.SSLContext:
    """Return a client ``SSLContext``: trust ``ca_file``, present ``cert_file``/``key_file``.

    Verification is on unless ``settings.verify`` is false; the host name is checked only
    when ``server_hostname`` is given (PACS certificates rarely name the host we dial).

    Raises:
        TlsFailed: a certificate, key or CA file cannot be loaded (the message names it).
    """
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = bool(settings.verify and settings.server_hostname)
    ctx.verify_mode = ssl.CERT_REQUIRED if settings.verify else ssl.CERT_NONE
    if settings.ca_file is not None:
        _load_ca(ctx, settings.ca_file)
    if settings.cert_file is not None:
        _load_own(ctx, settings, f"The client certificate {str(settings.cert_file)!r}")
    return ctx


def _load_ca(ctx: ssl.SSLContext, ca_file: Path) -> None:
    try:
        ctx.load_verify_locations(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise TlsFailed(f"The CA file {str(ca_file)!r} cannot be loaded: {_reason(exc)}.") from exc


def _load_own(ctx: ssl.SSLContext, settings: TlsSettings, what: str) -> None:
    """Our certificate and key; ``what`` names the certificate in the error."""
    try:
        ctx.load_cert_chain(
            certfile=str(settings.cert_file),
            keyfile=str(settings.key_file) if settings.key_file else None,
        )
    except (OSError, ssl.SSLError) as exc:
        raise TlsFailed(f"{what} or its key cannot be loaded: {_reason(exc)}.") from exc


def server_ssl_context(settings: TlsSettings) -> ssl.SSLContext:
    """Return a server ``SSLContext`` for our C-MOVE storage SCP: present ``cert_file``/
    ``key_file``, and require a client certificate signed by ``ca_file`` from the PACS.

    The PACS must present a certificate unless ``settings.verify`` is false; ``ca_file`` alone
    vouches for it (the system CA store when ``ca_file`` is None). TLS 1.2 at least.
    ``cert_file`` is presented to the PACS as a server certificate here and as a client
    certificate when we call it: if it lists extended key usages it needs both
    ``serverAuth`` and ``clientAuth``.

    Raises:
        TlsFailed: there is no ``cert_file`` (a TLS server cannot do without one), or a
            certificate, key or CA file cannot be loaded (the message names it).
    """
    if settings.cert_file is None:
        raise TlsFailed(
            "DICOM TLS for the C-MOVE storage SCP needs our own certificate, but the node's "
            "tls table has no cert_file; set cert_file (and key_file) or retrieve with C-GET."
        )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_mode = ssl.CERT_REQUIRED if settings.verify else ssl.CERT_NONE
    if settings.ca_file is not None:
        # Only the configured CA: with the system store too, anyone holding a certificate
        # from a public CA could push instances into our store.
        _load_ca(ctx, settings.ca_file)
    elif settings.verify:
        ctx.load_default_certs(ssl.Purpose.CLIENT_AUTH)
    _load_own(
        ctx,
        settings,
        f"The certificate {str(settings.cert_file)!r}, which our C-MOVE storage SCP presents,",
    )
    return ctx


def _reason(exc: BaseException) -> str:
    """The short reason OpenSSL gives (``CERTIFICATE_VERIFY_FAILED``...), or the message."""
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return f"certificate verify failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).replace("_", " ").lower()
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


ssl_reason = _reason


#: OpenSSL's reasons when the peer answered our ClientHello with something that is not TLS.
_NOT_TLS_SIGNS = (
    "wrong version number",
    "unexpected eof",
    "packet length too long",
    "record layer failure",
    "http request",
    "unknown protocol",
)


def handshake_failed(where: str, reason: str) -> TlsFailed:
    """The error for a TLS handshake with ``where`` that failed for ``reason`` (OpenSSL's),
    with a hint when the peer looks like a plain DICOM port."""
    hint = ""
    if any(sign in reason for sign in _NOT_TLS_SIGNS):
        hint = (
            "; the peer may not speak TLS on this port (a plain DICOM port answers a TLS "
            "handshake like this): check the port, or remove the node's TLS settings"
        )
    return TlsFailed(f"The TLS handshake with {where} failed: {reason}{hint}.")


def handshake_reset(where: str) -> TlsFailed:
    """The error for a peer that closed the connection during our TLS handshake."""
    return TlsFailed(
        f"The TLS handshake with {where} failed: the peer closed the connection "
        "(it may not accept our certificate)."
    )
