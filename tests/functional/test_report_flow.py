"""The report from every screen (F9), read at 80×24 and 120×40, and signed without a made-up
organization.

F9 asks the screen on show which study it is about (:class:`ShowsStudy`); a screen that shows
none says so. What the editor shows is read as the user sees it (:func:`screen_lines`).
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from pathlib import Path

import pydicom
import pytest
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Input, Static, TextArea

from tests.conftest import testdata as sample_file
from tests.functional.helpers import burst, settle
from tests.functional.test_key_bursts import editor
from tests.support.screentext import screen_lines, screen_text
from tuiviewer.app import make_app
from tuiviewer.config.settings import Config
from tuiviewer.reports.model import Report, Section, SectionKind
from tuiviewer.reports.sr.build import write_sr
from tuiviewer.reports.sr.context import study_context_from_paths
from tuiviewer.reports.sr.read import read_sr
from tuiviewer.screens.base import StudyInView
from tuiviewer.screens.dialogs.common import ConfirmDialog
from tuiviewer.screens.dialogs.edit import EditValueDialog
from tuiviewer.screens.report_reader import ReportReaderScreen
from tuiviewer.store import LocalStore


class AboutAStudy(Screen[None]):
    """A screen about one study, as the worklist row or the viewer's series is."""

    def __init__(self, study: StudyInView | None) -> None:
        super().__init__()
        self.study = study

    def compose(self) -> ComposeResult:
        yield Static("a study")
        yield Footer()

    def study_in_view(self) -> StudyInView | None:
        return self.study


def report_pane(app: object) -> str:
    """The text right of the study pane, as the reader sees it (its lines joined)."""
    lines = screen_lines(app)  # type: ignore[arg-type]
    return "\n".join(line.split("▕", 1)[1] for line in lines if "▕" in line)


def study_uid(folder: Path) -> str:
    return str(pydicom.dcmread(next(folder.glob("*.dcm"))).StudyInstanceUID)


async def test_f9_opens_the_report_of_the_study_on_show(ct_folder: Path, tmp_path: Path) -> None:
    app = make_app(Config(), [ct_folder], store=LocalStore(tmp_path / "store"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        uid = study_uid(ct_folder)
        await app.push_screen(AboutAStudy(StudyInView(uid, ct_folder, None)))
        await pilot.press("f9")
        screen = await editor(pilot)
        assert screen.source.study_uid == uid
        # F9 in the editor stays there, and typing goes on where it was.
        await burst(pilot, *"abc", "f9", *"def")
        assert app.screen is screen
        assert screen.report is not None
        assert "abcdef" in screen.report.text_of(screen.report.sections[0].kind)


async def test_f9_on_a_screen_without_a_study_says_so(tmp_path: Path) -> None:
    app = make_app(Config(), [tmp_path], store=LocalStore(tmp_path / "store"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await app.push_screen(AboutAStudy(None))
        await pilot.press("f9")
        await pilot.pause(0.2)
        assert isinstance(app.screen, AboutAStudy)
        said = [n.message for n in app._notifications]
        assert any("No study here to report on" in m for m in said), said


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_the_editor_shows_the_section_typed_and_the_draft_state(
    ct_folder: Path, tmp_path: Path, size: tuple[int, int]
) -> None:
    app = make_app(Config(), [ct_folder], store=LocalStore(tmp_path / "store"))
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await pilot.press("W")
        screen = await editor(pilot)
        # Down to the findings (the fourth section) in one burst, then type there.
        await burst(pilot, "tab", "tab", "tab", *"Nodule RUL")
        findings = screen.query_one("#section-findings", TextArea)
        assert findings.text == "Nodule RUL", [a.text for a in screen.query(TextArea)]
        for _ in range(100):
            await pilot.pause(0.05)
            if "draft saved" in screen_text(app):
                break
        lines = screen_lines(app)
        text = "\n".join(lines)
        assert "draft saved" in text, text
        assert "Nodule RUL" in text, text
        assert any("Findings" in line for line in lines), text
        assert all(len(line) <= size[0] for line in lines)
        # Saved as an SR, the line still says where the draft is.
        await pilot.press("ctrl+s")
        for _ in range(200):
            await pilot.pause(0.05)
            if screen.last_sr is not None and re.search(r"SR\s+saved", report_pane(app)):
                break
        text = report_pane(app)
        # At 80 columns the line may wrap between words, never hide them.
        assert re.search(r"SR\s+saved", text) and "draft saved" in text, screen_text(app)
        assert "Nodule RUL" in text, text


def dciodvfy_errors(path: Path) -> list[str]:
    run = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]


async def test_signing_without_an_organization_asks_for_it(tmp_path: Path) -> None:
    """Verifying Organization is Type 1: never "Unknown organization", the reader's answer."""
    folder = tmp_path / "study"
    folder.mkdir()
    ds = pydicom.dcmread(sample_file("CT_small.dcm"))
    del ds.InstitutionName
    ds.save_as(folder / "ct.dcm")
    app = make_app(Config(), [folder], store=LocalStore(tmp_path / "store"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("W")
        screen = await editor(pilot)
        await burst(pilot, *"Normal.")
        await pilot.press("ctrl+g")
        await pilot.pause(0.3)
        assert isinstance(app.screen, EditValueDialog)
        app.screen.query_one("#value", Input).value = "Curie^Marie"
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert isinstance(app.screen, EditValueDialog), "the organization is asked"
        assert "organization" in screen_text(app).lower()
        await burst(pilot, *"Institut du Radium", "enter")
        for _ in range(100):
            await pilot.pause(0.05)
            if isinstance(app.screen, ConfirmDialog):
                break
        await pilot.press("y")
        for _ in range(200):
            await pilot.pause(0.05)
            if screen.last_sr is not None:
                break
        assert screen.last_sr is not None
        signed = pydicom.dcmread(screen.last_sr)
        assert signed.VerifyingObserverSequence[0].VerifyingOrganization == "Institut du Radium"
        assert read_sr(screen.last_sr).organization == "Institut du Radium"
        assert dciodvfy_errors(screen.last_sr) == []


async def test_enter_on_the_priors_reads_them_full_screen_with_dates(
    ct_folder: Path, tmp_path: Path
) -> None:
    context = study_context_from_paths(ct_folder)
    earlier = Report(sections=(Section(SectionKind.FINDINGS, "An earlier finding."),))
    at = dt.datetime(2026, 12, 1, 8, 43, 6, 231979, tzinfo=dt.UTC)
    write_sr(earlier, context, ct_folder / "earlier-sr.dcm", now=at)
    app = make_app(Config(), [ct_folder], store=LocalStore(tmp_path / "store"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("W")
        screen = await editor(pilot)
        screen.query_one("#priors-scroll").focus()
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert isinstance(app.screen, ReportReaderScreen)
        text = screen_text(app)
        assert "An earlier finding." in text, text
        assert "2026-12-01 08:43" in text, text
        assert "20261201" not in text and "084306" not in text, text
        await pilot.press("escape")
        await pilot.pause(0.2)
        assert app.screen is screen
