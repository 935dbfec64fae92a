"""User configuration: ``config.toml`` in the user config dir, parsed into frozen dataclasses.

Unknown keys and wrong types are errors that name the file and the key, so a typo never silently
falls back to a default.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuiviewer import locations
from tuiviewer.exceptions import ConfigError


@dataclass(frozen=True)
class UiConfig:
    theme: str = "textual-dark"
    """Textual theme name."""
    export_dir: str = ""
    """Default folder for de-identified exports ("" = ``~/tuiviewer-export``)."""


@dataclass(frozen=True)
class LoggingConfig:
    level: str = "INFO"
    """Log level of the log file (DEBUG, INFO, WARNING, ERROR)."""
    phi: bool = False
    """Allow patient names and IDs in logs (off by default: logs are not patient records)."""


@dataclass(frozen=True)
class StoreConfig:
    cap_gb: float = 20.0
    """Size cap of the local store of retrieved studies; least recently used go first."""

    @property
    def cap_bytes(self) -> int:
        return int(self.cap_gb * 1e9)


@dataclass(frozen=True)
class PacsConfig:
    default_node: str = ""
    """Node (from nodes.toml) queried at start when no path is given."""


@dataclass(frozen=True)
class Config:
    ui: UiConfig = field(default_factory=UiConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    pacs: PacsConfig = field(default_factory=PacsConfig)
    source: Path | None = None
    """The file this was read from, if any."""


_SECTIONS: dict[str, type[Any]] = {
    "ui": UiConfig,
    "logging": LoggingConfig,
    "store": StoreConfig,
    "pacs": PacsConfig,
}


def _section(path: Path, name: str, raw: object, cls: type[Any]) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"In {path}: [{name}] must be a table, not {type(raw).__name__}.")
    defaults = cls()
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if not hasattr(defaults, key):
            raise ConfigError(f"In {path}: unknown key {key!r} in [{name}].")
        expected = type(getattr(defaults, key))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected):
            raise ConfigError(
                f"In {path}: [{name}] {key} must be a {expected.__name__}, not {value!r}."
            )
        values[key] = value
    return cls(**values)


def load_config(path: Path | None = None) -> Config:
    """Read the configuration file (default: ``config.toml`` in the user config dir).

    A missing file gives the defaults. Raises :class:`ConfigError` for invalid TOML, unknown
    sections or keys, and values of the wrong type.
    """
    if path is None:
        path = locations.config_dir() / "config.toml"
    if not path.exists():
        return Config()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"Cannot read {path}: {exc}.") from exc
    sections: dict[str, Any] = {}
    for name, raw in data.items():
        cls = _SECTIONS.get(name)
        if cls is None:
            raise ConfigError(f"In {path}: unknown section [{name}].")
        sections[name] = _section(path, name, raw, cls)
    return Config(**sections, source=path)
