"""Reports as DICOM Basic Text SR documents following TID 2000 "Basic Diagnostic Imaging Report".

The PACS keeps reports as Structured Reports beside the images, so this is the format that
travels. Writing follows PS3.3 A.35.1 (Basic Text SR IOD) and PS3.16 TID 2000:

* root CONTAINER titled from CID 7000 (``18748-4`` Diagnostic Imaging Report by default),
  with Content Template Sequence DCMR/2000;
* TID 1204 language (``121049`` Language of Content Item and Descendants, an RFC 5646 code);
* TID 1001/1002/1003 observation context: Observer Type = Person, Person Observer Name;
* one CONTAINER per section, titled from CID 7001, holding a TEXT item from CID 7002;
* key images as IMAGE items (purpose ``121080`` Best illustration of finding, CID 7003) in a
  ``55113-5`` Key Images container; each referenced instance is listed in the Current
  Requested Procedure Evidence Sequence (same study) or the Pertinent Other Evidence Sequence
  (other studies), as PS3.3 C.17.2.3 requires;
* Patient and General Study attributes copied from the study, a new series for every document
  (so the series-level attributes of a document written by somebody else are never
  contradicted), UTF-8 text (ISO_IR 192).

A document once written is never changed: a signed version of a preliminary report, and an
addendum, are new documents with new SOP Instance UIDs in a new series, whose Predecessor
Documents Sequence references the earlier one (see :func:`~tuiviewer.reports.model.sign` and
:func:`~tuiviewer.reports.model.make_addendum`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from tuiviewer import __version__
from tuiviewer.files import write_atomically
from tuiviewer.reports.model import (
    KEY_IMAGE_PURPOSE,
    KEY_IMAGES_HEADING,
    Code,
    KeyImage,
    Report,
    ReportError,
    ReportStatus,
)
from tuiviewer.reports.sr import (
    BASIC_TEXT_SR,
    LANGUAGE,
    OBSERVER_TYPE,
    PERSON,
    PERSON_NAME,
    PERSON_ORG,
)
from tuiviewer.reports.sr.context import StudyContext
from tuiviewer.store import InvalidUIDError, foreign_uid

MANUFACTURER = "tuiviewer"

#: CID 5000 meanings of the languages a report is most likely written in; others use the tag.
_LANGUAGE_NAMES = {
    "en": "English",
    "fr": "French",
    "de": "German",
    "es": "Spanish",
    "it": "Italian",
    "nl": "Dutch",
    "pt": "Portuguese",
    "ru": "Russian",
    "uk": "Ukrainian",
    "pl": "Polish",
    "cs": "Czech",
    "sv": "Swedish",
    "da": "Danish",
    "nb": "Norwegian Bokmål",
    "fi": "Finnish",
    "el": "Greek",
    "tr": "Turkish",
    "ja": "Japanese",
    "zh": "Chinese",
    "ko": "Korean",
}


def _code_item(code: Code) -> Dataset:
    item = Dataset()
    item.CodeValue = code.value
    item.CodingSchemeDesignator = code.scheme
    item.CodeMeaning = code.meaning
    return item


def _content(relationship: str, value_type: str, concept: Code) -> Dataset:
    item = Dataset()
    item.RelationshipType = relationship
    item.ValueType = value_type
    item.ConceptNameCodeSequence = [_code_item(concept)]
    return item


def image_item(relationship: str, key: KeyImage, concept: Code | None = None) -> Dataset:
    """An IMAGE content item referencing ``key`` (and its frame); ``concept`` names its purpose
    (none in a key object selection)."""
    item = Dataset()
    item.RelationshipType = relationship
    item.ValueType = "IMAGE"
    if concept is not None:
        item.ConceptNameCodeSequence = [_code_item(concept)]
    ref = Dataset()
    ref.ReferencedSOPClassUID = key.sop_class_uid
    ref.ReferencedSOPInstanceUID = key.sop_instance_uid
    if key.frame is not None:
        ref.ReferencedFrameNumber = key.frame
    item.ReferencedSOPSequence = [ref]
    return item


def language_code(tag: str) -> Code:
    """The CID 5000 code for RFC 5646 tag ``tag`` (``en``, ``fr-CA``).

    Raises:
        ReportError: ``tag`` is not a plausible language tag.
    """
    parts = tag.strip().split("-")
    if not parts[0].isalpha() or not 2 <= len(parts[0]) <= 3 or not all(p.isalnum() for p in parts):
        raise ReportError(
            f"Report language {tag!r} is not an RFC 5646 tag such as 'en' or 'fr-CA'."
        )
    base = parts[0].lower()
    name = _LANGUAGE_NAMES.get(base, base)
    rest = [p.upper() if len(p) == 2 else p for p in parts[1:]]
    value = "-".join([base, *rest])
    meaning = f"{name} ({', '.join(rest)})" if rest else name
    return Code(value, "RFC5646", meaning)


def _hierarchical(refs: Iterable[tuple[str, str, str, str]]) -> list[Dataset]:
    """PS3.3 C.17.2.1 Hierarchical SOP Instance Reference Macro from (study, series, class, sop)."""
    studies: dict[str, dict[str, list[tuple[str, str]]]] = {}
    for study, series, sop_class, sop in refs:
        bucket = studies.setdefault(study, {}).setdefault(series, [])
        if (sop_class, sop) not in bucket:
            bucket.append((sop_class, sop))
    items = []
    for study, series_map in studies.items():
        study_item = Dataset()
        study_item.StudyInstanceUID = study
        series_items = []
        for series, sops in series_map.items():
            series_item = Dataset()
            series_item.SeriesInstanceUID = series
            sop_items = []
            for sop_class, sop in sops:
                sop_item = Dataset()
                sop_item.ReferencedSOPClassUID = sop_class
                sop_item.ReferencedSOPInstanceUID = sop
                sop_items.append(sop_item)
            series_item.ReferencedSOPSequence = sop_items
            series_items.append(series_item)
        study_item.ReferencedSeriesSequence = series_items
        items.append(study_item)
    return items


def _da_tm(moment: dt.datetime) -> tuple[str, str]:
    return moment.strftime("%Y%m%d"), moment.strftime("%H%M%S")


def _dt(moment: dt.datetime) -> str:
    text = moment.strftime("%Y%m%d%H%M%S.%f")
    if moment.tzinfo is not None:
        text += moment.strftime("%z")
    return text


def _check_uid(value: str, what: str) -> str:
    """A UID the report refers to, quoted as the study has it (even a non-conformant one)."""
    try:
        return foreign_uid(value, what)
    except InvalidUIDError as exc:
        raise ReportError(exc.message) from exc


def document_base(
    study: StudyContext,
    *,
    sop_class_uid: str,
    series_description: str,
    now: dt.datetime | None = None,
    series_uid: str | None = None,
    sop_instance_uid: str | None = None,
    modality: str = "SR",
    series_number: int | None = None,
) -> Dataset:
    """The attributes every document tuiviewer writes about ``study`` shares: Patient and
    General Study copied from the study, a new series and instance, SR/KO Document Series,
    General Equipment, SOP Common (UTF-8), Content Date/Time. The TID 2000 report, the TID
    1500 measurement report and the key object selection all start from it.

    Raises:
        ReportError: the study's UID is invalid.
    """
    study_uid = _check_uid(study.study_uid, "Study Instance UID")
    now = now or dt.datetime.now().astimezone()
    date, time = _da_tm(now)
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.InstanceCreationDate, ds.InstanceCreationTime = date, time
    ds.SOPClassUID = sop_class_uid
    ds.SOPInstanceUID = sop_instance_uid or generate_uid()
    ds.StudyDate = study.study_date
    ds.ContentDate = date
    ds.StudyTime = study.study_time
    ds.ContentTime = time
    ds.AccessionNumber = study.accession_number
    ds.Modality = modality
    ds.Manufacturer = MANUFACTURER
    if study.institution_name:
        ds.InstitutionName = study.institution_name
    ds.ReferringPhysicianName = study.referring_physician
    if study.study_description:
        ds.StudyDescription = study.study_description
    ds.SeriesDescription = series_description
    ds.ReferencedPerformedProcedureStepSequence = DicomSequence([])
    ds.PatientName = study.patient_name
    ds.PatientID = study.patient_id
    ds.PatientBirthDate = study.patient_birth_date
    ds.PatientSex = study.patient_sex
    ds.SoftwareVersions = __version__
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.StudyID = study.study_id
    ds.SeriesNumber = series_number if series_number is not None else study.next_series_number
    ds.InstanceNumber = 1
    return ds


def with_file_meta(ds: Dataset) -> Dataset:
    """``ds`` with File Meta (Explicit VR Little Endian) for writing as a Part 10 file."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    return ds


def check_reference(key: KeyImage, whose: str) -> tuple[str, str, str, str]:
    """(study, series, class, instance) of ``key``, every UID validated.

    Raises:
        ReportError: a UID is invalid; the message starts with ``whose``.
    """
    for uid, what in (
        (key.study_uid, "Study Instance UID"),
        (key.series_uid, "Series Instance UID"),
        (key.sop_instance_uid, "SOP Instance UID"),
        (key.sop_class_uid, "SOP Class UID"),
    ):
        _check_uid(uid, f"{whose}'s {what}")
    return key.study_uid, key.series_uid, key.sop_class_uid, key.sop_instance_uid


def build_sr(
    report: Report,
    study: StudyContext,
    *,
    now: dt.datetime | None = None,
    series_uid: str | None = None,
    sop_instance_uid: str | None = None,
) -> Dataset:
    """The Basic Text SR dataset (with File Meta) of ``report`` about ``study``.

    Args:
        report: the content; preliminary reports need no reader, final ones do.
        study: patient/study attributes to copy and the instances to list as evidence.
        now: Content Date/Time and Instance Creation Date/Time (default: now, local time).
        series_uid: the new series (default: a fresh UID).
        sop_instance_uid: the document's UID (default: a fresh UID).

    Raises:
        ReportError: the report is empty, a final report has no reader, the language tag is
            invalid, or a UID is invalid.
    """
    if report.is_empty:
        raise ReportError("The report is empty: write at least one section or mark a key image.")
    if report.status is ReportStatus.FINAL and not (report.reader or "").strip():
        raise ReportError("A final report needs the reader's name; none was given.")
    if report.status is ReportStatus.FINAL and not (report.organization or study.institution_name):
        raise ReportError(
            "A final report needs the reader's organization (Verifying Organization); neither "
            "the report nor the study's institution names one."
        )
    now = now or dt.datetime.now().astimezone()
    ds = document_base(
        study,
        sop_class_uid=BASIC_TEXT_SR,
        series_description=f"{report.title.meaning} ({report.status.value})",
        now=now,
        series_uid=series_uid,
        sop_instance_uid=sop_instance_uid,
    )
    study_uid = str(ds.StudyInstanceUID)

    # SR Document Content Module: the root of TID 2000.
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = [_code_item(report.title)]
    ds.ContinuityOfContent = "SEPARATE"
    template = Dataset()
    template.MappingResource = "DCMR"
    template.TemplateIdentifier = "2000"
    ds.ContentTemplateSequence = [template]

    final = report.status is ReportStatus.FINAL
    if final:
        observer = Dataset()
        observer.VerifyingObserverName = report.reader
        observer.VerifyingObserverIdentificationCodeSequence = DicomSequence([])
        # Type 1 in C.17.2: the study's institution stands in when the reader names none.
        observer.VerifyingOrganization = report.organization or study.institution_name
        observer.VerificationDateTime = _dt(report.signed_at or now)
        ds.VerifyingObserverSequence = [observer]
    if report.predecessors:
        ds.PredecessorDocumentsSequence = _hierarchical(
            (p.study_uid, p.series_uid, p.sop_class_uid, p.sop_instance_uid)
            for p in report.predecessors
        )
    ds.PerformedProcedureCodeSequence = DicomSequence([])

    own = [
        (i.study_uid, i.series_uid, i.sop_class_uid, i.sop_instance_uid) for i in study.instances
    ]
    own_uids = {i.sop_instance_uid for i in study.instances}
    other: list[tuple[str, str, str, str]] = []
    for key in report.key_images:
        check_reference(key, "The key image")
        ref = (key.study_uid, key.series_uid, key.sop_class_uid, key.sop_instance_uid)
        if key.study_uid == study_uid:
            if key.sop_instance_uid not in own_uids:
                own.append(ref)
                own_uids.add(key.sop_instance_uid)
        else:
            other.append(ref)
    if own:
        ds.CurrentRequestedProcedureEvidenceSequence = _hierarchical(own)
    if other:
        ds.PertinentOtherEvidenceSequence = _hierarchical(other)
    ds.CompletionFlag = "COMPLETE" if final else "PARTIAL"
    ds.VerificationFlag = "VERIFIED" if final else "UNVERIFIED"
    ds.PreliminaryFlag = "FINAL" if final else "PRELIMINARY"
    ds.ContentSequence = _content_tree(report)

    return with_file_meta(ds)


def _content_tree(report: Report) -> list[Dataset]:
    items: list[Dataset] = []
    language = _content("HAS CONCEPT MOD", "CODE", LANGUAGE)
    language.ConceptCodeSequence = [_code_item(language_code(report.language))]
    items.append(language)
    reader = (report.reader or "").strip()
    if reader:
        observer_type = _content("HAS OBS CONTEXT", "CODE", OBSERVER_TYPE)
        observer_type.ConceptCodeSequence = [_code_item(PERSON)]
        items.append(observer_type)
        name = _content("HAS OBS CONTEXT", "PNAME", PERSON_NAME)
        name.PersonName = reader
        items.append(name)
        if report.organization:
            org = _content("HAS OBS CONTEXT", "TEXT", PERSON_ORG)
            org.TextValue = report.organization
            items.append(org)
    for section in report.written_sections():
        container = _content("CONTAINS", "CONTAINER", section.kind.heading)
        container.ContinuityOfContent = "SEPARATE"
        text = _content("CONTAINS", "TEXT", section.kind.item)
        # Lines in DICOM text are separated by CR LF (PS3.5 6.1.3).
        text.TextValue = section.text.replace("\n", "\r\n")
        container.ContentSequence = [text]
        items.append(container)
    if report.key_images:
        container = _content("CONTAINS", "CONTAINER", KEY_IMAGES_HEADING)
        container.ContinuityOfContent = "SEPARATE"
        container.ContentSequence = [
            image_item("CONTAINS", key, KEY_IMAGE_PURPOSE) for key in report.key_images
        ]
        items.append(container)
    return items


def write_sr(
    report: Report,
    study: StudyContext,
    dest: Path,
    *,
    now: dt.datetime | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``report`` as a Basic Text SR file ``dest`` (atomically, 0600); return the path.

    Raises:
        ReportError: see :func:`build_sr`.
        SaveError: ``dest`` exists (and ``overwrite`` is false) or cannot be written.
    """
    ds = build_sr(report, study, now=now)
    dest = Path(dest)

    def write(handle: Any) -> None:
        pydicom.dcmwrite(handle, ds, enforce_file_format=True)

    write_atomically(dest, write, overwrite=overwrite)
    return dest
