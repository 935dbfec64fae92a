"""The list screens at 80×24 and 120×40, read as their users read them: what each one needs is
on screen without scrolling sideways (a header in full, a name and a date not cut, the footer's
keys), against an in-process C-FIND SCP that answers like a PACS (descriptions, modalities,
counts)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pynetdicom import evt

from tests.functional.helpers import settle
from tests.support.scps import STUDY_ROOT_FIND, VERIFICATION, Scp, running_scp
from tests.support.screentext import screen_lines, screen_text
from tuiviewer.app import TuiviewerApp, make_app
from tuiviewer.config.settings import Config
from tuiviewer.dicom.diff import DiffRow
from tuiviewer.screens.diff import DiffScreen
from tuiviewer.screens.jobs import JobsScreen
from tuiviewer.screens.nodes import NodesScreen
from tuiviewer.screens.query import QueryScreen
from tuiviewer.screens.worklist import WorklistScreen
from tuiviewer.services.jobs import RetrieveJob
from tuiviewer.store import LocalStore

TODAY = dt.date.today()
SIZES = [(80, 24), (120, 40)]
PATIENTS = [
    ("GARCIA^MARIA ELENA", "CT", "CT CHEST ABDOMEN PELVIS WITH CONTRAST"),
    ("OKONKWO^CHINEDU", "MR", "MR BRAIN WITHOUT CONTRAST"),
    ("LI^WEI", "CR", "CHEST PA AND LATERAL"),
]


def study(index: int) -> Dataset:
    name, modality, description = PATIENTS[index]
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.QueryRetrieveLevel = "STUDY"
    ds.PatientName = name
    ds.PatientID = f"P{index:05d}"
    ds.PatientBirthDate = "19600101"
    ds.StudyInstanceUID = f"1.2.826.0.1.3680043.10.543.80{index}"
    ds.StudyDate = f"{TODAY - dt.timedelta(days=index):%Y%m%d}"
    ds.StudyTime = "101500"
    ds.AccessionNumber = f"ACC{index:05d}"
    ds.StudyDescription = description
    ds.ModalitiesInStudy = modality
    ds.NumberOfStudyRelatedSeries = 3
    ds.NumberOfStudyRelatedInstances = 240
    return ds


def find_handler(event: Any) -> Iterator[tuple[int, Dataset | None]]:
    """Every study at the study level (whatever the keys: a worklist, priors), no SR."""
    if event.identifier.QueryRetrieveLevel == "STUDY":
        for index in range(len(PATIENTS)):
            yield 0xFF00, study(index)
    yield 0x0000, None


@pytest.fixture()
def pacs() -> Iterator[Scp]:
    handlers = [(evt.EVT_C_FIND, find_handler)]
    with running_scp(contexts=(VERIFICATION, STUDY_ROOT_FIND), handlers=handlers) as scp:
        yield scp


def app_on(scp: Scp, tmp_path: Path, *, worklist: bool = True) -> TuiviewerApp:
    """The app on the SCP: opening on the worklist, or on the PACS query."""
    node = scp.node(name="pacs")
    store = LocalStore(tmp_path / "store")
    default = node.name if worklist else None
    return make_app(Config(), [], nodes={node.name: node}, default_node=default, store=store)


def table_header(lines: list[str]) -> str:
    """The line of a study table's column headers (not the criteria's placeholders)."""
    return next(line for line in lines if re.search(r"Patient(?! name| ID)", line))


def assert_fits(lines: list[str], width: int) -> None:
    assert all(len(line) <= width for line in lines)


@pytest.mark.parametrize("size", SIZES)
async def test_worklist_shows_patient_date_modality_description_and_state(
    pacs: Scp, tmp_path: Path, size: tuple[int, int]
) -> None:
    app = app_on(pacs, tmp_path)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, WorklistScreen)
        text = screen_text(app)
        header = table_header(screen_lines(app))
        for column in ("Report", "Patient", "Date", "Mod", "Description"):
            assert column in header, f"{column!r} missing at {size}: {header!r}"
        assert "GARCIA MARIA ELENA" in text  # the name in full
        assert f"{TODAY:%Y-%m-%d}" in text
        assert "CT CHEST" in text and "unreported" in text
        assert "Open" in screen_lines(app)[-1] and "Report" in screen_lines(app)[-1]
        assert_fits(screen_lines(app), size[0])


@pytest.mark.parametrize("size", SIZES)
async def test_query_results_and_sorting_from_the_keyboard(
    pacs: Scp, tmp_path: Path, size: tuple[int, int]
) -> None:
    app = app_on(pacs, tmp_path, worklist=False)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, QueryScreen)
        screen.studies.focus()
        lines = screen_lines(app)
        header = table_header(lines)
        for column in ("Patient", "Date", "Mod", "Description"):
            assert column in header, f"{column!r} missing at {size}: {header!r}"
        assert "OKONKWO CHINEDU" in screen_text(app)
        assert "3 studies on pacs" in screen_text(app)
        assert_fits(lines, size[0])
        # > sorts by a column (the first time: date, newest first), S reverses it.
        await pilot.press("greater_than_sign")
        await pilot.pause()
        header = table_header(screen_lines(app))
        assert "Date ▼" in header
        assert screen.selected_study() is not None
        first = screen.studies.coordinate_to_cell_key((0, 0)).row_key.value
        assert screen.rows[str(first)].patient_name == "GARCIA^MARIA ELENA"  # today's
        await pilot.press("S")
        await pilot.pause()
        header = table_header(screen_lines(app))
        assert "Date ▲" in header
        first = screen.studies.coordinate_to_cell_key((0, 0)).row_key.value
        assert screen.rows[str(first)].patient_name == "LI^WEI"  # the oldest
        await pilot.press("greater_than_sign")  # the next column: modality
        await pilot.pause()
        header = table_header(screen_lines(app))
        assert "Mod ▲" in header and "Date ▼" not in header and "Date ▲" not in header
        modalities = [
            screen.rows[str(screen.studies.coordinate_to_cell_key((i, 0)).row_key.value)]
            for i in range(3)
        ]
        assert [r.modalities for r in modalities] == [("CR",), ("CT",), ("MR",)]
        await pilot.press("less_than_sign")  # back to the column on the left: date
        await pilot.pause()
        assert "Date ▼" in table_header(screen_lines(app))


async def test_the_worklist_sorts_by_report_state_from_the_keyboard(
    pacs: Scp, tmp_path: Path
) -> None:
    app = app_on(pacs, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, WorklistScreen)
        await pilot.press("less_than_sign", "less_than_sign")  # date → patient → report
        await pilot.pause()
        header = table_header(screen_lines(app))
        assert "Report ▲" in header
        await pilot.press("S")
        await pilot.pause()
        assert "Report ▼" in table_header(screen_lines(app))


@pytest.mark.parametrize("size", SIZES)
async def test_node_list_and_its_keys(pacs: Scp, tmp_path: Path, size: tuple[int, int]) -> None:
    app = app_on(pacs, tmp_path, worklist=False)
    second = pacs.node(name="second", ae_title="OTHER")
    app.nodes = {**app.nodes, "second": second}
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await pilot.press("f5")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, NodesScreen)
        await pilot.press("down")  # on "second"
        await pilot.press("t")  # C-ECHO it: the cursor stays on it
        await settle(pilot)
        current = screen.current()
        assert current is not None and current.name == "second"
        lines = screen_lines(app)
        text = "\n".join(lines)
        header = next(line for line in lines if "Name" in line)
        for column in ("Name", "AE@host:port", "C-ECHO"):
            assert column in header, f"{column!r} missing at {size}: {header!r}"
        assert f"OTHER@127.0.0.1:{pacs.port}" in text
        assert "OK " in text
        footer = lines[-1]
        for key in ("Add", "Edit", "Delete", "C-ECHO", "Query it"):
            assert key in footer, f"{key!r} not in the footer at {size}: {footer!r}"
        assert_fits(lines, size[0])
        await pilot.press("enter")  # Query it
        await settle(pilot)
        assert isinstance(app.screen, QueryScreen)
        assert app.screen.current_node() == second


@pytest.mark.parametrize("size", SIZES)
async def test_retrieve_queue_shows_state_count_size_and_eta(
    pacs: Scp, tmp_path: Path, size: tuple[int, int]
) -> None:
    from tuiviewer.net.retrieve import RetrieveProgress

    app = app_on(pacs, tmp_path, worklist=False)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        job = RetrieveJob(
            node=pacs.node(name="pacs"),
            study_uid="1.2.3",
            label="GARCIA MARIA ELENA · 2026-12-01 CT CHEST ABDOMEN PELVIS WITH CONTRAST",
        )
        job.state = "running"
        job.progress = RetrieveProgress(
            study_uid="1.2.3",
            series_uid="",
            done=120,
            total=480,
            failed=0,
            warning=0,
            bytes=62_500_000,
            elapsed_s=10,
        )
        app.queue._jobs.append(job)  # a job as it runs, without a PACS to retrieve from
        await pilot.press("f4")
        await settle(pilot)
        assert isinstance(app.screen, JobsScreen)
        lines = screen_lines(app)
        text = "\n".join(lines)
        assert "1 job, 1 running" in text
        row = next(line for line in lines if "running" in line and "GARCIA" in line)
        assert "running" in row and "120/480" in row and "62.5 MB" in row and "ETA 30s" in row
        assert "Cancel" in lines[-1] and "Retry" in lines[-1]
        assert_fits(lines, size[0])


@pytest.mark.parametrize("size", SIZES)
async def test_diff_shows_both_values(pacs: Scp, tmp_path: Path, size: tuple[int, int]) -> None:
    app = app_on(pacs, tmp_path, worklist=False)
    rows = [
        DiffRow(
            path=(0x00185100,),
            tag_text="(0018,5100)",
            keyword="PatientPosition",
            kind="changed",
            left="HFS",
            right="HFP",
        ),
        DiffRow(
            path=(0x0008103E,),
            tag_text="(0008,103E)",
            keyword="SeriesDescription",
            kind="changed",
            left="PLANNING CT HEAD AND NECK",
            right="PLANNING CT HEAD AND NECK (EDITED)",
        ),
    ]
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await app.push_screen(DiffScreen("plan_original.dcm", "plan_edited.dcm", rows))
        await pilot.pause()
        lines = screen_lines(app)
        row = next(line for line in lines if "PatientPosition" in line)
        assert "HFS" in row and "HFP" in row
        row = next(line for line in lines if "SeriesDescription" in line)
        assert row.count("PLANNING CT") == 2, row  # both values, side by side
        await pilot.press("down")  # the values of the row under the cursor, in full
        await pilot.pause()
        text = screen_text(app)
        assert "plan_original.dcm: PLANNING CT HEAD AND NECK\n" in text
        assert "plan_edited.dcm: PLANNING CT HEAD AND NECK (EDITED)" in text
        assert_fits(lines, size[0])


async def test_every_list_says_which_study_it_is_on(pacs: Scp, tmp_path: Path) -> None:
    """The app-wide report key acts on ``study_in_view()``: the study under the cursor."""
    from tuiviewer.screens.base import ShowsStudy

    app = app_on(pacs, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        worklist = app.screen
        assert isinstance(worklist, WorklistScreen) and isinstance(worklist, ShowsStudy)
        await pilot.press("down")
        seen = worklist.study_in_view()
        assert seen is not None and seen.study_uid == study(1).StudyInstanceUID
        assert seen.path is None and seen.node is not None and seen.node.name == "pacs"
        await pilot.press("f2")
        await settle(pilot)
        query = app.screen
        assert isinstance(query, QueryScreen) and isinstance(query, ShowsStudy)
        query.studies.focus()
        await pilot.press("down", "down")
        seen = query.study_in_view()
        assert seen is not None and seen.study_uid == study(2).StudyInstanceUID


async def test_the_pacs_picker_has_no_blank_entry(pacs: Scp, tmp_path: Path) -> None:
    from textual.widgets import Select

    app = app_on(pacs, tmp_path, worklist=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        select = app.screen.query_one("#node", Select)
        assert [str(prompt) for prompt, _ in select._options] == [
            f"pacs  TESTSCP@127.0.0.1:{pacs.port}"
        ]
    empty = make_app(Config(), [], nodes={}, store=LocalStore(tmp_path / "empty"))
    async with empty.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("f2")  # without a node the app opens on the node manager
        await settle(pilot)
        screen = empty.screen
        assert isinstance(screen, QueryScreen) and screen.current_node() is None
        assert "No PACS (F5)" in screen_text(empty)


async def test_the_tls_box_is_blank_when_off(pacs: Scp, tmp_path: Path) -> None:
    from tuiviewer.screens.nodes import NodeDialog, TickBox

    app = app_on(pacs, tmp_path, worklist=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await app.push_screen(NodeDialog(None, set()))
        await pilot.pause()
        box = app.screen.query_one(TickBox)
        line = next(line for line in screen_lines(app) if "use TLS" in line)
        assert "X" not in line.split("use TLS")[0]
        box.value = True
        await pilot.pause()
        line = next(line for line in screen_lines(app) if "use TLS" in line)
        assert "X" in line.split("use TLS")[0]


async def test_editing_a_node_keeps_the_cursor_on_it(pacs: Scp, tmp_path: Path) -> None:
    from textual.widgets import Input

    app = app_on(pacs, tmp_path, worklist=False)
    app.nodes = {**app.nodes, "second": pacs.node(name="second"), "third": pacs.node(name="third")}
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("f5")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, NodesScreen)
        await pilot.press("down", "down", "e")  # edit "third"
        await pilot.pause()
        ae = app.screen.query_one("#f-ae_title", Input)
        ae.value = "RENAMED"
        ae.focus()
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is screen
        current = screen.current()
        assert current is not None and current.name == "third" and current.ae_title == "RENAMED"
