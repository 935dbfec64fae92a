"""Plain typed rows of patients, studies, series and instances, for screens and services.

A C-FIND answer (and tomorrow a QIDO-RS one) is turned into one of these frozen dataclasses
where it arrives; everything above works on the rows, never on raw identifiers, and importing
them costs no network code (they used to live in ``net/find.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # pydicom is imported where a Dataset is read: the command line's lean C-FIND
    # (net/leanfind.py) makes rows from plain text and must not pay for importing it.
    from pydicom.dataset import Dataset


class QueryLevel(StrEnum):
    """Query/Retrieve Level (0008,0052), PS3.4 C.6.1.1 / C.6.2.1."""

    PATIENT = "PATIENT"
    STUDY = "STUDY"
    SERIES = "SERIES"
    IMAGE = "IMAGE"


#: VRs whose ASCII bytes pydicom turns into the same text whatever the character set: the
#: value with trailing spaces and NULs cut, values split at backslashes.
_WHOLE_STRIPPED = frozenset({"AE", "AS", "CS", "DA", "DT", "TM", "UI", "PN", "IS"})
#: Text VRs: each of the backslash-separated values loses its own trailing padding.
_EACH_STRIPPED = frozenset({"SH", "LO", "UC"})


@cache
def _tag(keyword: str) -> int:
    from pydicom.datadict import tag_for_keyword

    tag = tag_for_keyword(keyword)
    if tag is None:  # a programming error: the rows name dictionary keywords only
        raise KeyError(keyword)
    return tag


def _plain(ds: Dataset, keyword: str) -> str | None:
    """The text of ``keyword`` read straight from its bytes, as pydicom would decode it; None
    when only pydicom's conversion will do (already converted, non-ASCII or ISO 2022 escapes,
    another VR).

    Converting an element through pydicom (validation, value classes, character sets) costs
    far more than the few string operations it amounts to for an ASCII value, and a C-FIND of
    a thousand studies reads thirteen values of each answer.
    """
    from pydicom.datadict import dictionary_VR
    from pydicom.dataelem import RawDataElement

    tag = _tag(keyword)
    raw = ds.get_item(tag, keep_deferred=True)
    if raw is None:
        return ""
    if not isinstance(raw, RawDataElement) or raw.value is None:
        return None
    return plain_text(raw.VR or dictionary_VR(tag), raw.value)


def plain_text(vr: str, data: bytes) -> str | None:
    """The text of a value of VR ``vr`` encoded as ``data``, as pydicom would decode it, when
    that takes no character set: ASCII without ISO 2022 escapes, of a VR in the sets above;
    None otherwise."""
    if not data.isascii() or b"\x1b" in data:
        return None
    if vr in _WHOLE_STRIPPED:
        return data.decode("ascii").rstrip(" \x00")
    if vr in _EACH_STRIPPED:
        return "\\".join(v.rstrip("\x00 ") for v in data.decode("ascii").split("\\"))
    return None


#: An answer already reduced to the :func:`plain_text` of its keys (keyword → text; a missing
#: keyword is an absent element).
PlainAnswer = Mapping[str, str]


def _value(ds: Dataset | PlainAnswer, keyword: str) -> Any:
    if isinstance(ds, Mapping):
        return ds.get(keyword, "")
    plain = _plain(ds, keyword)
    return ds.get(keyword) if plain is None else plain


def _text(ds: Dataset | PlainAnswer, keyword: str) -> str:
    value = _value(ds, keyword)
    if value is None or value == "":
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value)


def _multi(ds: Dataset | PlainAnswer, keyword: str) -> tuple[str, ...]:
    value = _value(ds, keyword)
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return tuple(v for v in value.split("\\") if v)
    try:
        return tuple(str(v) for v in value if str(v))
    except TypeError:
        return (str(value),)


def _int(ds: Dataset | PlainAnswer, keyword: str) -> int | None:
    value = _value(ds, keyword)
    if value is None or value == "":
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        return None


@dataclass(frozen=True)
class PatientRow:
    """One patient-level match."""

    patient_id: str
    patient_name: str
    birth_date: str
    sex: str
    study_count: int | None


@dataclass(frozen=True)
class StudyRow:
    """One study-level match."""

    uid: str
    date: str
    time: str
    description: str
    accession: str
    patient_name: str
    patient_id: str
    birth_date: str
    sex: str
    modalities: tuple[str, ...]
    series_count: int | None
    instance_count: int | None
    referring_physician: str


@dataclass(frozen=True)
class SeriesRow:
    """One series-level match."""

    uid: str
    study_uid: str
    modality: str
    number: int | None
    description: str
    instance_count: int | None
    body_part: str


@dataclass(frozen=True)
class ImageRow:
    """One image-level (instance) match."""

    uid: str
    sop_class_uid: str
    series_uid: str
    study_uid: str
    number: int | None


Row = PatientRow | StudyRow | SeriesRow | ImageRow


def to_row(level: QueryLevel | str, ds: Dataset | PlainAnswer) -> Row:
    """Convert a C-FIND answer to the row type of ``level``; missing keys become ""/None.

    ``ds`` is the answer as a Dataset, or as the :func:`plain_text` of its keys."""
    level = QueryLevel(level)
    if level is QueryLevel.PATIENT:
        return PatientRow(
            patient_id=_text(ds, "PatientID"),
            patient_name=_text(ds, "PatientName"),
            birth_date=_text(ds, "PatientBirthDate"),
            sex=_text(ds, "PatientSex"),
            study_count=_int(ds, "NumberOfPatientRelatedStudies"),
        )
    if level is QueryLevel.STUDY:
        return StudyRow(
            uid=_text(ds, "StudyInstanceUID"),
            date=_text(ds, "StudyDate"),
            time=_text(ds, "StudyTime"),
            description=_text(ds, "StudyDescription"),
            accession=_text(ds, "AccessionNumber"),
            patient_name=_text(ds, "PatientName"),
            patient_id=_text(ds, "PatientID"),
            birth_date=_text(ds, "PatientBirthDate"),
            sex=_text(ds, "PatientSex"),
            modalities=_multi(ds, "ModalitiesInStudy"),
            series_count=_int(ds, "NumberOfStudyRelatedSeries"),
            instance_count=_int(ds, "NumberOfStudyRelatedInstances"),
            referring_physician=_text(ds, "ReferringPhysicianName"),
        )
    if level is QueryLevel.SERIES:
        return SeriesRow(
            uid=_text(ds, "SeriesInstanceUID"),
            study_uid=_text(ds, "StudyInstanceUID"),
            modality=_text(ds, "Modality"),
            number=_int(ds, "SeriesNumber"),
            description=_text(ds, "SeriesDescription"),
            instance_count=_int(ds, "NumberOfSeriesRelatedInstances"),
            body_part=_text(ds, "BodyPartExamined"),
        )
    return ImageRow(
        uid=_text(ds, "SOPInstanceUID"),
        sop_class_uid=_text(ds, "SOPClassUID"),
        series_uid=_text(ds, "SeriesInstanceUID"),
        study_uid=_text(ds, "StudyInstanceUID"),
        number=_int(ds, "InstanceNumber"),
    )
