"""The mini PACS the demo runs answers like a PACS: computed keys, matching, C-GET, C-MOVE,
C-STORE; checked with tuiviewer's own client and with dcmtk's findscu."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset

from tests.conftest import require_tool
from tests.conftest import testdata as sample_file
from tests.support.ports import free_port
from tuiviewer.config.nodes import Node
from tuiviewer.dicom.datagen import write_ct_series
from tuiviewer.dicom.rows import QueryLevel, SeriesRow, StudyRow, to_row
from tuiviewer.net.echo import echo
from tuiviewer.net.find import FindQuery, QueryModel, find
from tuiviewer.net.minipacs import MiniPacs
from tuiviewer.net.retrieve import retrieve_study
from tuiviewer.net.send import send_files
from tuiviewer.store import LocalStore

TODAY = "20261201"


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MiniPacs, Node, Path]]:
    base = tmp_path_factory.mktemp("minipacs")
    ct = write_ct_series(base / "ct", slices=4, rows=16, cols=16, seed=71, patient_id="P71")
    ct_study = str(pydicom.dcmread(ct[0]).StudyInstanceUID)
    files = [*ct, sample_file("MR_small.dcm"), sample_file("JPEG2000.dcm")]
    move_port = free_port()
    pacs = MiniPacs(
        base / "received",
        ae_title="MINI",
        destinations={"TUIVIEWER": ("127.0.0.1", move_port)},
        overrides={ct_study: {"StudyDate": TODAY, "SeriesDate": TODAY}},
    )
    assert pacs.add(files) == len(files)
    port = pacs.start()
    node = Node("mini", "MINI", "127.0.0.1", port, move_port=move_port, dimse_timeout=20)
    try:
        yield pacs, node, base
    finally:
        pacs.stop()


def test_study_answers_carry_what_a_pacs_computes(archive: tuple[MiniPacs, Node, Path]) -> None:
    _pacs, node, _base = archive
    assert echo(node).status == 0
    rows = {
        row.patient_id: row
        for row in (to_row(QueryLevel.STUDY, ds) for ds in find(node, FindQuery(QueryLevel.STUDY)))
        if isinstance(row, StudyRow)
    }
    ct = rows["P71"]
    assert ct.description == "Synthetic study" and ct.modalities == ("CT",)
    assert (ct.series_count, ct.instance_count) == (1, 4)
    assert ct.date == TODAY  # the override, not the file's date
    mr = pydicom.dcmread(sample_file("MR_small.dcm"))
    assert rows[str(mr.PatientID)].modalities == ("MR",)
    assert rows[str(mr.PatientID)].description == str(mr.get("StudyDescription", ""))

    series = [
        to_row(QueryLevel.SERIES, ds)
        for ds in find(node, FindQuery(QueryLevel.SERIES, study_uid=ct_uid(archive)))
    ]
    (only,) = series
    assert isinstance(only, SeriesRow)
    number = int(pydicom.dcmread(next((_base / "ct").iterdir())).SeriesNumber)
    assert (only.modality, only.number, only.instance_count) == ("CT", number, 4)
    assert only.description and only.body_part == "CHEST"

    patients = list(find(node, FindQuery(QueryLevel.PATIENT), model=QueryModel.PATIENT_ROOT))
    by_id = {str(ds.PatientID): ds for ds in patients}
    assert int(by_id["P71"].NumberOfPatientRelatedStudies) == 1


def ct_uid(archive: tuple[MiniPacs, Node, Path]) -> str:
    _pacs, _node, base = archive
    return str(pydicom.dcmread(next((base / "ct").iterdir())).StudyInstanceUID)


def test_matching_follows_ps3_4(archive: tuple[MiniPacs, Node, Path]) -> None:
    _pacs, node, _base = archive

    def ids(query: FindQuery) -> set[str]:
        return {str(ds.PatientID) for ds in find(node, query)}

    mr_id = str(pydicom.dcmread(sample_file("MR_small.dcm")).PatientID)
    assert ids(FindQuery(QueryLevel.STUDY, modality="MR")) == {mr_id}
    assert ids(FindQuery(QueryLevel.STUDY, study_date=f"{TODAY}-")) == {"P71"}
    assert ids(FindQuery(QueryLevel.STUDY, study_date="-19991231")) == set()
    assert "P71" in ids(FindQuery(QueryLevel.STUDY, patient_name="demo*"))  # case-insensitive
    uid = ct_uid(archive)
    assert ids(FindQuery(QueryLevel.STUDY, study_uid=f"1.2.3\\{uid}")) == {"P71"}  # UID list


def test_c_get_c_move_and_c_store(archive: tuple[MiniPacs, Node, Path], tmp_path: Path) -> None:
    pacs, node, _base = archive
    uid = ct_uid(archive)
    store = LocalStore(tmp_path / "get")
    result = retrieve_study(node, uid, store=store)
    assert result.error is None and not result.failed and result.completed == 4
    got = sorted(store.study_dir(uid).rglob("*.dcm"))
    assert len(got) == 4 and pydicom.dcmread(got[0]).StudyDate == TODAY

    # A JPEG 2000 file reaches a requestor whichever syntax it accepted.
    j2k = pydicom.dcmread(sample_file("JPEG2000.dcm"))
    result = retrieve_study(node, str(j2k.StudyInstanceUID), store=store)
    assert result.error is None and result.completed == 1

    moved = LocalStore(tmp_path / "move")
    result = retrieve_study(node, uid, store=moved, method="move")
    assert result.error is None and result.completed == 4
    assert len(moved.instance_uids(uid)) == 4

    before = len(pacs.instances())
    sent = send_files(node, [sample_file("CT_small.dcm")])
    assert not sent.failed and len(pacs.instances()) == before + 1
    ct_small = pydicom.dcmread(sample_file("CT_small.dcm"))
    assert str(ct_small.StudyInstanceUID) in {
        str(ds.StudyInstanceUID) for ds in find(node, FindQuery(QueryLevel.STUDY))
    }


def test_dcmtk_findscu_reads_the_computed_keys(archive: tuple[MiniPacs, Node, Path]) -> None:
    require_tool("dcmtk findscu", shutil.which("findscu") is not None)
    _pacs, node, _base = archive
    run = subprocess.run(
        [
            "findscu",
            "-S",
            "-aec",
            node.ae_title,
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            "PatientID=P71",
            "-k",
            "ModalitiesInStudy",
            "-k",
            "NumberOfStudyRelatedInstances",
            "-k",
            "StudyDescription",
            node.host,
            str(node.port),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "CS [CT]" in out, out
    assert re.search(r"IS \[4 ?\]\s+#.*NumberOfStudyRelatedInstances", out), out
    assert re.search(r"LO \[Synthetic study ?\]", out), out


def test_an_unknown_level_is_refused_not_crashed(archive: tuple[MiniPacs, Node, Path]) -> None:
    pacs, _node, _base = archive
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "FRAME"
    with pytest.raises(ValueError, match="FRAME"):
        pacs.find(identifier)


def test_an_image_level_get_sends_in_the_order_asked(archive: tuple[MiniPacs, Node, Path]) -> None:
    """The reader's workstation asks for the slices around the one on show first: the demo
    PACS sends them in that order, as a helpful PACS does (it opened the viewer on slice 5 of
    120 when it sent in file order)."""
    pacs, _node, base = archive
    ct = sorted((base / "ct").iterdir())
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in ct]
    wanted = [str(h.SOPInstanceUID) for h in reversed(headers)]
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "IMAGE"
    identifier.StudyInstanceUID = str(headers[0].StudyInstanceUID)
    identifier.SeriesInstanceUID = str(headers[0].SeriesInstanceUID)
    identifier.SOPInstanceUID = wanted
    assert [i.text("SOPInstanceUID") for i in pacs.select(identifier)] == wanted
    identifier.SOPInstanceUID = wanted[::-1]
    assert [i.text("SOPInstanceUID") for i in pacs.select(identifier)] == wanted[::-1]
