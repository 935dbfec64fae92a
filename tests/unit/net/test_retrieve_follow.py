"""Retrieval that follows the reader: the first series by image-level C-GETs of a few instances
each, starting where the reader looks; a PACS that refuses those gets the series level; a PACS
that dies mid-series leaves every instance and the resume asks only for the rest."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from tests.support.scps_retrieve import running_qr_scp
from tuiviewer.config.nodes import Node
from tuiviewer.dicom.datagen import write_ct_series
from tuiviewer.net import retrieve
from tuiviewer.net.retrieve import InstanceInfo, ReaderFocus, retrieve_study
from tuiviewer.services.jobs import RetrieveJob
from tuiviewer.store import LocalStore

SLICES = 40


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> list[Dataset]:
    """A 40-slice CT and a 3-slice second series of one study."""
    folder = tmp_path_factory.mktemp("follow")
    study = generate_uid()
    files = write_ct_series(
        folder / "a", slices=SLICES, rows=8, cols=8, seed=61, study_uid=study
    ) + write_ct_series(folder / "b", slices=3, rows=8, cols=8, seed=62, study_uid=study)
    return [dcmread(p) for p in files]


def sops(datasets: list[Dataset], series: int = 0) -> list[str]:
    uid = datasets[0 if series == 0 else SLICES].SeriesInstanceUID
    ordered = sorted(
        (ds for ds in datasets if ds.SeriesInstanceUID == uid), key=lambda ds: ds.InstanceNumber
    )
    return [str(ds.SOPInstanceUID) for ds in ordered]


def test_focus_orders_from_the_reader_the_way_they_scroll() -> None:
    items = [InstanceInfo(f"1.{k}", "", number=k) for k in (3, 1, 4, 2, 5)]
    focus = ReaderFocus()
    assert focus.order("S", items) == ["1.1", "1.2", "1.3", "1.4", "1.5"]
    focus.set("S", "1.3", direction=1)
    assert focus.order("S", items) == ["1.3", "1.4", "1.5", "1.2", "1.1"]
    focus.set("S", "1.3", direction=-1)
    assert focus.order("S", items) == ["1.3", "1.2", "1.1", "1.4", "1.5"]
    assert focus.order("other series", items)[0] == "1.1"


def test_the_first_series_comes_where_the_reader_is(
    datasets: list[Dataset], tmp_path: Path
) -> None:
    study = str(datasets[0].StudyInstanceUID)
    first, second = sops(datasets, 0), sops(datasets, 1)
    focus = ReaderFocus()
    focus.set(str(datasets[0].SeriesInstanceUID), first[30], direction=1)
    store = LocalStore(tmp_path / "store")
    with running_qr_scp(datasets) as (scp, log):
        result = retrieve_study(
            scp.node(), study, store=store, first_series=str(datasets[0].SeriesInstanceUID),
            focus=focus,
        )  # fmt: skip
    assert result.error is None and not result.partial and not result.notes
    assert len(result.received) == len(datasets)
    assert result.series_done == [
        str(datasets[0].SeriesInstanceUID),
        str(datasets[-1].SeriesInstanceUID),
    ]
    # Image-level requests of a few instances each: slice 31 on, then back from slice 30.
    assert log.get_levels[:3] == ["IMAGE", "IMAGE", "IMAGE"] and log.get_levels[-1] == "SERIES"
    asked = [uid for request in log.requested_sops for uid in request]
    assert asked == first[30:] + first[:30][::-1]
    assert all(len(r) <= retrieve.FOLLOW_PER_REQUEST for r in log.requested_sops)
    assert store.instance_uids(study) == set(first) | set(second)


def test_a_pacs_refusing_image_level_get_gets_the_series_level(
    datasets: list[Dataset], tmp_path: Path
) -> None:
    study = str(datasets[0].StudyInstanceUID)
    store = LocalStore(tmp_path / "store")
    with running_qr_scp(datasets, refuse_image_get=True) as (scp, log):
        job = RetrieveJob(node=scp.node(), study_uid=study, label="x", focus=ReaderFocus())
        job.first_series = str(datasets[0].SeriesInstanceUID)
        job.run(store)
    assert job.state == "done", job.error
    assert log.get_levels == ["IMAGE", "SERIES", "SERIES"]
    assert job.result is not None and not job.result.partial and not job.result.failed
    assert "IMAGE level was refused" in job.outcome() and "SERIES level" in job.outcome()
    assert len(store.instance_uids(study)) == len(datasets)


def test_a_pacs_that_dies_mid_series_keeps_every_instance_and_resume_asks_the_rest(
    datasets: list[Dataset], tmp_path: Path
) -> None:
    study = str(datasets[0].StudyInstanceUID)
    store = LocalStore(tmp_path / "store")
    with running_qr_scp(datasets, abort_after=20) as (scp, _log):
        node: Node = scp.node()
        job = RetrieveJob(node=node, study_uid=study, label="x", focus=ReaderFocus())
        job.run(store)
    assert job.state == "partial" and job.error is not None and "aborted" in job.error
    kept = store.instance_uids(study)
    assert len(kept) == 20 and len(job.arrived) == 20
    assert job.outcome().startswith("20 received of 43")
    with running_qr_scp(datasets) as (scp, log):
        job.node = scp.node()
        job.run(store)  # a retry resumes
    assert job.state == "done", job.error
    asked = {uid for request in log.requested_sops for uid in request}
    assert asked.isdisjoint(kept) and len(asked) == len(datasets) - 20


def test_the_viewer_moving_changes_what_comes_next(datasets: list[Dataset], tmp_path: Path) -> None:
    # The reader jumps while the series arrives: the next request starts there.
    study = str(datasets[0].StudyInstanceUID)
    series = str(datasets[0].SeriesInstanceUID)
    first = sops(datasets, 0)
    focus = ReaderFocus()
    moved = threading.Event()

    def progress(p: retrieve.RetrieveProgress) -> None:
        if p.path is not None and not moved.is_set():
            focus.set(series, first[25], direction=-1)
            moved.set()

    with running_qr_scp(datasets) as (scp, log):
        retrieve_study(
            scp.node(), study, store=LocalStore(tmp_path / "s"), first_series=series,
            focus=focus, progress=progress,
        )  # fmt: skip
    # Nobody read yet: the first request starts at the first slice (alone when the C-FIND was
    # still answering: the lead); the next from where the reader went, the way they went.
    first_request = log.requested_sops[0]
    assert first_request == first[: len(first_request)]
    assert len(first_request) in (1, retrieve.FOLLOW_PER_REQUEST)
    assert log.requested_sops[1][0] == first[25] and log.requested_sops[1][1] == first[24]
    asked = [uid for request in log.requested_sops for uid in request]
    assert sorted(asked) == sorted(set(asked))  # nothing asked for twice


def test_two_associations_share_the_work_and_a_pacs_taking_one_gets_one(
    datasets: list[Dataset], tmp_path: Path
) -> None:
    study = str(datasets[0].StudyInstanceUID)
    series = str(datasets[0].SeriesInstanceUID)
    with running_qr_scp(datasets) as (scp, log):
        result = retrieve_study(
            scp.node(), study, store=LocalStore(tmp_path / "two"), first_series=series,
            focus=ReaderFocus(), associations=2,
        )  # fmt: skip
    assert result.error is None and not result.partial and not result.notes
    assert len(result.received) == len(datasets) and result.completed == len(datasets)
    # (The short second series may finish while the last request of the first is in flight.)
    assert set(result.series_done) == {series, str(datasets[SLICES].SeriesInstanceUID)}
    with running_qr_scp(datasets, max_associations=1) as (scp, log):
        result = retrieve_study(
            scp.node(), study, store=LocalStore(tmp_path / "one"), first_series=series,
            focus=ReaderFocus(), associations=2,
        )  # fmt: skip
    assert result.error is None and not result.partial, result.error
    assert len(result.received) == len(datasets)
    assert any("did not take a second association" in note for note in result.notes)
