"""The ``[listen]`` section of config.toml: where our storage SCP for pushed studies listens,
who may send it studies, and to which node the reports of each sender's studies go back.

```toml
[listen]
ae_title = "READER"
port = 11112
allow = ["CLINIC", "CT1"]          # calling AE titles; "*": any, from the hosts below
allow_hosts = ["10.1.0.0/16"]      # optional: the networks senders may connect from
min_free_mb = 500

[listen.reply]                     # optional: sender AE title -> node of nodes.toml
CLINIC = "clinic-pacs"
```

Parsed as strictly as the rest of the configuration (the message names the file and key); the
listener itself is :mod:`tuiviewer.net.listen`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuiviewer.config.nodes import (
    DEFAULT_CALLING_AET,
    Node,
    TlsSettings,
    _parse_tls,
    validate_ae_title,
)
from tuiviewer.exceptions import ConfigError

#: A-ASSOCIATE-RJ (PS3.8 Table 9-21): rejected-permanent by the service user.
RJ_PERMANENT, RJ_SERVICE_USER = 0x01, 0x01
RJ_NO_REASON, RJ_CALLING_AET = 0x01, 0x03


@dataclass(frozen=True)
class ListenConfig:
    """The ``[listen]`` section of config.toml: who may send us studies, and where we listen."""

    ae_title: str = DEFAULT_CALLING_AET
    """Our AE title, the one senders call."""
    port: int = 11112
    """TCP port of the storage SCP."""
    bind: str = ""
    """Address to listen on; "" for every interface."""
    allow: tuple[str, ...] = ()
    """Calling AE titles accepted (``"*"``: any AE title, from an allowed host)."""
    allow_hosts: tuple[str, ...] = ()
    """IP addresses or networks (``10.1.0.0/16``) senders may connect from; any when empty."""
    min_free_mb: float = 500.0
    """Free space the store's disk keeps; an instance that would go below is refused (0xA700)."""
    tls: TlsSettings | None = None
    """DICOM TLS for the listener (``cert_file``/``key_file`` required; ``ca_file`` to demand
    and check senders' certificates); plain TCP when None."""
    reply: Mapping[str, str] = field(default_factory=dict)
    """Calling AE title -> node name (nodes.toml) that gets the reports of that sender's
    studies; without an entry, the node whose AE title is the sender's."""

    def admits(self, calling_aet: str, address: str) -> tuple[bool, int]:
        """Whether a sender gets in, and else the A-ASSOCIATE-RJ diagnostic to refuse it with."""
        if not self.allow and not self.allow_hosts:
            return False, RJ_CALLING_AET
        if self.allow and "*" not in self.allow and calling_aet.strip() not in self.allow:
            return False, RJ_CALLING_AET
        if self.allow_hosts and not _host_allowed(address, self.allow_hosts):
            return False, RJ_NO_REASON
        return True, 0

    def reply_node(self, calling_aet: str, nodes: Mapping[str, Node]) -> Node | None:
        """The node a sender's reports go back to: configured, else the node with its AE title."""
        name = self.reply.get(calling_aet.strip())
        if name is not None:
            return nodes.get(name)
        matches = [n for n in nodes.values() if n.kind == "dimse" and n.ae_title == calling_aet]
        return matches[0] if len(matches) == 1 else None


def _host_allowed(address: str, networks: Iterable[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for text in networks:
        network = ipaddress.ip_network(text, strict=False)
        if ip.version == network.version and ip in network:
            return True
    return False


_LISTEN_KEYS = {"ae_title", "port", "bind", "allow", "allow_hosts", "min_free_mb", "tls", "reply"}


def parse_listen(path: Path, raw: object) -> ListenConfig:
    """The ``[listen]`` section, checked strictly (the message names the file and key).

    Raises:
        ConfigError: unknown key, wrong type, invalid AE title, port, network or TLS table.
    """
    where = f"In {path}: [listen]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table, not {type(raw).__name__}.")
    unknown = sorted(set(raw) - _LISTEN_KEYS)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_LISTEN_KEYS))})."
        )
    try:
        return _listen_from(raw, path.parent, "listen")
    except ValueError as exc:
        raise ConfigError(f"In {path}: {exc}") from exc


def _strings(value: object, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where} must be a list of strings, not {value!r}.")
    return tuple(v.strip() for v in value)


def _listen_from(raw: Mapping[str, Any], base: Path, where: str) -> ListenConfig:
    defaults = ListenConfig()
    ae_title = validate_ae_title(raw.get("ae_title", defaults.ae_title), f"{where}.ae_title")
    port = raw.get("port", defaults.port)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError(f"{where}.port must be a port number from 1 to 65535, not {port!r}.")
    bind = raw.get("bind", "")
    if not isinstance(bind, str):
        raise ValueError(f"{where}.bind must be an address, not {bind!r}.")
    allow = _strings(raw.get("allow", []), f"{where}.allow")
    for aet in allow:
        if aet != "*":
            validate_ae_title(aet, f"{where}.allow entry")
    hosts = _strings(raw.get("allow_hosts", []), f"{where}.allow_hosts")
    for host in hosts:
        try:
            ipaddress.ip_network(host, strict=False)
        except ValueError:
            raise ValueError(
                f"{where}.allow_hosts entry {host!r} is not an IP address or network "
                "(for example 10.1.0.0/16)."
            ) from None
    free = raw.get("min_free_mb", defaults.min_free_mb)
    if isinstance(free, bool) or not isinstance(free, (int, float)) or free < 0:
        raise ValueError(f"{where}.min_free_mb must be a number of megabytes, not {free!r}.")
    tls = _parse_tls(raw["tls"], f"{where}.tls", base) if "tls" in raw else None
    if tls is not None and tls.cert_file is None:
        raise ValueError(f"{where}.tls needs cert_file (and key_file): a TLS server needs one.")
    reply = raw.get("reply", {})
    if not isinstance(reply, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in reply.items()
    ):
        raise ValueError(f"{where}.reply must be a table of AE title = node name, not {reply!r}.")
    return ListenConfig(
        ae_title=ae_title,
        port=port,
        bind=bind.strip(),
        allow=allow,
        allow_hosts=hosts,
        min_free_mb=float(free),
        tls=tls,
        reply={k.strip(): v for k, v in reply.items()},
    )


def listen_config(
    base: ListenConfig,
    *,
    ae_title: str | None = None,
    port: int | None = None,
    allow: str | None = None,
) -> ListenConfig:
    """``base`` with the command line's ``--aet``, ``--port`` and ``--allow AET,...`` applied.

    Raises:
        ValueError: an invalid AE title or port.
    """
    raw: dict[str, Any] = {
        "ae_title": ae_title if ae_title is not None else base.ae_title,
        "port": port if port is not None else base.port,
        "bind": base.bind,
        "allow": list(_strings(allow, "--allow")) if allow is not None else list(base.allow),
        "allow_hosts": list(base.allow_hosts),
        "min_free_mb": base.min_free_mb,
        "reply": dict(base.reply),
    }
    config = _listen_from(raw, Path("."), "the listener")
    return ListenConfig(**{**config.__dict__, "tls": base.tls})
