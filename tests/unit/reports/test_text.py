"""Reports as text: Markdown in (headings, synonyms, clear errors), plain text and Markdown out,
the Markdown → SR → text round trip, any SR as readable indented text, OSC 52 clipboard."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset

from tests.conftest import testdata as sample_file
from tuiviewer.reports.model import Report, ReportError, ReportStatus, SectionKind, sign
from tuiviewer.reports.sr.build import write_sr
from tuiviewer.reports.sr.context import study_context_from_paths
from tuiviewer.reports.sr.read import read_sr
from tuiviewer.reports.text import from_markdown, osc52, sr_to_text, to_markdown, to_text

MARKDOWN = """\
# CT Chest Report

## History
Fièvre et toux depuis 3 semaines.

## Findings
Лёгкие без очаговых изменений.
Kein Pleuraerguss, größenkonstant.

### Incidental
Small hiatal hernia.

## Impressions:
No acute abnormality.
"""


def test_markdown_headings_become_sections_with_synonyms() -> None:
    report = from_markdown(MARKDOWN)
    assert report.title.value == "24627-2"  # LOINC "CT Chest Report" (CID 7000)
    assert [s.kind for s in report.sections] == [
        SectionKind.HISTORY,
        SectionKind.FINDINGS,
        SectionKind.IMPRESSION,
    ]
    assert report.text_of(SectionKind.FINDINGS) == (
        "Лёгкие без очаговых изменений.\nKein Pleuraerguss, größenkonstant.\n\n"
        "### Incidental\nSmall hiatal hernia."
    )
    assert report.status is ReportStatus.PRELIMINARY


@pytest.mark.parametrize(
    ("heading", "kind"),
    [
        ("Clinical information", SectionKind.HISTORY),
        ("clinical HISTORY", SectionKind.HISTORY),
        ("Technique", SectionKind.TECHNIQUE),
        ("Comparison", SectionKind.COMPARISON),
        ("Previous findings", SectionKind.COMPARISON),
        ("Impression", SectionKind.IMPRESSION),
        ("Conclusion", SectionKind.IMPRESSION),
        ("Recommendations", SectionKind.RECOMMENDATION),
        ("Addendum", SectionKind.ADDENDUM),
    ],
)
def test_heading_synonyms(heading: str, kind: SectionKind) -> None:
    assert [s.kind for s in from_markdown(f"## {heading}\ntext\n").sections] == [kind]


def test_unknown_heading_names_it_and_its_line() -> None:
    with pytest.raises(ReportError, match=r"Line 4: unknown section heading 'Opinion'"):
        from_markdown("## Findings\nok\n\n## Opinion\nhmm\n")


def test_empty_report_is_an_error() -> None:
    with pytest.raises(ReportError, match="empty"):
        from_markdown("# Diagnostic Imaging Report\n\n## Findings\n\n## Impression\n   \n")


def test_text_before_the_first_heading_is_an_error() -> None:
    with pytest.raises(ReportError, match="Line 1: text 'Patient is fine'"):
        from_markdown("Patient is fine\n## Findings\nok\n")


def test_repeated_section_is_an_error() -> None:
    with pytest.raises(ReportError, match="Line 5: section 'Findings' appears again.*line 1"):
        from_markdown("## Findings\na\n## Impression\nb\n## Findings\nc\n")


def test_unknown_title_is_an_error() -> None:
    with pytest.raises(ReportError, match="Line 1: title 'My Report' is not a known"):
        from_markdown("# My Report\n## Findings\nok\n")


def test_headings_inside_code_fences_are_text() -> None:
    report = from_markdown("## Findings\n```\n## not a heading\n```\n")
    assert "## not a heading" in report.text_of(SectionKind.FINDINGS)


def test_to_text_and_markdown_show_status_and_sections() -> None:
    report = sign(from_markdown(MARKDOWN), "Curie^Marie")
    text = to_text(report)
    assert text.startswith("CT CHEST REPORT\n\nFinal report, signed by Curie^Marie")
    assert "\n\nFINDINGS\nЛёгкие без очаговых изменений." in text
    assert "\n\nIMPRESSION\nNo acute abnormality.\n" in text
    assert from_markdown(to_markdown(report)).written_sections() == report.written_sections()
    assert "Preliminary report" in to_text(from_markdown(MARKDOWN))


def test_markdown_to_sr_to_text_round_trip(tmp_path: Path) -> None:
    folder = tmp_path / "study"
    folder.mkdir()
    shutil.copy(sample_file("CT_small.dcm"), folder / "ct.dcm")
    report = from_markdown(MARKDOWN)
    path = write_sr(report, study_context_from_paths(folder), tmp_path / "r.dcm")
    back = read_sr(path)
    assert to_text(back) == to_text(report)
    assert to_markdown(back) == to_markdown(report)
    assert from_markdown(to_markdown(back)).written_sections() == report.written_sections()


def test_sr_to_text_of_pydicom_test_sr_shows_its_content() -> None:
    ds = pydicom.dcmread(sample_file("test-SR.dcm"))
    text = sr_to_text(ds)
    # Expected values read from the file by pydicom, not from our output.
    assert str(ds.PatientName) in text
    assert ds.ConceptNameCodeSequence[0].CodeMeaning in text
    texts = []

    def walk(items: pydicom.Sequence) -> None:
        for item in items:
            if item.get("ValueType") == "TEXT":
                texts.append(str(item.TextValue))
            walk(item.get("ContentSequence", []))

    walk(ds.ContentSequence)
    assert texts
    for value in texts:
        first_line = value.replace("\r\n", "\n").replace("\r", "\n").split("\n")[0]
        assert first_line in text
    # Nesting shows as indentation.
    assert "\n    " in text


def test_sr_to_text_of_reportsi_shows_its_text_and_flags() -> None:
    ds = pydicom.dcmread(sample_file("reportsi.dcm"))
    text = sr_to_text(ds)
    assert ds.CompletionFlag in text and ds.VerificationFlag in text
    section = ds.ContentSequence[-1]
    assert f"  {section.ConceptNameCodeSequence[0].CodeMeaning}\n" in text
    inner = section.ContentSequence[0]
    label = inner.ConceptNameCodeSequence[0].CodeMeaning
    assert f"    {label}: {inner.TextValue}" in text


def test_sr_to_text_refuses_an_image() -> None:
    ds = pydicom.dcmread(sample_file("CT_small.dcm"), stop_before_pixels=True)
    with pytest.raises(ReportError, match="not a structured report"):
        sr_to_text(ds)


def test_osc52_sequence_carries_the_text_base64() -> None:
    text = "Impression: normal — Лёгкие\n"
    seq = osc52(text)
    assert seq.startswith("\x1b]52;c;") and seq.endswith("\x07")
    assert base64.b64decode(seq[7:-1]).decode("utf-8") == text


def test_osc52_tmux_passthrough_doubles_escapes() -> None:
    seq = osc52("x", tmux=True)
    assert seq.startswith("\x1bPtmux;") and seq.endswith("\x1b\\")
    inner = seq[len("\x1bPtmux;") : -2]
    assert inner == osc52("x").replace("\x1b", "\x1b\x1b")


def test_empty_sections_are_not_exported() -> None:
    report = Report(sections=()).with_text(SectionKind.TECHNIQUE, "  ")
    report = report.with_text(SectionKind.FINDINGS, "Fine.")
    assert "TECHNIQUE" not in to_text(report)
    assert "## Technique" not in to_markdown(report)


def test_sr_to_text_writes_dates_and_times_as_dates(tmp_path: Path) -> None:
    """A reader sees 2026-12-01 08:43, not 20261201084306.231979+0000."""
    ds = pydicom.dcmread(sample_file("reportsi.dcm"))
    ds.StudyDate = "20261130"
    ds.ContentDate, ds.ContentTime = "20261201", "084306.231979"
    observer = Dataset()
    observer.VerifyingObserverName = "Curie^Marie"
    observer.VerifyingOrganization = "Institut du Radium"
    observer.VerificationDateTime = "20261201084306.231979+0000"
    ds.VerifyingObserverSequence = [observer]
    text = sr_to_text(ds)
    assert "2026-11-30" in text
    assert "Content Date/Time   : 2026-12-01 08:43" in text
    assert "Curie^Marie, Institut du Radium, 2026-12-01 08:43\n" in text
    assert "20261201" not in text and "084306" not in text
