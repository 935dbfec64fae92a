"""A DICOMweb node in ``nodes.toml`` (``kind = "dicomweb"``), parsed as strictly as DIMSE nodes.

```toml
[nodes.cloud]
kind = "dicomweb"
url = "https://pacs.example.org/dicom-web"   # the base URL (the service root, PS3.18 8.2)
qido_prefix = "rs"            # optional: path segments after the URL when QIDO/WADO/STOW differ
page_size = 100               # QIDO-RS results per request (limit/offset paging)
fuzzy_matching = false        # ask for fuzzy person-name matching (only where the server offers it)
connect_timeout = 10          # seconds; network_timeout: seconds of silence while reading

[nodes.cloud.auth]            # none (default), basic or bearer
type = "bearer"
token_file = "token.txt"      # or token_command = ["gcloud", "auth", "print-access-token"]

[nodes.cloud.tls]             # https: verification on; a private CA; a client certificate
ca_file = "ca.pem"
cert_file = "client.pem"
key_file = "client.key"
```

:class:`DicomWebNode` is a :class:`~tuiviewer.config.nodes.Node`, so the screens, jobs and the
worklist hold it like any other node; :mod:`tuiviewer.net.transport` sends its operations over
HTTP. Like every node, it is configuration (the foundation layer): this module imports neither
the network layer, nor requests, nor dicomweb-client.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import tomlkit
from tomlkit.items import Table

from tuiviewer.config.nodes import (
    Node,
    TlsSettings,
    _parse_tls,
    _plain,
    _validate_path,
    _validate_timeout,
)

KIND = "dicomweb"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 10_000

AuthType = Literal["none", "basic", "bearer"]


class CredentialError(ValueError):
    """A password or token cannot be read (file missing, command failed); names the source."""


@dataclass(frozen=True)
class WebAuth:
    """How we authenticate to a DICOMweb server (the secrets themselves stay in their files)."""

    type: AuthType = "none"
    """``none``, ``basic`` (RFC 7617) or ``bearer`` (RFC 6750)."""
    username: str = ""
    """HTTP basic: the user name."""
    password: str = ""
    """HTTP basic: the password written in nodes.toml itself (the file is 0600)."""
    password_file: Path | None = None
    """HTTP basic: a file holding the password (first line)."""
    token_file: Path | None = None
    """Bearer: a file holding the token (first line), re-read for every session."""
    token_command: tuple[str, ...] = ()
    """Bearer: a command printing the token (e.g. ``gcloud auth print-access-token``)."""

    def secret(self) -> str:
        """The password (basic) or token (bearer), read now from wherever it is kept.

        Raises:
            CredentialError: the file cannot be read, the command fails or prints nothing.
        """
        if self.type == "basic":
            if self.password_file is not None:
                return _first_line(self.password_file, "password")
            return self.password
        if self.type == "bearer":
            if self.token_file is not None:
                return _first_line(self.token_file, "token")
            return _run_token_command(self.token_command)
        return ""


def _first_line(path: Path, what: str) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialError(f"The {what} file {str(path)!r} cannot be read: {exc}.") from exc
    line = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not line:
        raise CredentialError(f"The {what} file {str(path)!r} is empty.")
    return line


def _run_token_command(command: tuple[str, ...]) -> str:
    shown = shlex.join(command)
    try:
        done = subprocess.run(
            list(command), capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CredentialError(f"The token command {shown!r} could not run: {exc}.") from exc
    if done.returncode != 0:
        # stderr may say why (expired login); it never holds the token, which goes to stdout.
        detail = done.stderr.strip().splitlines()[-1][:200] if done.stderr.strip() else ""
        raise CredentialError(
            f"The token command {shown!r} failed with exit code {done.returncode}"
            + (f": {detail}." if detail else ".")
        )
    token = done.stdout.strip()
    if not token:
        raise CredentialError(f"The token command {shown!r} printed no token.")
    return token.splitlines()[0].strip()


@dataclass(frozen=True)
class DicomWebNode(Node):
    """A DICOMweb origin server: QIDO-RS, WADO-RS and STOW-RS under one base URL.

    ``host`` and ``port`` come from the URL; the DIMSE settings (AE titles, C-MOVE, ACSE and
    DIMSE timeouts) do not apply. ``network_timeout`` is the read timeout: seconds without a
    byte from the server.
    """

    url: str = ""
    """Base URL of the service, ``http(s)://host[:port]/path`` without a trailing slash."""
    qido_prefix: str = ""
    """Path after ``url`` for QIDO-RS when the server puts it elsewhere ("" for none)."""
    wado_prefix: str = ""
    """Path after ``url`` for WADO-RS ("" for none)."""
    stow_prefix: str = ""
    """Path after ``url`` for STOW-RS ("" for none)."""
    auth: WebAuth = field(default_factory=WebAuth)
    """Authentication; the client certificate is in ``tls``."""
    page_size: int = DEFAULT_PAGE_SIZE
    """QIDO-RS ``limit`` per request; further pages follow with ``offset``."""
    fuzzy_matching: bool = False
    """Send ``fuzzymatching=true`` (PS3.18 8.3.4.1), for servers that offer it."""

    @property
    def kind(self) -> str:
        return KIND

    @property
    def address(self) -> str:
        """The base URL: what users can type instead of the node's name."""
        return self.url

    def describe(self) -> str:
        """``'cloud' (DICOMweb at https://host/dicom-web)`` for messages."""
        where = f"DICOMweb at {self.url}"
        if self.name and self.name != self.url:
            return f"{self.name!r} ({where})"
        return where

    def service_url(self, service: Literal["qido", "wado", "stow"]) -> str:
        """The root of one service: the base URL plus its prefix, if any."""
        prefix = {"qido": self.qido_prefix, "wado": self.wado_prefix, "stow": self.stow_prefix}[
            service
        ]
        return f"{self.url}/{prefix}" if prefix else self.url


# --- parsing ------------------------------------------------------------------------------------

_WEB_KEYS = {
    "kind",
    "url",
    "qido_prefix",
    "wado_prefix",
    "stow_prefix",
    "page_size",
    "fuzzy_matching",
    "connect_timeout",
    "network_timeout",
    "auth",
    "tls",
}
_AUTH_KEYS = {"type", "username", "password", "password_file", "token_file", "token_command"}


def validate_url(value: object, where: str) -> tuple[str, str, int]:
    """Return ``(url, host, port)`` for a base URL: http(s), a host, no query, no fragment.

    Raises:
        ValueError: with a sentence naming ``where`` and quoting the value.
    """
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where} must be an http:// or https:// URL, not {value!r}.")
    text = value.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{where} {value!r} is not a valid URL: {exc}.") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError(f"{where} {value!r} must start with http:// or https://.")
    if not parts.hostname:
        raise ValueError(f"{where} {value!r} names no host.")
    if parts.query or parts.fragment:
        raise ValueError(f"{where} {value!r} must not have a query (?...) or fragment (#...).")
    if parts.username or parts.password:
        raise ValueError(
            f"{where} {value!r} must not carry credentials; put them in the node's auth table."
        )
    if any(c.isspace() for c in text):
        raise ValueError(f"{where} {value!r} must not contain spaces.")
    scheme = parts.scheme.lower()
    url = urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
    return url, parts.hostname, port if port is not None else (443 if scheme == "https" else 80)


def _prefix(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{where} must be a string, not {value!r}.")
    text = value.strip().strip("/")
    if any(c.isspace() or c in "?#" for c in text) or ".." in text.split("/"):
        raise ValueError(f"{where} {value!r} must be a plain URL path (no spaces, '?', '#', '..').")
    return text


def _bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{where} must be true or false, not {value!r}.")
    return value


def _page_size(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PAGE_SIZE:
        raise ValueError(f"{where} must be a number from 1 to {MAX_PAGE_SIZE}, not {value!r}.")
    return value


def _string(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{where} must be a string, not {value!r}.")
    return value


def _parse_auth(table: object, where: str, base: Path) -> WebAuth:
    if not isinstance(table, dict):
        raise ValueError(f"{where} must be a table, not {table!r}.")
    unknown = sorted(set(table) - _AUTH_KEYS)
    if unknown:
        raise ValueError(
            f"{where}.{unknown[0]} is not a known auth setting "
            f"(known: {', '.join(sorted(_AUTH_KEYS))})."
        )
    kind = table.get("type", "none")
    if kind not in ("none", "basic", "bearer"):
        raise ValueError(f"{where}.type must be 'none', 'basic' or 'bearer', not {kind!r}.")
    allowed = {
        "none": {"type"},
        "basic": {"type", "username", "password", "password_file"},
        "bearer": {"type", "token_file", "token_command"},
    }[kind]
    stray = sorted(set(table) - allowed)
    if stray:
        raise ValueError(f"{where}.{stray[0]} does not apply to auth type {kind!r}.")
    username = _string(table.get("username", ""), f"{where}.username")
    password = _string(table.get("password", ""), f"{where}.password")
    password_file = (
        _validate_path(table["password_file"], f"{where}.password_file", base)
        if "password_file" in table
        else None
    )
    token_file = (
        _validate_path(table["token_file"], f"{where}.token_file", base)
        if "token_file" in table
        else None
    )
    command: tuple[str, ...] = ()
    if "token_command" in table:
        raw = table["token_command"]
        if isinstance(raw, str):
            command = tuple(shlex.split(raw))
        elif isinstance(raw, list) and all(isinstance(item, str) for item in raw):
            command = tuple(raw)
        else:
            raise ValueError(
                f"{where}.token_command must be a command line or a list of strings, not {raw!r}."
            )
        if not command:
            raise ValueError(f"{where}.token_command must not be empty.")
    if kind == "basic":
        if not username:
            raise ValueError(f"{where}.username is missing; HTTP basic needs a user name.")
        if password and password_file is not None:
            raise ValueError(f"{where}: give password or password_file, not both.")
    if kind == "bearer" and (token_file is None) == (not command):
        raise ValueError(f"{where}: bearer authentication needs token_file or token_command.")
    return WebAuth(
        type=kind,
        username=username,
        password=password,
        password_file=password_file,
        token_file=token_file,
        token_command=command,
    )


def web_node_from_mapping(name: str, table: Mapping[str, Any], base: Path) -> DicomWebNode:
    """Build a :class:`DicomWebNode` from one ``[nodes.NAME]`` table with ``kind = "dicomweb"``.

    Raises:
        ValueError: a key is unknown, missing or invalid; the message names ``nodes.NAME.KEY``.
    """
    where = f"nodes.{name}"
    unknown = sorted(set(table) - _WEB_KEYS)
    if unknown:
        raise ValueError(
            f"{where}.{unknown[0]} is not a setting of a DICOMweb node "
            f"(known: {', '.join(sorted(_WEB_KEYS))})."
        )
    if "url" not in table:
        raise ValueError(f"{where}.url is missing; a DICOMweb node needs its base URL.")
    url, host, port = validate_url(table["url"], f"{where}.url")
    tls: TlsSettings | None = None
    if "tls" in table:
        tls = _parse_tls(table["tls"], f"{where}.tls", base)
        if tls.server_hostname is not None:
            raise ValueError(
                f"{where}.tls.server_hostname does not apply to DICOMweb: the certificate must "
                "name the URL's host."
            )
        if not url.startswith("https://"):
            raise ValueError(f"{where}.tls is set but {where}.url {url!r} is not https://.")
    defaults = DicomWebNode(name="", ae_title="", host="", port=1)
    connect = table.get("connect_timeout", defaults.connect_timeout)
    network = table.get("network_timeout", defaults.network_timeout)
    return DicomWebNode(
        name=name,
        ae_title="",
        host=host,
        port=port,
        url=url,
        qido_prefix=_prefix(table.get("qido_prefix", ""), f"{where}.qido_prefix"),
        wado_prefix=_prefix(table.get("wado_prefix", ""), f"{where}.wado_prefix"),
        stow_prefix=_prefix(table.get("stow_prefix", ""), f"{where}.stow_prefix"),
        auth=_parse_auth(table["auth"], f"{where}.auth", base) if "auth" in table else WebAuth(),
        page_size=_page_size(table.get("page_size", DEFAULT_PAGE_SIZE), f"{where}.page_size"),
        fuzzy_matching=_bool(table.get("fuzzy_matching", False), f"{where}.fuzzy_matching"),
        tls=tls,
        connect_timeout=_validate_timeout(connect, f"{where}.connect_timeout"),
        network_timeout=_validate_timeout(network, f"{where}.network_timeout"),
    )


def parse_web_url(text: str) -> DicomWebNode:
    """An ad-hoc node for a base URL typed on the command line (no auth, default settings).

    Raises:
        ValueError: the URL is not valid.
    """
    url, host, port = validate_url(text, "The DICOMweb URL")
    return DicomWebNode(name=url, ae_title="", host=host, port=port, url=url)


def web_node_table(node: DicomWebNode) -> Table:
    """The ``[nodes.NAME]`` table of ``node`` (``kind``, ``url``, what differs from the
    defaults, then ``auth`` and ``tls``), which :func:`web_node_from_mapping` reads back to an
    equal node."""
    defaults = DicomWebNode(name="", ae_title="", host="", port=1)
    table = tomlkit.table()
    table.add("kind", KIND)
    table.add("url", node.url)
    for attr in (
        "qido_prefix",
        "wado_prefix",
        "stow_prefix",
        "page_size",
        "fuzzy_matching",
        "connect_timeout",
        "network_timeout",
    ):
        value = getattr(node, attr)
        if value != getattr(defaults, attr):
            table.add(attr, _plain(value))
    auth = node.auth
    if auth.type != "none":
        auth_table = tomlkit.table()
        auth_table.add("type", auth.type)
        for attr in ("username", "password"):
            if getattr(auth, attr):
                auth_table.add(attr, getattr(auth, attr))
        for attr in ("password_file", "token_file"):
            if getattr(auth, attr) is not None:
                auth_table.add(attr, _plain(getattr(auth, attr)))
        if auth.token_command:
            auth_table.add("token_command", list(auth.token_command))
        table.add("auth", auth_table)
    if node.tls is not None:
        tls = tomlkit.table()
        for attr in ("ca_file", "cert_file", "key_file", "verify"):
            value = getattr(node.tls, attr)
            if value is not None:
                tls.add(attr, _plain(value))
        table.add("tls", tls)
    return table
