"""The documents that travel with a report: its measurements (TID 1500) and key images (KO).

Written next to the report file, named after it (``REPORT-measurements.dcm``,
``REPORT-keyimages.dcm``), atomically and 0600 like the report, in new series of the study, so
a PACS shows measurements and key images beside the narrative.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pydicom

from tuiviewer.files import write_atomically
from tuiviewer.reports.ko import build_key_object_selection
from tuiviewer.reports.measurements import Measurement, build_measurement_report
from tuiviewer.reports.model import Report, SectionKind
from tuiviewer.reports.sr.context import StudyContext

__all__ = ["companion_documents", "write_companions"]


def companion_documents(
    report: Report,
    study: StudyContext,
    measurements: Sequence[Measurement],
    *,
    now: dt.datetime | None = None,
) -> list[tuple[str, pydicom.Dataset, str]]:
    """The measurement report and the key object selection of ``report``, those that have
    content, as (name suffix, dataset, description).

    Raises:
        ReportError: a measurement or key image cannot be encoded.
    """
    documents = []
    if measurements:
        count = len(measurements)
        documents.append(
            (
                "measurements",
                build_measurement_report(
                    measurements, study, observer=report.reader, language=report.language, now=now
                ),
                f"TID 1500 measurement report, {count} measurement{'s' if count != 1 else ''}",
            )
        )
    if report.key_images:
        count = len(report.key_images)
        documents.append(
            (
                "keyimages",
                build_key_object_selection(
                    report.key_images,
                    study,
                    description=report.text_of(SectionKind.IMPRESSION),
                    language=report.language,
                    now=now,
                ),
                f"key object selection, {count} image{'s' if count != 1 else ''} of interest",
            )
        )
    return documents


def write_companions(
    report: Report,
    study: StudyContext,
    report_path: Path,
    measurements: Sequence[Measurement],
    *,
    now: dt.datetime | None = None,
    overwrite: bool = False,
) -> list[tuple[Path, str]]:
    """Write the measurement report and the key object selection of ``report`` (those that
    have content) beside ``report_path``; returns (path, description) of each written.

    Raises:
        ReportError: a measurement or key image cannot be encoded.
        SaveError: a file exists (and ``overwrite`` is false) or cannot be written.
    """
    written = []
    for suffix, ds, what in companion_documents(report, study, measurements, now=now):
        dest = report_path.with_name(f"{report_path.stem}-{suffix}{report_path.suffix or '.dcm'}")

        def write(handle: Any, ds: pydicom.Dataset = ds) -> None:
            pydicom.dcmwrite(handle, ds, enforce_file_format=True)

        write_atomically(dest, write, overwrite=overwrite)
        written.append((dest, what))
    return written
