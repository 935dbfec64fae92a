"""The report model: section codes from PS3.16, heading names, JSON round trip, signing."""

from __future__ import annotations

import datetime as dt

import pytest

from tuiviewer.reports.model import (
    Code,
    DocumentRef,
    KeyImage,
    Report,
    ReportError,
    ReportStatus,
    Section,
    SectionKind,
    sign,
)


def test_section_codes_are_the_cid_7001_loinc_headings() -> None:
    # The codes the issue names, from PS3.16 CID 7001.
    assert {k: k.heading.value for k in SectionKind} == {
        SectionKind.HISTORY: "11329-0",
        SectionKind.TECHNIQUE: "55111-9",
        SectionKind.COMPARISON: "18834-2",
        SectionKind.FINDINGS: "59776-5",
        SectionKind.IMPRESSION: "19005-8",
        SectionKind.RECOMMENDATION: "18783-1",
        SectionKind.ADDENDUM: "55107-7",
    }
    assert all(k.heading.scheme == "LN" for k in SectionKind)


def test_older_dcm_heading_codes_are_recognised() -> None:
    assert SectionKind.from_heading(Code("121070", "DCM", "Findings")) is SectionKind.FINDINGS
    assert SectionKind.from_heading(Code("19005-8", "LN", "x")) is SectionKind.IMPRESSION
    assert SectionKind.from_heading(Code("55110-1", "LN", "Conclusions")) is None


def test_json_round_trip() -> None:
    report = Report(
        sections=(Section(SectionKind.FINDINGS, "é\nü"), Section(SectionKind.IMPRESSION, "")),
        key_images=(KeyImage("1.2.3", "1.2.3.4", "1.2", "1.2.3.5", frame=4),),
        status=ReportStatus.FINAL,
        reader="A^B",
        organization="Org",
        signed_at=dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        predecessors=(DocumentRef("1.2", "1.3", "1.4"),),
        language="de",
    )
    assert Report.from_dict(report.to_dict()) == report


def test_from_dict_names_what_is_wrong() -> None:
    with pytest.raises(ReportError, match="sections"):
        Report.from_dict({})


def test_sign_references_the_stored_document() -> None:
    stored = DocumentRef("1.2", "1.3", "1.4")
    report = Report(sections=(Section(SectionKind.FINDINGS, "x"),), document=stored)
    signed = sign(report, "  Reader^One ")
    assert signed.status is ReportStatus.FINAL
    assert signed.reader == "Reader^One"
    assert signed.predecessors == (stored,)
    assert signed.document is None and signed.signed_at is not None
    with pytest.raises(ReportError, match="reader"):
        sign(report, " ")
    with pytest.raises(ReportError, match="empty"):
        sign(Report(sections=()), "A")
