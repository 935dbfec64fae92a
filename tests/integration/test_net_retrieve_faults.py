"""A PACS killed mid-retrieve (a real Orthanc): the files received are kept, the error says the
connection was lost, and a resume against the restarted PACS finishes the rest. The other
retrieve faults use in-process SCPs: tests/unit/net/test_retrieve_faults.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom import dcmread

from tests.support.orthanc import OrthancPool, store_files
from tuiviewer.config.nodes import Node
from tuiviewer.dicom.datagen import write_ct_series
from tuiviewer.net.errors import AssociationAborted
from tuiviewer.net.retrieve import RetrieveProgress, resume_study, retrieve_study
from tuiviewer.store import LocalStore


@pytest.mark.orthanc
def test_orthanc_killed_mid_retrieve_keeps_files_and_resume_finishes(
    orthanc_factory: OrthancPool, tmp_path: Path
) -> None:
    server = orthanc_factory.start()
    paths = write_ct_series(tmp_path / "ct", slices=20, rows=16, cols=16, seed=41)
    assert store_files(server.host, server.dicom_port, server.aet, paths) == len(paths)
    study = str(dcmread(paths[0], stop_before_pixels=True).StudyInstanceUID)
    node = Node(
        name="doomed",
        ae_title=server.aet,
        host=server.host,
        port=server.dicom_port,
        dimse_timeout=5,
        network_timeout=5,
    )
    store = LocalStore(tmp_path / "store")

    def progress(p: RetrieveProgress) -> None:
        if p.done == 5 and server.is_running:
            server.kill()

    result = retrieve_study(node, study, store=store, progress=progress)
    assert isinstance(result.error, AssociationAborted)
    assert "connection to 'doomed'" in result.error.message
    assert "was lost during C-GET" in result.error.message
    # Instances are committed in the background while the next one arrives, so one or two
    # more may have landed between the fifth commit and the kill.
    assert 5 <= len(result.received) < len(paths)
    assert store.instance_uids(study) == {p.stem for p in result.received}
    kept = len(result.received)

    server.start()  # same ports, same database
    resumed = resume_study(node, study, store=store)
    assert resumed.error is None and len(resumed.received) == len(paths) - kept
    expected = {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in paths}
    assert store.instance_uids(study) == expected
