"""config.toml: the [presets] section (user window presets per modality) and its validation.

Expected windows are the numbers written in the TOML text of each test; the width rule is
PS3.3 C.11.2.1.2.1 (a LINEAR window is at least 1 wide).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tuiviewer.config.settings import load_config
from tuiviewer.exceptions import ConfigError
from tuiviewer.render.lut import VoiFunction
from tuiviewer.render.presets import CT_PRESETS, presets_for


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_presets_per_modality_are_read_in_file_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[ui]
theme = "textual-light"

[presets.CT]
"soft tissue" = [50, 350]     # center, width

[presets.MR]
"T2 brain" = [600, 1200]
"T1 sigmoid" = { center = 300, width = 500, function = "sigmoid" }
""",
    )
    config = load_config(path)
    assert config.ui.theme == "textual-light", "the other sections are still read"
    (soft,) = config.presets["CT"]
    assert (soft.name, soft.window.center, soft.window.width) == ("soft tissue", 50.0, 350.0)
    assert soft.source == "config"
    t2, t1 = config.presets["MR"]
    assert (t2.name, t2.window.center, t2.window.width) == ("T2 brain", 600.0, 1200.0)
    assert t1.window.function is VoiFunction.SIGMOID


def test_a_ct_preset_named_like_a_built_in_one_replaces_it_on_its_key(tmp_path: Path) -> None:
    path = write(tmp_path, '[presets.CT]\nlung = [-500, 1400]\n"soft tissue" = [50, 350]\n')
    offered = presets_for("CT", overrides=load_config(path).presets)
    lung_key = [p.name for p in CT_PRESETS].index("lung")
    assert offered[lung_key].window.center == -500 and offered[lung_key].window.width == 1400
    assert offered[-1].name == "soft tissue" and len(offered) == len(CT_PRESETS) + 1


def test_modality_keys_are_matched_in_upper_case(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[presets.mr]\n"T2" = [600, 1200]\n'))
    assert [p.name for p in config.presets["MR"]] == ["T2"]


def test_a_modality_outside_the_defined_terms_is_allowed(tmp_path: Path) -> None:
    # Any valid CS value (PS3.5 6.2) is accepted: devices write modalities that are not in
    # PS3.3 C.7.3.1.1.1, and the defined terms grow with each edition.
    config = load_config(write(tmp_path, '[presets.XYZ_1]\n"mine" = [10, 20]\n'))
    assert config.presets["XYZ_1"][0].window.width == 20


def test_no_file_and_no_section_give_no_user_presets(tmp_path: Path) -> None:
    assert load_config(tmp_path / "missing.toml").presets == {}
    assert load_config(write(tmp_path, '[ui]\ntheme = "nord"\n')).presets == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # width < 1 (PS3.3 C.11.2.1.2.1)
        ("[presets.CT]\nthin = [40, 0]\n", r"presets\.CT\.thin.*width 0 .*>= 1"),
        ("[presets.CT]\nthin = [40, 0.5]\n", r"presets\.CT\.thin.*width 0\.5 .*>= 1"),
        # wrong types
        (
            '[presets.CT]\nbrain = "40,80"\n',
            r"presets\.CT\.brain = '40,80' is not \[center, width\]",
        ),
        ("[presets.CT]\nbrain = [40]\n", r"presets\.CT\.brain = \[40\] is not \[center, width\]"),
        (
            "[presets.CT]\nbrain = [true, 80]\n",
            r"presets\.CT\.brain needs numeric center and width",
        ),
        ('[presets.CT]\nbrain = ["40", "80"]\n', r"presets\.CT\.brain needs numeric"),
        ("[presets.CT]\nbrain = [nan, 80]\n", r"presets\.CT\.brain needs numeric"),
        ("[presets]\nCT = [40, 80]\n", r"presets\.CT must be a table"),
        ("presets = 3\n", r"\[presets\] must be a table"),
        # misspelt keys, bad functions, names
        (
            "[presets.CT]\nb = { center = 40, widht = 80 }\n",
            r"presets\.CT\.b has unknown key 'widht'",
        ),
        ('[presets.CT]\nb = { center = 40, width = 80, function = "CUBIC" }\n', r"CUBIC"),
        ('[presets.CT]\n"  " = [40, 80]\n', r"a preset needs a name"),
        ('[presets."C.T"]\nb = [40, 80]\n', r"'C\.T' is not a DICOM Modality"),
        ("[presets.CT]\nb = [40, 80]\n[presets.ct]\nc = [1, 2]\n", r"name the same modality"),
    ],
)
def test_invalid_presets_are_errors_naming_the_file_and_the_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=expected) as caught:
        load_config(path)
    assert str(path) in caught.value.message


def test_more_presets_than_number_keys_is_an_error(tmp_path: Path) -> None:
    # Eight built-in CT presets + two new ones = ten, but the keys 1-9 reach nine.
    path = write(tmp_path, '[presets.CT]\n"a" = [1, 10]\n"b" = [2, 20]\n')
    with pytest.raises(ConfigError, match=r"makes 10 presets with the 8 built-in ones"):
        load_config(path)
    # Replacing a built-in one does not count twice.
    names = [p.name for p in CT_PRESETS]
    replaced = "\n".join(f'"{n}" = [1, 10]' for n in names)
    assert len(load_config(write(tmp_path, f"[presets.CT]\n{replaced}\n")).presets["CT"]) == 8


def test_the_other_sections_stay_strict(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'presets' in \[ui\]"):
        load_config(write(tmp_path, '[ui]\npresets = "x"\n'))
    with pytest.raises(ConfigError, match=r"\[store\] cap_gb must be a float"):
        load_config(write(tmp_path, '[store]\ncap_gb = "big"\n[presets.CT]\nb = [1, 2]\n'))
    with pytest.raises(ConfigError, match=r"unknown section \[preset\]"):
        load_config(write(tmp_path, "[preset.CT]\nb = [1, 2]\n"))


def test_limits_are_read_and_checked(tmp_path: Path) -> None:
    from tuiviewer.config.limits import ReadLimits

    path = tmp_path / "config.toml"
    path.write_text("[limits]\nmax_inflated_mb = 64\nmax_elements = 2_000_000\n", encoding="utf-8")
    config = load_config(path)
    assert config.limits == ReadLimits(max_inflated_mb=64, max_elements=2_000_000)
    path.write_text("[limits]\nmax_depth = 1000\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"In .*config.toml: \[limits\] max_depth 1000"):
        load_config(path)
    path.write_text("[limits]\nmax_inflate_mb = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown key 'max_inflate_mb'"):
        load_config(path)


def test_pacs_associations_default_two_and_are_checked(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "[pacs]\n")).pacs.associations == 2
    assert load_config(write(tmp_path, "[pacs]\nassociations = 1\n")).pacs.associations == 1
    with pytest.raises(ConfigError, match=r"associations must be 1 to 8.*not 0"):
        load_config(write(tmp_path, "[pacs]\nassociations = 0\n"))


def test_graphics_exact_is_read_and_a_wrong_type_is_refused(tmp_path: Path) -> None:
    assert load_config(tmp_path / "missing.toml").graphics.exact is False
    assert load_config(write(tmp_path, "[graphics]\nexact = true\n")).graphics.exact is True
    with pytest.raises(ConfigError, match="exact"):
        load_config(write(tmp_path, '[graphics]\nexact = "yes"\n'))
