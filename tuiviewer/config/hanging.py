"""Hanging rules: the ``[[hanging]]`` tables of ``config.toml`` that say how the volume screen
lays out a study when it opens ("CT chest: axial lung window | coronal soft tissue",
"current | prior").

A rule matches on the study in view (modality, body part, study or series description: each a
case-insensitive substring, or a glob when it holds ``*``, ``?`` or ``[``); the first rule that
matches gives the layout and, per pane, which series (of this study or of the patient's prior),
which plane and which window preset. Parsed here into frozen dataclasses, with full-sentence
errors quoting the bad value; applied by :mod:`tuiviewer.services.viewer.layouts`.

Example::

    [[hanging]]
    name = "CT chest"
    modality = "CT"
    description = "chest"
    layout = "1x2"
    panes = [
      { plane = "axial", preset = "lung" },
      { plane = "coronal", preset = "mediastinum" },
    ]
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuiviewer.exceptions import ConfigError

LAYOUTS = ("mpr", "1x1", "1x2", "2x2")
"""Layout names: the three-pane MPR, one pane, two side by side, four in a square."""

PANE_COUNT = {"mpr": 3, "1x1": 1, "1x2": 2, "2x2": 4}

PLANES = ("axial", "coronal", "sagittal")
STUDIES = ("current", "prior")

_RULE_KEYS = frozenset({"name", "modality", "body_part", "description", "layout", "panes"})
_PANE_KEYS = frozenset({"study", "series", "plane", "preset"})


def text_matches(pattern: str, value: str) -> bool:
    """``pattern`` ("" matches anything) against ``value``, ignoring case: a glob when it has
    ``*``, ``?`` or ``[``, else a substring."""
    if not pattern:
        return True
    pattern, value = pattern.casefold(), value.casefold()
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(value, pattern)
    return pattern in value


@dataclass(frozen=True)
class PaneRule:
    """What one pane of a hung layout shows."""

    study: str = "current"
    """``"current"`` (the study in view) or ``"prior"`` (the patient's newest other study in
    the local store)."""
    series: str = ""
    """Series description to look for in that study ("": the series in view, or for a prior
    the series most like it)."""
    plane: str = "axial"
    preset: str = ""
    """A window preset's name, e.g. ``"lung"`` ("": the series' own window)."""


@dataclass(frozen=True)
class HangingRule:
    """One ``[[hanging]]`` table."""

    name: str
    modality: str = ""
    body_part: str = ""
    description: str = ""
    """Matched against the study description and against the series description."""
    layout: str = "mpr"
    panes: tuple[PaneRule, ...] = ()

    def matches(
        self, modality: str, body_part: str, study_description: str, series_description: str
    ) -> bool:
        """Whether the study in view is one this rule hangs."""
        if self.modality and self.modality.casefold() != modality.casefold():
            return False
        if not text_matches(self.body_part, body_part):
            return False
        if self.description and not (
            text_matches(self.description, study_description)
            or text_matches(self.description, series_description)
        ):
            return False
        return True


def _text(path: Path, where: str, key: str, value: object) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"In {path}: {where} {key} must be a string, not {value!r}.")
    return value.strip()


def _choice(path: Path, where: str, key: str, value: object, allowed: tuple[str, ...]) -> str:
    text = _text(path, where, key, value).lower()
    if text not in allowed:
        raise ConfigError(f"In {path}: {where} {key} {value!r} is not one of {', '.join(allowed)}.")
    return text


def _pane(path: Path, where: str, raw: object) -> PaneRule:
    if not isinstance(raw, dict):
        raise ConfigError(
            f'In {path}: {where} must be a table such as {{ plane = "axial" }}, not {raw!r}.'
        )
    unknown = sorted(set(raw) - _PANE_KEYS)
    if unknown:
        raise ConfigError(
            f"In {path}: {where} has unknown key {unknown[0]!r} (expected study, series, plane "
            "and preset)."
        )
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "plane":
            values[key] = _choice(path, where, key, value, PLANES)
        elif key == "study":
            values[key] = _choice(path, where, key, value, STUDIES)
        else:
            values[key] = _text(path, where, key, value)
    return PaneRule(**values)


def _rule(path: Path, number: int, raw: object) -> HangingRule:
    where = f"[[hanging]] number {number}"
    if not isinstance(raw, dict):
        raise ConfigError(f"In {path}: {where} must be a table, not {raw!r}.")
    unknown = sorted(set(raw) - _RULE_KEYS)
    if unknown:
        raise ConfigError(
            f"In {path}: {where} has unknown key {unknown[0]!r} (expected name, modality, "
            "body_part, description, layout and panes)."
        )
    name = _text(path, where, "name", raw.get("name", f"rule {number}")) or f"rule {number}"
    where = f"[[hanging]] {name!r}"
    layout = _choice(path, where, "layout", raw.get("layout", "mpr"), LAYOUTS)
    panes_raw = raw.get("panes", [])
    if not isinstance(panes_raw, list):
        raise ConfigError(f"In {path}: {where} panes must be a list of tables, not {panes_raw!r}.")
    panes = tuple(_pane(path, f"{where} pane {n}", p) for n, p in enumerate(panes_raw, 1))
    count = PANE_COUNT[layout]
    if len(panes) > count:
        raise ConfigError(
            f"In {path}: {where} gives {len(panes)} panes, but layout {layout!r} has {count}."
        )
    if layout == "mpr" and any(p.study != "current" or p.series for p in panes):
        raise ConfigError(
            f"In {path}: {where}: layout 'mpr' shows the series in view in its three planes; "
            "give another study or series with layout '1x2' or '2x2'."
        )
    return HangingRule(
        name=name,
        modality=_text(path, where, "modality", raw.get("modality", "")),
        body_part=_text(path, where, "body_part", raw.get("body_part", "")),
        description=_text(path, where, "description", raw.get("description", "")),
        layout=layout,
        panes=panes,
    )


def parse_hanging(path: Path, raw: object) -> tuple[HangingRule, ...]:
    """The ``[[hanging]]`` array of tables, in order (the first rule that matches wins).

    Raises:
        ConfigError: not an array of tables, an unknown key, a layout, plane or study that is
            not one of the known ones, more panes than the layout has.
    """
    if not isinstance(raw, list):
        raise ConfigError(
            f"In {path}: hanging must be an array of tables ([[hanging]]), not {raw!r}."
        )
    rules = tuple(_rule(path, n, r) for n, r in enumerate(raw, 1))
    names = [r.name.casefold() for r in rules]
    for n, name in enumerate(names):
        if name in names[:n]:
            raise ConfigError(f"In {path}: two [[hanging]] rules are named {rules[n].name!r}.")
    return rules
