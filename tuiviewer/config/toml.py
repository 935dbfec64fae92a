"""The one strict TOML reader of every configuration file (``config.toml``, ``nodes.toml``,
``templates.toml``, ``snippets.toml``): a file that cannot be read or parsed is a
:class:`~tuiviewer.exceptions.ConfigError` naming it, never a silent fallback to defaults."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from tuiviewer.exceptions import ConfigError


def parse_toml(text: str, where: str, *, what: str = "File") -> dict[str, Any]:
    """The tables of TOML ``text`` read from ``where`` (a path, or ``<shipped NAME>``).

    Raises:
        ConfigError: ``{what} {where!r} is not valid TOML: {reason}.``
    """
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what} {where!r} is not valid TOML: {exc}.") from exc


def read_toml(path: Path, *, what: str = "File") -> dict[str, Any] | None:
    """The tables of the TOML file ``path``; None when there is no such file.

    Args:
        path: the file.
        what: how messages name it (``"Node file"``, ``"Configuration file"``).

    Raises:
        ConfigError: the file cannot be read, is not UTF-8, or is not valid TOML; the message
            names the file.
    """
    if not path.exists():
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what} {str(path)!r} cannot be read: {exc}.") from exc
    return parse_toml(text, str(path), what=what)
