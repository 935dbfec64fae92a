"""The embedded demo PACS (tuiviewer's mini PACS in its own process): it answers, holds the
samples, serves C-GET, and the demo opens on a day's reading list dated from today."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from textual.widgets import DataTable

from tests.conftest import testdata as sample_file
from tests.functional.helpers import settle
from tuiviewer.app import make_app
from tuiviewer.config.settings import Config
from tuiviewer.dicom.rows import QueryLevel, StudyRow, to_row
from tuiviewer.net.demo import DemoPacs, sample_files
from tuiviewer.net.echo import echo
from tuiviewer.net.find import FindQuery, find
from tuiviewer.net.retrieve import retrieve_study
from tuiviewer.screens.worklist import WorklistScreen
from tuiviewer.services.demo import DemoContent, prepare_demo
from tuiviewer.services.worklist import (
    DEFAULT_DAYS,
    ReportState,
    WorklistQuery,
    find_priors,
    report_states,
)
from tuiviewer.store import LocalStore


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoPacs]:
    pacs = DemoPacs()
    pacs.start()
    yield pacs
    pacs.stop()


def test_demo_pacs_holds_every_sample_study(demo: DemoPacs) -> None:
    files = sample_files()
    result = demo.load(files)
    assert not result.failed, result.failed
    expected = {
        str(pydicom.dcmread(path, stop_before_pixels=True, force=True).StudyInstanceUID)
        for path in files
    }
    found = {str(ds.StudyInstanceUID) for ds in find(demo.node, FindQuery(QueryLevel.STUDY))}
    assert found == expected
    assert echo(demo.node).status == 0


def test_demo_pacs_serves_c_get(demo: DemoPacs, tmp_path: Path) -> None:
    ct = pydicom.dcmread(sample_file("CT_small.dcm"))
    demo.load([sample_file("CT_small.dcm")])
    store = LocalStore(tmp_path / "store")
    result = retrieve_study(demo.node, str(ct.StudyInstanceUID), store=store)
    assert result.error is None and not result.failed
    assert store.instance_uids(str(ct.StudyInstanceUID)) == {str(ct.SOPInstanceUID)}


def test_stop_removes_what_the_demo_held() -> None:
    pacs = DemoPacs()
    pacs.start()
    pacs.load([sample_file("MR_small.dcm")])
    workdir = pacs.workdir
    assert any(workdir.rglob("*"))
    pacs.stop()
    assert not workdir.exists()


# --- what `tuiviewer demo` opens on ------------------------------------------------------------


@pytest.fixture(scope="module")
def days_list(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DemoPacs, DemoContent]]:
    """The demo as `tuiviewer demo` starts it (generated series in a private data dir)."""
    saved = os.environ.get("TUIVIEWER_DATA_DIR")
    os.environ["TUIVIEWER_DATA_DIR"] = str(tmp_path_factory.mktemp("demo-data"))
    pacs = DemoPacs()
    try:
        content = prepare_demo(pacs.workdir)
        pacs.start(content.paths, content.overrides)
        yield pacs, content
    finally:
        pacs.stop()
        if saved is None:
            os.environ.pop("TUIVIEWER_DATA_DIR", None)
        else:
            os.environ["TUIVIEWER_DATA_DIR"] = saved


def worklist_rows(pacs: DemoPacs) -> list[StudyRow]:
    query = WorklistQuery.last_days(DEFAULT_DAYS).to_find_query()
    rows = [to_row(QueryLevel.STUDY, ds) for ds in find(pacs.node, query)]
    return [row for row in rows if isinstance(row, StudyRow)]


def test_the_demo_is_a_days_list_dated_from_today(
    days_list: tuple[DemoPacs, DemoContent],
) -> None:
    pacs, _content = days_list
    rows = worklist_rows(pacs)
    assert len(rows) >= 8, "enough studies to look like a day's list"
    assert len({row.patient_id or row.patient_name for row in rows}) >= 5
    modalities = {m for row in rows for m in row.modalities}
    assert {"CT", "MR", "CR"} <= modalities
    today = dt.date.today().strftime("%Y%m%d")
    assert sum(row.date == today for row in rows) >= 3
    # What a real PACS says of each study, the demo says too.
    for row in rows:
        assert row.description, row
        assert row.modalities and row.series_count and row.instance_count, row
    series = [
        to_row(QueryLevel.SERIES, ds)
        for ds in find(pacs.node, FindQuery(QueryLevel.SERIES, study_uid=rows[0].uid))
    ]
    assert series and all(s.number is not None and s.instance_count for s in series)  # type: ignore[union-attr]


def test_the_demo_has_priors_and_a_preliminary_report(
    days_list: tuple[DemoPacs, DemoContent], tmp_path: Path
) -> None:
    pacs, _content = days_list
    rows = {row.description: row for row in worklist_rows(pacs)}
    chest = rows["CT chest without contrast"]
    priors = find_priors(pacs.node, chest)
    assert [p.description for p in priors] == ["CT chest (prior)"]
    assert priors[0].date < (dt.date.today() - dt.timedelta(days=DEFAULT_DAYS)).strftime("%Y%m%d")
    radiograph = rows["Chest radiograph PA"]
    assert [p.modalities for p in find_priors(pacs.node, radiograph)] == [("CR",)]
    store = LocalStore(tmp_path / "store")
    states = {
        s.study_uid: s.state
        for s in report_states(pacs.node, [r.uid for r in rows.values()], store)
    }
    assert states[rows["CT abdomen"].uid] is ReportState.PRELIMINARY
    assert states[chest.uid] is ReportState.UNREPORTED


async def test_tuiviewer_demo_opens_on_studies(
    days_list: tuple[DemoPacs, DemoContent], tmp_path: Path
) -> None:
    pacs, _content = days_list
    node = pacs.node
    app = make_app(
        Config(),
        [],
        nodes={node.name: node},
        default_node=node.name,
        store=LocalStore(tmp_path / "s"),
    )
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, WorklistScreen)
        table = screen.query_one("#worklist", DataTable)
        assert table.row_count >= 8
        descriptions = {row.description for row in screen.rows.values()}
        assert {"CT chest without contrast", "Chest radiograph PA", "MR head"} <= descriptions


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
def test_the_real_program_opens_on_studies_in_a_terminal(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    """`tuiviewer demo` as a user starts it, in tmux: the first screen lists studies."""
    import shutil
    import sys

    from tests.conftest import require_tool
    from tests.support.tmux import Tmux, user_env

    require_tool("tmux", shutil.which("tmux") is not None)
    env = user_env(tmp_path)
    tmux = Tmux(env)
    exports = " ".join(f"{key}={value}" for key, value in env.items())
    try:
        tmux.new_session("demo", f"exec env {exports} {sys.executable} -m tuiviewer demo", *size)
        screen = tmux.wait_for("demo", "studies on demo", timeout=90)
        assert "0 studies" not in screen
        assert "Demo Chest" in screen and "Demo Ribs" in screen
        if size[0] >= 120:
            # The study with the preliminary report by tuiviewer's SR writer.
            assert "preliminary" in tmux.wait_for("demo", "preliminary", timeout=30)
        tmux.keys("demo", "q")
    finally:
        tmux.kill_server()
