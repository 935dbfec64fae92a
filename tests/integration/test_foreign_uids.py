"""A PACS can hold studies whose UIDs are not conformant (hex strings, as some archives mint).

The workstation must still find, retrieve, view and report on them, as getscu does, while no
raw text from the PACS becomes a path: the store folders and the draft are named by a hash.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from textual.widgets import TextArea

from tests.functional.helpers import burst, settle
from tests.integration.test_worklist import (
    orthanc_node,
    store,
    table_uids,
    tiny_study,
    wait_for,
    worklist,
    worklist_app,
)
from tests.support.orthanc import Orthanc, c_find
from tuiviewer.reports.drafts import DraftStore
from tuiviewer.reports.model import SectionKind
from tuiviewer.screens.dialogs.common import ConfirmDialog
from tuiviewer.screens.report import ReportScreen
from tuiviewer.screens.viewer import ViewerScreen
from tuiviewer.store import uid_name


def hex_study() -> list[Dataset]:
    """Three 8×8 CT images whose study, series and SOP Instance UIDs are 32 hex digits."""
    images = tiny_study("hex", patient_id="P-hex", series_sizes=(3,), description="Hex UIDs")
    study, series = uuid.uuid4().hex, uuid.uuid4().hex
    for ds in images:
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = series
        ds.SOPInstanceUID = uuid.uuid4().hex
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return images


async def test_a_hex_uid_study_is_found_retrieved_viewed_and_reported(
    empty_orthanc: Orthanc, tmp_path: Path
) -> None:
    images = hex_study()
    store(empty_orthanc, images)
    study_uid = str(images[0].StudyInstanceUID)
    app = worklist_app(orthanc_node(empty_orthanc), tmp_path / "store")
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        assert table_uids(worklist(app)) == [study_uid]  # found
        await pilot.press("enter")  # retrieved and viewed
        await wait_for(pilot, lambda: isinstance(app.screen, ViewerScreen), timeout=30)
        folder = app.store.study_dir(study_uid)
        assert folder.name == uid_name(study_uid) and folder.name.startswith("x-")
        received = sorted(folder.rglob("*.dcm"))
        assert len(received) == 3
        assert {str(pydicom.dcmread(p).SOPInstanceUID) for p in received} == {
            str(ds.SOPInstanceUID) for ds in images
        }
        assert all(p.name.startswith("x-") for p in received)
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is worklist(app))

        await pilot.press("W")  # reported on
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, ReportScreen) and app.screen.report is not None,
            timeout=30,
        )
        editor = app.screen
        assert isinstance(editor, ReportScreen)
        editor.query_one("#section-findings", TextArea).focus()
        await burst(pilot, *"Hex study read.")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert editor.last_sr is not None
        sr = pydicom.dcmread(editor.last_sr)
        assert sr.StudyInstanceUID == study_uid  # the report belongs to that study
        assert DraftStore().path_for(study_uid).name == f"{uid_name(study_uid)}.json"
        await wait_for(
            pilot,
            lambda: (
                (d := DraftStore().load(study_uid)) is not None
                and d.report.text_of(SectionKind.FINDINGS) == "Hex study read."
            ),
        )
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), timeout=20)
        await pilot.press("y")
        await wait_for(pilot, lambda: editor.sent, timeout=20)

    query = Dataset()
    query.QueryRetrieveLevel = "SERIES"
    query.StudyInstanceUID = study_uid
    query.SeriesInstanceUID = ""
    query.Modality = "SR"
    found = c_find(empty_orthanc.host, empty_orthanc.dicom_port, empty_orthanc.aet, query)
    assert found, "the report reached the PACS, in the hex study"
