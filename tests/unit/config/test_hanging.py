"""config.toml: the [[hanging]] rules of the volume screen, and how a bad one is refused (a
sentence naming the file and quoting the bad value, never a silent default)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuiviewer.config.hanging import HangingRule, PaneRule, text_matches
from tuiviewer.config.settings import load_config
from tuiviewer.exceptions import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_rules_are_read_in_file_order_with_their_panes(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[[hanging]]
name = "CT chest"
modality = "ct"
description = "*thorax*"
layout = "1x2"
panes = [
  { plane = "Axial", preset = "lung" },
  { plane = "coronal", preset = "mediastinum" },
]

[[hanging]]
name = "Follow-up"
layout = "1x2"
panes = [ { study = "current" }, { study = "prior", series = "venous" } ]
""",
    )
    rules = load_config(path).hanging
    assert [r.name for r in rules] == ["CT chest", "Follow-up"]
    chest = rules[0]
    assert chest.layout == "1x2" and chest.modality == "ct"
    assert chest.panes == (
        PaneRule(plane="axial", preset="lung"),
        PaneRule(plane="coronal", preset="mediastinum"),
    )
    assert rules[1].panes[1] == PaneRule(study="prior", series="venous")
    # No [[hanging]]: no rule, the default layout.
    assert load_config(write(tmp_path, "[ui]\ntheme = 'textual-dark'\n")).hanging == ()


def test_matching_is_case_insensitive_substring_or_glob() -> None:
    assert text_matches("thorax", "CT THORAX w/ contrast")
    assert text_matches("*THORAX*", "ct thorax")
    assert not text_matches("thorax*", "CT thorax")  # a glob is anchored
    assert text_matches("", "anything")
    rule = HangingRule("r", modality="CT", body_part="chest", description="thorax")
    assert rule.matches("ct", "CHEST", "CT Thorax", "")
    assert rule.matches("CT", "chest", "", "thorax 1 mm")  # the series description counts too
    assert not rule.matches("MR", "CHEST", "CT Thorax", "")
    assert not rule.matches("CT", "ABDOMEN", "CT Thorax", "")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('hanging = "CT"', "hanging must be an array of tables ([[hanging]]), not 'CT'."),
        ('[[hanging]]\nlayout = "3x3"', "layout '3x3' is not one of mpr, 1x1, 1x2, 2x2."),
        (
            '[[hanging]]\nname = "a"\npanes = [{ plane = "oblique" }]',
            "[[hanging]] 'a' pane 1 plane 'oblique' is not one of axial, coronal, sagittal.",
        ),
        (
            '[[hanging]]\nname = "a"\npanes = [{ study = "older" }]',
            "pane 1 study 'older' is not one of current, prior.",
        ),
        ('[[hanging]]\nmodalty = "CT"', "unknown key 'modalty'"),
        ('[[hanging]]\nname = "a"\npanes = [{ plnae = "axial" }]', "unknown key 'plnae'"),
        (
            '[[hanging]]\nname = "a"\nmodality = 3',
            "[[hanging]] 'a' modality must be a string, not 3.",
        ),
        (
            '[[hanging]]\nname = "a"\nlayout = "1x2"\npanes = [{}, {}, {}]',
            "gives 3 panes, but layout '1x2' has 2.",
        ),
        (
            '[[hanging]]\nname = "a"\npanes = [{ study = "prior" }]',
            "layout 'mpr' shows the series in view",
        ),
        (
            '[[hanging]]\nname = "a"\n[[hanging]]\nname = "A"',
            "two [[hanging]] rules are named 'A'.",
        ),
        (
            '[[hanging]]\nname = "a"\npanes = "axial"',
            "panes must be a list of tables, not 'axial'.",
        ),
    ],
)
def test_a_bad_rule_is_refused_with_a_sentence_quoting_it(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert message in caught.value.message
    assert str(path) in caught.value.message


def test_the_readme_example_is_a_valid_config(tmp_path: Path) -> None:
    readme = (Path(__file__).parents[3] / "README.md").read_text(encoding="utf-8")
    blocks = readme.split("```toml\n")[1:]
    block = next(b.split("```")[0] for b in blocks if "[[hanging]]" in b)
    rules = load_config(write(tmp_path, block)).hanging
    assert [r.name for r in rules] == ["CT chest", "Follow-up"]
    assert rules[0].matches("CT", "CHEST", "CT THORAX", "")
    assert rules[1].panes == (PaneRule(), PaneRule(study="prior", plane="axial"))
