"""Measurements that go into the report: the per-study list on disk, their text, and the DICOM
TID 1500 "Measurement Report" (Comprehensive SR) that carries them beside the TID 2000 report.

A :class:`Measurement` holds what was drawn (image positions, with the image it was drawn on)
and the values computed when it was drawn (:mod:`tuiviewer.render.measure`), so the report can
be written without the pixels. The list of a study is one JSON file per Study Instance UID in
``data_dir()/measurements`` (0700), written atomically and 0600, like report drafts, so it
survives a restart or a dropped link.

The SR follows PS3.16 TID 1500 (structure as highdicom builds it): the root CONTAINER
``126000`` Imaging Measurement Report with TID 1204 language, TID 1002 observer and
``121058`` Procedure reported; a TID 1600 Image Library of the images measured; and under
``126010`` Imaging Measurements one ``125007`` Measurement Group per measurement:

* ellipse and rectangle ROIs as TID 1410 Planar ROI groups: tracking identifier and UID, the
  ``111030`` Image Region SCOORD (ELLIPSE, or a closed POLYLINE) SELECTED FROM the image, and
  TID 1419 NUMs: mean, standard deviation, minimum and maximum as Derivation modifiers
  (``121401``) of the modality quantity (``112031`` Attenuation Coefficient in ``[hnsf'U]`` for
  CT), and the area in ``mm2``;
* lengths and angles as TID 1501 groups: one NUM (``410668003`` Length in ``mm``, ``1483009``
  Angle in ``deg``) INFERRED FROM its POLYLINE SCOORD.

Codes come from pydicom's tables of the standard (``pydicom.sr.codedict``). Measurements on a
reformat reference no stored image; they are written as TID 1501 groups without a region, their
plane and position in the tracking identifier.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from tuiviewer import locations
from tuiviewer.dicom.roi import RoiStats
from tuiviewer.exceptions import SaveError
from tuiviewer.files import write_atomically
from tuiviewer.reports.model import Code, KeyImage, ReportError
from tuiviewer.reports.sr import COMPREHENSIVE_SR, LANGUAGE, OBSERVER_TYPE, PERSON, PERSON_NAME
from tuiviewer.reports.sr.build import (
    _code_item,
    _content,
    _hierarchical,
    check_reference,
    document_base,
    image_item,
    language_code,
    with_file_meta,
)
from tuiviewer.reports.sr.context import StudyContext
from tuiviewer.store import InvalidUIDError, uid_name

__all__ = [
    "Measurement",
    "MeasurementError",
    "MeasurementKind",
    "MeasurementStore",
    "build_measurement_report",
    "measurements_text",
]

_FORMAT_VERSION = 1


class MeasurementError(ReportError):
    """A measurement list cannot be read or saved; what was on disk is intact."""

    title = "Measurements"


def _code(concept: Any) -> Code:
    """A pydicom ``Code`` as ours."""
    return Code(str(concept.value), str(concept.scheme_designator), str(concept.meaning))


_REPORT_TITLE = _code(codes.DCM.ImagingMeasurementReport)
_PROCEDURE_REPORTED = _code(codes.DCM.ProcedureReported)
_IMAGE_LIBRARY = _code(codes.DCM.ImageLibrary)
_IMAGE_LIBRARY_GROUP = _code(codes.DCM.ImageLibraryGroup)
_IMAGING_MEASUREMENTS = _code(codes.DCM.ImagingMeasurements)
_MEASUREMENT_GROUP = _code(codes.DCM.MeasurementGroup)
_TRACKING_ID = _code(codes.DCM.TrackingIdentifier)
_TRACKING_UID = _code(codes.DCM.TrackingUniqueIdentifier)
_IMAGE_REGION = _code(codes.DCM.ImageRegion)
_DERIVATION = _code(codes.DCM.Derivation)
_LENGTH = _code(codes.SCT.Length)
_ANGLE = _code(codes.SCT.Angle)
_AREA = _code(codes.SCT.Area)
_ATTENUATION = _code(codes.DCM.AttenuationCoefficient)
_STATISTICS = {
    "mean": _code(codes.SCT.Mean),
    "sd": _code(codes.SCT.StandardDeviation),
    "minimum": _code(codes.SCT.Minimum),
    "maximum": _code(codes.SCT.Maximum),
}
_UCUM_HU = Code("[hnsf'U]", "UCUM", "Hounsfield unit")
_UCUM_MM = Code("mm", "UCUM", "millimeter")
_UCUM_MM2 = Code("mm2", "UCUM", "square millimeter")
_UCUM_DEG = Code("deg", "UCUM", "degree")
_UCUM_PX = Code("{pixels}", "UCUM", "pixels")
_UCUM_PX2 = Code("{pixels2}", "UCUM", "square pixels")
_UCUM_UNITLESS = Code("1", "UCUM", "no units")
_PIXEL_VALUE = Code("PIXVAL", "99TUIVIEWER", "Pixel value")
#: CID 100 procedures by modality; others are "Imaging procedure".
_PROCEDURES = {"CT": _code(codes.SCT.ComputedTomography)}
_IMAGING_PROCEDURE = _code(codes.SCT.ImagingProcedure)


class MeasurementKind(Enum):
    """What was drawn."""

    LENGTH = "length"
    """Two points: start, end."""
    ANGLE = "angle"
    """Three points: first arm's end, vertex, second arm's end."""
    ELLIPSE = "ellipse"
    """Two points: centre, then (x radius, y radius) in pixels (axis-aligned)."""
    RECTANGLE = "rectangle"
    """Two points: opposite corners."""


@dataclass(frozen=True)
class Measurement:
    """One measurement of a study, with the values computed when it was drawn."""

    kind: MeasurementKind
    points: tuple[tuple[float, float], ...]
    """Image positions (x = column, y = row; integers at pixel centres); see the kind."""
    image: KeyImage | None
    """The stored image (frame) it was drawn on; None on a reformat."""
    label: str = ""
    """What the reader calls it (``"nodule RUL"``); the SR's tracking identifier."""
    length_mm: float | None = None
    angle_deg: float | None = None
    stats: RoiStats | None = None
    units: str = ""
    """Of the ROI statistics: ``"HU"`` for CT, a Rescale Type, or ``""``."""
    in_pixels: bool = False
    """The image had no Pixel Spacing: lengths and areas are in pixels."""
    where: str = ""
    """For a reformat: the plane and crosshair (``"coronal at (1.0, -2.5, 30.0) mm"``)."""
    uid: str = field(default_factory=lambda: str(generate_uid()))
    """Tracking Unique Identifier: the same measurement keeps it across report versions."""
    created: str = field(default_factory=lambda: dt.datetime.now().astimezone().isoformat())

    def __post_init__(self) -> None:
        wanted = {
            MeasurementKind.LENGTH: 2,
            MeasurementKind.ANGLE: 3,
            MeasurementKind.ELLIPSE: 2,
            MeasurementKind.RECTANGLE: 2,
        }[self.kind]
        if len(self.points) != wanted:
            raise ReportError(f"A {self.kind.value} needs {wanted} points, not {len(self.points)}.")

    @property
    def name(self) -> str:
        return self.label or f"{self.kind.value.capitalize()} {self.uid[-6:]}"

    @property
    def summary(self) -> str:
        """One line for the report text and the measurement list."""
        unit = "px" if self.in_pixels else "mm"
        if self.kind is MeasurementKind.LENGTH and self.length_mm is not None:
            return f"length {self.length_mm:.1f} {unit}"
        if self.kind is MeasurementKind.ANGLE and self.angle_deg is not None:
            return f"angle {self.angle_deg:.1f}°"
        if self.stats is not None:
            s, u = self.stats, f" {self.units}" if self.units else ""
            area = f"{s.area_mm2:.1f} {'px²' if self.in_pixels else 'mm²'}"
            return (
                f"{self.kind.value}: mean {s.mean:.1f}{u}, SD {s.sd:.1f}, min {s.minimum:g}, "
                f"max {s.maximum:g}, area {area}"
            )
        return self.kind.value

    # --- JSON ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "points": [list(p) for p in self.points],
            "image": None if self.image is None else _key_dict(self.image),
            "label": self.label,
            "length_mm": self.length_mm,
            "angle_deg": self.angle_deg,
            "stats": None if self.stats is None else _stats_dict(self.stats),
            "units": self.units,
            "in_pixels": self.in_pixels,
            "where": self.where,
            "uid": self.uid,
            "created": self.created,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Measurement:
        """Inverse of :meth:`to_dict`.

        Raises:
            ReportError: a key is missing or has the wrong type.
        """
        try:
            image = data.get("image")
            stats = data.get("stats")
            return cls(
                kind=MeasurementKind(data["kind"]),
                points=tuple((float(p[0]), float(p[1])) for p in data["points"]),
                image=None
                if image is None
                else KeyImage(
                    str(image["sop_class_uid"]),
                    str(image["sop_instance_uid"]),
                    str(image["study_uid"]),
                    str(image["series_uid"]),
                    None if image.get("frame") is None else int(image["frame"]),
                ),
                label=str(data.get("label", "")),
                length_mm=_opt_float(data.get("length_mm")),
                angle_deg=_opt_float(data.get("angle_deg")),
                stats=None if stats is None else RoiStats(**stats),
                units=str(data.get("units", "")),
                in_pixels=bool(data.get("in_pixels", False)),
                where=str(data.get("where", "")),
                uid=str(data["uid"]),
                created=str(data.get("created", "")),
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ReportError(f"A saved measurement is not valid: {exc!r}.") from exc


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _key_dict(key: KeyImage) -> dict[str, Any]:
    return {
        "sop_class_uid": key.sop_class_uid,
        "sop_instance_uid": key.sop_instance_uid,
        "study_uid": key.study_uid,
        "series_uid": key.series_uid,
        "frame": key.frame,
    }


def _stats_dict(stats: RoiStats) -> dict[str, Any]:
    return {
        "mean": stats.mean,
        "sd": stats.sd,
        "minimum": stats.minimum,
        "maximum": stats.maximum,
        "area_mm2": stats.area_mm2,
        "pixels": stats.pixels,
        "excluded": stats.excluded,
    }


def measurements_text(measurements: Sequence[Measurement]) -> str:
    """The measurements as report text, one ``- name: summary`` line each ("" when none)."""
    return "\n".join(f"- {m.name}: {m.summary}" for m in measurements)


# --------------------------------------------------------------------------------------------
# The per-study list on disk


def default_measurements_dir() -> Path:
    """``measurements`` in the user data dir."""
    return locations.data_dir() / "measurements"


class MeasurementStore:
    """Measurement lists on disk, one JSON file per Study Instance UID."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_measurements_dir()

    def path_for(self, study_uid: str) -> Path:
        """The file of ``study_uid``, named as the store and the drafts name it (a
        non-conformant UID from a PACS by its hash: :func:`tuiviewer.store.uid_name`).

        Raises:
            MeasurementError: ``study_uid`` is empty or too long to be an identifier (so it
                never names another path).
        """
        try:
            name = uid_name(study_uid, "Study Instance UID")
        except InvalidUIDError as exc:
            raise MeasurementError(
                f"No measurements can be kept for this study: {exc.message}"
            ) from exc
        return self.root / f"{name}.json"

    def load(self, study_uid: str) -> list[Measurement]:
        """The measurements of ``study_uid`` in the order drawn ([] when none).

        Raises:
            MeasurementError: invalid UID, or a file that is unreadable or corrupt.
        """
        path = self.path_for(study_uid)
        if not path.exists():
            return []
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MeasurementError(f"Measurements {str(path)!r} cannot be read: {exc}.") from exc
        if not isinstance(data, dict) or data.get("format") != _FORMAT_VERSION:
            raise MeasurementError(f"{str(path)!r} is not a tuiviewer measurement list (format 1).")
        try:
            return [Measurement.from_dict(item) for item in data["measurements"]]
        except (KeyError, TypeError, ReportError) as exc:
            raise MeasurementError(f"Measurements {str(path)!r} are corrupt: {exc}.") from exc

    def save(self, study_uid: str, measurements: Iterable[Measurement]) -> None:
        """Replace the list of ``study_uid`` atomically (0600); an empty list removes the file.

        Raises:
            MeasurementError: invalid UID or the write failed; the previous list is intact.
        """
        path = self.path_for(study_uid)
        items = [m.to_dict() for m in measurements]
        if not items:
            path.unlink(missing_ok=True)
            return
        payload = {"format": _FORMAT_VERSION, "study_uid": study_uid, "measurements": items}
        data = json.dumps(payload, ensure_ascii=False, indent=1).encode("utf-8")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self.root.chmod(0o700)
            write_atomically(path, lambda handle: handle.write(data), overwrite=True)
            path.chmod(0o600)
        except OSError as exc:
            raise MeasurementError(
                f"Cannot save the measurements in {str(self.root)!r}: {exc.strerror or exc}."
            ) from exc
        except SaveError as exc:
            raise MeasurementError(
                f"Could not save the measurements: {exc.message} The previous list is unchanged."
            ) from exc

    def add(self, study_uid: str, measurement: Measurement) -> list[Measurement]:
        """Append ``measurement`` and save; returns the new list."""
        items = [*self.load(study_uid), measurement]
        self.save(study_uid, items)
        return items

    def remove(self, study_uid: str, uid: str) -> list[Measurement]:
        """Remove the measurement with tracking UID ``uid`` and save; returns the new list.

        Raises:
            MeasurementError: no such measurement (the list is unchanged).
        """
        items = self.load(study_uid)
        kept = [m for m in items if m.uid != uid]
        if len(kept) == len(items):
            raise MeasurementError(f"No measurement with UID {uid!r} in this study.")
        self.save(study_uid, kept)
        return kept

    def relabel(self, study_uid: str, uid: str, label: str) -> list[Measurement]:
        """Give measurement ``uid`` a new label and save; returns the new list."""
        items = self.load(study_uid)
        if not any(m.uid == uid for m in items):
            raise MeasurementError(f"No measurement with UID {uid!r} in this study.")
        changed = [replace(m, label=label.strip()) if m.uid == uid else m for m in items]
        self.save(study_uid, changed)
        return changed


# --------------------------------------------------------------------------------------------
# TID 1500


def _num(relationship: str, concept: Code, value: float, unit: Code) -> Dataset:
    item = _content(relationship, "NUM", concept)
    measured = Dataset()
    # DS holds 16 characters: 6 significant digits keep 0.1 HU and 0.01 mm.
    measured.NumericValue = f"{value:.6g}"
    measured.MeasurementUnitsCodeSequence = [_code_item(unit)]
    item.MeasuredValueSequence = [measured]
    return item


def _scoord(
    relationship: str, concept: Code | None, kind: str, points: Sequence[float], key: KeyImage
) -> Dataset:
    item = Dataset()
    item.RelationshipType = relationship
    item.ValueType = "SCOORD"
    if concept is not None:
        item.ConceptNameCodeSequence = [_code_item(concept)]
    item.GraphicType = kind
    # PS3.3 C.18.6.1.2: (column, row) with 0\0 at the top left corner of the top left pixel;
    # our positions have integers at pixel centres, hence + 0.5.
    item.GraphicData = [float(v) + 0.5 for v in points]
    item.ContentSequence = [image_item("SELECTED FROM", key)]
    return item


def _region(m: Measurement) -> tuple[str, list[float]]:
    (a, b) = m.points
    if m.kind is MeasurementKind.ELLIPSE:
        (cx, cy), (rx, ry) = a, b
        major, minor = (
            ([cx - rx, cy, cx + rx, cy], [cx, cy - ry, cx, cy + ry])
            if rx >= ry
            else ([cx, cy - ry, cx, cy + ry], [cx - rx, cy, cx + rx, cy])
        )
        return "ELLIPSE", major + minor
    (x0, y0), (x1, y1) = a, b
    return "POLYLINE", [x0, y0, x1, y0, x1, y1, x0, y1, x0, y0]


def _quantity(modality: str, units: str) -> tuple[Code, Code]:
    """What an ROI's statistics measure, and its unit: HU for CT, MR signal intensity, else
    the stored pixel value (a private code: DICOM has no general one)."""
    if modality == "CT" and units in ("", "HU"):
        return _ATTENUATION, _UCUM_HU
    if modality == "MR":
        return _code(codes.DCM.MRSignalIntensity), _UCUM_UNITLESS
    return _PIXEL_VALUE, _UCUM_UNITLESS


def _group(m: Measurement, template: str, modality: str) -> Dataset:
    group = _content("CONTAINS", "CONTAINER", _MEASUREMENT_GROUP)
    group.ContinuityOfContent = "SEPARATE"
    reference = Dataset()
    reference.MappingResource = "DCMR"
    reference.TemplateIdentifier = template
    group.ContentTemplateSequence = [reference]
    tracking = _content("HAS OBS CONTEXT", "TEXT", _TRACKING_ID)
    tracking.TextValue = (m.name + (f" ({m.where})" if m.where else ""))[:64]
    tracking_uid = _content("HAS OBS CONTEXT", "UIDREF", _TRACKING_UID)
    tracking_uid.UID = m.uid
    items: list[Dataset] = [tracking, tracking_uid]
    length_unit = _UCUM_PX if m.in_pixels else _UCUM_MM
    if m.kind in (MeasurementKind.LENGTH, MeasurementKind.ANGLE):
        if m.kind is MeasurementKind.LENGTH:
            num = _num("CONTAINS", _LENGTH, float(m.length_mm or 0.0), length_unit)
        else:
            num = _num("CONTAINS", _ANGLE, float(m.angle_deg or 0.0), _UCUM_DEG)
        if m.image is not None:
            flat = [v for p in m.points for v in p]
            num.ContentSequence = [_scoord("INFERRED FROM", None, "POLYLINE", flat, m.image)]
        items.append(num)
    else:
        stats = m.stats
        if stats is None:
            raise ReportError(f"Measurement {m.name!r} has no values to report.")
        if m.image is not None:
            kind, data = _region(m)
            items.append(_scoord("CONTAINS", _IMAGE_REGION, kind, data, m.image))
        quantity, unit = _quantity(modality, m.units)
        for key, concept in _STATISTICS.items():
            value = _num("CONTAINS", quantity, float(getattr(stats, key)), unit)
            derivation = _content("HAS CONCEPT MOD", "CODE", _DERIVATION)
            derivation.ConceptCodeSequence = [_code_item(concept)]
            value.ContentSequence = [derivation]
            items.append(value)
        items.append(
            _num("CONTAINS", _AREA, stats.area_mm2, _UCUM_PX2 if m.in_pixels else _UCUM_MM2)
        )
    group.ContentSequence = items
    return group


def build_measurement_report(
    measurements: Sequence[Measurement],
    study: StudyContext,
    *,
    observer: str | None = None,
    language: str = "en",
    now: dt.datetime | None = None,
    series_uid: str | None = None,
    sop_instance_uid: str | None = None,
    series_number: int | None = None,
) -> Dataset:
    """The TID 1500 Comprehensive SR (with File Meta) of ``measurements`` on ``study``.

    Raises:
        ReportError: no measurement, an ROI without values, an invalid UID or language tag.
    """
    if not measurements:
        raise ReportError("There is no measurement to report.")
    ds = document_base(
        study,
        sop_class_uid=COMPREHENSIVE_SR,
        series_description="Imaging Measurement Report",
        now=now,
        series_uid=series_uid,
        sop_instance_uid=sop_instance_uid,
        series_number=series_number if series_number is not None else study.next_series_number + 1,
    )
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = [_code_item(_REPORT_TITLE)]
    ds.ContinuityOfContent = "SEPARATE"
    template = Dataset()
    template.MappingResource = "DCMR"
    template.TemplateIdentifier = "1500"
    ds.ContentTemplateSequence = [template]
    ds.CompletionFlag = "PARTIAL"
    ds.VerificationFlag = "UNVERIFIED"
    ds.PerformedProcedureCodeSequence = []
    keys = list(dict.fromkeys(m.image for m in measurements if m.image is not None))
    refs = [check_reference(k, "The measured image") for k in keys]
    own = [ref for ref in refs if ref[0] == ds.StudyInstanceUID]
    other = [ref for ref in refs if ref[0] != ds.StudyInstanceUID]
    if own:
        ds.CurrentRequestedProcedureEvidenceSequence = _hierarchical(own)
    if other:
        ds.PertinentOtherEvidenceSequence = _hierarchical(other)

    content: list[Dataset] = []
    language_item = _content("HAS CONCEPT MOD", "CODE", LANGUAGE)
    language_item.ConceptCodeSequence = [_code_item(language_code(language))]
    content.append(language_item)
    if observer and observer.strip():
        kind = _content("HAS OBS CONTEXT", "CODE", OBSERVER_TYPE)
        kind.ConceptCodeSequence = [_code_item(PERSON)]
        name = _content("HAS OBS CONTEXT", "PNAME", PERSON_NAME)
        name.PersonName = observer.strip()
        content.extend([kind, name])
    procedure = _content("HAS CONCEPT MOD", "CODE", _PROCEDURE_REPORTED)
    procedure.ConceptCodeSequence = [
        _code_item(_PROCEDURES.get(study.modality, _IMAGING_PROCEDURE))
    ]
    content.append(procedure)
    library = _content("CONTAINS", "CONTAINER", _IMAGE_LIBRARY)
    library.ContinuityOfContent = "SEPARATE"
    if keys:
        group = _content("CONTAINS", "CONTAINER", _IMAGE_LIBRARY_GROUP)
        group.ContinuityOfContent = "SEPARATE"
        group.ContentSequence = [image_item("CONTAINS", key) for key in keys]
        library.ContentSequence = [group]
    content.append(library)
    container = _content("CONTAINS", "CONTAINER", _IMAGING_MEASUREMENTS)
    container.ContinuityOfContent = "SEPARATE"
    container.ContentSequence = [
        _group(m, "1410" if m.image is not None and m.stats is not None else "1501", study.modality)
        for m in measurements
    ]
    content.append(container)
    ds.ContentSequence = content
    return with_file_meta(ds)


def measurements_from_sr(ds: Dataset) -> list[tuple[str, str]]:
    """(tracking identifier, value text) of every measurement group in a TID 1500 document,
    for the report reader and ``report show``. Values read like the report text."""
    found: list[tuple[str, str]] = []

    def meaning(item: Dataset, keyword: str = "ConceptNameCodeSequence") -> str:
        seq = item.get(keyword) or []
        return str(seq[0].get("CodeMeaning", "")) if seq else ""

    def walk(items: Iterable[Dataset]) -> None:
        for item in items:
            if item.get("ValueType") == "CONTAINER" and meaning(item) == _MEASUREMENT_GROUP.meaning:
                label, parts = "", []
                for child in item.get("ContentSequence") or []:
                    name = meaning(child)
                    if child.get("ValueType") == "TEXT" and name == _TRACKING_ID.meaning:
                        label = str(child.get("TextValue", ""))
                    elif child.get("ValueType") == "NUM":
                        measured = (child.get("MeasuredValueSequence") or [Dataset()])[0]
                        unit = measured.get("MeasurementUnitsCodeSequence") or []
                        code = str(unit[0].get("CodeValue", "")) if unit else ""
                        derivation = [
                            meaning(m, "ConceptCodeSequence")
                            for m in child.get("ContentSequence") or []
                            if meaning(m) == _DERIVATION.meaning
                        ]
                        what = (derivation[0] if derivation else name).lower()
                        shown = {"[hnsf'U]": " HU", "mm2": " mm²", "mm": " mm", "deg": "°"}.get(
                            code, f" {code}" if code not in ("", "1") else ""
                        )
                        value = float(measured.get("NumericValue", "nan"))
                        parts.append(f"{what} {value:g}{shown}")
                found.append((label, ", ".join(parts)))
            walk(item.get("ContentSequence") or [])

    walk(ds.get("ContentSequence") or [])
    return found
