"""Retrieves that go wrong: the PACS aborts after N instances, ends with a failure status and a
Failed SOP Instance UID List, refuses the image-level C-FIND, knows no C-MOVE destination, or
(tests/integration/test_net_retrieve_faults.py) is killed mid-retrieve. Each time the files
received are kept, the error says what happened and a resume finishes the rest. In-process
pynetdicom SCPs, so these are unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from tests.support.ports import free_port
from tests.support.scps_retrieve import running_qr_scp
from tuiviewer.dicom.datagen import write_ct_series
from tuiviewer.net.errors import AssociationAborted, DimseStatusError
from tuiviewer.net.retrieve import resume_study, retrieve_study
from tuiviewer.store import LocalStore


@pytest.fixture(scope="module")
def series_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two CT series of one study, 6 + 4 small slices."""
    folder = tmp_path_factory.mktemp("fault-study")
    study = generate_uid()
    return write_ct_series(
        folder / "a", slices=6, rows=16, cols=16, seed=31, study_uid=study
    ) + write_ct_series(folder / "b", slices=4, rows=16, cols=16, seed=32, study_uid=study)


@pytest.fixture
def datasets(series_files: list[Path]) -> list[Dataset]:
    return [dcmread(p) for p in series_files]


def _study(datasets: list[Dataset]) -> str:
    return str(datasets[0].StudyInstanceUID)


def test_abort_after_n_instances_keeps_them_and_resume_finishes(
    datasets: list[Dataset], tmp_path: Path
) -> None:
    store = LocalStore(tmp_path / "store")
    study = _study(datasets)
    with running_qr_scp(datasets, abort_after=3) as (scp, _log):
        result = retrieve_study(scp.node(), study, store=store)

    assert isinstance(result.error, AssociationAborted)
    assert "aborted the association during C-GET" in result.error.message
    assert f"127.0.0.1:{scp.port}" in result.error.message
    assert len(result.received) == 3 and result.partial
    assert store.instance_uids(study) == {str(ds.SOPInstanceUID) for ds in datasets[:3]}

    with running_qr_scp(datasets) as (scp, log):
        resumed = resume_study(scp.node(), study, store=store)
    assert resumed.error is None and len(resumed.received) == len(datasets) - 3
    # Only the missing instances were asked for, by SOP Instance UID.
    asked = {uid for request in log.requested_sops for uid in request}
    assert asked == {str(ds.SOPInstanceUID) for ds in datasets[3:]}
    assert set(log.get_levels) == {"IMAGE"}
    assert store.instance_uids(study) == {str(ds.SOPInstanceUID) for ds in datasets}


def test_failure_status_lists_the_failed_instances(datasets: list[Dataset], tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    study = _study(datasets)
    first_series = str(datasets[0].SeriesInstanceUID)
    with running_qr_scp(datasets, fail_after=2) as (scp, _log):
        result = retrieve_study(scp.node(), study, store=store, first_series=first_series)

    assert isinstance(result.error, DimseStatusError)
    assert result.error.code == 0xA702
    # PS3.4 Table C.4-3: A702 is "Refused: Out of resources - unable to perform sub-operations".
    assert "0xA702: Refused: Out of resources" in result.error.message
    assert "unable to perform sub-operations" in result.error.message
    series_a = [ds for ds in datasets if ds.SeriesInstanceUID == first_series]
    assert result.failed_sops == [str(ds.SOPInstanceUID) for ds in series_a[2:]]
    assert result.failed == len(series_a) - 2
    assert len(result.received) == 2 and result.partial
    assert all(p.is_file() for p in result.received)


def test_refused_image_level_find_falls_back_to_the_broad_context_set(
    datasets: list[Dataset], tmp_path: Path
) -> None:
    store = LocalStore(tmp_path / "store")
    with running_qr_scp(datasets, refuse_find=True) as (scp, log):
        result = retrieve_study(scp.node(), _study(datasets), store=store)
    assert not result.inventory_used
    assert result.error is None and result.total is None
    assert log.get_levels == ["STUDY"]
    assert {p.stem for p in result.received} == {str(ds.SOPInstanceUID) for ds in datasets}


def test_resume_without_image_level_find_says_why(datasets: list[Dataset], tmp_path: Path) -> None:
    with running_qr_scp(datasets, refuse_find=True) as (scp, _log):
        with pytest.raises(DimseStatusError) as info:
            resume_study(scp.node(), _study(datasets), store=LocalStore(tmp_path / "s"))
    assert "Cannot resume study" in info.value.message
    assert "0xA700" in info.value.message


def test_move_to_unknown_destination_is_explained(datasets: list[Dataset], tmp_path: Path) -> None:
    with running_qr_scp(datasets, move_destinations={}) as (scp, _log):
        node = scp.node(retrieve="move", move_port=free_port(), calling_aet="NOWHERE")
        with pytest.raises(DimseStatusError) as info:
            retrieve_study(node, _study(datasets), store=LocalStore(tmp_path / "s"))
    assert info.value.code == 0xA801
    assert "Move destination unknown" in info.value.message
    assert "'NOWHERE' as a C-MOVE destination" in info.value.message


def test_move_through_a_pynetdicom_pacs(datasets: list[Dataset], tmp_path: Path) -> None:
    port = free_port()
    destinations = {"TUIVIEWER": ("127.0.0.1", port)}
    store = LocalStore(tmp_path / "store")
    with running_qr_scp(datasets, move_destinations=destinations) as (scp, _log):
        node = scp.node(retrieve="move", move_port=port)
        result = retrieve_study(node, _study(datasets), store=store)
    assert result.error is None and result.completed == len(datasets)
    assert store.instance_uids(_study(datasets)) == {str(ds.SOPInstanceUID) for ds in datasets}
