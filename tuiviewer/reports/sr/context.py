"""What an SR copies from the study it reports on (Patient and General Study modules) and the
instances it lists as evidence, read from the study's files on disk."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from tuiviewer.dicom.reading import read_dicom
from tuiviewer.dicom.scanning import NO_SOP_INSTANCE_UID, InstanceRecord, read_record, scan
from tuiviewer.exceptions import DicomReadError
from tuiviewer.reports.model import (
    ReportError,
)
from tuiviewer.reports.sr import is_sr_class
from tuiviewer.store import InvalidUIDError, foreign_uid


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


def study_text(ds: Dataset, keyword: str) -> str:
    """The value of ``keyword`` as text ("" when absent; multiple values joined by ``\\``)."""
    value = ds.get(keyword)
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value)


def study_context(
    study: Dataset,
    study_uid: str,
    *,
    modalities: Counter[str],
    body_part: str,
    instances: Iterable[EvidenceInstance],
    series_numbers: Iterable[int],
) -> StudyContext:
    """The context of ``study_uid``, its Patient and General Study attributes read from
    ``study`` (a file's header or a study-level C-FIND answer); the main modality is the most
    frequent of ``modalities``, the report's series number the next after ``series_numbers``."""
    return StudyContext(
        study_uid=study_uid,
        patient_name=study_text(study, "PatientName"),
        patient_id=study_text(study, "PatientID"),
        patient_birth_date=study_text(study, "PatientBirthDate"),
        patient_sex=study_text(study, "PatientSex"),
        study_date=study_text(study, "StudyDate"),
        study_time=study_text(study, "StudyTime"),
        study_id=study_text(study, "StudyID"),
        accession_number=study_text(study, "AccessionNumber"),
        referring_physician=study_text(study, "ReferringPhysicianName"),
        study_description=study_text(study, "StudyDescription"),
        institution_name=study_text(study, "InstitutionName"),
        modality=modalities.most_common(1)[0][0] if modalities else "",
        body_part=body_part,
        instances=tuple(dict.fromkeys(instances)),
        next_series_number=max(series_numbers, default=0) + 1,
    )


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
        foreign_uid(study_uid, "Study Instance UID")
    except InvalidUIDError as exc:
        raise ReportError(f"Study {str(path)!r} cannot be reported on: {exc.message}") from exc
    images = [r for r in records if not is_sr_class(r.sop_class_uid)]
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
    return study_context(
        header,
        study_uid,
        modalities=modalities,
        body_part=study_text(header, "BodyPartExamined"),
        instances=instances,
        series_numbers=numbers,
    )
