"""The PACS screens driven as a user would, against a real Orthanc and small pynetdicom SCPs."""

from __future__ import annotations

import time
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pynetdicom import evt
from textual.widgets import DataTable, Input, Static

from tests.conftest import testdata as sample_file
from tests.functional.helpers import settle
from tests.support.orthanc import Orthanc, c_find, store_files
from tests.support.scps import STUDY_ROOT_FIND, StreamLog, running_scp, streaming_find_handler
from tuiviewer.app import TuiviewerApp, make_app
from tuiviewer.config.nodes import Node
from tuiviewer.config.settings import Config
from tuiviewer.screens.browser import BrowserScreen
from tuiviewer.screens.jobs import JobsScreen
from tuiviewer.screens.nodes import NodeDialog, NodesScreen
from tuiviewer.screens.query import QueryScreen
from tuiviewer.store import LocalStore

SAMPLES = ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm")


@pytest.fixture
def loaded_orthanc(empty_orthanc: Orthanc) -> Orthanc:
    paths = [sample_file(name) for name in SAMPLES]
    assert store_files(empty_orthanc.host, empty_orthanc.dicom_port, empty_orthanc.aet, paths) == 3
    return empty_orthanc


def orthanc_node(orthanc: Orthanc) -> Node:
    return Node(name="orthanc", ae_title=orthanc.aet, host=orthanc.host, port=orthanc.dicom_port)


def pacs_app(node: Node, store_root: Path) -> TuiviewerApp:
    return make_app(
        Config(),
        [],
        nodes={node.name: node},
        store=LocalStore(store_root),
    )


def status(screen: QueryScreen) -> str:
    content = screen.query_one("#query-status", Static).content
    return content.plain if hasattr(content, "plain") else str(content)


async def test_query_lists_every_study_and_filters(loaded_orthanc: Orthanc, tmp_path: Path) -> None:
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = ""
    found = c_find(loaded_orthanc.host, loaded_orthanc.dicom_port, loaded_orthanc.aet, query)
    expected = {str(ds.StudyInstanceUID) for ds in found}
    app = pacs_app(orthanc_node(loaded_orthanc), tmp_path / "store")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, QueryScreen)
        assert set(screen.rows) == expected
        assert screen.query_one("#studies", DataTable).row_count == len(expected)
        assert f"{len(expected)} studies on orthanc" in status(screen)

        # Filter by patient ID: only the MR study remains.
        mr = pydicom.dcmread(sample_file("MR_small.dcm"))
        screen.query_one("#patient_id", Input).value = str(mr.PatientID)
        screen.query_one("#patient_id", Input).focus()
        await pilot.press("enter")
        await settle(pilot)
        assert set(screen.rows) == {str(mr.StudyInstanceUID)}
        assert "1 study on orthanc" in status(screen)

        # The series of the highlighted study are listed below it.
        table = screen.query_one("#series", DataTable)
        assert table.row_count == 1


async def test_bad_date_is_refused_before_anything_is_sent(
    loaded_orthanc: Orthanc, tmp_path: Path
) -> None:
    app = pacs_app(orthanc_node(loaded_orthanc), tmp_path / "store")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, QueryScreen)
        before = screen.query_id
        date = screen.query_one("#study_date", Input)
        date.value = "2024-13-45"
        date.focus()
        await pilot.press("enter")
        await settle(pilot)
        assert screen.query_id == before
        assert "2024-13-45" in status(screen)


async def test_retrieve_then_open_the_study_locally(
    loaded_orthanc: Orthanc, tmp_path: Path
) -> None:
    ct = pydicom.dcmread(sample_file("CT_small.dcm"))
    app = pacs_app(orthanc_node(loaded_orthanc), tmp_path / "store")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, QueryScreen)
        studies = screen.query_one("#studies", DataTable)
        studies.focus()
        studies.move_cursor(row=studies.get_row_index(str(ct.StudyInstanceUID)))
        await pilot.press("g")
        await settle(pilot)
        (job,) = app.jobs
        assert job.state == "done", job.error
        stored = LocalStore(tmp_path / "store").instance_uids(str(ct.StudyInstanceUID))
        assert stored == {str(ct.SOPInstanceUID)}

        await pilot.press("f4")
        await settle(pilot)
        jobs = app.screen
        assert isinstance(jobs, JobsScreen)
        jobs.refresh_rows()
        row = jobs.query_one(DataTable).get_row(str(job.id))
        assert str(row[3]) == "done" and row[5].startswith("1/1")

        await pilot.press("o")
        await settle(pilot)
        browser = app.screen
        assert isinstance(browser, BrowserScreen)
        assert len(browser.index) == 1
        assert browser.loaded is not None
        assert browser.loaded.dataset.SOPInstanceUID == ct.SOPInstanceUID


async def test_rows_stream_in_and_escape_cancels(tmp_path: Path) -> None:
    log = StreamLog()
    handler = streaming_find_handler(log, count=20, interval=0.2)
    with running_scp(contexts=[STUDY_ROOT_FIND], handlers=[(evt.EVT_C_FIND, handler)]) as scp:
        app = pacs_app(scp.node(name="slow", dimse_timeout=5), tmp_path / "store")
        async with app.run_test(size=(120, 40)) as pilot:
            screen = app.screen
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not (
                isinstance(screen, QueryScreen) and len(screen.rows) >= 2
            ):
                await pilot.pause(0.05)
                screen = app.screen
            assert isinstance(screen, QueryScreen)
            assert 2 <= len(screen.rows) < 20, "rows show while the query is still running"
            await pilot.press("escape")
            await settle(pilot)
            assert log.finished.wait(5)
            assert log.cancelled_after is not None, "the SCP saw the C-CANCEL"
            assert len(screen.rows) < 20
            assert "cancelled" in status(screen)


async def test_unreachable_pacs_says_so(tmp_path: Path) -> None:
    from tests.support.ports import free_port

    node = Node(name="nowhere", ae_title="NOPE", host="127.0.0.1", port=free_port())
    app = pacs_app(node, tmp_path / "store")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, QueryScreen)
        text = status(screen)
        assert f"127.0.0.1:{node.port}" in text and "⚠" in text


async def test_node_manager_adds_tests_and_saves(loaded_orthanc: Orthanc, tmp_path: Path) -> None:
    nodes_file = tmp_path / "nodes.toml"
    app = make_app(Config(), [], nodes={}, nodes_file=nodes_file, store=LocalStore(tmp_path / "s"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, NodesScreen)
        await pilot.press("a")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, NodeDialog)
        for key, value in (
            ("name", "main"),
            ("ae_title", loaded_orthanc.aet),
            ("host", loaded_orthanc.host),
            ("port", str(loaded_orthanc.dicom_port)),
        ):
            dialog.query_one(f"#f-{key}", Input).value = value
        dialog.query_one("#f-name", Input).focus()
        await pilot.press("enter")
        await settle(pilot)
        nodes = app.screen
        assert isinstance(nodes, NodesScreen)
        assert "main" in app.nodes
        assert "[nodes.main]" in nodes_file.read_text()
        await pilot.press("t")
        await settle(pilot)
        row = nodes.query_one(DataTable).get_row("main")
        assert str(row[5]).startswith("OK ")


async def test_sorting_studies_by_a_column(loaded_orthanc: Orthanc, tmp_path: Path) -> None:
    app = pacs_app(orthanc_node(loaded_orthanc), tmp_path / "store")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, QueryScreen)
        table = screen.query_one("#studies", DataTable)
        table.focus()
        await pilot.press("s")  # first sort: by study date, newest first
        await pilot.pause()
        order = [str(table.coordinate_to_cell_key((i, 0)).row_key.value) for i in range(3)]
        dates = [screen.rows[uid].date for uid in order]
        assert dates == sorted(dates, reverse=True)
        await pilot.press("s")  # next column: modality... any order is by that column
        await pilot.pause()
        assert table.row_count == len(screen.rows)


async def test_a_retrieve_that_dies_keeps_what_arrived_and_resumes(tmp_path: Path) -> None:
    from pydicom.uid import generate_uid

    from tests.support.scps_retrieve import running_qr_scp
    from tuiviewer.dicom.datagen import write_ct_series

    study = generate_uid()
    files = write_ct_series(tmp_path / "ct", slices=6, rows=16, cols=16, seed=41, study_uid=study)
    datasets = [pydicom.dcmread(p) for p in files]
    store_root = tmp_path / "store"
    with running_qr_scp(datasets, abort_after=3) as (scp, _log):
        app = pacs_app(scp.node(name="flaky"), store_root)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            screen = app.screen
            assert isinstance(screen, QueryScreen) and list(screen.rows) == [study]
            screen.query_one("#studies", DataTable).focus()
            await pilot.press("g")
            await settle(pilot)
            (job,) = app.jobs
            assert job.state == "partial"
            assert job.error is not None and "aborted" in job.error
            assert len(LocalStore(store_root).instance_uids(study)) == 3

            await pilot.press("f4")
            await settle(pilot)
            jobs = app.screen
            assert isinstance(jobs, JobsScreen)
            jobs.refresh_rows()
            assert str(jobs.query_one(DataTable).get_row(str(job.id))[3]) == "partial"
            assert "aborted" in str(jobs.query_one("#job-detail", Static).render())

            # The PACS is back (a new SCP; the test cannot reuse the port): r resumes.
            with running_qr_scp(datasets) as (again, log):
                job.node = again.node(name="flaky")
                await pilot.press("r")
                await settle(pilot)
            assert job.state == "done", job.error
            asked = {uid for request in log.requested_sops for uid in request}
            assert len(asked) == 3, "only the missing instances were asked for"
    assert LocalStore(store_root).instance_uids(study) == {
        str(ds.SOPInstanceUID) for ds in datasets
    }
