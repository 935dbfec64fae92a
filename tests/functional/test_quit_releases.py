"""Quitting releases a warm C-GET association nobody took (the PACS sees an A-RELEASE at once
instead of holding the association until its own idle timeout or seeing the socket drop)."""

from __future__ import annotations

import asyncio

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from tests.functional.helpers import new_app
from tests.support.scps_retrieve import running_qr_scp
from tuiviewer.dicom.datagen import write_ct_series
from tuiviewer.net import warm
from tuiviewer.net.transport import warm_retrieve


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> list[Dataset]:
    folder = tmp_path_factory.mktemp("quit")
    return [dcmread(p) for p in write_ct_series(folder, slices=2, rows=8, cols=8, seed=7)]


async def test_quitting_releases_an_unused_warm_association(
    datasets: list[Dataset], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(warm, "IDLE_S", 120.0)  # so only quitting can end it
    try:
        with running_qr_scp(datasets) as (scp, log):
            app = new_app()
            async with app.run_test() as pilot:
                assert warm_retrieve(scp.node(), 2)
                for _ in range(500):
                    if log.accepted == 1 and warm.available(scp.node()):
                        break
                    await pilot.pause(0.01)
                assert log.accepted == 1 and len(log.live) == 1
                await pilot.press("q")
                for _ in range(500):
                    if not app.is_running:
                        break
                    await pilot.pause(0.01)
            for _ in range(300):
                if not log.live:
                    break
                await asyncio.sleep(0.01)
            assert log.released == 1 and not log.live
    finally:
        warm.release_idle()
