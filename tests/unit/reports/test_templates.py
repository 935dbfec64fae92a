"""Templates and snippets: shipped defaults, the user's TOML over them, choice by modality and
body part, ``;keyword`` expansion, and errors that name the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuiviewer.exceptions import ConfigError
from tuiviewer.reports.model import SectionKind
from tuiviewer.reports.templates import (
    choose_template,
    expand,
    expand_before_cursor,
    load_snippets,
    load_templates,
)


def test_shipped_templates_choose_by_modality_and_body_part(tmp_path: Path) -> None:
    templates = load_templates(tmp_path / "absent.toml")
    assert choose_template(templates, "CT", "chest").title.meaning == "CT Chest Report"
    assert choose_template(templates, "CT", "KNEE").title.meaning == "CT Report"
    assert choose_template(templates, "XA", "").name == "default"
    report = choose_template(templates, "CT", "CHEST").new_report()
    assert [s.kind for s in report.sections][:4] == [
        SectionKind.HISTORY,
        SectionKind.TECHNIQUE,
        SectionKind.COMPARISON,
        SectionKind.FINDINGS,
    ]
    assert report.text_of(SectionKind.TECHNIQUE)  # the template's starting text


def test_user_templates_override_and_add(private_user_dirs: Path) -> None:
    config = private_user_dirs / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "templates.toml").write_text(
        """
[templates.default]
title = "11528-7"
sections = ["findings", "impression"]

[templates.mr-knee]
title = "25056-3"
modalities = ["MR"]
body_parts = ["KNEE"]
sections = ["findings", "impression"]
[templates.mr-knee.text]
findings = "Menisci intact."
""",
        encoding="utf-8",
    )
    templates = load_templates()
    default = choose_template(templates, "OT", "")
    assert default.title.meaning == "Radiology Report"
    assert default.sections == (SectionKind.FINDINGS, SectionKind.IMPRESSION)
    knee = choose_template(templates, "mr", "knee")
    assert knee.name == "mr-knee"
    assert knee.new_report().text_of(SectionKind.FINDINGS) == "Menisci intact."
    assert choose_template(templates, "MR", "HEAD").name == "mr-head"  # shipped still there


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            '[templates.x]\nsections = ["findings", "opinion"]',
            r"templates\.x\.sections\[1\] 'opinion'",
        ),
        (
            '[templates.x]\ntitle = "99999-9"\nsections = ["findings"]',
            r"templates\.x\.title '99999-9'",
        ),
        ('[templates.x]\nsections = ["findings"]\ncolour = 1', r"templates\.x\.colour is not"),
        (
            '[templates.x]\nsections = ["findings"]\n[templates.x.text]\nimpression = "a"',
            r"text\.impression",
        ),
        ("[templates.x]\nsections = []", r"templates\.x\.sections must be a non-empty"),
        ("[other]\n", r"top-level key 'other'"),
        ("[templates.x\n", r"not valid TOML"),
    ],
)
def test_invalid_templates_name_file_and_key(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "templates.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as info:
        load_templates(path)
    assert str(path) in info.value.message


def test_snippets_expand_known_keywords_only(tmp_path: Path) -> None:
    path = tmp_path / "snippets.toml"
    path.write_text('[snippets]\nNormKnee = "Menisci and ligaments intact."\n', encoding="utf-8")
    snippets = load_snippets(path)
    assert "normchest" in snippets  # shipped
    text = "Knee: ;normknee Chest: ;NORMCHEST\nOther ;nothing and a;normknee."
    out = expand(text, snippets)
    assert out.startswith("Knee: Menisci and ligaments intact. Chest: " + snippets["normchest"])
    assert out.endswith("Other ;nothing and a;normknee.")


def test_expand_before_cursor_for_the_editor(tmp_path: Path) -> None:
    snippets = {"fu": "Follow-up in 6 months."}
    text = "Plan: ;fu"
    assert expand_before_cursor(text, len(text), snippets) == (
        "Plan: Follow-up in 6 months.",
        len("Plan: Follow-up in 6 months."),
    )
    assert expand_before_cursor("Plan: ;f", 8, snippets) is None
    assert expand_before_cursor("x;fu", 4, snippets) is None


def test_invalid_snippet_keyword_names_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "snippets.toml"
    path.write_text('[snippets]\n"two words" = "x"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"snippets\.two words is not a valid keyword"):
        load_snippets(path)
