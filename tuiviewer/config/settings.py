"""User configuration: ``config.toml`` in the user config dir, parsed into frozen dataclasses.

Unknown keys and wrong types are errors that name the file and the key, so a typo never silently
falls back to a default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuiviewer import locations
from tuiviewer.config.hanging import HangingRule, parse_hanging
from tuiviewer.config.limits import ReadLimits
from tuiviewer.config.listen import ListenConfig, parse_listen
from tuiviewer.config.toml import read_toml
from tuiviewer.exceptions import ConfigError

if TYPE_CHECKING:
    from tuiviewer.render.presets import Preset


@dataclass(frozen=True)
class UiConfig:
    theme: str = "textual-dark"
    """Textual theme name."""
    export_dir: str = ""
    """Default folder for de-identified exports ("" = ``~/tuiviewer-export``)."""
    reader_name: str = ""
    """The reader's name proposed when signing a report (DICOM PN: ``Family^Given``)."""
    organization: str = ""
    """The reader's organization (Verifying Organization of signed reports)."""
    low_bandwidth: bool = False
    """Viewer for thin links (as ``--low-bandwidth``): quantised images, only changed rows
    repainted, window/level changes debounced, cine capped, no animations."""


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
    associations: int = 2
    """A retrieve from a DIMSE PACS (C-GET) runs on up to this many associations at once."""

    def __post_init__(self) -> None:
        if not 1 <= self.associations <= 8:
            raise ConfigError(
                f"[pacs] associations must be 1 to 8 (associations at once per PACS), not "
                f"{self.associations!r}."
            )


@dataclass(frozen=True)
class GraphicsConfig:
    exact: bool = False
    """Send every image exact. By default Kitty, iTerm2, Sixel and half-block frames are sent
    with each pixel within one level at the protocol's depth (a third of the greys to code:
    about 30 % fewer bytes for Kitty, half for Sixel), the badge says "within ±1", and the 1:1
    "actual pixels" view is always exact."""


@dataclass(frozen=True)
class Config:
    ui: UiConfig = field(default_factory=UiConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    pacs: PacsConfig = field(default_factory=PacsConfig)
    limits: ReadLimits = field(default_factory=ReadLimits)
    """How much of a file or PACS answer is read (see :mod:`tuiviewer.config.limits`)."""
    presets: dict[str, tuple[Preset, ...]] = field(default_factory=dict)
    """User window presets by modality (upper case), in number-key order; see
    :func:`tuiviewer.render.presets.presets_for` for how they join the built-in ones."""
    listen: ListenConfig | None = None
    """The ``[listen]`` section: the storage SCP for pushed studies (None: not configured)."""
    hanging: tuple[HangingRule, ...] = ()
    """The ``[[hanging]]`` rules of the volume screen (see :mod:`tuiviewer.config.hanging`)."""
    source: Path | None = None
    """The file this was read from, if any."""
    graphics: GraphicsConfig = field(default_factory=GraphicsConfig)
    """The ``[graphics]`` section: how images are sent."""


_SECTIONS: dict[str, type[Any]] = {
    "ui": UiConfig,
    "logging": LoggingConfig,
    "store": StoreConfig,
    "pacs": PacsConfig,
    "limits": ReadLimits,
    "graphics": GraphicsConfig,
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
    try:
        return cls(**values)
    except ConfigError as exc:
        raise ConfigError(f"In {path}: {exc.message}") from exc


#: Modality is a CS value (PS3.5 6.2): at most 16 of A-Z, 0-9, space and underscore. Any such
#: value is accepted, not only the defined terms of PS3.3 C.7.3.1.1.1, which grow with each
#: edition and which some devices do not keep to.
_MODALITY = re.compile(r"[A-Z0-9_ ]{1,16}")
_PRESET_KEYS = frozenset({"center", "width", "function"})
#: Presets sit on the number keys 1-9.
MAX_PRESETS = 9


def _presets(path: Path, raw: object) -> dict[str, tuple[Preset, ...]]:
    """The ``[presets]`` section: one table per modality of ``name = [center, width]``."""
    # Imported here: the render package pulls numpy and pydicom (~170 ms), which the CLI's
    # network commands would otherwise pay for a section they do not use.
    from tuiviewer.render.presets import CT_PRESETS, parse_overrides

    if not isinstance(raw, dict):
        raise ConfigError(f"In {path}: [presets] must be a table, not {type(raw).__name__}.")
    seen: dict[str, str] = {}
    for modality, table in raw.items():
        if not _MODALITY.fullmatch(modality.upper()):
            raise ConfigError(
                f"In {path}: [presets.{modality}]: {modality!r} is not a DICOM Modality "
                "(up to 16 letters, digits, spaces or underscores, e.g. CT or MR)."
            )
        if modality.upper() in seen:
            raise ConfigError(
                f"In {path}: [presets.{modality}] and [presets.{seen[modality.upper()]}] "
                "name the same modality."
            )
        seen[modality.upper()] = modality
        for name, value in table.items() if isinstance(table, dict) else ():
            key = f"presets.{modality}.{name}"
            if not name.strip():
                raise ConfigError(f"In {path}: {key!r}: a preset needs a name.")
            # parse_overrides reads the keys it knows; a misspelt one must not pass unseen.
            unknown = sorted(set(value) - _PRESET_KEYS) if isinstance(value, dict) else []
            if unknown:
                raise ConfigError(
                    f"In {path}: {key} has unknown key {unknown[0]!r} "
                    "(expected center, width and optionally function)."
                )
    presets = parse_overrides(raw, where=f"In {path}")
    for modality, user in presets.items():
        names = [p.name for p in user]
        builtin = {p.name for p in CT_PRESETS} if modality == "CT" else set()
        total = len(builtin | set(names))
        if total > MAX_PRESETS:
            extra = f" with the {len(builtin)} built-in ones" if builtin else ""
            raise ConfigError(
                f"In {path}: [presets.{modality}] makes {total} presets{extra}; the number "
                f"keys reach {MAX_PRESETS}."
            )
    return presets


def load_config(path: Path | None = None) -> Config:
    """Read the configuration file (default: ``config.toml`` in the user config dir).

    A missing file gives the defaults. Raises :class:`ConfigError` for invalid TOML, unknown
    sections or keys, values of the wrong type, and ``[presets]`` that are not
    ``name = [center, width]`` with a width of at least 1.
    """
    if path is None:
        path = locations.config_dir() / "config.toml"
    data = read_toml(path, what="Configuration file")
    if data is None:
        return Config()
    sections: dict[str, Any] = {}
    for name, raw in data.items():
        if name == "presets":  # nested tables, unlike the flat sections below
            sections[name] = _presets(path, raw)
            continue
        if name == "listen":  # lists, [listen.tls] and [listen.reply]: see config/listen.py
            sections[name] = parse_listen(path, raw)
            continue
        if name == "hanging":  # an array of tables: see config/hanging.py
            sections[name] = parse_hanging(path, raw)
            continue
        cls = _SECTIONS.get(name)
        if cls is None:
            raise ConfigError(f"In {path}: unknown section [{name}].")
        sections[name] = _section(path, name, raw, cls)
    return Config(**sections, source=path)
