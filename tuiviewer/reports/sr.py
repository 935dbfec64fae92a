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
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pydicom.valuerep import DT

from tuiviewer import __version__
from tuiviewer.dicom.editing import write_atomically
from tuiviewer.dicom.reading import read_dicom
from tuiviewer.dicom.scanning import NO_SOP_INSTANCE_UID, InstanceRecord, read_record, scan
from tuiviewer.exceptions import DicomReadError
from tuiviewer.reports.model import (
    KEY_IMAGE_PURPOSE,
    KEY_IMAGES_HEADING,
    REPORT_TITLES,
    Code,
    DocumentRef,
    KeyImage,
    Report,
    ReportError,
    ReportStatus,
    Section,
    SectionKind,
)
from tuiviewer.store import InvalidUIDError, validate_uid

__all__ = [
    "BASIC_TEXT_SR",
    "SR_STORAGE_CLASSES",
    "EvidenceInstance",
    "RemoteReport",
    "StudyContext",
    "build_sr",
    "find_reports_on_pacs",
    "is_report",
    "read_sr",
    "report_from_dataset",
    "report_status",
    "study_context_from_pacs",
    "study_context_from_paths",
    "write_sr",
]

BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
ENHANCED_SR = "1.2.840.10008.5.1.4.1.1.88.22"
COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"
COMPREHENSIVE_3D_SR = "1.2.840.10008.5.1.4.1.1.88.34"
EXTENSIBLE_SR = "1.2.840.10008.5.1.4.1.1.88.35"
#: The general-purpose SR classes a narrative report may use (PS3.4 B.5). Dose, CAD and key
#: object selection documents have classes of their own and are not reports.
SR_STORAGE_CLASSES = frozenset(
    {BASIC_TEXT_SR, ENHANCED_SR, COMPREHENSIVE_SR, COMPREHENSIVE_3D_SR, EXTENSIBLE_SR}
)
_SR_PREFIX = "1.2.840.10008.5.1.4.1.1.88."
MANUFACTURER = "tuiviewer"

# PS3.16 TID 1204, 1002 and 1003 concept names.
_LANGUAGE = Code("121049", "DCM", "Language of Content Item and Descendants")
_OBSERVER_TYPE = Code("121005", "DCM", "Observer Type")
_PERSON = Code("121006", "DCM", "Person")
_PERSON_NAME = Code("121008", "DCM", "Person Observer Name")
_PERSON_ORG = Code("121009", "DCM", "Person Observer's Organization Name")

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

# Titles of CID 7000 coded by DICOM itself (PS3.16 CID 7000), besides the LOINC ones.
_DCM_TITLES = frozenset({"125195", "125196", "125197", "125200", "111400"})


@dataclass(frozen=True)
class EvidenceInstance:
    """One instance of the study, listed as evidence the report is based on."""

    study_uid: str
    series_uid: str
    sop_class_uid: str
    sop_instance_uid: str


@dataclass(frozen=True)
class StudyContext:
    """What an SR copies from the study it reports on (Patient and General Study modules)."""

    study_uid: str
    patient_name: str = ""
    patient_id: str = ""
    patient_birth_date: str = ""
    patient_sex: str = ""
    study_date: str = ""
    study_time: str = ""
    study_id: str = ""
    accession_number: str = ""
    referring_physician: str = ""
    study_description: str = ""
    institution_name: str = ""
    modality: str = ""
    """The study's main image modality (the most frequent one that is not SR)."""
    body_part: str = ""
    """Body Part Examined of the study's images, when they say."""
    instances: tuple[EvidenceInstance, ...] = ()
    """The study's image instances (not its SR documents): the report's evidence."""
    next_series_number: int = 1
    """A Series Number not used yet in the study, for the report's series."""


# --- study context ------------------------------------------------------------------------


def _is_sr_class(uid: str) -> bool:
    return uid.startswith(_SR_PREFIX)


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value)


def study_context_from_paths(
    path: Path,
    *,
    cancel: threading.Event | None = None,
    progress: Callable[[int], None] | None = None,
) -> StudyContext:
    """The context of the study in folder ``path``, or of the study file ``path`` belongs to.

    For a file, the other instances of its study are looked for in the same folder (and its
    sub-folders). A folder must hold exactly one study.

    Args:
        path: a study folder or one DICOM file of the study.
        cancel: stops the folder scan.
        progress: called with the number of instances found so far.

    Raises:
        ReportError: no DICOM instance found, several studies in the folder, cancelled, or the
            file cannot be read. The message names the path.
    """
    path = Path(path)
    if not path.exists():
        raise ReportError(f"Study {str(path)!r} does not exist.")
    wanted: str | None = None
    folder = path
    if path.is_file():
        try:
            record = read_record(path)
        except DicomReadError as exc:
            raise ReportError(f"Study file {str(path)!r} cannot be read: {exc.message}") from exc
        if record is None:
            raise ReportError(f"Study file {str(path)!r} is not a DICOM instance.")
        wanted = record.study_uid
        folder = path.parent
    records: list[InstanceRecord] = []
    for batch in scan([folder], cancel=cancel):
        records.extend(r for r in batch if wanted is None or r.study_uid == wanted)
        if progress is not None:
            progress(len(records))
    if cancel is not None and cancel.is_set():
        raise ReportError(f"Reading study {str(path)!r} was cancelled.")
    if not records:
        raise ReportError(f"No DICOM instance found in {str(path)!r}.")
    studies = Counter(r.study_uid for r in records)
    if len(studies) > 1:
        raise ReportError(
            f"Folder {str(path)!r} holds {len(studies)} studies; give a folder with one study "
            "or a file of the study."
        )
    study_uid = records[0].study_uid
    try:
        validate_uid(study_uid, "Study Instance UID")
    except InvalidUIDError as exc:
        raise ReportError(f"Study {str(path)!r} cannot be reported on: {exc.message}") from exc
    images = [r for r in records if not _is_sr_class(r.sop_class_uid)]
    source = next((r for r in images), records[0])
    if wanted is not None and path.is_file():
        source = next((r for r in records if r.path == path), source)
    try:
        header = read_dicom(source.path, stop_before_pixels=True, force=True)
    except DicomReadError as exc:
        raise ReportError(exc.message) from exc
    except (OSError, InvalidDicomError, ValueError) as exc:
        raise ReportError(f"File {str(source.path)!r} cannot be read: {exc}.") from exc
    modalities = Counter(r.modality for r in images if r.modality)
    numbers = [r.series_number for r in records if r.series_number is not None]
    instances = tuple(
        dict.fromkeys(
            EvidenceInstance(r.study_uid, r.series_uid, r.sop_class_uid, r.sop_instance_uid)
            for r in images
            if r.sop_instance_uid != NO_SOP_INSTANCE_UID and r.sop_class_uid
        )
    )
    return StudyContext(
        study_uid=study_uid,
        patient_name=_text(header, "PatientName"),
        patient_id=_text(header, "PatientID"),
        patient_birth_date=_text(header, "PatientBirthDate"),
        patient_sex=_text(header, "PatientSex"),
        study_date=_text(header, "StudyDate"),
        study_time=_text(header, "StudyTime"),
        study_id=_text(header, "StudyID"),
        accession_number=_text(header, "AccessionNumber"),
        referring_physician=_text(header, "ReferringPhysicianName"),
        study_description=_text(header, "StudyDescription"),
        institution_name=_text(header, "InstitutionName"),
        modality=modalities.most_common(1)[0][0] if modalities else "",
        body_part=_text(header, "BodyPartExamined"),
        instances=instances,
        next_series_number=max(numbers, default=0) + 1,
    )


def study_context_from_pacs(
    node: Any,
    study_uid: str,
    *,
    cancel: threading.Event | None = None,
) -> StudyContext:
    """The context of study ``study_uid`` from C-FIND queries to ``node`` (a PACS node).

    One study-level query for the patient and study attributes, one series-level query, then
    one image-level query per series for the instances.

    Raises:
        ReportError: the PACS does not know the study.
        NetError: the queries failed (connection, association, status).
    """
    from tuiviewer.net.find import FindQuery, QueryLevel, find

    study_uid = validate_uid(study_uid, "Study Instance UID")
    studies = list(
        find(
            node,
            FindQuery(
                level=QueryLevel.STUDY,
                study_uid=study_uid,
                extra={"StudyID": "", "InstitutionName": ""},
            ),
            cancel=cancel,
        )
    )
    if not studies:
        raise ReportError(f"The PACS {node.describe()} has no study {study_uid!r}.")
    study = studies[0]
    series = list(
        find(node, FindQuery(level=QueryLevel.SERIES, study_uid=study_uid), cancel=cancel)
    )
    instances: list[EvidenceInstance] = []
    modalities: Counter[str] = Counter()
    numbers: list[int] = []
    body_part = ""
    for item in series:
        series_uid = _text(item, "SeriesInstanceUID")
        modality = _text(item, "Modality")
        number = item.get("SeriesNumber")
        if number not in (None, ""):
            numbers.append(int(number))
        if modality == "SR":
            continue
        body_part = body_part or _text(item, "BodyPartExamined")
        for image in find(
            node,
            FindQuery(level=QueryLevel.IMAGE, study_uid=study_uid, series_uid=series_uid),
            cancel=cancel,
        ):
            sop_class = _text(image, "SOPClassUID")
            if _is_sr_class(sop_class):
                continue
            modalities[modality] += 1
            instances.append(
                EvidenceInstance(study_uid, series_uid, sop_class, _text(image, "SOPInstanceUID"))
            )
    return StudyContext(
        study_uid=study_uid,
        patient_name=_text(study, "PatientName"),
        patient_id=_text(study, "PatientID"),
        patient_birth_date=_text(study, "PatientBirthDate"),
        patient_sex=_text(study, "PatientSex"),
        study_date=_text(study, "StudyDate"),
        study_time=_text(study, "StudyTime"),
        study_id=_text(study, "StudyID"),
        accession_number=_text(study, "AccessionNumber"),
        referring_physician=_text(study, "ReferringPhysicianName"),
        study_description=_text(study, "StudyDescription"),
        institution_name=_text(study, "InstitutionName"),
        modality=modalities.most_common(1)[0][0] if modalities else "",
        body_part=body_part,
        instances=tuple(dict.fromkeys(instances)),
        next_series_number=max(numbers, default=0) + 1,
    )


@dataclass(frozen=True)
class RemoteReport:
    """An SR document of a study found on the PACS (see :func:`find_reports_on_pacs`)."""

    study_uid: str
    series_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    completion_flag: str
    """As the PACS returned it ("" when the PACS does not return the key)."""
    verification_flag: str
    content_date: str

    @property
    def is_final(self) -> bool:
        """Verified and complete: a signed report exists."""
        return self.verification_flag == "VERIFIED" and self.completion_flag != "PARTIAL"


def find_reports_on_pacs(
    node: Any, study_uid: str, *, cancel: threading.Event | None = None
) -> list[RemoteReport]:
    """The SR documents of study ``study_uid`` on ``node``: SR series, then their instances.

    Completion Flag, Verification Flag and Content Date are asked for as return keys (PS3.4
    C.6.1.1.5); PACS that do not index them return them empty. The caller retrieves a
    document to see who signed it.

    Raises:
        NetError: the queries failed.
    """
    from tuiviewer.net.find import FindQuery, QueryLevel, find

    study_uid = validate_uid(study_uid, "Study Instance UID")
    found: list[RemoteReport] = []
    for series in find(
        node,
        FindQuery(level=QueryLevel.SERIES, study_uid=study_uid, modality="SR"),
        cancel=cancel,
    ):
        series_uid = _text(series, "SeriesInstanceUID")
        for image in find(
            node,
            FindQuery(
                level=QueryLevel.IMAGE,
                study_uid=study_uid,
                series_uid=series_uid,
                extra={"CompletionFlag": "", "VerificationFlag": "", "ContentDate": ""},
            ),
            cancel=cancel,
        ):
            sop_class = _text(image, "SOPClassUID")
            if sop_class and not _is_sr_class(sop_class):
                continue
            found.append(
                RemoteReport(
                    study_uid,
                    series_uid,
                    _text(image, "SOPInstanceUID"),
                    sop_class,
                    _text(image, "CompletionFlag"),
                    _text(image, "VerificationFlag"),
                    _text(image, "ContentDate"),
                )
            )
    return found


# --- writing --------------------------------------------------------------------------------


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
    try:
        return validate_uid(value, what)
    except InvalidUIDError as exc:
        raise ReportError(exc.message) from exc


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
    study_uid = _check_uid(study.study_uid, "Study Instance UID")
    now = now or dt.datetime.now().astimezone()
    date, time = _da_tm(now)

    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.InstanceCreationDate, ds.InstanceCreationTime = date, time
    ds.SOPClassUID = BASIC_TEXT_SR
    ds.SOPInstanceUID = sop_instance_uid or generate_uid()
    ds.StudyDate = study.study_date
    ds.ContentDate = date
    ds.StudyTime = study.study_time
    ds.ContentTime = time
    ds.AccessionNumber = study.accession_number
    ds.Modality = "SR"
    ds.Manufacturer = MANUFACTURER
    if study.institution_name:
        ds.InstitutionName = study.institution_name
    ds.ReferringPhysicianName = study.referring_physician
    if study.study_description:
        ds.StudyDescription = study.study_description
    ds.SeriesDescription = f"{report.title.meaning} ({report.status.value})"
    ds.ReferencedPerformedProcedureStepSequence = DicomSequence([])
    ds.PatientName = study.patient_name
    ds.PatientID = study.patient_id
    ds.PatientBirthDate = study.patient_birth_date
    ds.PatientSex = study.patient_sex
    ds.SoftwareVersions = __version__
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.StudyID = study.study_id
    ds.SeriesNumber = study.next_series_number
    ds.InstanceNumber = 1

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
        observer.VerifyingOrganization = (
            report.organization or study.institution_name or "Unknown organization"
        )
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
        for uid, what in (
            (key.study_uid, "Study Instance UID"),
            (key.series_uid, "Series Instance UID"),
            (key.sop_instance_uid, "SOP Instance UID"),
            (key.sop_class_uid, "SOP Class UID"),
        ):
            _check_uid(uid, f"The key image's {what}")
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

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    return ds


def _content_tree(report: Report) -> list[Dataset]:
    items: list[Dataset] = []
    language = _content("HAS CONCEPT MOD", "CODE", _LANGUAGE)
    language.ConceptCodeSequence = [_code_item(language_code(report.language))]
    items.append(language)
    reader = (report.reader or "").strip()
    if reader:
        observer_type = _content("HAS OBS CONTEXT", "CODE", _OBSERVER_TYPE)
        observer_type.ConceptCodeSequence = [_code_item(_PERSON)]
        items.append(observer_type)
        name = _content("HAS OBS CONTEXT", "PNAME", _PERSON_NAME)
        name.PersonName = reader
        items.append(name)
        if report.organization:
            org = _content("HAS OBS CONTEXT", "TEXT", _PERSON_ORG)
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
        images = []
        for key in report.key_images:
            image = _content("CONTAINS", "IMAGE", KEY_IMAGE_PURPOSE)
            ref = Dataset()
            ref.ReferencedSOPClassUID = key.sop_class_uid
            ref.ReferencedSOPInstanceUID = key.sop_instance_uid
            if key.frame is not None:
                ref.ReferencedFrameNumber = key.frame
            image.ReferencedSOPSequence = [ref]
            images.append(image)
        container.ContentSequence = images
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


# --- reading --------------------------------------------------------------------------------


def _code_of(seq: Any) -> Code | None:
    if not seq:
        return None
    item = seq[0]
    return Code(
        str(
            item.get("CodeValue", "")
            or item.get("LongCodeValue", "")
            or item.get("URNCodeValue", "")
        ),
        str(item.get("CodingSchemeDesignator", "")),
        str(item.get("CodeMeaning", "")),
    )


def _norm_text(value: Any) -> str:
    return str(value or "").replace("\r\n", "\n").replace("\r", "\n")


def report_status(ds: Dataset) -> ReportStatus:
    """FINAL when Completion Flag is COMPLETE, Verification Flag VERIFIED and the Preliminary
    Flag (if present) is not PRELIMINARY (PS3.3 C.17.2); PRELIMINARY otherwise."""
    completion = str(ds.get("CompletionFlag", "") or "").upper()
    verification = str(ds.get("VerificationFlag", "") or "").upper()
    preliminary = str(ds.get("PreliminaryFlag", "") or "").upper()
    if completion == "COMPLETE" and verification == "VERIFIED" and preliminary != "PRELIMINARY":
        return ReportStatus.FINAL
    return ReportStatus.PRELIMINARY


def is_report(ds: Dataset) -> bool:
    """True for a narrative diagnostic imaging report: a general-purpose SR (Basic Text,
    Enhanced, Comprehensive, Comprehensive 3D, Extensible) whose root CONTAINER is titled from
    CID 7000 or built with TID 2000. Dose reports, CAD and key object selection documents (own
    SOP classes) and measurement reports (TID 1500 titles) are not."""
    if str(ds.get("SOPClassUID", "")) not in SR_STORAGE_CLASSES:
        return False
    if str(ds.get("ValueType", "")) != "CONTAINER":
        return False
    title = _code_of(ds.get("ConceptNameCodeSequence"))
    if title is not None:
        if title.scheme == "LN" and title.value in REPORT_TITLES:
            return True
        if title.scheme == "DCM" and title.value in _DCM_TITLES:
            return True
    for template in ds.get("ContentTemplateSequence", []) or []:
        if (
            str(template.get("TemplateIdentifier", "")) == "2000"
            and str(template.get("MappingResource", "")) == "DCMR"
        ):
            return True
    return False


def _evidence_index(ds: Dataset) -> dict[str, tuple[str, str]]:
    index: dict[str, tuple[str, str]] = {}
    for keyword in ("CurrentRequestedProcedureEvidenceSequence", "PertinentOtherEvidenceSequence"):
        for study in ds.get(keyword, []) or []:
            for series in study.get("ReferencedSeriesSequence", []) or []:
                for sop in series.get("ReferencedSOPSequence", []) or []:
                    index[str(sop.get("ReferencedSOPInstanceUID", ""))] = (
                        str(study.get("StudyInstanceUID", "")),
                        str(series.get("SeriesInstanceUID", "")),
                    )
    return index


def _images(
    items: Iterable[Dataset], index: dict[str, tuple[str, str]], fallback: tuple[str, str]
) -> list[KeyImage]:
    found: list[KeyImage] = []
    for item in items:
        if str(item.get("ValueType", "")) == "IMAGE":
            for ref in item.get("ReferencedSOPSequence", []) or []:
                sop = str(ref.get("ReferencedSOPInstanceUID", ""))
                study, series = index.get(sop, fallback)
                frames = ref.get("ReferencedFrameNumber")
                frame_list: list[int | None] = (
                    [int(f) for f in frames]
                    if isinstance(frames, (list, tuple)) or type(frames).__name__ == "MultiValue"
                    else ([] if frames in (None, "") else [int(frames)])
                )
                for frame in frame_list or [None]:
                    found.append(
                        KeyImage(
                            str(ref.get("ReferencedSOPClassUID", "")), sop, study, series, frame
                        )
                    )
        found.extend(_images(item.get("ContentSequence", []) or [], index, fallback))
    return found


def _texts(items: Iterable[Dataset]) -> list[str]:
    texts: list[str] = []
    for item in items:
        if str(item.get("ValueType", "")) == "TEXT" and item.get("TextValue"):
            texts.append(_norm_text(item.TextValue).strip("\n"))
        texts.extend(_texts(item.get("ContentSequence", []) or []))
    return texts


def report_from_dataset(ds: Dataset) -> Report:
    """The report an SR dataset holds (see :func:`read_sr`).

    Raises:
        ReportError: the dataset is not an SR document.
    """
    sop_class = str(ds.get("SOPClassUID", ""))
    if not _is_sr_class(sop_class) or str(ds.get("ValueType", "")) != "CONTAINER":
        raise ReportError(f"The document is not a structured report (SOP Class UID {sop_class!r}).")
    title = _code_of(ds.get("ConceptNameCodeSequence")) or REPORT_TITLES["18748-4"]
    study_uid = str(ds.get("StudyInstanceUID", ""))
    series_uid = str(ds.get("SeriesInstanceUID", ""))
    index = _evidence_index(ds)
    language = "en"
    observer: str | None = None
    organization: str | None = None
    sections: list[Section] = []
    keys: list[KeyImage] = []
    for item in ds.get("ContentSequence", []) or []:
        concept = _code_of(item.get("ConceptNameCodeSequence"))
        value_type = str(item.get("ValueType", ""))
        if concept is not None and concept.same_concept(_LANGUAGE) and value_type == "CODE":
            code = _code_of(item.get("ConceptCodeSequence"))
            language = code.value if code is not None else language
        elif concept is not None and concept.same_concept(_PERSON_NAME):
            observer = str(item.get("PersonName", "") or "") or observer
        elif concept is not None and concept.same_concept(_PERSON_ORG):
            organization = str(item.get("TextValue", "") or "") or organization
        elif value_type == "CONTAINER":
            children = list(item.get("ContentSequence", []) or [])
            keys.extend(_images(children, index, (study_uid, series_uid)))
            text = "\n\n".join(t for t in _texts(children) if t)
            if not text:
                continue
            kind = SectionKind.from_heading(concept) if concept is not None else None
            if kind is None:
                # A heading we do not model (e.g. Conclusions from another writer): kept as
                # findings under its own name, so no text of the document is lost.
                label = concept.meaning if concept is not None else "Untitled section"
                kind, text = SectionKind.FINDINGS, f"{label}:\n{text}"
            sections.append(Section(kind, text))
        elif value_type == "IMAGE":
            keys.extend(_images([item], index, (study_uid, series_uid)))
        elif (
            value_type == "TEXT"
            and item.get("TextValue")
            and str(item.get("RelationshipType", "")) == "CONTAINS"
        ):
            sections.append(Section(SectionKind.FINDINGS, _norm_text(item.TextValue)))
    status = report_status(ds)
    reader = observer
    signed_at: dt.datetime | None = None
    verifiers = ds.get("VerifyingObserverSequence", []) or []
    if verifiers:
        verifier = verifiers[-1]
        reader = str(verifier.get("VerifyingObserverName", "") or "") or reader
        organization = str(verifier.get("VerifyingOrganization", "") or "") or organization
        when = verifier.get("VerificationDateTime")
        if when:
            try:
                parsed = DT(str(when))
            except ValueError:
                parsed = None
            if parsed is not None:
                # A plain datetime: pydicom's DT subclass compares and prints differently.
                signed_at = dt.datetime.combine(parsed.date(), parsed.timetz())
    predecessors = tuple(
        DocumentRef(
            str(study.get("StudyInstanceUID", "")),
            str(series.get("SeriesInstanceUID", "")),
            str(sop.get("ReferencedSOPInstanceUID", "")),
            str(sop.get("ReferencedSOPClassUID", "")),
        )
        for study in ds.get("PredecessorDocumentsSequence", []) or []
        for series in study.get("ReferencedSeriesSequence", []) or []
        for sop in series.get("ReferencedSOPSequence", []) or []
    )
    return Report(
        sections=tuple(sections),
        key_images=tuple(dict.fromkeys(keys)),
        status=status,
        reader=reader,
        organization=organization,
        signed_at=signed_at,
        predecessors=predecessors,
        title=title,
        language=language,
        document=DocumentRef(study_uid, series_uid, str(ds.get("SOPInstanceUID", "")), sop_class),
    )


def read_sr(path: Path) -> Report:
    """Read the report in SR file ``path``; ``document`` says where it is stored.

    Sections are recognised by their CID 7001 heading (LOINC or the older DCM codes); text under
    other headings is kept in Findings under the heading's name. Key images are every IMAGE
    item, their study and series taken from the evidence sequences.

    Raises:
        ReportError: the file cannot be read or is not an SR document.
    """
    path = Path(path)
    try:
        ds = read_dicom(path)
    except DicomReadError as exc:
        raise ReportError(exc.message) from exc
    except (OSError, InvalidDicomError, ValueError) as exc:
        raise ReportError(f"Report file {str(path)!r} cannot be read: {exc}.") from exc
    try:
        return report_from_dataset(ds)
    except ReportError as exc:
        raise ReportError(f"File {str(path)!r}: {exc.message}") from exc


def as_new_document(report: Report) -> Report:
    """``report`` without its storage location, so writing it makes a new document."""
    return replace(report, document=None)


def sr_files(paths: Sequence[Path]) -> list[Path]:
    """The SR documents among ``paths`` (files and folders, recursively), by header only."""
    found: list[Path] = []
    for batch in scan(list(paths)):
        found.extend(r.path for r in batch if _is_sr_class(r.sop_class_uid))
    return found
