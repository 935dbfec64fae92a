"""Reporting around the documents: a study's context from the PACS, the SR documents it holds,
and key images marked from the viewer into the study's draft.

The report editor and the worklist ask the PACS what a report needs (patient and study
attributes, the instances as evidence) and which SR documents a study already has; the
documents themselves are built and read in :mod:`tuiviewer.reports.sr`, which knows nothing of
the network.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tuiviewer.config.nodes import Node
from tuiviewer.dicom.rows import QueryLevel
from tuiviewer.dicom.scanning import InstanceRecord
from tuiviewer.net.find import FindQuery
from tuiviewer.net.transport import find
from tuiviewer.reports.drafts import Draft, DraftStore
from tuiviewer.reports.model import (
    KeyImage,
    Report,
    ReportError,
)
from tuiviewer.reports.sr import is_sr_class
from tuiviewer.reports.sr.context import (
    EvidenceInstance,
    StudyContext,
    study_context,
    study_text,
)
from tuiviewer.store import foreign_uid


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
    study_uid = foreign_uid(study_uid, "Study Instance UID")
    found: list[RemoteReport] = []
    for series in find(
        node,
        FindQuery(level=QueryLevel.SERIES, study_uid=study_uid, modality="SR"),
        cancel=cancel,
    ):
        series_uid = study_text(series, "SeriesInstanceUID")
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
            sop_class = study_text(image, "SOPClassUID")
            if sop_class and not is_sr_class(sop_class):
                continue
            found.append(
                RemoteReport(
                    study_uid,
                    series_uid,
                    study_text(image, "SOPInstanceUID"),
                    sop_class,
                    study_text(image, "CompletionFlag"),
                    study_text(image, "VerificationFlag"),
                    study_text(image, "ContentDate"),
                )
            )
    return found


def study_context_from_pacs(
    node: Node,
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
    study_uid = foreign_uid(study_uid, "Study Instance UID")
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
        series_uid = study_text(item, "SeriesInstanceUID")
        modality = study_text(item, "Modality")
        number = item.get("SeriesNumber")
        if number not in (None, ""):
            numbers.append(int(number))
        if modality == "SR":
            continue
        body_part = body_part or study_text(item, "BodyPartExamined")
        for image in find(
            node,
            FindQuery(level=QueryLevel.IMAGE, study_uid=study_uid, series_uid=series_uid),
            cancel=cancel,
        ):
            sop_class = study_text(image, "SOPClassUID")
            if is_sr_class(sop_class):
                continue
            modalities[modality] += 1
            instances.append(
                EvidenceInstance(
                    study_uid, series_uid, sop_class, study_text(image, "SOPInstanceUID")
                )
            )
    return study_context(
        study,
        study_uid,
        modalities=modalities,
        body_part=body_part,
        instances=instances,
        series_numbers=numbers,
    )


def key_image_of(record: InstanceRecord, frame: int | None) -> KeyImage:
    """The key image for ``frame`` (1-based, multi-frame objects only) of instance ``record``."""
    return KeyImage(
        record.sop_class_uid,
        record.sop_instance_uid,
        record.study_uid,
        record.series_uid,
        frame,
    )


def mark_in_draft(
    drafts: DraftStore, record: InstanceRecord, frame: int | None
) -> tuple[int, Path | None]:
    """Add the key image to the saved draft of its study (a new draft when there is none, or
    when the saved one is damaged: that file is renamed aside first).

    Returns:
        How many key images the draft holds now (marking one twice changes nothing), and where
        a damaged draft was moved (None when there was none).

    Raises:
        DraftError: the draft cannot be written, or a damaged one cannot be moved aside; what
            was on disk is unchanged.
    """
    image = key_image_of(record, frame)
    found, damaged = drafts.load_or_set_aside(record.study_uid)
    draft = found or Draft(
        record.study_uid,
        Report(sections=()),
        patient_name=record.patient_name,
        patient_id=record.patient_id,
        accession=record.accession_number,
    )
    if image not in draft.report.key_images:
        report = replace(draft.report, key_images=(*draft.report.key_images, image))
        draft = drafts.save(replace(draft, report=report))
    return len(draft.report.key_images), damaged
