"""Drive the local browser as a user would: open a folder, pick an instance, search, edit, diff."""

from __future__ import annotations

import functools
from pathlib import Path

import pydicom
import pytest
from textual import events
from textual.widgets import Input

import tuiviewer.screens.browser as browser_module
from tests.conftest import testdata as sample_file
from tests.functional.helpers import browser, new_app, settle, static_text
from tests.unit.services.test_layouts import write_series
from tuiviewer.dicom import scanning
from tuiviewer.dicom.elements import walk
from tuiviewer.screens.dialogs.common import PathDialog
from tuiviewer.screens.dialogs.edit import EditValueDialog
from tuiviewer.screens.diff import DiffScreen
from tuiviewer.widgets.study_tree import StudyTree
from tuiviewer.widgets.tag_tree import TagTree

PATIENT_SETUP_POSITION = (0x300A0180, 0, 0x00185100)


async def select_file(pilot, name: str) -> None:  # type: ignore[no-untyped-def]
    """Move the study-tree cursor to the instance whose file is ``name``."""
    screen = browser(pilot)
    tree = screen.query_one(StudyTree)
    tree.focus()
    await pilot.press("home")
    for _ in range(200):
        node = tree.cursor_node
        if node is not None and node.data is not None and node.data.record is not None:
            if node.data.record.path.name == name:
                await settle(pilot)
                return
        if node is not None and node.allow_expand and not node.is_expanded:
            await pilot.press("space")
        await pilot.press("down")
        await pilot.pause()
    raise AssertionError(f"{name} not found in the study tree")


async def test_open_folder_shows_patients_counts_and_first_instance(sample_folder: Path) -> None:
    app = new_app(sample_folder)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = browser(pilot)
        status = static_text(screen, "#scan-status")
        assert "4 files" in status and "3 DICOM" in status and "1 not DICOM" in status
        tree = screen.query_one(StudyTree)
        names = {str(node.label).split("  ")[0] for node in tree.root.children}
        expected = {
            str(pydicom.dcmread(sample_file(n)).PatientName)
            for n in ("rtplan.dcm", "CT_small.dcm", "MR_small.dcm")
        }
        assert names == expected
        # The first instance is selected for the user and its tags are shown.
        tags = screen.query_one(TagTree)
        assert screen.loaded is not None
        assert tags.rows, "the tag tree shows the selected instance"


async def test_tag_tree_follows_selection(sample_folder: Path) -> None:
    app = new_app(sample_folder)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await select_file(pilot, "MR_small.dcm")
        screen = browser(pilot)
        tags = screen.query_one(TagTree)
        rows = {row.keyword: row for row in walk(tags.rows)}
        assert rows["Modality"].value == "MR"
        await select_file(pilot, "CT_small.dcm")
        rows = {row.keyword: row for row in walk(tags.rows)}
        assert rows["Modality"].value == "CT"


async def test_search_jumps_between_hits_inside_sequences(sample_folder: Path) -> None:
    app = new_app(sample_folder)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await select_file(pilot, "rtplan.dcm")
        screen = browser(pilot)
        await pilot.press("slash")
        await pilot.press(*"0018,5100")
        await pilot.press("enter")
        await pilot.pause()
        tags = screen.query_one(TagTree)
        assert tags.cursor_path == PATIENT_SETUP_POSITION
        assert "Hit 1/" in static_text(screen, "#tag-status")
        # The two control points each carry an index; n moves from one to the other.
        await pilot.press("slash")
        search_input = screen.query_one("#search", Input)
        search_input.value = ""
        await pilot.press(*"ControlPointIndex")
        await pilot.press("enter")
        await pilot.pause()
        first = tags.cursor_path
        await pilot.press("n")
        await pilot.pause()
        assert tags.cursor_path != first
        assert "Hit 2/" in static_text(screen, "#tag-status")


async def test_edit_rtplan_position_and_save_as_new_file(
    sample_folder: Path, tmp_path: Path
) -> None:
    original_bytes = (sample_folder / "rtplan.dcm").read_bytes()
    dest = tmp_path / "rtplan-hfp.dcm"
    app = new_app(sample_folder)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await select_file(pilot, "rtplan.dcm")
        screen = browser(pilot)
        tags = screen.query_one(TagTree)
        tags.focus()
        tags.reveal(PATIENT_SETUP_POSITION)
        await pilot.pause()
        await pilot.press("e")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, EditValueDialog)
        value_input = dialog.query_one("#value", Input)
        assert value_input.value == "HFS"
        # A bad value is refused inline and nothing changes.
        value_input.value = "head first prone"
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is dialog
        assert "head first prone" in str(dialog.query_one("#value-error").render())
        value_input.value = "HFP"
        await pilot.press("enter")
        await pilot.pause()
        assert "modified" in static_text(screen, "#banner")
        await pilot.press("s")
        await pilot.pause()
        save = app.screen
        assert isinstance(save, PathDialog)
        save.query_one("#path", Input).value = str(dest)
        await pilot.press("enter")
        await settle(pilot)
    saved = pydicom.dcmread(dest)
    assert saved.PatientSetupSequence[0].PatientPosition == "HFP"
    assert (sample_folder / "rtplan.dcm").read_bytes() == original_bytes
    before = pydicom.dcmread(sample_folder / "rtplan.dcm")
    before.PatientSetupSequence[0].PatientPosition = "HFP"
    assert saved == before


async def test_save_never_overwrites_silently(sample_folder: Path) -> None:
    target = sample_folder / "CT_small.dcm"
    original = target.read_bytes()
    app = new_app(sample_folder)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await select_file(pilot, "rtplan.dcm")
        await pilot.press("s")
        await pilot.pause()
        app.screen.query_one("#path", Input).value = str(target)
        await pilot.press("enter")
        await settle(pilot)
        notes = [n.message for n in app._notifications]
        assert any("already exists" in m for m in notes), notes
    assert target.read_bytes() == original


async def test_diff_two_instances(sample_folder: Path) -> None:
    app = new_app(sample_folder)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await select_file(pilot, "CT_small.dcm")
        await pilot.press("m")
        await select_file(pilot, "MR_small.dcm")
        await pilot.press("d")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, DiffScreen)
        by_keyword = {row.keyword: row for row in screen.rows}
        ct = pydicom.dcmread(sample_file("CT_small.dcm"))
        mr = pydicom.dcmread(sample_file("MR_small.dcm"))
        assert by_keyword["Modality"].kind == "changed"
        assert by_keyword["Modality"].left == "CT" and by_keyword["Modality"].right == "MR"
        only_ct = next(e.keyword for e in ct if e.keyword and e.keyword not in mr)
        assert by_keyword[only_ct].kind == "removed"
        table = screen.query_one("#diff-table")
        assert table.row_count == len(screen.rows) > 0  # type: ignore[attr-defined]


async def test_search_typed_in_one_burst_lands_in_the_search_box(sample_folder: Path) -> None:
    """Over SSH "/0018,5100⏎" often arrives in one packet: no key may go to the tree instead."""
    app = new_app(sample_folder)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await select_file(pilot, "rtplan.dcm")
        screen = browser(pilot)
        tags = screen.query_one(TagTree)
        tags.focus()
        await pilot.pause()
        burst = [("slash", "/")] + [(c if c != "," else "comma", c) for c in "0018,5100"]
        for key, character in [*burst, ("enter", "\r")]:
            app.post_message(events.Key(key, character))
        await settle(pilot)
        assert screen.query_one("#search", Input).value == "0018,5100"
        assert tags.cursor_path == PATIENT_SETUP_POSITION
        assert app.focused is tags


async def test_add_and_delete_elements_then_save(sample_folder: Path, tmp_path: Path) -> None:
    dest = tmp_path / "ct-edited.dcm"
    app = new_app(sample_folder)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await select_file(pilot, "CT_small.dcm")
        screen = browser(pilot)
        tags = screen.query_one(TagTree)
        tags.focus()
        # Delete Patient's Birth Date, shown under the cursor after a search.
        await pilot.press("slash", *"PatientBirthDate", "enter")
        await settle(pilot)
        assert tags.cursor_path == (0x00100030,)
        await pilot.press("delete")
        await settle(pilot)
        assert all(row.tag != 0x00100030 for row in tags.rows)
        # Add Patient's Birth Time at the top level; a bad value is refused with the reason.
        await pilot.press("a")
        await pilot.pause()
        dialog = app.screen
        dialog.query_one("#tag", Input).value = "(0010,0032)"
        dialog.query_one("#value", Input).value = "25:70"
        dialog.query_one("#value", Input).focus()
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is dialog
        assert "25:70" in str(dialog.query_one("#add-error").render())
        dialog.query_one("#value", Input).value = "101500"
        await pilot.press("enter")
        await settle(pilot)
        assert any(row.keyword == "PatientBirthTime" and row.value == "101500" for row in tags.rows)
        await pilot.press("s")
        await pilot.pause()
        app.screen.query_one("#path", Input).value = str(dest)
        await pilot.press("enter")
        await settle(pilot)
    saved = pydicom.dcmread(dest)
    assert saved.PatientBirthTime == "101500"
    assert "PatientBirthDate" not in saved
    assert "PatientBirthDate" in pydicom.dcmread(sample_folder / "CT_small.dcm")


async def test_deidentified_export_of_a_study(sample_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "export"
    ct = pydicom.dcmread(sample_folder / "CT_small.dcm")
    app = new_app(sample_folder)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await select_file(pilot, "CT_small.dcm")
        tree = browser(pilot).query_one(StudyTree)
        tree.focus()
        # Up to the study node of the CT: instance → stack → series → study.
        for _ in range(3):
            await pilot.press("up")
        assert tree.cursor_node is not None and tree.cursor_node.data is not None
        assert tree.cursor_node.data.kind == "study"
        await pilot.press("E")
        await pilot.pause()
        app.screen.query_one("#path", Input).value = str(out)
        await pilot.press("enter")
        await settle(pilot)
    written = sorted(out.rglob("*.dcm"))
    assert len(written) == 1
    exported = pydicom.dcmread(written[0])
    assert exported.PatientName != ct.PatientName
    assert exported.SOPInstanceUID != ct.SOPInstanceUID
    assert exported.PatientIdentityRemoved == "YES"
    assert str(ct.PatientName).encode() not in written[0].read_bytes()


@pytest.mark.parametrize("batch", [1, 100])
async def test_the_tree_lists_series_in_order_however_the_scan_batches_fell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    """Series by number whether the scan sent the folder a file at a time (the 1 mm thorax,
    first on disk, listed before the scout was found) or in one batch (then `v` opens the
    first: the cursor was put on the first instance of the first batch)."""
    study = pydicom.uid.generate_uid()
    common = {"study": study, "date": "20240102", "frame": pydicom.uid.generate_uid()}
    write_series(tmp_path / "a", description="thorax 1mm", slices=4, spacing=1.0, number=3,
                 **common)  # fmt: skip
    write_series(tmp_path / "b", description="scout", slices=2, spacing=4.0, number=1,
                 **common)  # fmt: skip
    write_series(tmp_path / "c", description="thorax 5mm", slices=2, spacing=5.0, number=2,
                 **common)  # fmt: skip
    one_by_one = functools.partial(scanning.scan, batch_size=batch, max_interval=60.0)
    monkeypatch.setattr(browser_module, "scan", one_by_one)
    app = new_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        tree = browser(pilot).query_one(StudyTree)
        (patient,) = tree.root.children
        (node,) = patient.children
        assert [str(s.label).split("  ")[1] for s in node.children] == [
            "scout", "thorax 5mm", "thorax 1mm",
        ]  # fmt: skip
        if batch == 100:  # the cursor goes to the first instance of the first batch
            request = tree.stack_to_view()
            assert request is not None and request.records[0].series_description == "scout"
