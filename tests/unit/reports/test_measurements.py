"""Measurements into the report: the per-study list on disk (0600, atomic, survives a restart),
the text report, the TID 1500 measurement report and the key object selection, both checked by
dicom3tools' dciodvfy and read back by dcmtk's dsrdump and by ``tuiviewer report show``."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pydicom
import pytest

from tests.support import imagegen
from tests.unit.reports.test_sr import assert_valid_sr
from tuiviewer.commands.report import run_report_new, run_report_show
from tuiviewer.render.measure import angle_degrees, ellipse_stats, length_mm, rectangle_stats
from tuiviewer.reports.companions import write_companions
from tuiviewer.reports.ko import KEY_OBJECT_SELECTION, build_key_object_selection
from tuiviewer.reports.measurements import (
    Measurement,
    MeasurementError,
    MeasurementKind,
    MeasurementStore,
    build_measurement_report,
    measurements_from_sr,
)
from tuiviewer.reports.model import KeyImage, Report, ReportError, Section, SectionKind
from tuiviewer.reports.sr.context import StudyContext, study_context_from_paths
from tuiviewer.reports.text import sr_to_text, to_text


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[pydicom.Dataset]]:
    folder = tmp_path_factory.mktemp("sphere")
    series = imagegen.sphere_series(slices=6, rows=32, cols=32, radius=8.0)
    for n, ds in enumerate(series):
        ds.PatientName, ds.PatientID = "Sphere^Phantom", "SPH1"
        ds.StudyDate, ds.StudyTime, ds.AccessionNumber = "20240102", "101500", "A1"
        ds.ReferringPhysicianName, ds.StudyID, ds.SeriesNumber = "", "1", 3
        ds.PatientBirthDate, ds.PatientSex = "", "O"
        imagegen.save(ds, folder / f"{n}.dcm")
    return folder, series


@pytest.fixture(scope="module")
def context(study: tuple[Path, list[pydicom.Dataset]]) -> StudyContext:
    return study_context_from_paths(study[0])


def _key(ds: pydicom.Dataset) -> KeyImage:
    return KeyImage(ds.SOPClassUID, ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID)


def measurements_of(series: list[pydicom.Dataset]) -> list[Measurement]:
    """One of each kind, drawn on the middle slice, values computed from its pixels."""
    ds = series[3]
    values = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    spacing = (1.0, 1.0)
    centre = (15.5, 15.5)
    key = _key(ds)
    return [
        Measurement(
            MeasurementKind.ELLIPSE,
            (centre, (4.0, 3.0)),
            key,
            label="sphere core",
            stats=ellipse_stats(values, spacing, centre, (4.0, 3.0)),
            units="HU",
        ),
        Measurement(
            MeasurementKind.RECTANGLE,
            ((2.0, 2.0), (6.0, 5.0)),
            key,
            label="air",
            stats=rectangle_stats(values, spacing, (2.0, 2.0), (6.0, 5.0)),
            units="HU",
        ),
        Measurement(
            MeasurementKind.LENGTH,
            ((8.0, 15.5), (23.0, 15.5)),
            key,
            label="diameter",
            length_mm=length_mm((8.0, 15.5), (23.0, 15.5), spacing),
        ),
        Measurement(
            MeasurementKind.ANGLE,
            ((20.0, 10.0), (10.0, 10.0), (10.0, 20.0)),
            key,
            angle_deg=angle_degrees((20.0, 10.0), (10.0, 10.0), (10.0, 20.0), spacing),
        ),
        Measurement(
            MeasurementKind.LENGTH,
            ((0.0, 0.0), (0.0, 12.0)),
            None,
            label="craniocaudal",
            length_mm=12.0,
            where="coronal at (0.0, 0.0, 0.0) mm",
        ),
    ]


def test_the_list_is_kept_per_study_privately_and_survives_a_restart(
    study: tuple[Path, list[pydicom.Dataset]], context: StudyContext
) -> None:
    made = measurements_of(study[1])
    store = MeasurementStore()
    for m in made:
        store.add(context.study_uid, m)
    path = store.path_for(context.study_uid)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    again = MeasurementStore().load(context.study_uid)  # a new process would do this
    assert again == made
    assert again[0].stats is not None and again[0].stats.mean == 100.0
    kept = store.remove(context.study_uid, made[1].uid)
    assert [m.label for m in kept] == ["sphere core", "diameter", "", "craniocaudal"]
    relabelled = store.relabel(context.study_uid, made[3].uid, " right angle ")
    assert relabelled[2].label == "right angle"
    with pytest.raises(MeasurementError, match="No measurement with UID"):
        store.remove(context.study_uid, "1.2.3")
    store.save(context.study_uid, [])
    assert not path.exists() and store.load(context.study_uid) == []
    # A UID that is not conformant (a PACS's hex UID, or a path trick) is kept under its hash,
    # as the store and the drafts keep it: never a path of its own making.
    tricky = store.path_for("../etc")
    assert tricky.parent == store.path_for("1.2.3").parent and tricky.name.startswith("x-")
    assert store.path_for("ABCDEF0123") != tricky
    with pytest.raises(MeasurementError, match="No measurements can be kept"):
        store.path_for("")


def test_a_failed_save_leaves_the_previous_list(
    tmp_path: Path, study: tuple[Path, list[pydicom.Dataset]], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = MeasurementStore(tmp_path / "m")
    first, second = measurements_of(study[1])[:2]
    store.save("1.2.3", [first])
    before = store.path_for("1.2.3").read_bytes()

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    monkeypatch.setattr(os, "link", full)
    with pytest.raises(MeasurementError, match="previous list is unchanged"):
        store.save("1.2.3", [first, second])
    assert store.path_for("1.2.3").read_bytes() == before
    assert [p.name for p in (tmp_path / "m").iterdir()] == ["1.2.3.json"]


def test_the_text_report_lists_the_values(study: tuple[Path, list[pydicom.Dataset]]) -> None:
    report = Report(sections=(Section(SectionKind.FINDINGS, "A round lesion."),))
    text = to_text(report, measurements_of(study[1]))
    block = text.split("MEASUREMENTS\n", 1)[1]
    lines = block.strip().splitlines()
    assert lines[0] == (
        "- sphere core: ellipse: mean 100.0 HU, SD 0.0, min 100, max 100, area 37.7 mm²"
    )
    assert lines[1].startswith("- air: rectangle: mean -1000.0 HU, SD 0.0")
    assert lines[2] == "- diameter: length 15.0 mm"
    assert lines[3].endswith(": angle 90.0°")
    assert lines[4] == "- craniocaudal: length 12.0 mm"


def test_tid_1500_passes_dciodvfy_and_reads_back(
    tmp_path: Path, study: tuple[Path, list[pydicom.Dataset]], context: StudyContext
) -> None:
    made = measurements_of(study[1])
    ds = build_measurement_report(made, context, observer="Curie^Marie")
    path = tmp_path / "tid1500.dcm"
    ds.save_as(path, enforce_file_format=True)
    dump = assert_valid_sr(path)
    assert "Imaging Measurement Report" in dump and "Measurement Group" in dump
    assert '"100" ([hnsf\'U],UCUM,"Hounsfield unit")' in dump
    assert '"Image Region")=(ELLIPSE,12/16,20/16,16/13,16/19)' in dump
    assert "inferred from SCOORD:=(POLYLINE,8.5/16,23.5/16)" in dump
    back = measurements_from_sr(pydicom.dcmread(path))
    assert back[0] == (
        "sphere core",
        "mean 100 HU, standard deviation 0 HU, minimum 100 HU, maximum 100 HU, area 37.6991 mm²",
    )
    assert back[2] == ("diameter", "length 15 mm")
    assert back[3][1] == "angle 90°"
    assert back[4] == ("craniocaudal (coronal at (0.0, 0.0, 0.0) mm)", "length 12 mm")
    # The ellipse's region is in image coordinates with 0\0 at the top left pixel's corner.
    groups = [i for i in ds.ContentSequence if i.ValueType == "CONTAINER"][1].ContentSequence
    region = next(i for i in groups[0].ContentSequence if i.ValueType == "SCOORD")
    assert region.GraphicType == "ELLIPSE"
    assert list(region.GraphicData) == [12.0, 16.0, 20.0, 16.0, 16.0, 13.0, 16.0, 19.0]
    assert region.ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID == (
        study[1][3].SOPInstanceUID
    )
    shown = io.StringIO()
    assert run_report_show(path, stdout=shown, stderr=io.StringIO()) == 0
    assert "Attenuation Coefficient: 100 Hounsfield unit" in shown.getvalue()
    assert "Length: 15 millimeter" in shown.getvalue()


def test_key_object_selection_passes_dciodvfy(
    tmp_path: Path, study: tuple[Path, list[pydicom.Dataset]], context: StudyContext
) -> None:
    keys = [_key(study[1][2]), _key(study[1][4]), _key(study[1][2])]
    ds = build_key_object_selection(keys, context, description="Round lesion, 16 mm.")
    assert ds.SOPClassUID == KEY_OBJECT_SELECTION and ds.Modality == "KO"
    path = tmp_path / "ko.dcm"
    ds.save_as(path, enforce_file_format=True)
    dump = assert_valid_sr(path)
    assert "Of Interest" in dump and "Round lesion, 16 mm." in dump
    images = [i for i in ds.ContentSequence if i.ValueType == "IMAGE"]
    assert len(images) == 2  # the duplicate is selected once
    text = sr_to_text(pydicom.dcmread(path))
    assert "Of Interest" in text and text.count("CT Image Storage") == 2
    with pytest.raises(ReportError, match="no key image"):
        build_key_object_selection([], context)


def test_report_new_writes_and_lists_the_measurement_report(
    tmp_path: Path, study: tuple[Path, list[pydicom.Dataset]], context: StudyContext
) -> None:
    MeasurementStore().save(context.study_uid, measurements_of(study[1]))
    markdown = tmp_path / "r.md"
    markdown.write_text("## Findings\n\nRound lesion.\n", encoding="utf-8")
    out = tmp_path / "report.dcm"
    stdout, stderr = io.StringIO(), io.StringIO()
    rc = run_report_new(
        study[0], markdown, out, final=False, reader=None, send=None, stdout=stdout, stderr=stderr
    )
    assert rc == 0, stderr.getvalue()
    companion = tmp_path / "report-measurements.dcm"
    assert f"Wrote {str(companion)!r}: TID 1500 measurement report, 5 measurements." in (
        stdout.getvalue()
    )
    assert companion.stat().st_mode & 0o777 == 0o600
    assert_valid_sr(companion)
    written = pydicom.dcmread(companion)
    assert written.SeriesInstanceUID != pydicom.dcmread(out).SeriesInstanceUID
    MeasurementStore().save(context.study_uid, [])


def test_companions_include_the_key_images(
    tmp_path: Path, study: tuple[Path, list[pydicom.Dataset]], context: StudyContext
) -> None:
    report = Report(
        sections=(Section(SectionKind.IMPRESSION, "Benign."),),
        key_images=(_key(study[1][1]),),
    )
    written = write_companions(report, context, tmp_path / "r.dcm", [])
    assert [(p.name, what) for p, what in written] == [
        ("r-keyimages.dcm", "key object selection, 1 image of interest")
    ]
    assert_valid_sr(written[0][0])
