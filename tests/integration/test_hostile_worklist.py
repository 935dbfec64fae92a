"""A deflated SR bomb on an ordinary PACS: the worklist reads report states at every start.

A Basic Text SR in Deflated Explicit VR Little Endian, ~1 MB, that inflates to a GiB, held by
a real Orthanc like any other SR. The worklist fetches the study's SR documents to work out the
report state: the bomb arrives deflated, is inflated within the reading limits, refused and
quarantined; the study shows "unreadable report", the app stays up, and the next launch neither
fetches nor reads it again.

(Orthanc itself cannot serve the 4 GiB version: it inflates it to send it and gives up after
30 s; the 4 GiB bomb goes through a lying pynetdicom PACS in test_hostile_net.py.)
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from textual.widgets import DataTable

from tests.functional.helpers import settle
from tests.integration.test_worklist import orthanc_node, store, tiny_study, worklist, worklist_app
from tests.support.hostile import deflate_bomb
from tests.support.orthanc import Orthanc, OrthancPool
from tuiviewer.services.worklist import ReportState, report_states
from tuiviewer.store import LocalStore

BOMB_MIB = 1024


def _put_bomb(orthanc: Orthanc, study_uid: str, folder: Path) -> tuple[str, str]:
    """Store a bomb SR in ``orthanc``: a small SR with its UIDs goes in by REST (Orthanc would
    take minutes to index the bomb itself), then the bomb replaces it on disk."""
    small = deflate_bomb(folder / "small.dcm", 1, study_uid=study_uid)
    bomb = deflate_bomb(
        folder / "bomb.dcm",
        BOMB_MIB,
        study_uid=study_uid,
        series_uid=small.series_uid,
        sop_uid=small.sop_uid,
    )
    assert bomb.path.stat().st_size < 1_200_000
    orthanc.rest("POST", "/instances", small.path.read_bytes())
    size = small.path.stat().st_size
    stored = [p for p in orthanc.storage_dir.rglob("*") if p.is_file() and p.stat().st_size == size]
    assert len(stored) == 1, stored
    orthanc.stop()
    stored[0].write_bytes(bomb.path.read_bytes())
    orthanc.start()
    return bomb.series_uid, bomb.sop_uid


@pytest.fixture
def bomb_pacs(orthanc_factory: OrthancPool, tmp_path: Path) -> tuple[Orthanc, str, str, str]:
    orthanc = orthanc_factory.start()
    # The images under the bomb's own Patient ID: Orthanc keys a study by patient too, and a
    # report filed under another patient is another study to it (and to its ModalitiesInStudy).
    images = tiny_study("bomb", patient_id="BOMB1")
    study_uid = str(images[0].StudyInstanceUID)
    store(orthanc, images)
    series_uid, sop_uid = _put_bomb(orthanc, study_uid, tmp_path)
    return orthanc, study_uid, series_uid, sop_uid


def test_the_worklist_marks_the_bomb_and_never_fetches_it_again(
    bomb_pacs: tuple[Orthanc, str, str, str], tmp_path: Path
) -> None:
    orthanc, study_uid, series_uid, sop_uid = bomb_pacs
    node = orthanc_node(orthanc, dimse_timeout=60)
    local = LocalStore(tmp_path / "store")
    [status] = list(report_states(node, [study_uid], local))
    assert status.state is ReportState.UNREADABLE
    assert status.error is not None and "max_inflated_mb" in status.error
    kept = local.quarantined(study_uid)
    assert [q.sop_uid for q in kept] == [sop_uid]
    assert not local.has_instance(study_uid, series_uid, sop_uid)
    first = kept[0].path.stat()

    # The next launch: a new store object on the same folder, as after a restart.
    again = LocalStore(tmp_path / "store")
    started = time.monotonic()
    [second] = list(report_states(node, [study_uid], again))
    assert second.state is ReportState.UNREADABLE
    now = again.quarantined(study_uid)[0].path.stat()
    assert (now.st_ino, now.st_mtime_ns) == (first.st_ino, first.st_mtime_ns), "fetched again"
    assert time.monotonic() - started < 30


async def test_the_app_shows_unreadable_report_and_stays_up(
    bomb_pacs: tuple[Orthanc, str, str, str], tmp_path: Path
) -> None:
    orthanc, study_uid, _series, _sop = bomb_pacs
    node = orthanc_node(orthanc, dimse_timeout=60)
    for launch in (1, 2):
        app = worklist_app(node, tmp_path / "store")
        async with app.run_test(size=(160, 40)) as pilot:
            await settle(pilot)
            screen = worklist(app)
            table = screen.query_one("#worklist", DataTable)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                cell = str(table.get_cell(study_uid, "state")) if study_uid in table.rows else ""
                if cell.startswith(ReportState.UNREADABLE.value):
                    break
                await pilot.pause(0.1)
            else:
                raise AssertionError(f"launch {launch}: state {cell!r}")
            assert "Unreadable report 1" in str(screen.query_one("#wl-counts").content)
            await pilot.press("down", "up")  # still answering keys
            assert app.is_running
