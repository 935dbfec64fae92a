"""The embedded demo PACS (pynetdicom's qrscp) answers, holds the samples, and serves C-GET."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest

from tests.conftest import testdata as sample_file
from tuiviewer.net.demo import DemoPacs, sample_files
from tuiviewer.net.echo import echo
from tuiviewer.net.find import FindQuery, QueryLevel, find
from tuiviewer.net.retrieve import retrieve_study
from tuiviewer.store import LocalStore


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoPacs]:
    pacs = DemoPacs()
    pacs.start()
    yield pacs
    pacs.stop()


def test_demo_pacs_holds_every_sample_study(demo: DemoPacs) -> None:
    files = sample_files()
    result = demo.load(files)
    assert not result.failed, result.failed
    expected = {
        str(pydicom.dcmread(path, stop_before_pixels=True, force=True).StudyInstanceUID)
        for path in files
    }
    found = {str(ds.StudyInstanceUID) for ds in find(demo.node, FindQuery(QueryLevel.STUDY))}
    assert found == expected
    assert echo(demo.node).status == 0


def test_demo_pacs_serves_c_get(demo: DemoPacs, tmp_path: Path) -> None:
    ct = pydicom.dcmread(sample_file("CT_small.dcm"))
    demo.load([sample_file("CT_small.dcm")])
    store = LocalStore(tmp_path / "store")
    result = retrieve_study(demo.node, str(ct.StudyInstanceUID), store=store)
    assert result.error is None and not result.failed
    assert store.instance_uids(str(ct.StudyInstanceUID)) == {str(ct.SOPInstanceUID)}


def test_stop_removes_what_the_demo_held() -> None:
    pacs = DemoPacs()
    pacs.start()
    pacs.load([sample_file("MR_small.dcm")])
    workdir = pacs.workdir
    assert any(workdir.rglob("*"))
    pacs.stop()
    assert not workdir.exists()
