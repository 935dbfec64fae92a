"""Report templates and text snippets, from TOML files in the user config dir over shipped defaults.

``templates.toml`` holds ``[templates.NAME]`` tables (title, modalities, body parts, sections,
starting text); :func:`choose_template` picks the one that fits a study best. ``snippets.toml``
holds ``[snippets]`` keyword = text pairs; in the editor, ``;keyword`` followed by a space or
punctuation expands to the text (:func:`expand`, :func:`expand_before_cursor`). The user's files
add to the shipped ones and replace entries of the same name. Every mistake is a
:class:`~tuiviewer.exceptions.ConfigError` naming the file and the key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from tuiviewer import locations
from tuiviewer.config.toml import parse_toml, read_toml
from tuiviewer.exceptions import ConfigError
from tuiviewer.reports.model import (
    DIAGNOSTIC_IMAGING_REPORT,
    REPORT_TITLES,
    Code,
    Report,
    Section,
    SectionKind,
)

__all__ = [
    "SNIPPET_TRIGGER",
    "Template",
    "choose_template",
    "expand",
    "expand_before_cursor",
    "load_snippets",
    "load_templates",
]

TEMPLATES_FILE = "templates.toml"
SNIPPETS_FILE = "snippets.toml"
SNIPPET_TRIGGER = ";"
"""Typed before a keyword to mark it as a snippet: ``;normchest``."""

_KEYWORD = re.compile(r"[A-Za-z0-9_-]+")
# A trigger at the start of the text or after whitespace/opening punctuation, so "a;b" in prose
# or a URL is left alone.
_SNIPPET_RE = re.compile(r"(?:(?<=^)|(?<=[\s(\[{\"']));([A-Za-z0-9_-]+)(?![A-Za-z0-9_-])")
_TEMPLATE_KEYS = {"title", "modalities", "body_parts", "sections", "text"}


@dataclass(frozen=True)
class Template:
    """How a new report for a kind of study starts."""

    name: str
    title: Code
    """CID 7000 document title."""
    sections: tuple[SectionKind, ...]
    """Sections in the order the editor shows them."""
    text: tuple[tuple[SectionKind, str], ...] = ()
    """Starting text of some sections."""
    modalities: tuple[str, ...] = ()
    """Modalities it fits (upper case); empty fits any."""
    body_parts: tuple[str, ...] = ()
    """Body Part Examined values it fits (upper case); empty fits any."""

    def new_report(self) -> Report:
        """An empty preliminary report with this template's title, sections and text."""
        start = dict(self.text)
        return Report(
            sections=tuple(Section(kind, start.get(kind, "")) for kind in self.sections),
            title=self.title,
        )


def _defaults_text(name: str) -> tuple[str, str]:
    resource = resources.files("tuiviewer.reports").joinpath("defaults", name)
    return resource.read_text(encoding="utf-8"), f"<shipped {name}>"


def _strings(value: Any, where: str, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(
            f"File {where!r}: {key} must be a list of non-empty strings, not {value!r}."
        )
    return tuple(v.strip().upper() for v in value)


def _parse_template(name: str, table: Any, where: str) -> Template:
    key = f"templates.{name}"
    if not isinstance(table, dict):
        raise ConfigError(f"File {where!r}: {key} must be a table, not {table!r}.")
    unknown = sorted(set(table) - _TEMPLATE_KEYS)
    if unknown:
        raise ConfigError(
            f"File {where!r}: {key}.{unknown[0]} is not a template setting "
            f"(known: {', '.join(sorted(_TEMPLATE_KEYS))})."
        )
    title_value = table.get("title", DIAGNOSTIC_IMAGING_REPORT.value)
    if not isinstance(title_value, str) or title_value not in REPORT_TITLES:
        known = ", ".join(f"{c.value} ({c.meaning})" for c in REPORT_TITLES.values())
        raise ConfigError(
            f"File {where!r}: {key}.title {title_value!r} is not a known CID 7000 report title "
            f"code; known: {known}."
        )
    raw_sections = table.get("sections")
    if not isinstance(raw_sections, list) or not raw_sections:
        raise ConfigError(f"File {where!r}: {key}.sections must be a non-empty list of sections.")
    sections: list[SectionKind] = []
    for index, value in enumerate(raw_sections):
        kind = SectionKind.from_name(value) if isinstance(value, str) else None
        if kind is None or kind is SectionKind.ADDENDUM:
            known = ", ".join(k.value for k in SectionKind if k is not SectionKind.ADDENDUM)
            raise ConfigError(
                f"File {where!r}: {key}.sections[{index}] {value!r} is not a section "
                f"(known: {known})."
            )
        if kind in sections:
            raise ConfigError(f"File {where!r}: {key}.sections lists {value!r} twice.")
        sections.append(kind)
    text_table = table.get("text", {})
    if not isinstance(text_table, dict):
        raise ConfigError(f"File {where!r}: {key}.text must be a table of section = text.")
    text: list[tuple[SectionKind, str]] = []
    for section_name, value in text_table.items():
        kind = SectionKind.from_name(section_name)
        if kind is None or kind not in sections:
            raise ConfigError(
                f"File {where!r}: {key}.text.{section_name} does not name one of the template's "
                f"sections ({', '.join(k.value for k in sections)})."
            )
        if not isinstance(value, str):
            raise ConfigError(f"File {where!r}: {key}.text.{section_name} must be a string.")
        text.append((kind, value))
    return Template(
        name=name,
        title=REPORT_TITLES[title_value],
        sections=tuple(sections),
        text=tuple(text),
        modalities=_strings(table.get("modalities", []), where, f"{key}.modalities"),
        body_parts=_strings(table.get("body_parts", []), where, f"{key}.body_parts"),
    )


def _templates_from(data: dict[str, Any], where: str) -> dict[str, Template]:
    extra = sorted(set(data) - {"templates"})
    if extra:
        raise ConfigError(
            f"File {where!r}: top-level key {extra[0]!r} is not known; put each template in a "
            "[templates.NAME] table."
        )
    tables = data.get("templates", {})
    if not isinstance(tables, dict):
        raise ConfigError(f"File {where!r}: 'templates' must be a table of [templates.NAME].")
    return {name: _parse_template(name, table, where) for name, table in tables.items()}


def load_templates(path: Path | None = None) -> dict[str, Template]:
    """The shipped templates, overridden and extended by the user's ``templates.toml``.

    Args:
        path: the user's file (default: ``templates.toml`` in the config dir; absent is fine).

    Raises:
        ConfigError: invalid TOML or an invalid template; the message names file and key.
    """
    text, where = _defaults_text(TEMPLATES_FILE)
    templates = _templates_from(parse_toml(text, where), where)
    path = path if path is not None else locations.config_dir() / TEMPLATES_FILE
    user = read_toml(path)
    if user is not None:
        templates.update(_templates_from(user, str(path)))
    return templates


def choose_template(
    templates: Mapping[str, Template], modality: str = "", body_part: str = ""
) -> Template:
    """The template that fits a study best: one naming both its modality and body part, else
    its modality only, else one without constraints (``default`` first); file order breaks ties.

    Raises:
        ConfigError: no template fits (there is no unconstrained template).
    """
    modality, body_part = modality.strip().upper(), body_part.strip().upper()
    best: Template | None = None
    best_key: tuple[int, bool, int] | None = None
    for index, template in enumerate(templates.values()):
        if template.modalities and modality not in template.modalities:
            continue
        if template.body_parts and body_part not in template.body_parts:
            continue
        key = (
            2 * bool(template.modalities) + bool(template.body_parts),
            template.name == "default",
            -index,
        )
        if best_key is None or key > best_key:
            best, best_key = template, key
    if best is None:
        raise ConfigError(
            f"No report template fits modality {modality!r} and body part {body_part!r}, and "
            "there is no template without constraints; add a [templates.default]."
        )
    return best


def _snippets_from(data: dict[str, Any], where: str) -> dict[str, str]:
    extra = sorted(set(data) - {"snippets"})
    if extra:
        raise ConfigError(
            f"File {where!r}: top-level key {extra[0]!r} is not known; put snippets in [snippets]."
        )
    table = data.get("snippets", {})
    if not isinstance(table, dict):
        raise ConfigError(f"File {where!r}: 'snippets' must be a table of keyword = text.")
    snippets: dict[str, str] = {}
    for keyword, text in table.items():
        if not _KEYWORD.fullmatch(keyword):
            raise ConfigError(
                f"File {where!r}: snippets.{keyword} is not a valid keyword (letters, digits, "
                "'_' and '-' only)."
            )
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(f"File {where!r}: snippets.{keyword} must be a non-empty string.")
        snippets[keyword.lower()] = text
    return snippets


def load_snippets(path: Path | None = None) -> dict[str, str]:
    """The shipped snippets, overridden and extended by the user's ``snippets.toml``
    (keywords are case-insensitive).

    Raises:
        ConfigError: invalid TOML, keyword or text; the message names file and key.
    """
    text, where = _defaults_text(SNIPPETS_FILE)
    snippets = _snippets_from(parse_toml(text, where), where)
    path = path if path is not None else locations.config_dir() / SNIPPETS_FILE
    user = read_toml(path)
    if user is not None:
        snippets.update(_snippets_from(user, str(path)))
    return snippets


def expand(text: str, snippets: Mapping[str, str]) -> str:
    """Replace every ``;keyword`` (at the start of a word) whose keyword is known by its text.

    Unknown keywords stay as typed, so a stray semicolon never loses text.
    """

    def replace(match: re.Match[str]) -> str:
        return snippets.get(match.group(1).lower(), match.group(0))

    return _SNIPPET_RE.sub(replace, text)


def expand_before_cursor(
    text: str, cursor: int, snippets: Mapping[str, str]
) -> tuple[str, int] | None:
    """For the editor: if a known ``;keyword`` ends right before ``cursor``, return the text
    with it expanded and the new cursor position; None otherwise. The editor calls this when
    the user types a space or punctuation."""
    start = cursor
    while start > 0 and _KEYWORD.fullmatch(text[start - 1]):
        start -= 1
    if start == cursor or start == 0 or text[start - 1] != SNIPPET_TRIGGER:
        return None
    trigger = start - 1
    if trigger > 0 and not re.match(r"[\s(\[{\"']", text[trigger - 1]):
        return None
    replacement = snippets.get(text[start:cursor].lower())
    if replacement is None:
        return None
    return text[:trigger] + replacement + text[cursor:], trigger + len(replacement)
