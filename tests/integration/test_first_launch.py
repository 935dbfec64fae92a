"""The first hour: an empty worklist says why and what to do, the worklist remembers its dates
and filters, a draft is reachable whatever its study's date, and ? opens help on every screen.

The PACS is tuiviewer's mini PACS in-process, holding a study dated years back (outside the
worklist's window) and, for some tests, one dated today.
"""

from __future__ import annotations

import datetime as dt
import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from textual.widgets import DataTable, Input, Select, Static

from tests.conftest import testdata as sample_file
from tests.functional.helpers import burst, settle
from tests.integration.test_worklist import wait_for
from tuiviewer.app import TuiviewerApp, make_app
from tuiviewer.config.nodes import Node
from tuiviewer.config.settings import Config
from tuiviewer.net.minipacs import MiniPacs
from tuiviewer.reports.drafts import Draft, DraftStore
from tuiviewer.reports.model import Report, Section, SectionKind
from tuiviewer.screens.dialogs.choose import ChooseDialog
from tuiviewer.screens.dialogs.help import HelpScreen
from tuiviewer.screens.inbox import InboxScreen
from tuiviewer.screens.report import ReportScreen
from tuiviewer.screens.worklist import WorklistScreen
from tuiviewer.services.worklist import view_path
from tuiviewer.store import LocalStore

OLD_STUDY = sample_file("CT_small.dcm")
TODAY = dt.date.today()


@pytest.fixture
def pacs(tmp_path: Path) -> Iterator[tuple[MiniPacs, Node]]:
    """A PACS holding only CT_small, dated 2004 (as pydicom ships it): outside any window."""
    archive = MiniPacs(tmp_path / "pacs", ae_title="FIRST")
    archive.add([OLD_STUDY])
    port = archive.start()
    try:
        yield archive, Node("first", "FIRST", "127.0.0.1", port, dimse_timeout=10)
    finally:
        archive.stop()


def app_on(node: Node, tmp_path: Path) -> TuiviewerApp:
    return make_app(
        Config(),
        [],
        nodes={node.name: node},
        default_node=node.name,
        store=LocalStore(tmp_path / "s"),
    )


def empty_text(screen: WorklistScreen) -> str:
    line = screen.query_one("#wl-empty", Static)
    return str(line.render()) if line.display else ""


async def test_an_empty_worklist_says_why_and_what_to_do(
    pacs: tuple[MiniPacs, Node], tmp_path: Path
) -> None:
    _archive, node = pacs
    app = app_on(node, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, WorklistScreen)
        text = empty_text(screen)
        week_ago = TODAY - dt.timedelta(days=6)
        assert f"No studies on first from {week_ago:%Y-%m-%d} to {TODAY:%Y-%m-%d}" in text
        assert "/ goes to the From date" in text and "F2" in text and "F5" in text
        # Widening the dates (typed as a burst) finds the study, and the message goes.
        await burst(pilot, "slash", "ctrl+u", *"20000101", "enter")
        await settle(pilot)
        assert screen.query_one("#worklist", DataTable).row_count == 1
        assert empty_text(screen) == ""


async def test_the_date_window_and_filters_are_remembered(
    pacs: tuple[MiniPacs, Node], tmp_path: Path
) -> None:
    _archive, node = pacs
    app = app_on(node, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await burst(pilot, "slash", "ctrl+u", *"20000101", "enter")
        await settle(pilot)
        await pilot.press("s")  # status filter: unreported
        await settle(pilot)
    saved = view_path()
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    data = json.loads(saved.read_text())
    assert data["days"] == (TODAY - dt.date(2000, 1, 1)).days + 1  # a window ending today
    assert data["status"] == "unreported"

    app = app_on(node, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, WorklistScreen)
        assert screen.query_one("#wl-from", Input).value == "20000101"
        assert screen.query_one("#wl-to", Input).value == f"{TODAY:%Y%m%d}"
        assert screen.query_one("#wl-status-filter", Select).value == "unreported"
        assert screen.query_one("#worklist", DataTable).row_count == 1


async def test_the_inbox_remembers_nothing_and_says_how_studies_arrive(
    pacs: tuple[MiniPacs, Node], tmp_path: Path
) -> None:
    _archive, node = pacs
    app = app_on(node, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await burst(pilot, "slash", "ctrl+u", *"20000101", "enter")
        await settle(pilot)
        saved = view_path().read_text()
        await pilot.press("f6")
        await settle(pilot)
        inbox = app.screen
        assert isinstance(inbox, InboxScreen)
        await wait_for(pilot, lambda: empty_text(inbox) != "")
        text = empty_text(inbox)
        assert "No study received yet" in text and "F7" in text
        assert "Widen the dates" not in text
        await pilot.press("s")  # the Inbox's status filter is not the worklist's
        await settle(pilot)
        assert view_path().read_text() == saved


async def test_a_draft_outside_the_window_is_reachable_from_the_reminder(
    pacs: tuple[MiniPacs, Node], tmp_path: Path
) -> None:
    _archive, node = pacs
    ct = pydicom.dcmread(OLD_STUDY)
    report = Report(sections=(Section(SectionKind.FINDINGS, "Draft of an old study."),))
    DraftStore().save(
        Draft(str(ct.StudyInstanceUID), report, patient_name=str(ct.PatientName), accession="A1")
    )
    app = app_on(node, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, WorklistScreen)
        assert screen.query_one("#worklist", DataTable).row_count == 0  # outside the window
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ChooseDialog))
        dialog = app.screen
        assert isinstance(dialog, ChooseDialog)
        assert any(str(ct.PatientName).replace("^", " ") in item for item in dialog.items)
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: (
                type(app.screen).__name__ == "QuestionDialog"
                or (isinstance(app.screen, ReportScreen) and app.screen.report is not None)
            ),
            timeout=20,
        )
        await pilot.press("escape")  # Esc on "resume?" resumes
        await wait_for(
            pilot, lambda: isinstance(app.screen, ReportScreen) and app.screen.report is not None
        )
        editor = app.screen
        assert isinstance(editor, ReportScreen)
        assert editor.report is not None
        assert editor.report.text_of(SectionKind.FINDINGS) == "Draft of an old study."


async def test_question_mark_opens_help_on_every_screen(
    pacs: tuple[MiniPacs, Node], tmp_path: Path
) -> None:
    _archive, node = pacs
    app = app_on(node, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        for key, expected in (
            ("f1", "Status filter"),
            ("f2", "Search"),
            ("f3", "Open"),
            ("f4", "Retry"),
            ("f5", "C-ECHO"),
        ):
            await pilot.press(key)
            await settle(pilot)
            await pilot.press("question_mark")
            await pilot.pause()
            help_screen = app.screen
            assert isinstance(help_screen, HelpScreen), (key, app.screen)
            assert expected in help_screen.text, (key, help_screen.text)
            await pilot.press("escape")
            await pilot.pause()
            assert not isinstance(app.screen, HelpScreen)
