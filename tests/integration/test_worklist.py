"""The reading worklist against a real Orthanc: report states from the SRs it holds, the screen
as a radiologist drives it (rows, counts, filters, opening studies, priors), a PACS that goes
away, and a PACS with 1,000 studies.

Studies are generated in memory (8×8 CT images) and C-STOREd with plain pynetdicom; reports
come from tuiviewer's SR writer and dose/CAD documents are built from PS3.16's codes (see
tests/unit/services/test_worklist.py). Expected states follow from what each study was given.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid
from textual.widgets import DataTable, Input, Static

from tests.functional.helpers import burst, settle
from tests.support.orthanc import Orthanc, OrthancPool, StoreError, store_datasets
from tests.unit.services.test_worklist import dose_sr, report_sr
from tuiviewer.app import TuiviewerApp, make_app
from tuiviewer.config.nodes import Node
from tuiviewer.config.settings import Config
from tuiviewer.net.retrieve import retrieve_study
from tuiviewer.reports.drafts import Draft, DraftStore
from tuiviewer.reports.model import Report, Section, SectionKind
from tuiviewer.screens.query import QueryScreen
from tuiviewer.screens.report import ReportScreen
from tuiviewer.screens.viewer import ViewerScreen
from tuiviewer.screens.worklist import WorklistScreen
from tuiviewer.services.worklist import ReportState, report_states
from tuiviewer.store import LocalStore
from tuiviewer.widgets import worklist_feed

TODAY = dt.date.today()
_PIXELS = np.arange(64, dtype=np.uint16).reshape(8, 8).tobytes()


def tiny_study(
    key: str,
    *,
    patient_id: str,
    day: dt.date = TODAY,
    series_sizes: tuple[int, ...] = (1,),
    description: str = "Tiny CT",
) -> list[Dataset]:
    """A CT study of 8×8 images, one series per size (numbered from 1)."""
    study_uid = generate_uid(entropy_srcs=["wl-study", key])
    out: list[Dataset] = []
    for number, size in enumerate(series_sizes, start=1):
        series_uid = generate_uid(entropy_srcs=["wl-series", key, str(number)])
        for index in range(size):
            ds = Dataset()
            ds.SOPClassUID = CTImageStorage
            ds.SOPInstanceUID = generate_uid(entropy_srcs=["wl-sop", key, str(number), str(index)])
            ds.StudyInstanceUID = study_uid
            ds.SeriesInstanceUID = series_uid
            ds.PatientName = f"Worklist^{patient_id}"
            ds.PatientID = patient_id
            ds.StudyDate = ds.SeriesDate = ds.ContentDate = f"{day:%Y%m%d}"
            ds.StudyTime = "101500"
            ds.AccessionNumber = f"A{abs(hash(key)) % 10**6:06d}"
            ds.StudyDescription = description
            ds.Modality = "CT"
            ds.SeriesNumber = number
            ds.InstanceNumber = index + 1
            ds.ImagePositionPatient = [0, 0, float(index)]
            ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
            ds.PixelSpacing = [1, 1]
            ds.SamplesPerPixel = 1
            ds.PhotometricInterpretation = "MONOCHROME2"
            ds.Rows = ds.Columns = 8
            ds.BitsAllocated = 16
            ds.BitsStored = 12
            ds.HighBit = 11
            ds.PixelRepresentation = 0
            ds.PixelData = _PIXELS
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = ds.SOPClassUID
            meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds.file_meta = meta
            out.append(ds)
    return out


def orthanc_node(orthanc: Orthanc, **overrides: Any) -> Node:
    settings: dict[str, Any] = {"dimse_timeout": 10, "acse_timeout": 10, "connect_timeout": 3}
    settings.update(overrides)
    return Node("orthanc", orthanc.aet, orthanc.host, orthanc.dicom_port, **settings)


def store(orthanc: Orthanc, datasets: list[Dataset]) -> None:
    assert store_datasets(orthanc.host, orthanc.dicom_port, orthanc.aet, datasets) == len(datasets)


@dataclass
class Loaded:
    """What was put on the PACS: study UID by name, the state each must show, the SRs."""

    uids: dict[str, str]
    expected: dict[str, ReportState]
    srs: dict[str, list[Dataset]] = field(default_factory=dict)
    prior_uid: str = ""


def load_reading_cases(orthanc: Orthanc) -> Loaded:
    """One study per case, all of the last days, plus an older prior of the 'final' patient."""
    at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    cases: dict[str, list[Dataset]] = {}
    srs: dict[str, list[Dataset]] = {}
    uids: dict[str, str] = {}
    for offset, name in enumerate(("none", "dose", "prelim", "final", "superseded", "draft")):
        images = tiny_study(name, patient_id=f"P-{name}", day=TODAY - dt.timedelta(days=offset))
        uids[name] = str(images[0].StudyInstanceUID)
        cases[name] = images
    srs["dose"] = [
        dose_sr(uids["dose"], patient_id="P-dose"),
        dose_sr(uids["dose"], comprehensive=True, patient_id="P-dose"),
    ]
    srs["prelim"] = [report_sr(uids["prelim"], final=False, at=at, patient_id="P-prelim")]
    srs["final"] = [report_sr(uids["final"], final=True, at=at, patient_id="P-final")]
    first = report_sr(uids["superseded"], final=False, at=at, patient_id="P-superseded")
    signed = report_sr(
        uids["superseded"],
        final=True,
        at=at + dt.timedelta(minutes=5),
        supersedes=first,
        patient_id="P-superseded",
    )
    srs["superseded"] = [first, signed]
    # The 'final' patient's previous study, outside the worklist's week, reported and signed.
    prior = tiny_study("prior", patient_id="P-final", day=TODAY - dt.timedelta(days=400))
    prior_uid = str(prior[0].StudyInstanceUID)
    prior_report = report_sr(prior_uid, final=True, at=at - dt.timedelta(days=400))
    prior_report.PatientID = "P-final"
    everything = [ds for items in cases.values() for ds in items] + prior + [prior_report]
    everything += [ds for items in srs.values() for ds in items]
    store(orthanc, everything)
    DraftStore().save(
        Draft(uids["draft"], Report((Section(SectionKind.FINDINGS, "Half-written."),)))
    )
    expected = {
        "none": ReportState.UNREPORTED,
        "dose": ReportState.UNREPORTED,
        "prelim": ReportState.PRELIMINARY,
        "final": ReportState.FINAL,
        "superseded": ReportState.FINAL,
        "draft": ReportState.DRAFT,
    }
    return Loaded(uids, expected, srs, prior_uid)


# --- the core against Orthanc --------------------------------------------------------------


def test_report_states_from_the_srs_on_the_pacs(empty_orthanc: Orthanc, tmp_path: Path) -> None:
    loaded = load_reading_cases(empty_orthanc)
    node = orthanc_node(empty_orthanc)
    local = LocalStore(tmp_path / "store")
    names = {uid: name for name, uid in loaded.uids.items()}

    # Orthanc answers the C-FIND with what decides each state: nothing is retrieved for it.
    found = {names[s.study_uid]: s for s in report_states(node, list(names), local)}
    assert {name: s.state for name, s in found.items()} == loaded.expected
    assert all(s.error is None for s in found.values())
    assert not list(local.root.rglob("*.dcm")) and all(not s.reports for s in found.values())

    # The reader retrieves the reports (fetch=True) and gets the same states.
    found = {names[s.study_uid]: s for s in report_states(node, list(names), local, fetch=True)}
    assert {name: s.state for name, s in found.items()} == loaded.expected
    assert all(s.error is None for s in found.values())
    # Only SR documents came over, never an image; the dose SR in its own class not even that.
    for name, uid in loaded.uids.items():
        wanted = {
            str(ds.SOPInstanceUID)
            for ds in loaded.srs.get(name, [])
            if ds.SOPClassUID != "1.2.840.10008.5.1.4.1.1.88.67"
        }
        assert local.instance_uids(uid) == wanted, name
    # The status points at the report that decides: the signed one, not its predecessor.
    signed = loaded.srs["superseded"][1]
    assert found["superseded"].reports[0].name == f"{signed.SOPInstanceUID}.dcm"

    # A second pass reads the SRs from disk: no file is written again.
    def identity(path: Path) -> tuple[int, int]:
        info = path.stat()
        return info.st_ino, info.st_mtime_ns

    files = sorted(local.root.rglob("*.dcm"))
    before = {p: identity(p) for p in files}
    for fetch in (False, True):
        again = report_states(node, list(names), local, fetch=fetch)
        assert {names[s.study_uid]: s.state for s in again} == loaded.expected
        assert {p: identity(p) for p in sorted(local.root.rglob("*.dcm"))} == before
    # With the reports on disk, the states settled from the answers name them too.
    kept = {names[s.study_uid]: s for s in report_states(node, list(names), local)}
    assert kept["superseded"].reports[0].name == f"{signed.SOPInstanceUID}.dcm"


# --- the screen ------------------------------------------------------------------------------


def worklist_app(node: Node, store_root: Path) -> TuiviewerApp:
    return make_app(
        Config(), [], nodes={node.name: node}, default_node=node.name, store=LocalStore(store_root)
    )


def worklist(app: TuiviewerApp) -> WorklistScreen:
    screen = app.screen
    assert isinstance(screen, WorklistScreen), type(screen)
    return screen


def text_of(screen: WorklistScreen, selector: str) -> str:
    content = screen.query_one(selector, Static).content
    return content.plain if hasattr(content, "plain") else str(content)


def table_uids(screen: WorklistScreen, selector: str = "#worklist") -> list[str]:
    table = screen.query_one(selector, DataTable)
    return [str(key.value) for key in table.rows]


async def wait_for(pilot: Any, predicate: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await pilot.pause(0.02)
    raise AssertionError(f"condition not met within {timeout} s")


async def test_worklist_rows_counts_filters_and_priors(
    empty_orthanc: Orthanc, tmp_path: Path
) -> None:
    loaded = load_reading_cases(empty_orthanc)
    app = worklist_app(orthanc_node(empty_orthanc), tmp_path / "store")
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        screen = worklist(app)
        # The week's studies, newest first; the 400-day-old prior is not on the worklist.
        assert table_uids(screen) == [loaded.uids[n] for n in loaded.expected]
        # The cursor is on the newest study, whatever order the PACS sent them in.
        selected = screen.selected_study()
        assert selected is not None and selected.uid == loaded.uids["none"]
        shown = {
            uid: str(screen.query_one("#worklist", DataTable).get_cell(uid, "state"))
            for uid in loaded.uids.values()
        }
        assert {n: shown[uid] for n, uid in loaded.uids.items()} == {
            n: s.value for n, s in loaded.expected.items()
        }
        counts = text_of(screen, "#wl-counts")
        assert "All 6" in counts and "Unreported 2" in counts and "Draft 1" in counts
        assert "Preliminary 1" in counts and "Final 2" in counts

        # s cycles the status filter: unreported, draft, preliminary, final.
        for state in (
            ReportState.UNREPORTED,
            ReportState.DRAFT,
            ReportState.PRELIMINARY,
            ReportState.FINAL,
        ):
            await pilot.press("s")
            await pilot.pause()
            want = {loaded.uids[n] for n, s in loaded.expected.items() if s is state}
            assert set(table_uids(screen)) == want, state
        await pilot.press("s")
        await pilot.pause()
        assert len(table_uids(screen)) == 6

        # The modality filter goes to the PACS: no MR study this week.
        modality = screen.query_one("#wl-modality", Input)
        modality.value = "MR"
        modality.focus()
        await pilot.press("enter")
        await settle(pilot)
        assert table_uids(screen) == [] and "All 0" in text_of(screen, "#wl-counts")
        modality.value = ""
        modality.focus()
        await pilot.press("enter")
        await settle(pilot)
        assert len(table_uids(screen)) == 6

        # The 'final' patient's prior, with its state; Enter on it shows its report's text.
        table = screen.query_one("#worklist", DataTable)
        table.move_cursor(row=table.get_row_index(loaded.uids["final"]))
        await wait_for(pilot, lambda: table_uids(screen, "#priors") == [loaded.prior_uid])
        priors = screen.query_one("#priors", DataTable)
        await wait_for(pilot, lambda: str(priors.get_cell(loaded.prior_uid, "state")) == "final")
        await pilot.press("p")
        await pilot.press("enter")
        await wait_for(pilot, lambda: "No acute finding." in text_of(screen, "#report-text"))
        assert "(final)" in text_of(screen, "#report-title")

        # W writes the study's report; only its SRs are on disk, so it works from the PACS.
        await pilot.press("escape", "W")
        await wait_for(pilot, lambda: isinstance(app.screen, ReportScreen))
        editor = app.screen
        assert isinstance(editor, ReportScreen)
        assert editor.source.study_uid == loaded.uids["final"]
        assert editor.source.path is None and editor.source.node is not None
        assert app.store.instance_uids(loaded.uids["final"])  # the report SR is cached


async def test_enter_opens_a_retrieved_study_at_once(
    empty_orthanc: Orthanc, tmp_path: Path
) -> None:
    images = tiny_study("local", patient_id="P-local", series_sizes=(3,))
    store(empty_orthanc, images)
    node = orthanc_node(empty_orthanc)
    uid = str(images[0].StudyInstanceUID)
    result = retrieve_study(node, uid, store=LocalStore(tmp_path / "store"))
    assert len(result.received) == 3
    app = worklist_app(node, tmp_path / "store")
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        assert table_uids(worklist(app)) == [uid]
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ViewerScreen))
        assert app.jobs == []  # nothing was retrieved again


async def test_enter_retrieves_and_opens_on_the_first_series(
    empty_orthanc: Orthanc, tmp_path: Path
) -> None:
    # Series 1 is small; series 2 is big and sent to the PACS first, so only "first image
    # series first" makes the viewer open on series 1 before the study is complete.
    images = tiny_study("remote", patient_id="P-remote", series_sizes=(2, 150))
    store(empty_orthanc, images[2:] + images[:2])
    uid = str(images[0].StudyInstanceUID)
    first_series = str(images[0].SeriesInstanceUID)
    app = worklist_app(orthanc_node(empty_orthanc), tmp_path / "store")
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        assert table_uids(worklist(app)) == [uid]
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ViewerScreen))
        on_disk_when_viewed = len(app.store.instance_uids(uid))
        viewer = app.screen
        assert isinstance(viewer, ViewerScreen)
        (job,) = app.jobs
        assert job.first_series == first_series
        assert viewer.slices[viewer.index].record.series_uid == first_series
        assert on_disk_when_viewed < len(images)
        await settle(pilot)
        assert job.state == "done", job.error
        assert job.series_done[0] == first_series
        assert len(app.store.instance_uids(uid)) == len(images)
        # Once the study is in, the viewer offers its other series.
        await wait_for(pilot, lambda: len(viewer.stacks) == 2)


async def test_unreachable_pacs_keeps_the_rows_and_says_so(
    empty_orthanc: Orthanc, tmp_path: Path
) -> None:
    loaded = load_reading_cases(empty_orthanc)
    app = worklist_app(orthanc_node(empty_orthanc), tmp_path / "store")
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        screen = worklist(app)
        before = table_uids(screen)
        assert len(before) == len(loaded.expected)
        empty_orthanc.kill()
        await pilot.press("ctrl+r")
        await settle(pilot)
        status = text_of(screen, "#wl-status")
        assert "orthanc unreachable" in status and f"{empty_orthanc.dicom_port}" in status
        assert "Showing 6 studies" in status
        assert table_uids(screen) == before
        # The states worked out before stay too.
        assert "Final 2" in text_of(screen, "#wl-counts")


# --- load ---------------------------------------------------------------------------------------

LOAD_STUDIES = 1000


@pytest.fixture(scope="module")
def busy_orthanc(orthanc_factory: OrthancPool) -> Iterator[Orthanc]:
    """An Orthanc holding 1,000 one-image studies of today, every fourth one reported (loaded
    once for the module): the reports are retrieved at the first refresh, so report states
    are still coming in while the reader works."""
    orthanc = orthanc_factory.start()
    at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    studies: list[Dataset] = []
    for n in range(LOAD_STUDIES):
        images = tiny_study(f"load-{n}", patient_id=f"L{n % 250:03d}")
        studies += images
        if n % 4 == 0:
            uid = str(images[0].StudyInstanceUID)
            studies.append(report_sr(uid, final=n % 8 == 0, at=at, patient_id=f"L{n % 250:03d}"))
    # Associations of 100 C-STOREs: a response stalled on a busy machine (seen once, with
    # pynetdicom's DIMSE timeout) costs one retry of 100, not the whole load.
    for start in range(0, len(studies), 100):
        chunk = studies[start : start + 100]
        try:
            store(orthanc, chunk)
        except StoreError:
            store(orthanc, chunk)  # Orthanc accepts an instance it already holds again
    yield orthanc


async def keys_answered_while(pilot: Any, key: str, answered: Any, busy: Any) -> None:
    """Press ``key`` and wait for ``answered()``; ``busy()`` must still be true by then.

    (``pilot.press`` itself returns only once every queued message is handled, which on a
    busy screen is later than the key's effect.)
    """
    task = asyncio.create_task(pilot.press(key))
    deadline = time.monotonic() + 10
    while not answered():
        assert time.monotonic() < deadline, f"{key!r} not answered within 10 s"
        await asyncio.sleep(0.005)
    assert busy(), f"the work was over before {key!r} was answered: nothing was proven"
    await task


async def test_worklist_answers_keys_while_a_big_pacs_is_still_answering(
    busy_orthanc: Orthanc, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The report states come at the pace of a PACS across a WAN (10 ms a study): from this
    # loopback Orthanc they now end within a second or two of the rows, sooner than a key
    # is answered on a loaded machine, and the states-still-coming case would go unproven.
    def remote_pace(*args: Any, **kwargs: Any) -> Iterator[Any]:
        for status in report_states(*args, **kwargs):
            time.sleep(0.01)
            yield status

    monkeypatch.setattr(worklist_feed, "report_states", remote_pace)
    app = worklist_app(orthanc_node(busy_orthanc), tmp_path / "store")
    async with app.run_test(size=(160, 40)) as pilot:
        screen = worklist(app)
        table = screen.query_one("#worklist", DataTable)
        await wait_for(pilot, lambda: table.row_count > 0)
        # The cursor moves while the refresh (rows, then 1,000 report states) still runs.
        await keys_answered_while(
            pilot, "down", lambda: table.cursor_row == 1, lambda: screen.refreshing
        )
        await wait_for(pilot, lambda: len(screen.rows) == LOAD_STUDIES, timeout=30)
        # Filtering by state is answered with what is known so far, states still coming.
        await keys_answered_while(
            pilot,
            "s",
            lambda: screen.status_filter is ReportState.UNREPORTED,
            lambda: len(screen.states) < LOAD_STUDIES,
        )
        await pilot.pause()
        unreported = [uid for uid, s in screen.states.items() if s.state is ReportState.UNREPORTED]
        assert set(table_uids(screen)) <= set(unreported)
        assert table.row_count > 0


# --- command palette ----------------------------------------------------------------------------


async def test_command_palette_reaches_screen_and_app_actions(
    empty_orthanc: Orthanc, tmp_path: Path
) -> None:
    app = worklist_app(orthanc_node(empty_orthanc), tmp_path / "store")
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        screen = worklist(app)
        # A binding of the current screen, by its footer name.
        await pilot.press("ctrl+p", *"status fil", "enter")
        await wait_for(pilot, lambda: screen.status_filter is ReportState.UNREPORTED)
        # An app-level action: another mode.
        await pilot.press("ctrl+p", *"query", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, QueryScreen))
        await pilot.press("f1")
        await wait_for(pilot, lambda: app.screen is screen)


async def test_a_draft_written_from_the_worklist_shows_on_its_row_on_return(
    empty_orthanc: Orthanc, tmp_path: Path
) -> None:
    images = tiny_study("drafted", patient_id="P-drafted")
    store(empty_orthanc, images)
    uid = str(images[0].StudyInstanceUID)
    app = worklist_app(orthanc_node(empty_orthanc), tmp_path / "store")
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        screen = worklist(app)
        table = screen.query_one("#worklist", DataTable)
        await wait_for(pilot, lambda: str(table.get_cell(uid, "state")) == "unreported")
        # Typed in one burst, then Esc: the editor keeps the text as a draft, and the row says
        # so at once, not at the next refresh a minute later.
        await burst(pilot, "W", *"Typed.", "escape")
        await wait_for(pilot, lambda: app.screen is screen and DraftStore().has_draft(uid))
        await wait_for(pilot, lambda: str(table.get_cell(uid, "state")) == "draft", timeout=3)
        assert "Draft 1" in text_of(screen, "#wl-counts")
        assert "Unreported 0" in text_of(screen, "#wl-counts")
