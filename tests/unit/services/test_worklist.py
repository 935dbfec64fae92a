"""Report states of the worklist, decided from SR documents as PS3.3 C.17.2 defines them.

Reports are written by tuiviewer's own SR writer (checked against dciodvfy elsewhere); the
documents that are *not* reports (a radiation dose SR in its own class, a Comprehensive SR
titled 113701 as older modalities write them, a chest CAD SR) are built here from the
standard's codes, so ``is_report`` is tested against what PS3.16 says, not against itself.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    ChestCADSRStorage,
    ComprehensiveSRStorage,
    ExplicitVRLittleEndian,
    XRayRadiationDoseSRStorage,
    generate_uid,
)

from tuiviewer.reports.model import (
    DocumentRef,
    Report,
    Section,
    SectionKind,
    sign,
)
from tuiviewer.reports.sr import BASIC_TEXT_SR
from tuiviewer.reports.sr.build import build_sr
from tuiviewer.reports.sr.context import StudyContext
from tuiviewer.services.worklist import ReportState, WorklistQuery, classify

STUDY = "1.2.826.0.1.3680043.8.498.1001"


def report_sr(
    study_uid: str,
    *,
    final: bool,
    at: dt.datetime,
    supersedes: Dataset | None = None,
    patient_id: str = "WL1",
) -> Dataset:
    """A TID 2000 Basic Text SR from tuiviewer's writer: preliminary or signed."""
    report = Report(sections=(Section(SectionKind.FINDINGS, "No acute finding."),))
    if supersedes is not None:
        ref = DocumentRef(
            str(supersedes.StudyInstanceUID),
            str(supersedes.SeriesInstanceUID),
            str(supersedes.SOPInstanceUID),
        )
        report = Report(sections=report.sections, predecessors=(ref,))
    if final:
        report = sign(report, "Reader^Rita", organization="Test Radiology", at=at)
    study = StudyContext(study_uid, patient_name="Wl^Patient", patient_id=patient_id)
    return build_sr(report, study, now=at)


def _sr_base(
    study_uid: str,
    sop_class: str,
    title: tuple[str, str, str],
    template: str,
    patient_id: str,
) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "SR"
    ds.PatientID = patient_id
    ds.PatientName = "Wl^Patient"
    ds.StudyDate = "20240301"
    ds.ContentDate = "20240301"
    ds.ContentTime = "120000"
    ds.SeriesNumber = 900
    ds.InstanceNumber = 1
    ds.ValueType = "CONTAINER"
    concept = Dataset()
    concept.CodeValue, concept.CodingSchemeDesignator, concept.CodeMeaning = title
    ds.ConceptNameCodeSequence = [concept]
    ds.ContinuityOfContent = "SEPARATE"
    tid = Dataset()
    tid.MappingResource = "DCMR"
    tid.TemplateIdentifier = template
    ds.ContentTemplateSequence = [tid]
    # A dose report is complete and verified by the modality: the flags alone would say "final".
    ds.CompletionFlag = "COMPLETE"
    ds.VerificationFlag = "VERIFIED"
    ds.ContentSequence = []
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    return ds


def dose_sr(study_uid: str, *, comprehensive: bool = False, patient_id: str = "WL1") -> Dataset:
    """An X-Ray Radiation Dose SR (PS3.16 TID 10001, title DCM 113701), in its own SOP class or,
    as some modalities write it, in a Comprehensive SR."""
    sop_class = ComprehensiveSRStorage if comprehensive else XRayRadiationDoseSRStorage
    title = ("113701", "DCM", "X-Ray Radiation Dose Report")
    return _sr_base(study_uid, sop_class, title, "10001", patient_id)


def cad_sr(study_uid: str) -> Dataset:
    """A Chest CAD SR (PS3.16 TID 4100, title DCM 111036 "Chest CAD Report")."""
    title = ("111036", "DCM", "Chest CAD Report")
    return _sr_base(study_uid, ChestCADSRStorage, title, "4100", "WL1")


T0 = dt.datetime(2024, 3, 1, 10, 0, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(hours=2)


def test_no_document_is_unreported_and_a_draft_makes_it_draft() -> None:
    assert classify(STUDY, [], False) is ReportState.UNREPORTED
    assert classify(STUDY, [], True) is ReportState.DRAFT


@pytest.mark.parametrize(
    "document",
    [dose_sr(STUDY), dose_sr(STUDY, comprehensive=True), cad_sr(STUDY)],
    ids=["xray-dose-sr", "comprehensive-dose-113701", "chest-cad"],
)
def test_dose_and_cad_documents_are_not_reports(document: Dataset) -> None:
    assert document.CompletionFlag == "COMPLETE" and document.VerificationFlag == "VERIFIED"
    assert classify(STUDY, [document], False) is ReportState.UNREPORTED
    assert classify(STUDY, [document], True) is ReportState.DRAFT


def test_preliminary_and_final_reports() -> None:
    preliminary = report_sr(STUDY, final=False, at=T0)
    final = report_sr(STUDY, final=True, at=T0)
    assert preliminary.CompletionFlag == "PARTIAL"
    assert classify(STUDY, [preliminary], False) is ReportState.PRELIMINARY
    # A draft does not hide a report that is already on the PACS.
    assert classify(STUDY, [preliminary], True) is ReportState.PRELIMINARY
    assert classify(STUDY, [final, dose_sr(STUDY)], False) is ReportState.FINAL


def test_a_final_that_supersedes_a_preliminary_wins_whatever_the_order_and_times() -> None:
    preliminary = report_sr(STUDY, final=False, at=T1)
    # Signed with an earlier content time than the preliminary (clocks differ): the
    # Predecessor Documents Sequence, not the time, says which one replaces the other.
    final = report_sr(STUDY, final=True, at=T0, supersedes=preliminary)
    refs = final.PredecessorDocumentsSequence[0].ReferencedSeriesSequence[0]
    assert refs.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == preliminary.SOPInstanceUID
    assert classify(STUDY, [preliminary, final], False) is ReportState.FINAL
    assert classify(STUDY, [final, preliminary], False) is ReportState.FINAL


def test_an_unsigned_addendum_to_a_final_report_makes_the_study_preliminary() -> None:
    final = report_sr(STUDY, final=True, at=T0)
    addendum = report_sr(STUDY, final=False, at=T1, supersedes=final)
    assert "PredecessorDocumentsSequence" in addendum
    assert classify(STUDY, [final, addendum], False) is ReportState.PRELIMINARY


def test_without_predecessors_the_newest_report_counts() -> None:
    older_final = report_sr(STUDY, final=True, at=T0)
    newer_preliminary = report_sr(STUDY, final=False, at=T1)
    assert classify(STUDY, [older_final, newer_preliminary], False) is ReportState.PRELIMINARY
    older_preliminary = report_sr(STUDY, final=False, at=T0)
    newer_final = report_sr(STUDY, final=True, at=T1)
    assert classify(STUDY, [newer_final, older_preliminary], False) is ReportState.FINAL


def test_preliminary_flag_overrides_complete_and_verified() -> None:
    # PS3.3 C.17.2: Preliminary Flag PRELIMINARY means not final, whatever the other flags say.
    ds = report_sr(STUDY, final=True, at=T0)
    ds.PreliminaryFlag = "PRELIMINARY"
    assert classify(STUDY, [ds], False) is ReportState.PRELIMINARY


def test_a_report_of_another_study_is_ignored() -> None:
    other = report_sr("1.2.826.0.1.3680043.8.498.2002", final=True, at=T0)
    assert classify(STUDY, [other], False) is ReportState.UNREPORTED


@dataclass(frozen=True)
class Remote:
    """A C-FIND answer about an SR document (what RemoteReport carries)."""

    sop_instance_uid: str
    sop_class_uid: str
    completion_flag: str
    verification_flag: str
    content_date: str


def test_find_answers_count_only_for_classes_that_cannot_be_dose_reports() -> None:
    signed = Remote(generate_uid(), BASIC_TEXT_SR, "COMPLETE", "VERIFIED", "20240301")
    unsigned = Remote(generate_uid(), BASIC_TEXT_SR, "PARTIAL", "UNVERIFIED", "20240301")
    comprehensive = Remote(generate_uid(), ComprehensiveSRStorage, "COMPLETE", "VERIFIED", "")
    assert classify(STUDY, [signed], False) is ReportState.FINAL
    assert classify(STUDY, [unsigned], False) is ReportState.PRELIMINARY
    # Its root concept is unknown: it might be a dose report.
    assert classify(STUDY, [comprehensive], False) is ReportState.UNREPORTED


def test_a_retrieved_document_wins_over_the_find_answer_for_it() -> None:
    dose = dose_sr(STUDY, comprehensive=True)
    # A PACS that indexes the flags of a Basic Text SR wrongly: the dataset is what counts.
    answer = Remote(str(dose.SOPInstanceUID), BASIC_TEXT_SR, "COMPLETE", "VERIFIED", "20240301")
    assert classify(STUDY, [answer], False) is ReportState.FINAL
    assert classify(STUDY, [answer, dose], False) is ReportState.UNREPORTED


def test_worklist_query_asks_for_a_date_range_and_modality() -> None:
    today = dt.date(2024, 3, 10)
    query = WorklistQuery.last_days(7, today=today).to_find_query()
    # Seven days, today included: 4 March to 10 March, as a DA range (PS3.4 C.2.2.2.5.1).
    assert query.study_date == "20240304-20240310"
    assert query.level.value == "STUDY"
    one_day = WorklistQuery(today, today, modality=" ct ").to_find_query()
    assert one_day.study_date == "20240310"
    assert one_day.modality == "CT"
    assert WorklistQuery(None, today).to_find_query().study_date == "-20240310"
    assert WorklistQuery().to_find_query().study_date == ""


def test_worklist_query_refuses_a_backward_range() -> None:
    with pytest.raises(ValueError, match="2024-03-10 to 2024-03-01"):
        WorklistQuery(dt.date(2024, 3, 10), dt.date(2024, 3, 1)).to_find_query()
    with pytest.raises(ValueError, match="0"):
        WorklistQuery.last_days(0)
