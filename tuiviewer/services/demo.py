"""What the demo holds: a day's reading list, dated from today every time the demo starts.

The worklist shows the last few days, and pydicom's samples are dated 2003-2020, so a demo
that served them as they are opened on "0 studies". Here the demo's studies get dates relative
to the day it starts (today, yesterday, ... and priors months back) through the demo PACS's
per-study overrides, without rewriting any file: several patients, CT, MR, CR, NM, RT and SR,
a patient with a prior CT and one with a prior radiograph, and a study with a preliminary
report written by tuiviewer's own SR writer. Generated series are written once into the user
data dir (0700/0600) and reused. Orchestration of dicom, reports and net; no Textual.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.errors import InvalidDicomError

from tuiviewer import locations
from tuiviewer.dicom.datagen import write_ct_series, write_radiograph
from tuiviewer.net.demo import _make_private, demo_ct, sample_files
from tuiviewer.reports.model import Report, Section, SectionKind
from tuiviewer.reports.sr.build import write_sr
from tuiviewer.reports.sr.context import study_context_from_paths

__all__ = ["DemoContent", "DemoStudy", "prepare_demo"]

#: Bump when the generated priors or radiographs change.
_GENERATED_VERSION = "1"

#: Days before today, and the description shown, per pydicom sample (by file name).
_SAMPLE_PLAN: dict[str, tuple[int, str]] = {
    "CT_small.dcm": (0, "CT abdomen"),
    "MR_small.dcm": (1, "MR head"),
    "JPEG2000.dcm": (1, "NM whole body bone"),
    "rtplan.dcm": (2, "RT plan"),
    "rtstruct.dcm": (2, "RT structure set"),
    "rtdose.dcm": (2, "RT dose"),
    "SC_rgb_small_odd.dcm": (3, "Secondary capture"),
    "test-SR.dcm": (4, "Structured report"),
    "reportsi.dcm": (4, "Structured report"),
}

PRELIMINARY_FINDINGS = (
    "Small hypodense lesion in the right hepatic lobe, likely a cyst. No free fluid."
)


@dataclass(frozen=True)
class DemoStudy:
    """One study on the demo's list: what the worklist will show of it."""

    uid: str
    patient: str
    modality: str
    date: str
    description: str


@dataclass
class DemoContent:
    """The files the demo PACS serves and the attributes it overrides, per study."""

    paths: list[Path] = field(default_factory=list)
    overrides: dict[str, dict[str, str]] = field(default_factory=dict)
    studies: list[DemoStudy] = field(default_factory=list)

    def add(self, paths: list[Path], day: dt.date, description: str) -> str:
        """Serve ``paths`` (one study) dated ``day``; returns the Study Instance UID."""
        header = pydicom.dcmread(paths[0], stop_before_pixels=True, force=True)
        uid = str(header.StudyInstanceUID)
        date = day.strftime("%Y%m%d")
        values = self.overrides.setdefault(uid, {})
        for keyword in ("StudyDate", "SeriesDate", "ContentDate", "AcquisitionDate"):
            values[keyword] = date
        if description:
            values["StudyDescription"] = description
        self.paths.extend(paths)
        self.studies.append(
            DemoStudy(
                uid,
                str(header.get("PatientName", "") or ""),
                str(header.get("Modality", "") or ""),
                date,
                description,
            )
        )
        return uid


def _generated(name: str, write: Callable[[Path], object]) -> Path:
    """A generated study folder in the data dir, written once (a ``.complete`` marker)."""
    folder = locations.data_dir() / "demo" / f"{name}-v{_GENERATED_VERSION}"
    if not (folder / ".complete").exists():
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True, mode=0o700)
        write(folder)
        (folder / ".complete").write_text("ok\n")
    _make_private(folder)
    return folder


def _radiograph_writer(seed: int) -> Callable[[Path], object]:
    def write(folder: Path) -> object:
        return write_radiograph(folder, seed=seed, patient_name="Demo^Ribs", patient_id="DEMO002")

    return write


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix == ".dcm")


def prepare_demo(
    workdir: Path,
    *,
    today: dt.date | None = None,
    progress: Callable[[str], None] | None = None,
) -> DemoContent:
    """The demo's studies, dated from ``today`` (default: the real today).

    ``workdir`` receives what is made per start (the preliminary report). Raises whatever
    writing the generated studies raises (OSError, ReportError): the demo cannot start then.
    """
    day = today or dt.date.today()
    content = DemoContent()

    def ago(days: int) -> dt.date:
        return day - dt.timedelta(days=days)

    chest = demo_ct(progress)
    content.add(_files(chest), ago(0), "CT chest without contrast")
    prior = _generated(
        "ct-prior",
        lambda folder: write_ct_series(
            folder,
            slices=40,
            rows=256,
            cols=256,
            seed=2025,
            patient_name="Demo^Chest",
            patient_id="DEMO001",
        ),
    )
    content.add(_files(prior), ago(210), "CT chest (prior)")
    for seed, days, description in ((11, 0, "Chest radiograph PA"), (12, 380, "Chest PA (prior)")):
        folder = _generated(f"cr-{seed}", _radiograph_writer(seed))
        content.add(_files(folder), ago(days), description)

    for path in sample_files():
        days, description = _SAMPLE_PLAN.get(path.name, (5, ""))
        try:
            content.add([path], ago(days), description)
        except (InvalidDicomError, AttributeError, OSError):
            continue  # a sample this pydicom does not ship in a readable form
        if path.name == "CT_small.dcm":
            content.paths.append(_preliminary_report(path, workdir))
    return content


def _preliminary_report(image: Path, workdir: Path) -> Path:
    """A preliminary Basic Text SR of the study of ``image``, by tuiviewer's own SR writer."""
    # A folder of its own: for a file, the study's other instances are looked for beside it.
    folder = workdir / "report-study"
    folder.mkdir(mode=0o700, exist_ok=True)
    shutil.copy(image, folder / image.name)
    context = study_context_from_paths(folder)
    report = Report(
        sections=(
            Section(SectionKind.FINDINGS, PRELIMINARY_FINDINGS),
            Section(SectionKind.IMPRESSION, "Probable hepatic cyst; ultrasound suggested."),
        )
    )
    return write_sr(report, context, workdir / "preliminary-report.dcm")
