"""What a C-FIND asks, without pydicom: the models, the return keys per level and the query.

Both C-FIND clients build their identifier from these: :mod:`tuiviewer.net.find` (pynetdicom,
for the screens) and :mod:`tuiviewer.net.leanfind` (the command line's ``find``, which must not
pay for importing pydicom and pynetdicom). Keys are checked here by one rule for both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum

from tuiviewer.dicom.rows import QueryLevel


class QueryModel(Enum):
    """Query/Retrieve information models, PS3.4 C.6 (C.6.1 Patient Root, C.6.2 Study Root).

    The value is the C-FIND SOP Class UID. Study Root has no PATIENT level.
    """

    PATIENT_ROOT = "1.2.840.10008.5.1.4.1.2.1.1"
    STUDY_ROOT = "1.2.840.10008.5.1.4.1.2.2.1"


#: Return keys per level (PS3.4 C.6.1.1 and C.6.2.1 tables), requested empty.
RETURN_KEYS: dict[QueryLevel, tuple[str, ...]] = {
    QueryLevel.PATIENT: (
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "NumberOfPatientRelatedStudies",
    ),
    QueryLevel.STUDY: (
        "StudyInstanceUID",
        "StudyDate",
        "StudyTime",
        "StudyDescription",
        "AccessionNumber",
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "ModalitiesInStudy",
        "NumberOfStudyRelatedSeries",
        "NumberOfStudyRelatedInstances",
        "ReferringPhysicianName",
    ),
    QueryLevel.SERIES: (
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "Modality",
        "SeriesNumber",
        "SeriesDescription",
        "NumberOfSeriesRelatedInstances",
        "BodyPartExamined",
    ),
    QueryLevel.IMAGE: (
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "SOPInstanceUID",
        "SOPClassUID",
        "InstanceNumber",
    ),
}

QUERY_CHARSET = "ISO_IR 192"


def validate_date_range(value: str) -> str:
    """Check a DA matching value: ``YYYYMMDD``, ``A-B``, ``-B`` or ``A-`` (PS3.4 C.2.2.2.5).

    Raises:
        ValueError: not of that form, not a real date, or the range runs backwards.
    """
    text = value.strip()
    if not text:
        return ""
    parts = text.split("-")
    if len(parts) > 2 or parts == ["", ""]:
        raise ValueError(
            f"Study date {value!r} must be YYYYMMDD or a range YYYYMMDD-YYYYMMDD "
            "(either end may be left open)."
        )
    dates: list[date | None] = []
    for part in parts:
        if not part:
            dates.append(None)
            continue
        try:
            if len(part) != 8 or not part.isdigit():
                raise ValueError
            dates.append(datetime.strptime(part, "%Y%m%d").date())
        except ValueError:
            raise ValueError(
                f"Study date {value!r}: {part!r} is not a date of the form YYYYMMDD."
            ) from None
    if len(dates) == 2 and dates[0] and dates[1] and dates[0] > dates[1]:
        raise ValueError(f"Study date range {value!r} ends before it starts.")
    return text


@dataclass(frozen=True)
class FindQuery:
    """What to look for. Empty strings mean "any"; ``*`` and ``?`` wildcards pass through."""

    level: QueryLevel = QueryLevel.STUDY
    patient_name: str = ""
    patient_id: str = ""
    accession_number: str = ""
    study_date: str = ""
    """A date or a range ``20240101-20240131``."""
    modality: str = ""
    """ModalitiesInStudy at study level, Modality at series/image level."""
    study_description: str = ""
    referring_physician: str = ""
    study_uid: str = ""
    series_uid: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)
    """Any other ``Keyword: value`` matching or return key (validated against the dictionary)."""


def check_key(keyword: str, tag: int | None, vr: str, value: str) -> int:
    """Return ``tag`` if ``keyword`` (of VR ``vr``) can carry ``value`` in an identifier.

    Raises:
        ValueError: not a dictionary keyword, a sequence, or a binary number with a value.
    """
    if tag is None:
        raise ValueError(f"{keyword!r} is not a DICOM keyword.")
    if vr == "SQ":
        raise ValueError(f"{keyword!r} is a sequence; sequence matching is not supported.")
    if vr in ("US", "SS", "UL", "SL", "FL", "FD") and value:
        raise ValueError(f"{keyword!r} ({vr}) cannot be a query key with a value.")
    return tag


def identifier_keys(query: FindQuery, model: QueryModel) -> list[tuple[str, str]]:
    """``(keyword, value)`` of every key of ``query``'s identifier after Specific Character Set
    and Query/Retrieve Level, in the order they are set (a later one replaces an earlier one).

    Raises:
        ValueError: invalid date, or PATIENT level with the Study Root model.
    """
    level = QueryLevel(query.level)
    if level is QueryLevel.PATIENT and model is QueryModel.STUDY_ROOT:
        raise ValueError("The Study Root model has no PATIENT level; use Patient Root.")
    keys = [(keyword, "") for keyword in RETURN_KEYS[level]]
    if model is QueryModel.PATIENT_ROOT and level is not QueryLevel.PATIENT:
        keys.append(("PatientID", ""))  # unique key of the level above (PS3.4 C.6.1.1)
    filters: dict[str, str] = {
        "PatientName": query.patient_name,
        "PatientID": query.patient_id,
        "AccessionNumber": query.accession_number,
        "StudyDate": validate_date_range(query.study_date),
        "StudyDescription": query.study_description,
        "ReferringPhysicianName": query.referring_physician,
        "StudyInstanceUID": query.study_uid,
        "SeriesInstanceUID": query.series_uid,
    }
    if query.modality:
        key = "ModalitiesInStudy" if level in (QueryLevel.PATIENT, QueryLevel.STUDY) else "Modality"
        filters[key] = query.modality
    keys += [(keyword, value.strip()) for keyword, value in filters.items() if value.strip()]
    keys += [(keyword, value.strip()) for keyword, value in query.extra.items()]
    return keys
