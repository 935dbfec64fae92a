"""Reading any SR document back: the report it holds, its state, and whether it is a report.

Sections are recognised by their CID 7001 heading; text under headings we do not model is kept
in Findings under its own name, so nothing of a document written by somebody else is lost.
Radiation dose, CAD and key object selection documents are not reports (:func:`is_report`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.valuerep import DT

from tuiviewer.dicom.reading import read_dicom
from tuiviewer.exceptions import DicomReadError
from tuiviewer.reports.model import (
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
from tuiviewer.reports.sr import LANGUAGE, PERSON_NAME, PERSON_ORG, SR_STORAGE_CLASSES, is_sr_class

# Titles of CID 7000 coded by DICOM itself (PS3.16 CID 7000), besides the LOINC ones.
_DCM_TITLES = frozenset({"125195", "125196", "125197", "125200", "111400"})


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
    if not is_sr_class(sop_class) or str(ds.get("ValueType", "")) != "CONTAINER":
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
        if concept is not None and concept.same_concept(LANGUAGE) and value_type == "CODE":
            code = _code_of(item.get("ConceptCodeSequence"))
            language = code.value if code is not None else language
        elif concept is not None and concept.same_concept(PERSON_NAME):
            observer = str(item.get("PersonName", "") or "") or observer
        elif concept is not None and concept.same_concept(PERSON_ORG):
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
