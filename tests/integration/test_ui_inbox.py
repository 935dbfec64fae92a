"""The Inbox as a reader uses it: F7 starts the listener, a clinic pushes a study, the Inbox
(F6) shows it arriving with its sender, the reader writes and signs the report, accepts the
offer to send it back, and the clinic's PACS (Orthanc) has it; the row says so."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid
from textual.widgets import DataTable, TextArea

from tests.functional.helpers import settle
from tests.integration.test_ui_report import ask_to_sign_as, wait_for
from tests.support.orthanc import OrthancConfig, OrthancPool, store_files
from tests.support.ports import LOOPBACK, free_port
from tuiviewer.app import make_app
from tuiviewer.config.listen import ListenConfig
from tuiviewer.config.nodes import Node
from tuiviewer.config.settings import Config
from tuiviewer.dicom.datagen import write_ct_series
from tuiviewer.screens.dialogs.common import ConfirmDialog
from tuiviewer.screens.inbox import InboxScreen
from tuiviewer.screens.report import ReportScreen
from tuiviewer.store import LocalStore

pytestmark = pytest.mark.orthanc


async def test_a_pushed_study_arrives_is_reported_and_the_report_goes_back(
    orthanc_factory: OrthancPool, tmp_path: Path
) -> None:
    # The clinic: a PACS whose AE title is the one its studies come from.
    clinic = orthanc_factory.start(OrthancConfig(aet="CLINIC"))
    port = free_port()
    config = Config(
        listen=ListenConfig(ae_title="READER", port=port, bind=LOOPBACK, allow=("CLINIC",))
    )
    nodes = {"clinic": Node("clinic", "CLINIC", clinic.host, clinic.dicom_port)}
    store = LocalStore(tmp_path / "store")
    study = generate_uid()
    paths = write_ct_series(
        tmp_path / "ct", slices=3, rows=16, cols=16, seed=301, study_uid=study,
        patient_name="Pushed^Patient", patient_id="PUSH-1",
    )  # fmt: skip
    app = make_app(config, [], nodes=nodes, default_node="clinic", store=store)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.press("f6", "f7")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, InboxScreen)
        assert app.listener is not None and app.listener.running
        sent = await asyncio.to_thread(
            store_files, LOOPBACK, port, "READER", paths, calling_aet="CLINIC"
        )
        assert sent == 3
        table = screen.query_one("#worklist", DataTable)
        assert await wait_for(lambda: study in table.rows, timeout=15)
        await settle(pilot)
        row = table.get_row(study)
        assert "CLINIC" in str(row[-2]) and "—" in str(row[-1])
        assert "unreported" in str(row[0])

        await pilot.press("W")
        assert await wait_for(
            lambda: isinstance(app.screen, ReportScreen) and app.screen.report is not None,
            timeout=10,
        )
        report = app.screen
        assert isinstance(report, ReportScreen)
        findings = report.query_one("#section-findings", TextArea)
        findings.focus()
        findings.insert("No acute finding.")
        await ask_to_sign_as(pilot, app, "Curie^Marie")
        await pilot.click("#yes")  # sign
        await settle(pilot)
        offer = app.screen
        assert isinstance(offer, ConfirmDialog)
        assert "clinic" in offer.question and "CLINIC" in offer.question
        await pilot.click("#yes")  # send it back
        await settle(pilot)
        assert report.last_sr is not None
        sop = str(pydicom.dcmread(report.last_sr).SOPInstanceUID)
        assert await wait_for(lambda: any(j.state == "done" for j in app.jobs), timeout=15), [
            (j.state, j.error) for j in app.jobs
        ]

        await pilot.press("escape")
        await pilot.pause()
        assert await wait_for(lambda: "✓ clinic" in str(table.get_row(study)[-1]), timeout=10)
        await settle(pilot)
        assert await wait_for(lambda: "final" in str(table.get_row(study)[0]), timeout=10)
        await pilot.press("f7")
        assert app.listener is None

    stored = clinic.rest("GET", "/instances")
    uids = {clinic.rest("GET", f"/instances/{i}/simplified-tags")["SOPInstanceUID"] for i in stored}
    assert sop in uids
