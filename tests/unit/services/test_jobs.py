"""The retrieve queue: jobs run in the background and tell their listeners as they move on
(no one polls), and the store is kept within its cap afterwards without touching the study of
a report draft. A real (in-process pynetdicom) Q/R SCP serves the study."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from tests.support.scps_retrieve import running_qr_scp
from tuiviewer.dicom.datagen import write_ct_series
from tuiviewer.reports.drafts import Draft, DraftStore
from tuiviewer.reports.model import Report
from tuiviewer.services.jobs import JobQueue, RetrieveJob
from tuiviewer.store import LocalStore


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> list[Dataset]:
    """Two series of one study, 4 + 3 small CT slices."""
    folder = tmp_path_factory.mktemp("jobs-study")
    uid = generate_uid()
    paths = write_ct_series(
        folder / "a", slices=4, rows=16, cols=16, seed=51, study_uid=uid
    ) + write_ct_series(folder / "b", slices=3, rows=16, cols=16, seed=52, study_uid=uid)
    return [dcmread(p) for p in paths]


def _finished_queue(store: LocalStore, drafts: DraftStore) -> tuple[JobQueue, threading.Event]:
    queue = JobQueue(store, drafts=drafts)
    done = threading.Event()
    queue.on_finished(lambda job, evicted: done.set())
    return queue, done


def test_listeners_hear_every_step_and_the_end_without_polling(
    study: list[Dataset], tmp_path: Path
) -> None:
    store = LocalStore(tmp_path / "store")
    queue, done = _finished_queue(store, DraftStore(tmp_path / "drafts"))
    seen: list[tuple[str, int, int]] = []
    queue.on_change(
        lambda job: seen.append(
            (job.state, job.progress.done if job.progress else 0, len(job.series_done))
        )
    )
    uid = str(study[0].StudyInstanceUID)
    with running_qr_scp(study) as (scp, _log):
        job = RetrieveJob(node=scp.node(), study_uid=uid, label="Test")
        queue.submit(job)
        assert done.wait(30), "the job never ended"
    assert job.state == "done" and len(store.instance_uids(uid)) == len(study)
    assert seen[0][0] == "queued", "the new job is announced before it runs"
    assert [count for state, count, _ in seen if state == "running"][-1] == len(study)
    assert max(series for _, _, series in seen) == 2, "each finished series is announced"
    assert seen[-1][0] == "done"
    assert queue.jobs() == [job] and queue.active_for(uid) is None and not queue.running()


def test_after_a_job_the_store_is_evicted_but_never_a_study_with_a_draft(
    study: list[Dataset], tmp_path: Path
) -> None:
    store = LocalStore(tmp_path / "store", cap_bytes=0)
    drafts = DraftStore(tmp_path / "drafts")
    kept, dropped = "1.2.826.0.1.3680043.2.1125.1", "1.2.826.0.1.3680043.2.1125.2"
    for old in (kept, dropped):
        ds = study[0].copy()
        ds.StudyInstanceUID, ds.SOPInstanceUID = old, generate_uid()
        store.write_dataset(ds)
    drafts.save(Draft(kept, Report(sections=())))
    queue, _ = _finished_queue(store, drafts)
    evicted: list[list[str]] = []
    finished = threading.Event()
    queue.on_finished(lambda job, gone: (evicted.append(gone), finished.set()))
    uid = str(study[0].StudyInstanceUID)
    with running_qr_scp(study) as (scp, _log):
        queue.submit(RetrieveJob(node=scp.node(), study_uid=uid, label="Test"))
        assert finished.wait(30)
    # Over a zero cap everything old goes, except the study whose report is being written.
    assert dropped in evicted[0] and uid in evicted[0] and kept not in evicted[0]
    assert [s.study_uid for s in store.studies()] == [kept]


def test_an_unsubscribed_listener_hears_nothing_more(study: list[Dataset], tmp_path: Path) -> None:
    queue, done = _finished_queue(LocalStore(tmp_path / "store"), DraftStore(tmp_path / "d"))
    heard: list[str] = []
    unsubscribe = queue.on_change(lambda job: heard.append(job.state))
    unsubscribe()
    with running_qr_scp(study) as (scp, _log):
        queue.submit(
            RetrieveJob(node=scp.node(), study_uid=str(study[0].StudyInstanceUID), label="x")
        )
        assert done.wait(30)
    assert heard == []
