"""A drafts folder that cannot be written: the editor says so at once, keeps the text, retries,
and never crashes on leaving.

The failure is real for root too (the tests run as root, so permissions would not stop it): a
regular file stands where the drafts folder should be, so every mkdir and every write fails.
"""

from __future__ import annotations

import time
from pathlib import Path

import pydicom
import pytest
from textual.widgets import Input, Static, TextArea

from tests.functional.helpers import burst, settle
from tuiviewer.app import TuiviewerApp, make_app
from tuiviewer.config.settings import Config
from tuiviewer.reports.drafts import DraftStore
from tuiviewer.reports.model import SectionKind
from tuiviewer.screens.browser import BrowserScreen
from tuiviewer.screens.dialogs.common import ConfirmDialog, PathDialog, QuestionDialog
from tuiviewer.screens.report import ReportScreen
from tuiviewer.store import LocalStore


def app_for(folder: Path, tmp_path: Path) -> TuiviewerApp:
    app = make_app(Config(), [folder], store=LocalStore(tmp_path / "store"))
    app.export_dir = tmp_path / "export"
    return app


async def open_editor(pilot) -> ReportScreen:  # type: ignore[no-untyped-def]
    await settle(pilot)
    await pilot.press("W")
    for _ in range(500):
        await pilot.pause(0.02)
        screen = pilot.app.screen
        if isinstance(screen, ReportScreen) and screen.report is not None:
            return screen
    raise AssertionError(f"no editor: {pilot.app.screen!r}")


def warning(screen: ReportScreen) -> str:
    line = screen.query_one("#draft-warning", Static)
    return str(line.render()) if line.display else ""


def status(screen: ReportScreen) -> str:
    return str(screen.query_one("#report-status", Static).render())


async def until(pilot, predicate, timeout: float = 8.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await pilot.pause(0.05)
    raise AssertionError("condition not reached")


def block_drafts(drafts: Path) -> Path:
    """Move the drafts folder away and put a file in its place; returns where it went."""
    aside = drafts.with_name("drafts-aside")
    drafts.rename(aside)
    drafts.write_text("a file where the drafts folder should be\n")
    return aside


async def test_a_folder_that_stops_taking_drafts_is_said_at_once_and_retried(
    ct_folder: Path, tmp_path: Path, private_user_dirs: Path
) -> None:
    uid = str(pydicom.dcmread(ct_folder / "CT_small.dcm").StudyInstanceUID)
    drafts_dir = private_user_dirs / "data" / "drafts"
    app = app_for(ct_folder, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_editor(pilot)
        area = screen.query_one("#section-findings", TextArea)
        area.focus()
        await burst(pilot, *"First.")
        await until(pilot, lambda: DraftStore().load(uid) is not None)
        assert warning(screen) == ""
        aside = block_drafts(drafts_dir)
        await burst(pilot, *" Second, not saved.")
        # Said on a line of its own within the autosave delay, not a toast that goes away.
        await until(pilot, lambda: "NOT being saved" in warning(screen), timeout=4)
        assert "draft NOT saved" in status(screen)
        assert area.text == "First. Second, not saved."

        # Esc does not crash and does not leave: it asks, and Esc on that question stays.
        await pilot.press("escape")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, QuestionDialog) and "could not be saved" in dialog.question
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen and area.text == "First. Second, not saved."

        # The disk comes back: the retry writes the draft without another keystroke.
        drafts_dir.unlink()
        aside.rename(drafts_dir)
        await until(
            pilot,
            lambda: (
                (d := DraftStore().load(uid)) is not None
                and d.report.text_of(SectionKind.FINDINGS) == "First. Second, not saved."
            ),
        )
        await until(pilot, lambda: warning(screen) == "")
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, BrowserScreen)


async def test_an_unwritable_drafts_folder_is_said_on_opening_and_the_text_saved_elsewhere(
    ct_folder: Path, tmp_path: Path, private_user_dirs: Path
) -> None:
    drafts_dir = private_user_dirs / "data" / "drafts"
    drafts_dir.parent.mkdir(parents=True, exist_ok=True)
    drafts_dir.write_text("not a folder\n")
    app = app_for(ct_folder, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_editor(pilot)
        await until(pilot, lambda: "NOT being saved" in warning(screen), timeout=2)
        area = screen.query_one("#section-findings", TextArea)
        area.focus()
        await burst(pilot, *"Only in memory.")
        # Quitting asks too, and Esc keeps the app running.
        await app.run_action("quit")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog) and "could not be saved" in (
            app.screen.question
        )
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen

        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, QuestionDialog)
        await pilot.press("s")  # save it elsewhere
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, PathDialog)
        target = tmp_path / "elsewhere" / "findings"
        dialog.query_one("#path", Input).value = str(target)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, BrowserScreen)
    assert "Only in memory." in target.with_suffix(".txt").read_text()
    assert "Only in memory." in target.with_suffix(".md").read_text()


@pytest.mark.parametrize("damage", [b'{"format": 1, "study_uid": "1.2', b"\x00\xff\xfe garbage"])
async def test_w_on_a_damaged_draft_opens_a_fresh_editor_and_keeps_the_file(
    ct_folder: Path, tmp_path: Path, private_user_dirs: Path, damage: bytes
) -> None:
    uid = str(pydicom.dcmread(ct_folder / "CT_small.dcm").StudyInstanceUID)
    drafts = DraftStore()
    drafts.root.mkdir(parents=True)
    drafts.path_for(uid).write_bytes(damage)
    app = app_for(ct_folder, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        # The "unfinished drafts" reminder at start does not trip over it either.
        await settle(pilot)
        for attempt in range(2):  # every time, not only the first
            screen = await open_editor(pilot)
            notice = screen.query_one("#draft-notice", Static)
            if attempt == 0:
                assert notice.display and "damaged" in str(notice.render())
            assert screen.query_one("#section-findings", TextArea).text == ""
            await pilot.press("escape")
            await pilot.pause()
            assert isinstance(app.screen, BrowserScreen)
    kept = sorted(drafts.root.glob(f"{uid}.damaged-*.json"))
    assert len(kept) == 1 and kept[0].read_bytes() == damage
    assert kept[0].stat().st_mode & 0o777 == 0o600
