"""Esc in every dialog leaves things as they were; a draft is only replaced after a choice."""

from __future__ import annotations

import stat
from pathlib import Path

import pydicom
import pytest
from textual.app import App, ComposeResult
from textual.widgets import Input, Label, TextArea

from tests.functional.helpers import new_app, on_patient_position, settle
from tuiviewer.app import TuiviewerApp, make_app
from tuiviewer.config.settings import Config
from tuiviewer.reports.drafts import DraftStore
from tuiviewer.reports.model import Report, Section, SectionKind, sign
from tuiviewer.screens.browser import BrowserScreen
from tuiviewer.screens.dialogs.common import ConfirmDialog, Option, QuestionDialog
from tuiviewer.screens.dialogs.edit import EditValueDialog
from tuiviewer.screens.nodes import NodeDialog, NodesScreen
from tuiviewer.screens.report import ReportScreen
from tuiviewer.store import LocalStore

DRAFT_TEXT = "Draft findings the reader wrote yesterday."


def test_esc_can_never_mean_the_destructive_answer() -> None:
    with pytest.raises(ValueError, match="destructive"):
        QuestionDialog(
            "Delete?",
            [Option(True, "Delete", destructive=True), Option(False, "Keep")],
            escape=True,
        )
    with pytest.raises(ValueError, match="not an answer"):
        QuestionDialog("Delete?", [Option(True, "Delete")], escape=False)


class _Asker(App[None]):
    def __init__(self, dialog: QuestionDialog[str]) -> None:
        super().__init__()
        self.dialog = dialog
        self.answers: list[str] = []

    def compose(self) -> ComposeResult:
        yield Label("under the dialog")

    def on_mount(self) -> None:
        self.dialog.ask(self, self.answers.append)


@pytest.mark.parametrize("keys", [("escape",), ("enter",)])
async def test_esc_and_a_stray_enter_give_the_safe_answer(keys: tuple[str, ...]) -> None:
    dialog = QuestionDialog(
        "Replace the draft?",
        [
            Option("replace", "Replace", key="r", destructive=True),
            Option("keep", "Keep"),
        ],
        escape="keep",
    )
    app = _Asker(dialog)
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press(*keys)
        await pilot.pause()
    assert app.answers == ["keep"]


def report_app(folder: Path, tmp_path: Path) -> TuiviewerApp:
    return make_app(Config(), [folder], store=LocalStore(tmp_path / "store"))


async def wait_for_screen(pilot, kind: type) -> object:  # type: ignore[no-untyped-def]
    for _ in range(400):
        await pilot.pause(0.02)
        screen = pilot.app.screen
        if isinstance(screen, kind) and (
            not isinstance(screen, ReportScreen) or screen.report is not None
        ):
            return screen
    raise AssertionError(f"no {kind.__name__}: the screen is {pilot.app.screen!r}")


async def write_draft(pilot, text: str) -> ReportScreen:  # type: ignore[no-untyped-def]
    """Open the editor (no draft yet), type ``text`` into Findings and leave (Esc)."""
    await settle(pilot)
    await pilot.press("W")
    screen = await wait_for_screen(pilot, ReportScreen)
    assert isinstance(screen, ReportScreen)
    area = screen.query_one("#section-findings", TextArea)
    area.focus()
    area.insert(text)
    await pilot.pause()
    await pilot.press("escape")
    await pilot.pause()
    return screen


def study_uid(folder: Path) -> str:
    return str(pydicom.dcmread(folder / "CT_small.dcm").StudyInstanceUID)


async def test_esc_on_the_resume_question_keeps_the_draft(ct_folder: Path, tmp_path: Path) -> None:
    uid = study_uid(ct_folder)
    drafts = DraftStore()
    app = report_app(ct_folder, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await write_draft(pilot, DRAFT_TEXT)
        assert drafts.load(uid).report.text_of(SectionKind.FINDINGS) == DRAFT_TEXT  # type: ignore[union-attr]
        await pilot.press("W")
        dialog = await wait_for_screen(pilot, QuestionDialog)
        assert isinstance(dialog, QuestionDialog) and "Resume it?" in dialog.question
        await pilot.press("escape")
        screen = await wait_for_screen(pilot, ReportScreen)
        assert isinstance(screen, ReportScreen)
        area = screen.query_one("#section-findings", TextArea)
        assert area.text == DRAFT_TEXT  # resumed, not a blank report
        area.focus()
        area.move_cursor(area.document.end)
        area.insert(" More.")
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
    draft = drafts.load(uid)
    assert draft is not None
    assert draft.report.text_of(SectionKind.FINDINGS) == DRAFT_TEXT + " More."


async def test_start_over_keeps_the_draft_as_a_backup_that_f8_restores(
    ct_folder: Path, tmp_path: Path
) -> None:
    uid = study_uid(ct_folder)
    drafts = DraftStore()
    app = report_app(ct_folder, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await write_draft(pilot, DRAFT_TEXT)
        await pilot.press("W")
        await wait_for_screen(pilot, QuestionDialog)
        await pilot.press("n")  # start over, explicitly
        screen = await wait_for_screen(pilot, ReportScreen)
        assert isinstance(screen, ReportScreen)
        assert screen.query_one("#section-findings", TextArea).text == ""
        backup = drafts.previous_path(uid)
        assert backup.is_file() and stat.S_IMODE(backup.stat().st_mode) == 0o600
        area = screen.query_one("#section-findings", TextArea)
        area.focus()
        area.insert("A second opinion.")
        await pilot.pause()
        await pilot.press("f8")
        for _ in range(100):
            await pilot.pause(0.02)
            if screen.query("#section-findings"):
                if screen.query_one("#section-findings", TextArea).text == DRAFT_TEXT:
                    break
        assert screen.query_one("#section-findings", TextArea).text == DRAFT_TEXT
        # The text it replaced is the backup now: F8 again would swap back.
        previous = drafts._parse(backup, drafts._read(backup))
        assert previous.report.text_of(SectionKind.FINDINGS) == "A second opinion."
        await pilot.press("escape")
        await pilot.pause()
    # Backups are not listed as unfinished drafts of their own.
    assert [info.study_uid for info in drafts.list()] == [uid]


async def test_esc_on_the_addendum_question_goes_back_and_writes_nothing(
    ct_folder: Path, tmp_path: Path
) -> None:
    from tuiviewer.reports.sr.build import write_sr
    from tuiviewer.reports.sr.context import study_context_from_paths

    context = study_context_from_paths(ct_folder)
    final = sign(Report(sections=(Section(SectionKind.FINDINGS, "Final."),)), "Roentgen^W")
    write_sr(final, context, ct_folder / "final-sr.dcm")
    app = report_app(ct_folder, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("W")
        dialog = await wait_for_screen(pilot, QuestionDialog)
        assert isinstance(dialog, QuestionDialog) and "addendum" in dialog.question
        await pilot.press("escape")
        await pilot.pause()
        await pilot.pause()
        assert isinstance(app.screen, BrowserScreen)
    assert DraftStore().list() == []


async def test_esc_in_a_form_with_typing_asks_before_discarding(tmp_path: Path) -> None:
    app = make_app(Config(), [], nodes={}, nodes_file=tmp_path / "nodes.toml")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, NodesScreen)
        await pilot.press("a")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, NodeDialog)
        dialog.query_one("#f-name", Input).value = "main"
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, QuestionDialog)  # what was typed is not thrown away yet
        await pilot.press("escape")  # Esc on that question keeps editing
        await pilot.pause()
        assert app.screen is dialog
        assert dialog.query_one("#f-name", Input).value == "main"
        await pilot.press("escape", "d")  # an explicit "discard"
        await pilot.pause()
        assert isinstance(app.screen, NodesScreen)
        # Nothing typed: Esc closes at once.
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, NodeDialog)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, NodesScreen)


async def test_revert_asks_and_esc_keeps_the_edits(sample_folder: Path) -> None:
    app = new_app(sample_folder)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await on_patient_position(pilot)
        await pilot.press("e")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, EditValueDialog)
        dialog.query_one("#value", Input).value = "HFP"
        await pilot.press("enter")
        await pilot.pause()
        assert screen.edited
        await pilot.press("R")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("escape")
        await pilot.pause()
        assert screen.edited, "Esc kept the edits"
        await pilot.press("R", "y")
        await settle(pilot)
        assert not screen.edited
