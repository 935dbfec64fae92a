"""Reports and a real PACS (Orthanc): the SR sent back is found again by C-FIND (plain
pynetdicom, image and series level), the study context built from C-FIND equals the one built
from the files, existing reports are listed, and ``report new --send`` stores the SR."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset

from tests.conftest import testdata as sample_file
from tests.support.orthanc import Orthanc, c_find, store_files
from tests.unit.reports.test_sr import assert_valid_sr
from tuiviewer.commands.report import run_report_new
from tuiviewer.config.nodes import Node
from tuiviewer.net.send import send_files
from tuiviewer.reports.model import Report, Section, SectionKind, sign
from tuiviewer.reports.sr.build import write_sr
from tuiviewer.reports.sr.context import study_context_from_paths
from tuiviewer.reports.sr.read import read_sr
from tuiviewer.services.reporting import find_reports_on_pacs, study_context_from_pacs

pytestmark = pytest.mark.orthanc


def _node(orthanc: Orthanc) -> Node:
    return Node(name="orthanc", ae_title=orthanc.aet, host=orthanc.host, port=orthanc.dicom_port)


@pytest.fixture
def study(tmp_path: Path) -> Path:
    folder = tmp_path / "study"
    folder.mkdir()
    shutil.copy(sample_file("CT_small.dcm"), folder / "ct.dcm")
    return folder


def _query(level: str, **keys: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def test_sent_sr_is_found_again_by_c_find(
    empty_orthanc: Orthanc, study: Path, tmp_path: Path
) -> None:
    orthanc = empty_orthanc
    assert store_files(orthanc.host, orthanc.dicom_port, orthanc.aet, [study / "ct.dcm"]) == 1
    report = sign(
        Report(sections=(Section(SectionKind.FINDINGS, "Épanchement; Лёгкие чистые."),)),
        "Curie^Marie",
    )
    path = write_sr(report, study_context_from_paths(study), tmp_path / "sr.dcm")
    assert_valid_sr(path)
    result = send_files(_node(orthanc), [path])
    assert result.sent == [path] and not result.failed

    sr = pydicom.dcmread(path)
    found = c_find(
        orthanc.host,
        orthanc.dicom_port,
        orthanc.aet,
        _query(
            "IMAGE",
            StudyInstanceUID=sr.StudyInstanceUID,
            SeriesInstanceUID=sr.SeriesInstanceUID,
            SOPInstanceUID=sr.SOPInstanceUID,
            SOPClassUID="",
        ),
    )
    assert [(m.SOPInstanceUID, m.SOPClassUID) for m in found] == [
        (sr.SOPInstanceUID, sr.SOPClassUID)
    ]
    series = c_find(
        orthanc.host,
        orthanc.dicom_port,
        orthanc.aet,
        _query("SERIES", StudyInstanceUID=sr.StudyInstanceUID, Modality="SR", SeriesInstanceUID=""),
    )
    assert [s.SeriesInstanceUID for s in series] == [sr.SeriesInstanceUID]

    reports = find_reports_on_pacs(_node(orthanc), sr.StudyInstanceUID)
    assert [r.sop_instance_uid for r in reports] == [sr.SOPInstanceUID]


def test_study_context_from_pacs_matches_the_files(
    empty_orthanc: Orthanc, study: Path, tmp_path: Path
) -> None:
    orthanc = empty_orthanc
    store_files(orthanc.host, orthanc.dicom_port, orthanc.aet, [study / "ct.dcm"])
    local = study_context_from_paths(study)
    remote = study_context_from_pacs(_node(orthanc), local.study_uid)
    assert remote.instances == local.instances
    assert (remote.patient_name, remote.patient_id, remote.accession_number) == (
        local.patient_name,
        local.patient_id,
        local.accession_number,
    )
    assert remote.modality == local.modality
    # A report built on the PACS context is as valid as one built on the files.
    path = write_sr(
        Report(sections=(Section(SectionKind.IMPRESSION, "Normal."),)), remote, tmp_path / "r.dcm"
    )
    assert_valid_sr(path)
    assert read_sr(path).text_of(SectionKind.IMPRESSION) == "Normal."


def test_report_new_send_stores_the_sr(empty_orthanc: Orthanc, study: Path, tmp_path: Path) -> None:
    orthanc = empty_orthanc
    md = tmp_path / "r.md"
    md.write_text("## Findings\nNo change.\n", encoding="utf-8")
    out = tmp_path / "sent.dcm"
    stdout, stderr = io.StringIO(), io.StringIO()
    code = run_report_new(
        study,
        md,
        out,
        final=False,
        reader=None,
        send=f"{orthanc.aet}@{orthanc.host}:{orthanc.dicom_port}",
        stdout=stdout,
        stderr=stderr,
    )
    assert (code, stderr.getvalue()) == (0, "")
    assert "Sent to" in stdout.getvalue()
    assert_valid_sr(out)
    sop = pydicom.dcmread(out).SOPInstanceUID
    found = orthanc.rest("POST", "/tools/lookup", str(sop).encode())
    assert [item["Type"] for item in found] == ["Instance"]
