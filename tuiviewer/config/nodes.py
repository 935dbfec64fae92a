"""Remote DICOM nodes (PACS) the user talks to, kept in ``nodes.toml`` in the config dir.

The file holds one ``[nodes.NAME]`` table per node; ``[nodes.NAME.tls]`` switches on DICOM
TLS. Anywhere a node is asked for, ``AET@HOST:PORT`` works too (:func:`resolve_node`), and a
DICOMweb base URL for a ``kind = "dicomweb"`` node (:mod:`tuiviewer.config.dicomweb`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tuiviewer import locations
from tuiviewer.config.toml import read_toml
from tuiviewer.exceptions import ConfigError
from tuiviewer.files import write_private

if TYPE_CHECKING:  # tomlkit only writes nodes.toml; reading any config does without it
    from tomlkit.items import Table

NODES_FILE = "nodes.toml"
DEFAULT_CALLING_AET = "TUIVIEWER"


@dataclass(frozen=True)
class TlsSettings:
    """Client-side DICOM TLS (PS3.15 B.1): whom we trust and who we are."""

    ca_file: Path | None = None
    """PEM bundle of the CAs that sign the peer's certificate (system store when None)."""
    cert_file: Path | None = None
    """Our client certificate (PEM), for peers that require mutual authentication."""
    key_file: Path | None = None
    """Private key of ``cert_file`` (PEM); may sit in ``cert_file`` itself."""
    verify: bool = True
    """Verify the peer's certificate chain; turn off only for a test PACS."""
    server_hostname: str | None = None
    """Name the peer's certificate must carry; the host name is not checked when None."""


@dataclass(frozen=True)
class Node:
    """One remote Application Entity and how to talk to it."""

    name: str
    """Label the user picks the node by."""
    ae_title: str
    """Called AE title of the peer."""
    host: str
    """Host name or IP address of the peer."""
    port: int
    """TCP port of the peer's DICOM listener."""
    calling_aet: str = DEFAULT_CALLING_AET
    """Our AE title, as the peer knows us."""
    retrieve: Literal["get", "move"] = "get"
    """C-GET (one association) or C-MOVE (the peer connects back to our storage SCP)."""
    move_port: int = 11113
    """Port of our storage SCP that receives C-MOVE sub-operations."""
    move_bind: str = ""
    """Address our storage SCP listens on; when empty, loopback if the peer is on this
    computer, else this computer's address on the route to the peer (never every interface).
    Only the peer (its AE title, from its address) may connect to it."""
    accept_deflated: bool = False
    """Offer (C-GET) and accept (C-MOVE) Deflated Explicit VR Little Endian for images; off,
    the PACS sends them inflated. Report documents are always fetched deflated when stored
    so: they travel small, and are inflated within the reading limits."""
    tls: TlsSettings | None = None
    """DICOM TLS settings; plain TCP when None."""
    connect_timeout: float = 10
    """Seconds to wait for the TCP (and TLS) connection."""
    acse_timeout: float = 30
    """Seconds to wait for association accept/reject and release replies."""
    dimse_timeout: float = 60
    """Seconds to wait for each DIMSE response."""
    network_timeout: float = 60
    """Seconds of silence on the connection after which it is dropped."""

    @property
    def kind(self) -> str:
        """``"dimse"``; a DICOMweb node (a subclass) says ``"dicomweb"``."""
        return "dimse"

    @property
    def address(self) -> str:
        """``AET@HOST:PORT``, the form users can type instead of a node name."""
        return f"{self.ae_title}@{self.host}:{self.port}"

    def describe(self) -> str:
        """``'pacs' (ORTHANC at 127.0.0.1:4242)`` for messages; no name when it adds nothing."""
        where = f"{self.ae_title} at {self.host}:{self.port}"
        if self.name and self.name != self.ae_title and self.name != self.address:
            return f"{self.name!r} ({where})"
        return where


def nodes_path() -> Path:
    """Where the node list lives: ``nodes.toml`` in the user config dir."""
    return locations.config_dir() / NODES_FILE


# --- validation -------------------------------------------------------------------------------


def validate_ae_title(value: object, where: str) -> str:
    """Return ``value`` as an AE title (PS3.5 AE VR: 1-16 chars, no backslash/control chars).

    Raises:
        ValueError: with a sentence naming ``where``.
    """
    if not isinstance(value, str):
        raise ValueError(f"{where} must be a string, not {value!r}.")
    title = value.strip()
    if not title:
        raise ValueError(f"{where} must not be empty.")
    if len(title) > 16:
        raise ValueError(f"{where} {value!r} is longer than 16 characters.")
    if "\\" in title or any(ord(c) < 0x20 or ord(c) > 0x7E for c in title):
        raise ValueError(
            f"{where} {value!r} may only hold printable ASCII characters without backslash."
        )
    return title


def _validate_port(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValueError(f"{where} must be a port number from 1 to 65535, not {value!r}.")
    return value


def _validate_host(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where} must be a host name or IP address, not {value!r}.")
    host = value.strip()
    if any(c.isspace() for c in host) or "/" in host:
        raise ValueError(f"{where} {value!r} is not a valid host name or IP address.")
    return host


def _validate_flag(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{where} must be true or false, not {value!r}.")
    return value


def _validate_timeout(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where} must be a number of seconds, not {value!r}.")
    seconds = float(value)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{where} must be a positive number of seconds, not {value!r}.")
    return seconds


def _validate_path(value: object, where: str, base: Path) -> Path:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where} must be a file path, not {value!r}.")
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


_NODE_KEYS = ({f.name for f in fields(Node)} - {"name"}) | {"kind"}
_TLS_KEYS = {f.name for f in fields(TlsSettings)}
_NAME_RE = re.compile(r"^[^\s@:]+$")


def _parse_tls(table: object, where: str, base: Path) -> TlsSettings:
    if not isinstance(table, dict):
        raise ValueError(f"{where} must be a table, not {table!r}.")
    unknown = sorted(set(table) - _TLS_KEYS)
    if unknown:
        raise ValueError(
            f"{where}.{unknown[0]} is not a known TLS setting "
            f"(known: {', '.join(sorted(_TLS_KEYS))})."
        )
    paths: dict[str, Path | None] = {}
    for key in ("ca_file", "cert_file", "key_file"):
        paths[key] = _validate_path(table[key], f"{where}.{key}", base) if key in table else None
    verify = table.get("verify", True)
    if not isinstance(verify, bool):
        raise ValueError(f"{where}.verify must be true or false, not {verify!r}.")
    hostname = table.get("server_hostname")
    if hostname is not None:
        hostname = _validate_host(hostname, f"{where}.server_hostname")
    if paths["key_file"] is not None and paths["cert_file"] is None:
        raise ValueError(f"{where}.key_file is set but {where}.cert_file is not.")
    return TlsSettings(
        ca_file=paths["ca_file"],
        cert_file=paths["cert_file"],
        key_file=paths["key_file"],
        verify=verify,
        server_hostname=hostname,
    )


def node_from_mapping(name: str, table: Mapping[str, Any], base: Path = Path(".")) -> Node:
    """Build a :class:`Node` from one ``[nodes.NAME]`` table.

    Raises:
        ValueError: a key is unknown, missing or invalid; the message names ``nodes.NAME.KEY``.
    """
    where = f"nodes.{name}"
    if not _NAME_RE.match(name):
        raise ValueError(f"Node name {name!r} must not contain spaces, '@' or ':'.")
    kind = table.get("kind", "dimse")
    if kind == "dicomweb":
        from tuiviewer.config.dicomweb import web_node_from_mapping

        return web_node_from_mapping(name, table, base)
    if kind != "dimse":
        raise ValueError(f"{where}.kind must be 'dimse' or 'dicomweb', not {kind!r}.")
    unknown = sorted(set(table) - _NODE_KEYS)
    if unknown:
        raise ValueError(
            f"{where}.{unknown[0]} is not a known node setting "
            f"(known: {', '.join(sorted(_NODE_KEYS))})."
        )
    for key in ("ae_title", "host", "port"):
        if key not in table:
            raise ValueError(f"{where}.{key} is missing; every node needs ae_title, host and port.")
    retrieve = table.get("retrieve", "get")
    if retrieve not in ("get", "move"):
        raise ValueError(f"{where}.retrieve must be 'get' or 'move', not {retrieve!r}.")
    tls = _parse_tls(table["tls"], f"{where}.tls", base) if "tls" in table else None
    timeouts = {
        key: _validate_timeout(table[key], f"{where}.{key}")
        for key in ("connect_timeout", "acse_timeout", "dimse_timeout", "network_timeout")
        if key in table
    }
    return Node(
        name=name,
        ae_title=validate_ae_title(table["ae_title"], f"{where}.ae_title"),
        host=_validate_host(table["host"], f"{where}.host"),
        port=_validate_port(table["port"], f"{where}.port"),
        calling_aet=validate_ae_title(
            table.get("calling_aet", DEFAULT_CALLING_AET), f"{where}.calling_aet"
        ),
        retrieve=retrieve,
        move_port=_validate_port(table.get("move_port", 11113), f"{where}.move_port"),
        move_bind=(
            _validate_host(table["move_bind"], f"{where}.move_bind")
            if table.get("move_bind", "") != ""
            else ""
        ),
        accept_deflated=_validate_flag(
            table.get("accept_deflated", False), f"{where}.accept_deflated"
        ),
        tls=tls,
        **timeouts,
    )


def load_nodes(path: Path | None = None) -> dict[str, Node]:
    """Read the configured nodes, in file order (an absent file means no nodes).

    Relative TLS file paths are taken relative to the file's folder.

    Raises:
        ConfigError: the file is not valid TOML or a node is invalid; the message names the
            file and the key.
    """
    path = path if path is not None else nodes_path()
    data = read_toml(path, what="Node file")
    if data is None:
        return {}
    extra = sorted(set(data) - {"nodes"})
    if extra:
        raise ConfigError(
            f"Node file {str(path)!r}: top-level key {extra[0]!r} is not known; "
            "put each node in a [nodes.NAME] table."
        )
    tables = data.get("nodes", {})
    if not isinstance(tables, dict):
        raise ConfigError(f"Node file {str(path)!r}: 'nodes' must be a table of [nodes.NAME].")
    nodes: dict[str, Node] = {}
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise ConfigError(
                f"Node file {str(path)!r}: nodes.{name} must be a table, not {table!r}."
            )
        try:
            nodes[name] = node_from_mapping(name, table, base=path.parent)
        except ValueError as exc:
            raise ConfigError(f"Node file {str(path)!r}: {exc}") from exc
    return nodes


# --- writing ----------------------------------------------------------------------------------


def _plain(value: object) -> object:
    """A TOML value for a field: paths as strings, whole-number seconds as integers."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _node_table(node: Node) -> Table:
    """The ``[nodes.NAME]`` table of ``node``: address first, then what differs from the
    defaults, then ``[nodes.NAME.tls]``."""
    if node.kind == "dicomweb":
        from tuiviewer.config.dicomweb import DicomWebNode, web_node_table

        assert isinstance(node, DicomWebNode)
        return web_node_table(node)
    import tomlkit

    defaults = Node(name="", ae_title="", host="", port=1)
    table = tomlkit.table()
    for key in ("ae_title", "host", "port"):
        table.add(key, _plain(getattr(node, key)))
    for f in fields(Node):
        value = getattr(node, f.name)
        if f.name not in ("name", "ae_title", "host", "port", "tls"):
            if value != getattr(defaults, f.name):
                table.add(f.name, _plain(value))
    if node.tls is not None:
        tls = tomlkit.table()
        for f in fields(TlsSettings):
            value = getattr(node.tls, f.name)
            if value is not None:
                tls.add(f.name, _plain(value))
        table.add("tls", tls)
    return table


def _update(old: Table, new: Table) -> None:
    """Make ``old`` hold what ``new`` holds, changing only the keys that differ, so the comments
    and layout around the others stay."""
    from tomlkit.items import Table

    for key in [k for k in old if k not in new]:
        del old[key]
    for key, value in new.items():
        current = old.get(key)
        if isinstance(value, Table) and isinstance(current, Table):
            _update(current, value)
        elif key not in old or current != value:
            old[key] = value


def dumps_nodes(nodes: Mapping[str, Node], previous: str = "", base: Path = Path(".")) -> str:
    """TOML text for ``nodes`` that :func:`load_nodes` reads back to equal nodes.

    ``previous`` is the file's current text: a node that did not change keeps its table as it
    was (comments, layout, relative TLS paths, taken relative to ``base``), a changed one keeps
    the comments of its unchanged keys; comments elsewhere in the file stay too.
    """
    import tomlkit
    from tomlkit.items import Table

    if previous.strip():
        doc = tomlkit.parse(previous)
    else:
        doc = tomlkit.document()
        doc.add(tomlkit.comment("DICOM nodes for tuiviewer: one [nodes.NAME] table per node."))
        doc.add(tomlkit.nl())
    tables = doc.get("nodes")
    if not isinstance(tables, Table):
        tables = tomlkit.table(is_super_table=True)
        doc["nodes"] = tables
    for name in [name for name in tables if name not in nodes]:
        del tables[name]
    for name, node in nodes.items():
        old = tables.get(name)
        if not isinstance(old, Table):
            tables[name] = _node_table(node)
            continue
        try:
            unchanged = node_from_mapping(name, old.unwrap(), base=base) == node
        except ValueError:
            unchanged = False
        if not unchanged:
            _update(old, _node_table(node))
    return tomlkit.dumps(doc)


def save_nodes(nodes: Mapping[str, Node], path: Path | None = None) -> Path:
    """Write ``nodes`` to ``path`` (default ``nodes.toml``), readable by the owner only (0600).

    Comments and the layout of what did not change are kept (see :func:`dumps_nodes`). The file
    is written atomically, so a crash never leaves half a node list. Returns the path written.

    Raises:
        ValueError: a node is filed under another name than its own.
        ConfigError: the current file is not valid TOML (it is left as it is).
        SaveError: the file cannot be written.
    """
    path = path if path is not None else nodes_path()
    for name, node in nodes.items():
        if name != node.name:
            raise ValueError(f"Node {node.name!r} is filed under a different name {name!r}.")
    previous = ""
    if path.exists():
        read_toml(path, what="Node file")  # a broken file is said, not overwritten
        previous = path.read_text(encoding="utf-8")
    text = dumps_nodes(nodes, previous, base=path.parent)
    return write_private(path, text)


# --- AET@HOST:PORT ------------------------------------------------------------------------------

_SPEC_RE = re.compile(r"^(?P<aet>[^@]+)@(?P<host>\[[^\]]+\]|[^:@]+):(?P<port>[0-9]+)$")


def parse_node_spec(text: str, *, calling_aet: str = DEFAULT_CALLING_AET) -> Node:
    """Parse ``AET@HOST:PORT`` (IPv6 as ``AET@[::1]:PORT``) into an ad-hoc :class:`Node`.

    Raises:
        ValueError: the text is not of that form, or the AE title or port is invalid.
    """
    spec = text.strip()
    match = _SPEC_RE.match(spec)
    if not match:
        raise ValueError(
            f"Node {text!r} is not of the form AET@HOST:PORT (for example ORTHANC@127.0.0.1:4242)."
        )
    aet = validate_ae_title(match["aet"], f"The AE title in {text!r}")
    host = match["host"]
    if host.startswith("["):
        host = host[1:-1]
    host = _validate_host(host, f"The host in {text!r}")
    port = _validate_port(int(match["port"]), f"The port in {text!r}")
    return Node(
        name=f"{aet}@{match['host']}:{port}",
        ae_title=aet,
        host=host,
        port=port,
        calling_aet=calling_aet,
    )


def is_web_url(text: str) -> bool:
    """Whether ``text`` looks like a DICOMweb base URL (``http://`` or ``https://``).

    Here, not in :mod:`tuiviewer.config.dicomweb`, so that resolving ``AET@HOST:PORT`` does
    not import that module (and tomlkit with it).
    """
    return text.strip().lower().startswith(("http://", "https://"))


def resolve_node(text: str, nodes: Mapping[str, Node] | None = None) -> Node:
    """Return the configured node called ``text``, or the node an ``AET@HOST:PORT`` spec names.

    ``nodes`` defaults to :func:`load_nodes`.

    Raises:
        ConfigError: ``text`` is neither a configured name nor a valid spec (or nodes.toml is
            invalid).
    """
    nodes = load_nodes() if nodes is None else nodes
    if text in nodes:
        return nodes[text]
    if is_web_url(text):
        from tuiviewer.config.dicomweb import parse_web_url

        for node in nodes.values():  # a configured node's URL brings its auth and TLS along
            if node.address == text.strip().rstrip("/"):
                return node
        try:
            return parse_web_url(text)
        except ValueError as exc:
            raise ConfigError(str(exc), title="Unknown node") from exc
    if "@" in text:
        try:
            return parse_node_spec(text)
        except ValueError as exc:
            raise ConfigError(str(exc), title="Unknown node") from exc
    known = ", ".join(repr(name) for name in nodes) or "none configured"
    raise ConfigError(
        f"Node {text!r} is not configured (known: {known}); give a node name, AET@HOST:PORT "
        "or a DICOMweb URL (http://host:port/dicom-web).",
        title="Unknown node",
    )
