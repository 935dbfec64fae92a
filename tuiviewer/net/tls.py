"""Client SSL contexts for DICOM TLS (PS3.15 Annex B.1), built from a node's settings."""

from __future__ import annotations

import ssl

from tuiviewer.net.errors import TlsFailed
from tuiviewer.net.nodes import TlsSettings


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
        try:
            ctx.load_verify_locations(cafile=str(settings.ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise TlsFailed(
                f"The CA file {str(settings.ca_file)!r} cannot be loaded: {_reason(exc)}."
            ) from exc
    if settings.cert_file is not None:
        try:
            ctx.load_cert_chain(
                certfile=str(settings.cert_file),
                keyfile=str(settings.key_file) if settings.key_file else None,
            )
        except (OSError, ssl.SSLError) as exc:
            raise TlsFailed(
                f"The client certificate {str(settings.cert_file)!r} or its key cannot be "
                f"loaded: {_reason(exc)}."
            ) from exc
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
