"""``tuiviewer report new`` and ``report show``: the SR written from Markdown (valid per dciodvfy,
read by dsrdump), the title from the template, clear one-line errors and exit codes."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pydicom
import pytest

from tests.conftest import testdata as sample_file
from tests.unit.reports.test_sr import assert_valid_sr
from tuiviewer.commands.report import run_report_new, run_report_show


@pytest.fixture
def study(tmp_path: Path) -> Path:
    folder = tmp_path / "study"
    folder.mkdir()
    shutil.copy(sample_file("CT_small.dcm"), folder / "ct.dcm")
    return folder


def _md(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "report.md"
    path.write_text(text, encoding="utf-8")
    return path


def _run_new(study: Path, md: Path, out: Path, **kwargs: object) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    options = {"final": False, "reader": None, "send": None, **kwargs}
    code = run_report_new(study, md, out, stdout=stdout, stderr=stderr, **options)  # type: ignore[arg-type]
    return code, stdout.getvalue(), stderr.getvalue()


def test_new_final_report_from_markdown(tmp_path: Path, study: Path) -> None:
    md = _md(tmp_path, "## Findings\nNo nodule. Über alles gut.\n\n## Impression\nNormal.\n")
    out = tmp_path / "out.dcm"
    code, stdout, stderr = _run_new(
        study, md, out, final=True, reader="Curie^Marie", organization="Institut"
    )
    assert (code, stderr) == (0, "")
    assert repr(str(out)) in stdout and "final" in stdout
    dump = assert_valid_sr(out)
    assert "Über alles gut." in dump
    ds = pydicom.dcmread(out)
    image = pydicom.dcmread(study / "ct.dcm", stop_before_pixels=True)
    assert ds.StudyInstanceUID == image.StudyInstanceUID
    assert ds.VerifyingObserverSequence[0].VerifyingObserverName == "Curie^Marie"
    # CT_small has no Body Part Examined: the modality template's title (LOINC CT Report).
    assert ds.ConceptNameCodeSequence[0].CodeValue == "25045-6"


def test_markdown_title_wins_over_the_template(tmp_path: Path, study: Path) -> None:
    md = _md(tmp_path, "# Radiology Report\n## Findings\nok\n")
    out = tmp_path / "out.dcm"
    assert _run_new(study, md, out)[0] == 0
    assert_valid_sr(out)
    assert pydicom.dcmread(out).ConceptNameCodeSequence[0].CodeValue == "11528-7"


def test_final_without_reader_is_a_usage_error(tmp_path: Path, study: Path) -> None:
    code, _, stderr = _run_new(
        study, _md(tmp_path, "## Findings\nok\n"), tmp_path / "o.dcm", final=True
    )
    assert code == 2
    assert (
        stderr.strip()
        == "tuiviewer report new: --final needs --reader NAME (the radiologist who signs)."
    )
    assert not (tmp_path / "o.dcm").exists()


def test_unknown_heading_is_one_clear_line(tmp_path: Path, study: Path) -> None:
    md = _md(tmp_path, "## Findings\nok\n## Opinion\nx\n")
    code, _, stderr = _run_new(study, md, tmp_path / "o.dcm")
    assert code == 1
    assert stderr.count("\n") == 1
    assert "Line 3: unknown section heading 'Opinion'" in stderr


def test_empty_markdown_is_refused(tmp_path: Path, study: Path) -> None:
    code, _, stderr = _run_new(study, _md(tmp_path, "## Findings\n\n"), tmp_path / "o.dcm")
    assert code == 1 and "empty" in stderr


def test_missing_study_and_markdown(tmp_path: Path, study: Path) -> None:
    md = _md(tmp_path, "## Findings\nok\n")
    code, _, stderr = _run_new(tmp_path / "nope", md, tmp_path / "o.dcm")
    assert code == 1 and "does not exist" in stderr
    code, _, stderr = _run_new(study, tmp_path / "missing.md", tmp_path / "o.dcm")
    assert code == 1 and "missing.md" in stderr


def test_unknown_send_node_is_a_usage_error(tmp_path: Path, study: Path) -> None:
    md = _md(tmp_path, "## Findings\nok\n")
    code, _, stderr = _run_new(study, md, tmp_path / "o.dcm", send="nowhere", nodes={})
    assert code == 2 and "'nowhere' is not configured" in stderr


def test_show_prints_an_sr_and_refuses_an_image(tmp_path: Path, study: Path) -> None:
    out = tmp_path / "out.dcm"
    _run_new(study, _md(tmp_path, "## Impression\nЛёгкие чистые.\n"), out)
    stdout, stderr = io.StringIO(), io.StringIO()
    assert run_report_show(out, stdout=stdout, stderr=stderr) == 0
    assert "  Impressions\n    Impression: Лёгкие чистые." in stdout.getvalue()
    stdout, stderr = io.StringIO(), io.StringIO()
    assert run_report_show(study / "ct.dcm", stdout=stdout, stderr=stderr) == 1
    assert "not a structured report" in stderr.getvalue()
    assert run_report_show(tmp_path / "none.dcm", stdout=stdout, stderr=stderr) == 1


@pytest.fixture
def nameless_study(tmp_path: Path) -> Path:
    """A study whose images name no institution (so none can stand in for the reader's)."""
    folder = tmp_path / "nameless"
    folder.mkdir()
    ds = pydicom.dcmread(sample_file("CT_small.dcm"))
    del ds.InstitutionName
    ds.save_as(folder / "ct.dcm")
    return folder


def test_final_without_any_organization_asks_for_one_and_writes_nothing(
    tmp_path: Path, nameless_study: Path
) -> None:
    """Verifying Organization is Type 1: never "Unknown organization", never empty."""
    out = tmp_path / "o.dcm"
    md = _md(tmp_path, "## Findings\nok\n")
    code, _, stderr = _run_new(nameless_study, md, out, final=True, reader="Curie^Marie")
    assert code == 2
    assert "--organization NAME" in stderr and "[ui] organization" in stderr
    assert not out.exists()
    code, _, stderr = _run_new(
        nameless_study, md, out, final=True, reader="Curie^Marie", organization="Institut"
    )
    assert (code, stderr) == (0, "")
    assert_valid_sr(out)
    assert pydicom.dcmread(out).VerifyingObserverSequence[0].VerifyingOrganization == "Institut"


def test_the_configured_organization_signs_when_none_is_given(
    tmp_path: Path, nameless_study: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tuiviewer.cli import main

    config = tmp_path / "config.toml"
    config.write_text('[ui]\norganization = "Institut du Radium"\n', encoding="utf-8")
    out = tmp_path / "o.dcm"
    md = _md(tmp_path, "## Findings\nok\n")
    argv = ["--config", str(config), "report", "new", str(nameless_study), "--from", str(md)]
    code = main([*argv, "-o", str(out), "--final", "--reader", "Curie^Marie"])
    assert code == 0, capsys.readouterr().err
    assert_valid_sr(out)
    organization = pydicom.dcmread(out).VerifyingObserverSequence[0].VerifyingOrganization
    assert organization == "Institut du Radium"


def test_the_study_institution_signs_when_nothing_else_does(tmp_path: Path, study: Path) -> None:
    out = tmp_path / "o.dcm"
    code, _, stderr = _run_new(
        study, _md(tmp_path, "## Findings\nok\n"), out, final=True, reader="Curie^Marie"
    )
    assert (code, stderr) == (0, "")
    assert_valid_sr(out)
    institution = str(pydicom.dcmread(study / "ct.dcm").InstitutionName)
    assert pydicom.dcmread(out).VerifyingObserverSequence[0].VerifyingOrganization == institution
