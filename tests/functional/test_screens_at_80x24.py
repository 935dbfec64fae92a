"""Every screen at 80×24 and 120×40, read off the screen as its user reads it: the footer keeps
the keys that matter (and ``?`` for the rest), the browser shows a tag's value in full, the
Inbox says who sent a study and whether its report went back, help lists a screen's own keys
first, the worklist's status is not cut, and a notification in the viewer leaves the image and
its readouts (slice, W/L, cursor value) in view.

Lists, the queue and the diff are in test_lists_at_80x24.py; the report editor's text in
test_report_flow.py.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid
from textual.geometry import Region
from textual.widgets import DataTable
from textual.widgets._toast import Toast

from tests.functional.helpers import burst, new_app, settle
from tests.functional.test_browser import select_file
from tests.functional.test_key_bursts import editor
from tests.functional.test_lists_at_80x24 import app_on, assert_fits, pacs  # noqa: F401
from tests.functional.test_viewer import SLICES, ct_folder, open_viewer  # noqa: F401
from tests.support.orthanc import store_files
from tests.support.ports import LOOPBACK, free_port
from tests.support.scps import Scp
from tests.support.screentext import screen_lines, screen_text
from tuiviewer.app import make_app
from tuiviewer.config.listen import ListenConfig
from tuiviewer.config.settings import Config
from tuiviewer.dicom.datagen import write_ct_series
from tuiviewer.screens.inbox import InboxScreen
from tuiviewer.screens.worklist import WorklistScreen
from tuiviewer.store import LocalStore

SIZES = [(80, 24), (120, 40)]


def footer(app: object) -> str:
    return screen_lines(app)[-1]  # type: ignore[arg-type]


def assert_keys(app: object, keys: tuple[str, ...], size: tuple[int, int]) -> None:
    line = footer(app)
    for key in keys:
        assert key in line, f"{key!r} not in the footer at {size}: {line!r}"


# ---- the footer ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
async def test_every_list_footer_keeps_its_main_keys_and_help(
    pacs: Scp,  # noqa: F811
    tmp_path: Path,
    size: tuple[int, int],
) -> None:
    app = app_on(pacs, tmp_path)
    wanted = {
        "f1": ("o Open", "W Report", "r Read", "s Status", "/ Filters", "? Help"),
        "f2": ("^s Search", "g Retrieve", "o Open", "t C-ECHO", "W Report", "? Help"),
        "f4": ("c Cancel", "r Retry", "o Open", "T Trace", "? Help", "f9 Report"),
        "f5": ("⏎ Query", "a Add", "e Edit", "del Delete", "t C-ECHO", "? Help"),
    }
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        for key, keys in wanted.items():
            await pilot.press(key)
            await settle(pilot)
            if key == "f2":
                app.screen.query_one("#studies").focus()  # the keys of the results
                await pilot.pause()
            assert_keys(app, keys, size)
            assert_fits(screen_lines(app), size[0])
            if size[0] >= 120:
                # Room for the screens' F-keys too, after the screen's own keys.
                assert "f1 Worklist" in footer(app) and "f2 PACS" in footer(app), footer(app)
        # The footer follows the width: narrowed, it drops F-keys before the screen's keys.
        await pilot.press("f1")
        await settle(pilot)
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.2)
        assert_keys(app, wanted["f1"], (80, 24))
        assert "f2 PACS" not in footer(app)


@pytest.mark.parametrize("size", SIZES)
async def test_the_report_footer_shows_back_and_sign(
    ct_folder: Path,  # noqa: F811
    tmp_path: Path,
    size: tuple[int, int],
) -> None:
    app = make_app(Config(), [ct_folder], store=LocalStore(tmp_path / "store"))
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await pilot.press("W")
        await editor(pilot)
        await burst(pilot, *"Typed")
        # In a text box ? types a "?": the footer does not offer it, Esc and the outputs it does.
        assert_keys(app, ("^s Save", "^g Sign", "^t Send", "^o Images", "esc Back"), size)
        assert_fits(screen_lines(app), size[0])


# ---- the browser -----------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
async def test_the_browser_shows_studies_and_whole_tag_values(
    sample_folder: Path, size: tuple[int, int]
) -> None:
    app = new_app(sample_folder)
    ct = pydicom.dcmread(sample_folder / "CT_small.dcm")
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await select_file(pilot, "CT_small.dcm")
        lines = screen_lines(app)
        text = "\n".join(lines)
        assert str(ct.PatientName) in text and "CT_small.dcm" in text, text
        assert "Scanned 4 files: 3 DICOM, 1 not DICOM" in text, text
        # A long value and its keyword on one line, not cut at the pane's edge.
        uid = str(ct.SOPClassUID)
        assert any("SOPClassUID" in line and uid in line for line in lines), text
        assert any("ImageType" in line and "ORIGINAL\\PRIMARY\\AXIAL" in line for line in lines)
        assert_keys(app, ("v View", "/ Search", "e Edit", "s Save", "W Report", "? Help"), size)
        assert_fits(lines, size[0])
        # Searching: the box is on screen and the hit count with it.
        await burst(pilot, "slash", *"PatientName")
        text = screen_text(app)
        assert "Hit 1/" in text and "PatientName" in text, text


# ---- the Inbox -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
async def test_the_inbox_says_who_sent_a_study_at_80_columns(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    port = free_port()
    config = Config(
        listen=ListenConfig(ae_title="READER", port=port, bind=LOOPBACK, allow=("CLINIC",))
    )
    study = generate_uid()
    paths = write_ct_series(
        tmp_path / "ct", slices=2, rows=16, cols=16, seed=302, study_uid=study,
        patient_name="Pushed^Patient", patient_id="PUSH-2",
    )  # fmt: skip
    app = make_app(config, [], nodes={}, store=LocalStore(tmp_path / "store"))
    async with app.run_test(size=size) as pilot:
        await pilot.press("f6", "f7")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, InboxScreen)
        sent = await asyncio.to_thread(
            store_files, LOOPBACK, port, "READER", paths, calling_aet="CLINIC"
        )
        assert sent == 2
        table = screen.query_one("#worklist", DataTable)
        for _ in range(300):
            await pilot.pause(0.05)
            if study in table.rows and "CLINIC" in screen_text(app):
                break
        await settle(pilot)
        lines = screen_lines(app)
        header = next(line for line in lines if "Patient" in line and "Report" in line)
        for column in ("Report", "Patient", "Date", "Description", "From", "Sent back"):
            assert column in header, f"{column!r} missing at {size}: {header!r}"
        row = next(line for line in lines if "Pushed Patient" in line)
        assert "CLINIC" in row and "—" in row and "unreported" in row, row
        assert re.search(r"\d{4}-\d{2}-\d{2}", row), row
        assert_fits(lines, size[0])
        await pilot.press("f7")


# ---- help and the worklist's status ------------------------------------------------------------


async def test_help_lists_the_screen_keys_before_the_table_cursor_keys(
    pacs: Scp,  # noqa: F811
    tmp_path: Path,
) -> None:
    app = app_on(pacs, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        text = screen_text(app)
        assert "Worklist" in text and "keys" in text
        for key in ("o  Open", "W  Report", "r  Read report", "s  Status filter"):
            assert key in text, f"{key!r} not in the first screen of help:\n{text}"
        # Textual's cursor keys come after, under their own heading (scrolled to).
        assert "Cursor up" not in text, text


@pytest.mark.parametrize("size", SIZES)
async def test_the_worklist_status_is_not_cut(
    pacs: Scp,  # noqa: F811
    tmp_path: Path,
    size: tuple[int, int],
) -> None:
    app = app_on(pacs, tmp_path)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, WorklistScreen)
        text = screen_text(app)
        assert "All 3" in text and "Final 0" in text, text
        assert re.search(r"3 studies on pacs,\s+report states at [\d:]+; next refresh", text)
        assert re.search(r"next refresh\s+in\s+\d+\s+s", text), text


# ---- notifications in the viewer -------------------------------------------------------------


def shown_toasts(app: object) -> list[Toast]:
    return [t for t in app.screen.query(Toast) if t.display and t.parent.display]  # type: ignore[attr-defined,union-attr]


@pytest.mark.parametrize("size", SIZES)
async def test_a_notification_in_the_viewer_leaves_the_image_and_readouts_in_view(
    ct_folder: Path,  # noqa: F811
    size: tuple[int, int],
) -> None:
    app = new_app(ct_folder)
    # run_test shows no toasts unless asked: this test is about them.
    async with app.run_test(size=size, notifications=True) as pilot:
        screen = await open_viewer(pilot)
        await pilot.press("c")
        await settle(pilot)
        before = screen_lines(app)
        for k in range(3):
            app.notify(f"Notification {k}: retrieve of a prior done, 120 received.")
        await pilot.press("9")  # no such preset: the viewer says so, as a notification too
        await pilot.pause(0.3)
        lines = screen_lines(app)
        text = "\n".join(lines)
        assert "No preset 9" in text, "the newest notification is on screen"
        for readout in ("W 400 L 40", "x 32 y 32:", f"slice 1/{SLICES}"):
            assert readout in text, f"{readout!r} covered at {size}:\n{text}"
        toasts = shown_toasts(app)
        assert len(toasts) == 1, "one notification at a time"
        keep_clear = [
            screen.query_one(selector).region
            for selector in ("#centre", "#info-right", "#info-left", "#readout")
        ]
        for toast in toasts:
            for region in keep_clear:
                assert not toast.region.overlaps(region), (toast.region, region)
        # Nothing above the status lines changed: the image rows are as they were.
        image: Region = screen.query_one("#centre").region
        assert lines[image.y : image.bottom] == before[image.y : image.bottom]


@pytest.mark.parametrize("size", SIZES)
async def test_the_query_criteria_show_their_whole_hints(
    pacs: Scp,  # noqa: F811
    tmp_path: Path,
    size: tuple[int, int],
) -> None:
    """A reader typing a date needs its format: at 80 columns the hints are the short forms,
    whole; with room, the full ones."""
    app = app_on(pacs, tmp_path)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await pilot.press("f2")
        await settle(pilot)
        text = "\n".join(screen_lines(app))
        if size[0] < 100:
            wanted = ["Name (Doe*)", "Date YYYYMMDD-…", "Modality (CT…)", "Description"]
        else:
            wanted = ["Patient name (Doe* ok)", "Date YYYYMMDD[-YYYYMMDD]", "Modality (CT, MR…)"]
        for hint in wanted:
            assert hint in text, f"{hint!r} not whole at {size}:\n{text}"
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.2)
        assert "Date YYYYMMDD-…" in "\n".join(screen_lines(app))
