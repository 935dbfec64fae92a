"""Keys that arrive in one burst (as over a laggy SSH link) land where the focus was at each key.

Every test sends its keys with :func:`burst`: all of them are in the app's queue before the
first is handled, which is what a terminal delivers when several keys come in one packet.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input, TextArea

from tests.functional.helpers import browser, burst, new_app, on_patient_position, settle, slowed
from tuiviewer import workstation as workstation_module
from tuiviewer.app import make_app
from tuiviewer.config.settings import Config
from tuiviewer.dicom.datagen import write_ct_series
from tuiviewer.reports.drafts import DraftStore
from tuiviewer.reports.model import SectionKind
from tuiviewer.reports.templates import choose_template, load_templates
from tuiviewer.screens import report as report_screen
from tuiviewer.screens.browser import BrowserScreen
from tuiviewer.screens.nodes import NodesScreen
from tuiviewer.screens.report import ReportScreen
from tuiviewer.screens.viewer import ViewerScreen
from tuiviewer.store import LocalStore


def technique_template(screen: ReportScreen) -> str:
    """The text the template of the study on show starts its technique section with."""
    assert screen.context is not None
    ctx = screen.context
    template = choose_template(load_templates(), ctx.modality, ctx.body_part)
    text = template.new_report().text_of(SectionKind.TECHNIQUE)
    assert text, "the CT template starts the technique section with text"
    return text


def sections(screen: ReportScreen) -> list[str]:
    return [area.text for area in screen.query("#sections TextArea").results(TextArea)]


async def editor(pilot) -> ReportScreen:  # type: ignore[no-untyped-def]
    for _ in range(500):
        await pilot.pause(0.02)
        screen = pilot.app.screen
        if isinstance(screen, ReportScreen) and screen.report is not None:
            await pilot.pause()
            return screen
    raise AssertionError(f"the report editor did not open: {pilot.app.screen!r}")


async def test_tab_in_a_burst_moves_the_typing_to_the_next_section(
    ct_folder: Path, tmp_path: Path
) -> None:
    app = make_app(Config(), [ct_folder], store=LocalStore(tmp_path / "store"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("W")
        screen = await editor(pilot)
        await burst(pilot, *"aaa", "tab", *"bbb", "tab", *"ccc")
        first, second, third = sections(screen)[:3]
        assert first == "aaa"
        # The technique starts with the template's text: typing goes after it, not before.
        assert second == technique_template(screen) + "bbb"
        assert third == "ccc"


async def test_keys_typed_right_after_w_go_into_the_editor(ct_folder: Path, tmp_path: Path) -> None:
    app = make_app(Config(), [ct_folder], store=LocalStore(tmp_path / "store"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        # W opens the editor, which reads the study in a worker before it has any text box:
        # the keys behind W wait for it instead of running the browser's commands.
        await burst(pilot, "W", *"Lungs clear.")
        screen = await editor(pilot)
        for _ in range(200):
            if sections(screen) and sections(screen)[0] == "Lungs clear.":
                break
            await pilot.pause(0.02)
        assert sections(screen)[0] == "Lungs clear."
        assert isinstance(app.screen, ReportScreen)


async def test_keys_typed_right_after_e_go_into_the_edit_dialog(sample_folder: Path) -> None:
    app = new_app(sample_folder)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await on_patient_position(pilot)
        await burst(pilot, "e", "ctrl+u", *"HFP", "enter")
        assert isinstance(app.screen, BrowserScreen)
        loaded = screen.loaded
        assert loaded is not None and loaded.path in screen.edited
        assert loaded.dataset.PatientSetupSequence[0].PatientPosition == "HFP"


async def test_the_node_dialog_takes_a_burst_field_by_field(tmp_path: Path) -> None:
    nodes_file = tmp_path / "nodes.toml"
    app = make_app(Config(), [], nodes={}, nodes_file=nodes_file)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, NodesScreen)
        await burst(
            pilot,
            "a",
            *"main",
            "tab",
            *"ORTHANC",
            "tab",
            *"pacs.example.org",
            "tab",
            "ctrl+u",
            *"4242",
            "enter",
        )
        assert isinstance(app.screen, NodesScreen), app.screen
        node = app.nodes["main"]
        assert (node.ae_title, node.host, node.port) == ("ORTHANC", "pacs.example.org", 4242)
        assert "[nodes.main]" in nodes_file.read_text()


async def test_a_search_burst_in_the_browser_still_lands_in_the_search_box(
    sample_folder: Path,
) -> None:
    app = new_app(sample_folder)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await burst(pilot, "/", *"0018,5100")
        search = browser(pilot).query_one("#search", Input)
        assert search.value == "0018,5100"


async def test_text_and_esc_typed_while_the_editor_reads_its_study_are_kept_as_the_draft(
    ct_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slowed(monkeypatch, report_screen, "report_context", 0.8)
    app = make_app(Config(), [ct_folder], store=LocalStore(tmp_path / "store"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        before = browser(pilot)
        # "s", "r", "p" and "a" are commands of the screen below: typed into the editor, none of
        # them may run there, and the Esc typed after the text leaves the editor with the text
        # kept as the draft, as it does when the editor is already open.
        await burst(pilot, "W", *"Spleen normal, liver clear.", "escape")
        for _ in range(300):
            if isinstance(app.screen, BrowserScreen) and DraftStore().list():
                break
            await pilot.pause(0.02)
        assert isinstance(app.screen, BrowserScreen), app.screen
        assert app.screen is before
        drafts = DraftStore().list()
        assert len(drafts) == 1
        draft = DraftStore().load(drafts[0].study_uid)
        assert draft is not None
        texts = [section.text for section in draft.report.sections]
        assert any("Spleen normal, liver clear." in text for text in texts), texts


async def test_esc_alone_leaves_an_editor_still_reading_its_study(
    ct_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slowed(monkeypatch, report_screen, "report_context", 3.0)
    app = make_app(Config(), [ct_folder], store=LocalStore(tmp_path / "store"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await burst(pilot, "W", "escape")
        for _ in range(100):
            if isinstance(app.screen, BrowserScreen):
                break
            await pilot.pause(0.02)
        # Nothing was typed: Esc does not wait for the study (which may never come).
        assert isinstance(app.screen, BrowserScreen), app.screen
        assert DraftStore().list() == []


async def test_keys_typed_behind_ctrl_o_step_the_viewer_and_never_reach_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slowed(monkeypatch, workstation_module, "study_stacks", 0.8)
    study = tmp_path / "ct"
    write_ct_series(study, slices=8, rows=32, cols=32, seed=5)
    app = make_app(Config(), [study], store=LocalStore(tmp_path / "store"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("W")
        screen = await editor(pilot)
        await burst(pilot, *"Ok.")
        typed = sections(screen)
        # ctrl+o opens the viewer on the study's images once they are scanned: the three Downs
        # and "w" typed meanwhile are the viewer's (three slices on), not the report's text.
        await burst(pilot, "ctrl+o", "down", "down", "down", "w")
        for _ in range(300):
            if isinstance(app.screen, ViewerScreen) and app.screen.index == 3:
                break
            await pilot.pause(0.02)
        viewer = app.screen
        assert isinstance(viewer, ViewerScreen), viewer
        assert viewer.index == 3
        assert sections(screen) == typed


async def test_esc_typed_before_the_images_open_keeps_the_report_on_screen(
    ct_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slowed(monkeypatch, workstation_module, "study_stacks", 0.8)
    app = make_app(Config(), [ct_folder], store=LocalStore(tmp_path / "store"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("W")
        screen = await editor(pilot)
        await burst(pilot, "ctrl+o", "escape", *"Ok.")
        await settle(pilot)
        await pilot.pause(0.3)
        # The Esc took back the ctrl+o: no viewer came up, and the editor kept what followed.
        assert app.screen is screen
        assert "Ok." in sections(screen)[0]
