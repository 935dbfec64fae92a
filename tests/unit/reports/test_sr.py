"""Reports written as Basic Text SR (TID 2000): the structure item by item, read back by pydicom,
checked by dicom3tools' dciodvfy (no "Error" line) and read by dcmtk's dsrdump, whose output is
an independent reading of the texts and codes. Covers preliminary, final, key images from the
same and from another study, addendum, signed version of a preliminary, non-ASCII text."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from tests.conftest import testdata as sample_file
from tuiviewer.exceptions import SaveError
from tuiviewer.reports.model import (
    DocumentRef,
    KeyImage,
    Report,
    ReportError,
    ReportStatus,
    Section,
    SectionKind,
    make_addendum,
    sign,
)
from tuiviewer.reports.sr import BASIC_TEXT_SR
from tuiviewer.reports.sr.build import build_sr, write_sr
from tuiviewer.reports.sr.context import StudyContext, study_context_from_paths
from tuiviewer.reports.sr.read import is_report, read_sr, report_status

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
ENHANCED_MR = "1.2.840.10008.5.1.4.1.1.4.1"  # multi-frame, so a frame number is allowed
NON_ASCII = "Épanchement pleural gauche, größer als zuvor. Лёгкие без очаговых изменений."


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail(f"{name} is not installed; CI must provide it.", pytrace=False)
        pytest.skip(f"{name} is not installed")
    return found


def assert_valid_sr(path: Path) -> str:
    """dciodvfy reports no error and dsrdump reads the file; return dsrdump's full output
    (long values, all codes, UTF-8)."""
    check = subprocess.run(
        [_tool("dciodvfy"), str(path)], capture_output=True, text=True, errors="replace"
    )
    output = check.stdout + check.stderr
    errors = [line for line in output.splitlines() if line.startswith("Error")]
    assert not errors, f"dciodvfy on {path.name}:\n{output}"
    dump = subprocess.run(
        [_tool("dsrdump"), "+Pl", "+Pc", "+U8", str(path)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
    )
    assert dump.returncode == 0, dump.stderr
    return dump.stdout


def _dsr_text(value: str) -> str:
    """How dsrdump prints a text value (CR LF as the two-character escapes)."""
    return value.replace("\n", "\\r\\n")


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-instance CT study folder (pydicom's CT_small.dcm)."""
    folder = tmp_path_factory.mktemp("study")
    shutil.copy(sample_file("CT_small.dcm"), folder / "ct.dcm")
    return folder


@pytest.fixture(scope="module")
def context(study: Path) -> StudyContext:
    return study_context_from_paths(study)


@pytest.fixture(scope="module")
def ct() -> Dataset:
    return pydicom.dcmread(sample_file("CT_small.dcm"), stop_before_pixels=True)


def _report(**changes: object) -> Report:
    base = Report(
        sections=(
            Section(SectionKind.HISTORY, "Cough for three weeks."),
            Section(SectionKind.TECHNIQUE, ""),
            Section(SectionKind.FINDINGS, "Small nodule in the right upper lobe.\nNo effusion."),
            Section(SectionKind.IMPRESSION, "Indeterminate 4 mm nodule."),
            Section(SectionKind.RECOMMENDATION, "CT follow-up in 12 months."),
        )
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def _items(ds: Dataset) -> list[Dataset]:
    return list(ds.ContentSequence)


def _concept(item: Dataset) -> tuple[str, str, str]:
    code = item.ConceptNameCodeSequence[0]
    return code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning


# --- the study context ---------------------------------------------------------------------


def test_context_copies_patient_and_study_from_the_file(context: StudyContext, ct: Dataset) -> None:
    assert context.study_uid == ct.StudyInstanceUID
    assert context.patient_name == str(ct.PatientName)
    assert context.patient_id == ct.PatientID
    assert context.study_date == ct.StudyDate
    assert context.modality == ct.Modality
    assert [i.sop_instance_uid for i in context.instances] == [ct.SOPInstanceUID]
    assert context.next_series_number == int(ct.SeriesNumber) + 1


def test_context_from_a_file_finds_the_studys_other_files(tmp_path: Path, ct: Dataset) -> None:
    shutil.copy(sample_file("CT_small.dcm"), tmp_path / "a.dcm")
    other = pydicom.dcmread(sample_file("CT_small.dcm"))
    other.SOPInstanceUID = generate_uid()
    other.save_as(tmp_path / "b.dcm")
    shutil.copy(sample_file("MR_small.dcm"), tmp_path / "other-study.dcm")
    context = study_context_from_paths(tmp_path / "a.dcm")
    assert {i.sop_instance_uid for i in context.instances} == {
        ct.SOPInstanceUID,
        other.SOPInstanceUID,
    }


def test_context_refuses_a_folder_with_two_studies(tmp_path: Path) -> None:
    shutil.copy(sample_file("CT_small.dcm"), tmp_path / "ct.dcm")
    shutil.copy(sample_file("MR_small.dcm"), tmp_path / "mr.dcm")
    with pytest.raises(ReportError, match="holds 2 studies"):
        study_context_from_paths(tmp_path)


def test_context_of_a_folder_without_dicom_says_so(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ReportError, match="No DICOM instance found"):
        study_context_from_paths(tmp_path)


# --- structure ---------------------------------------------------------------------------


def test_preliminary_sr_structure_item_by_item(
    tmp_path: Path, context: StudyContext, ct: Dataset
) -> None:
    path = write_sr(_report(), context, tmp_path / "prelim.dcm")
    assert_valid_sr(path)
    ds = pydicom.dcmread(path)

    assert ds.SOPClassUID == BASIC_TEXT_SR
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    assert ds.Modality == "SR"
    assert ds.Manufacturer == "tuiviewer"
    # Patient and General Study copied from the image; a new series.
    for keyword in ("PatientName", "PatientID", "PatientSex", "StudyInstanceUID", "StudyDate"):
        assert ds[keyword].value == ct[keyword].value, keyword
    assert ds.SeriesInstanceUID != ct.SeriesInstanceUID
    assert ds.ContentDate and ds.ContentTime and ds.InstanceNumber == 1
    # Flags of a preliminary document, no verifier.
    assert (ds.CompletionFlag, ds.VerificationFlag, ds.PreliminaryFlag) == (
        "PARTIAL",
        "UNVERIFIED",
        "PRELIMINARY",
    )
    assert "VerifyingObserverSequence" not in ds
    # Root: the TID 2000 template and its CID 7000 title.
    assert ds.ValueType == "CONTAINER"
    assert _concept(ds) == ("18748-4", "LN", "Diagnostic Imaging Report")
    template = ds.ContentTemplateSequence[0]
    assert (template.MappingResource, template.TemplateIdentifier) == ("DCMR", "2000")
    items = _items(ds)
    # TID 1204 language.
    assert items[0].RelationshipType == "HAS CONCEPT MOD"
    assert _concept(items[0])[0:2] == ("121049", "DCM")
    assert items[0].ConceptCodeSequence[0].CodeValue == "en"
    assert items[0].ConceptCodeSequence[0].CodingSchemeDesignator == "RFC5646"
    # One container per non-empty section, CID 7001 heading, CID 7002 TEXT.
    containers = [i for i in items if i.ValueType == "CONTAINER"]
    expected = [
        (("11329-0", "LN"), ("11329-0", "LN"), "Cough for three weeks."),
        (
            ("59776-5", "LN"),
            ("121071", "DCM"),
            "Small nodule in the right upper lobe.\r\nNo effusion.",
        ),
        (("19005-8", "LN"), ("121073", "DCM"), "Indeterminate 4 mm nodule."),
        (("18783-1", "LN"), ("121075", "DCM"), "CT follow-up in 12 months."),
    ]
    assert len(containers) == len(expected)
    for container, (heading, element, text) in zip(containers, expected, strict=True):
        assert container.RelationshipType == "CONTAINS"
        assert _concept(container)[0:2] == heading
        (item,) = container.ContentSequence
        assert (item.RelationshipType, item.ValueType) == ("CONTAINS", "TEXT")
        assert _concept(item)[0:2] == element
        assert item.TextValue == text
    # Evidence: the study's CT listed hierarchically.
    (evidence,) = ds.CurrentRequestedProcedureEvidenceSequence
    assert evidence.StudyInstanceUID == ct.StudyInstanceUID
    (series,) = evidence.ReferencedSeriesSequence
    assert series.SeriesInstanceUID == ct.SeriesInstanceUID
    (sop,) = series.ReferencedSOPSequence
    assert (sop.ReferencedSOPClassUID, sop.ReferencedSOPInstanceUID) == (
        ct.SOPClassUID,
        ct.SOPInstanceUID,
    )
    assert "PertinentOtherEvidenceSequence" not in ds
    assert "PredecessorDocumentsSequence" not in ds
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_final_sr_has_verifier_observer_and_flags(tmp_path: Path, context: StudyContext) -> None:
    signed_at = dt.datetime(2024, 3, 5, 14, 30, 12, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    report = sign(_report(), "Curie^Marie", organization="Institut du Radium", at=signed_at)
    path = write_sr(report, context, tmp_path / "final.dcm")
    dump = assert_valid_sr(path)
    ds = pydicom.dcmread(path)

    assert (ds.CompletionFlag, ds.VerificationFlag, ds.PreliminaryFlag) == (
        "COMPLETE",
        "VERIFIED",
        "FINAL",
    )
    (verifier,) = ds.VerifyingObserverSequence
    assert verifier.VerifyingObserverName == "Curie^Marie"
    assert verifier.VerifyingOrganization == "Institut du Radium"
    assert verifier.VerificationDateTime.startswith("20240305143012")
    assert verifier.VerificationDateTime.endswith("+0100")
    # TID 1002/1003: Observer Type = Person, Person Observer Name.
    context_items = [i for i in _items(ds) if i.RelationshipType == "HAS OBS CONTEXT"]
    assert _concept(context_items[0])[0:2] == ("121005", "DCM")
    assert context_items[0].ConceptCodeSequence[0].CodeValue == "121006"
    assert _concept(context_items[1])[0:2] == ("121008", "DCM")
    assert context_items[1].PersonName == "Curie^Marie"
    assert "Curie^Marie" in dump and "VERIFIED" in dump

    back = read_sr(path)
    assert back.status is ReportStatus.FINAL
    assert back.reader == "Curie^Marie"
    assert back.signed_at == signed_at


def test_final_without_reader_is_refused(context: StudyContext) -> None:
    with pytest.raises(ReportError, match="reader"):
        build_sr(_report(status=ReportStatus.FINAL), context)


def test_empty_report_is_refused(context: StudyContext) -> None:
    empty = Report(sections=(Section(SectionKind.FINDINGS, "  \n"),))
    with pytest.raises(ReportError, match="empty"):
        build_sr(empty, context)


def test_key_images_same_and_other_study(
    tmp_path: Path, context: StudyContext, ct: Dataset
) -> None:
    same = KeyImage(ct.SOPClassUID, ct.SOPInstanceUID, ct.StudyInstanceUID, ct.SeriesInstanceUID)
    prior = KeyImage(ENHANCED_MR, "1.2.3.4.5.6.7", "1.2.3.4", "1.2.3.4.5", frame=3)
    path = write_sr(_report(key_images=(same, prior)), context, tmp_path / "keys.dcm")
    dump = assert_valid_sr(path)
    ds = pydicom.dcmread(path)

    keys = [i for i in _items(ds) if i.ValueType == "CONTAINER"][-1]
    assert _concept(keys)[0:2] == ("55113-5", "LN")
    images = list(keys.ContentSequence)
    assert [i.ValueType for i in images] == ["IMAGE", "IMAGE"]
    assert all(_concept(i)[0:2] == ("121080", "DCM") for i in images)
    assert images[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID == ct.SOPInstanceUID
    assert "ReferencedFrameNumber" not in images[0].ReferencedSOPSequence[0]
    assert images[1].ReferencedSOPSequence[0].ReferencedFrameNumber == 3
    # The prior is pertinent other evidence, with its own study and series.
    (other,) = ds.PertinentOtherEvidenceSequence
    assert other.StudyInstanceUID == "1.2.3.4"
    assert other.ReferencedSeriesSequence[0].SeriesInstanceUID == "1.2.3.4.5"
    sop = other.ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert (sop.ReferencedSOPClassUID, sop.ReferencedSOPInstanceUID) == (
        ENHANCED_MR,
        "1.2.3.4.5.6.7",
    )
    current = ds.CurrentRequestedProcedureEvidenceSequence
    assert [s.StudyInstanceUID for s in current] == [ct.StudyInstanceUID]
    assert dump.count('(121080,DCM,"Best illustration of finding")') == 2

    back = read_sr(path)
    assert back.key_images == (same, prior)


def test_key_image_of_the_study_missing_from_the_folder_joins_the_evidence(
    tmp_path: Path, context: StudyContext, ct: Dataset
) -> None:
    unseen = KeyImage(CT_IMAGE, "1.2.3.999", ct.StudyInstanceUID, "1.2.3.998")
    path = write_sr(_report(key_images=(unseen,)), context, tmp_path / "unseen.dcm")
    assert_valid_sr(path)
    ds = pydicom.dcmread(path)
    listed = {
        sop.ReferencedSOPInstanceUID
        for study in ds.CurrentRequestedProcedureEvidenceSequence
        for series in study.ReferencedSeriesSequence
        for sop in series.ReferencedSOPSequence
    }
    assert listed == {ct.SOPInstanceUID, "1.2.3.999"}


def test_non_ascii_text_survives_and_dsrdump_reads_it(
    tmp_path: Path, context: StudyContext
) -> None:
    report = sign(
        _report().with_text(SectionKind.FINDINGS, NON_ASCII + "\nZweite Zeile: ü"),
        "Müller^Jürgen",
        organization="Клиника",
    )
    path = write_sr(report, context, tmp_path / "utf8.dcm")
    dump = assert_valid_sr(path)
    assert _dsr_text(NON_ASCII + "\nZweite Zeile: ü") in dump
    assert "Müller^Jürgen" in dump and "Клиника" in dump
    back = read_sr(path)
    assert back.text_of(SectionKind.FINDINGS) == NON_ASCII + "\nZweite Zeile: ü"
    assert back.reader == "Müller^Jürgen"
    assert back.organization == "Клиника"


def test_round_trip_keeps_sections_status_and_title(tmp_path: Path, context: StudyContext) -> None:
    report = _report(language="fr-CA")
    path = write_sr(report, context, tmp_path / "rt.dcm")
    dump = assert_valid_sr(path)
    assert '=(fr-CA,RFC5646,"French (CA)")' in dump
    back = read_sr(path)
    assert back.written_sections() == report.written_sections()
    assert back.status is ReportStatus.PRELIMINARY
    assert back.title == report.title
    assert back.language == "fr-CA"
    ds = pydicom.dcmread(path)
    assert back.document == DocumentRef(
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, BASIC_TEXT_SR
    )


def test_existing_file_is_not_overwritten(tmp_path: Path, context: StudyContext) -> None:
    dest = tmp_path / "exists.dcm"
    dest.write_bytes(b"keep me")
    with pytest.raises(SaveError, match="already exists"):
        write_sr(_report(), context, dest)
    assert dest.read_bytes() == b"keep me"


# --- versions and addenda ------------------------------------------------------------------


def _sop_refs(ds: Dataset) -> list[tuple[str, str, str, str]]:
    return [
        (
            study.StudyInstanceUID,
            series.SeriesInstanceUID,
            sop.ReferencedSOPClassUID,
            sop.ReferencedSOPInstanceUID,
        )
        for study in ds.PredecessorDocumentsSequence
        for series in study.ReferencedSeriesSequence
        for sop in series.ReferencedSOPSequence
    ]


def test_signing_a_sent_preliminary_makes_a_new_document(
    tmp_path: Path, context: StudyContext
) -> None:
    first = write_sr(_report(), context, tmp_path / "prelim.dcm")
    before = first.read_bytes()
    preliminary = read_sr(first)
    signed = sign(preliminary, "House^Gregory")
    second = write_sr(signed, context, tmp_path / "final.dcm")
    assert_valid_sr(second)

    assert first.read_bytes() == before  # the sent document is never touched
    old, new = pydicom.dcmread(first), pydicom.dcmread(second)
    assert new.SOPInstanceUID != old.SOPInstanceUID
    assert new.SeriesInstanceUID != old.SeriesInstanceUID
    assert _sop_refs(new) == [
        (old.StudyInstanceUID, old.SeriesInstanceUID, old.SOPClassUID, old.SOPInstanceUID)
    ]
    assert new.VerificationFlag == "VERIFIED"
    assert read_sr(second).written_sections() == preliminary.written_sections()


def test_addendum_holds_the_original_and_references_it(
    tmp_path: Path, context: StudyContext
) -> None:
    original_path = write_sr(sign(_report(), "Curie^Marie"), context, tmp_path / "final.dcm")
    original = read_sr(original_path)
    addendum = sign(
        make_addendum(original, "Nodule also seen on the 2019 CT: stable."), "Curie^Marie"
    )
    path = write_sr(addendum, context, tmp_path / "addendum.dcm")
    dump = assert_valid_sr(path)
    ds, old = pydicom.dcmread(path), pydicom.dcmread(original_path)

    assert _sop_refs(ds) == [
        (old.StudyInstanceUID, old.SeriesInstanceUID, old.SOPClassUID, old.SOPInstanceUID)
    ]
    headings = [_concept(i)[0] for i in _items(ds) if i.ValueType == "CONTAINER"]
    assert headings == ["11329-0", "59776-5", "19005-8", "18783-1", "55107-7"]
    assert '(55107-7,LN,"Addendum")' in dump
    back = read_sr(path)
    assert back.written_sections()[:-1] == original.written_sections()
    assert back.written_sections()[-1] == Section(
        SectionKind.ADDENDUM, "Nodule also seen on the 2019 CT: stable."
    )


def test_addendum_needs_a_stored_original() -> None:
    with pytest.raises(ReportError, match="reference the report"):
        make_addendum(_report(), "More.")


# --- recognising reports -----------------------------------------------------------------


def test_is_report_and_status_of_our_documents(tmp_path: Path, context: StudyContext) -> None:
    prelim = pydicom.dcmread(write_sr(_report(), context, tmp_path / "p.dcm"))
    final = pydicom.dcmread(write_sr(sign(_report(), "A^B"), context, tmp_path / "f.dcm"))
    assert is_report(prelim) and is_report(final)
    assert report_status(prelim) is ReportStatus.PRELIMINARY
    assert report_status(final) is ReportStatus.FINAL


def _sr_like(sop_class: str, title: tuple[str, str, str]) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.ValueType = "CONTAINER"
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = title
    ds.ConceptNameCodeSequence = [code]
    return ds


def test_dose_cad_and_measurement_documents_are_not_reports() -> None:
    # PS3.4 B.5: X-Ray Radiation Dose SR and Chest CAD SR have their own SOP classes.
    dose = _sr_like(
        "1.2.840.10008.5.1.4.1.1.88.67", ("113701", "DCM", "X-Ray Radiation Dose Report")
    )
    cad = _sr_like("1.2.840.10008.5.1.4.1.1.88.65", ("111036", "DCM", "Mammography CAD Report"))
    # TID 1500 in a Comprehensive SR: a measurement report, not a narrative one.
    tid1500 = _sr_like(
        "1.2.840.10008.5.1.4.1.1.88.33", ("126000", "DCM", "Imaging Measurement Report")
    )
    ct_chest = _sr_like("1.2.840.10008.5.1.4.1.1.88.33", ("24627-2", "LN", "CT Chest Report"))
    assert not is_report(dose) and not is_report(cad) and not is_report(tid1500)
    assert is_report(ct_chest)
    image = pydicom.dcmread(sample_file("CT_small.dcm"), stop_before_pixels=True)
    assert not is_report(image)


@pytest.mark.parametrize("name", ["test-SR.dcm", "reportsi.dcm"])
def test_status_of_other_writers_documents_follows_their_flags(name: str) -> None:
    ds = pydicom.dcmread(sample_file(name))
    verified = ds.VerificationFlag == "VERIFIED" and ds.CompletionFlag == "COMPLETE"
    expected = ReportStatus.FINAL if verified else ReportStatus.PRELIMINARY
    assert report_status(ds) is expected
    # Neither is titled from CID 7000 (OFFIS test codes): not diagnostic imaging reports.
    assert not is_report(ds)


def test_read_sr_of_another_writer_keeps_its_text() -> None:
    report = read_sr(sample_file("reportsi.dcm"))
    ds = pydicom.dcmread(sample_file("reportsi.dcm"))
    section = ds.ContentSequence[-1]
    text = section.ContentSequence[0].TextValue
    findings = [s.text for s in report.sections if s.kind is SectionKind.FINDINGS]
    # Its "Section Heading" is not a CID 7001 heading: kept under its own name.
    assert findings == [f"{section.ConceptNameCodeSequence[0].CodeMeaning}:\n{text}"]
    assert report.status is ReportStatus.PRELIMINARY


def test_read_sr_refuses_an_image(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="not a structured report"):
        read_sr(sample_file("CT_small.dcm"))


def test_dsrdump_heading_codes_match_the_standard_tables(
    tmp_path: Path, context: StudyContext
) -> None:
    full = Report(sections=tuple(Section(kind, f"{kind.title} text.") for kind in SectionKind))
    path = write_sr(full, context, tmp_path / "all.dcm")
    dump = assert_valid_sr(path)
    headings = re.findall(r"<contains CONTAINER:\(([^,]+),LN,", dump)
    # PS3.16 CID 7001 LOINC codes named in the issue, in report order.
    assert headings == ["11329-0", "55111-9", "18834-2", "59776-5", "19005-8", "18783-1", "55107-7"]
    texts = re.findall(r"<contains TEXT:\(([^,]+),(DCM|LN),", dump)
    assert [t[0] for t in texts] == [
        "11329-0",
        "121065",
        "121069",
        "121071",
        "121073",
        "121075",
        "121071",
    ]
