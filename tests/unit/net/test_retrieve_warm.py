"""Warm associations: the C-GET association opened while the reader rests on a worklist row is
the one Enter's retrieve sends its first C-GET on; the lead's is handed on to the rest of the
retrieve; one nobody takes is released; a PACS that takes one association at a time never
sees the difference (against a real in-process pynetdicom SCP)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import ImplicitVRLittleEndian

from tests.support.scps_retrieve import running_qr_scp
from tuiviewer.dicom.datagen import write_ct_series
from tuiviewer.net import warm
from tuiviewer.net.lead import warm_for_retrieve
from tuiviewer.net.retrieve import ReaderFocus, StudyInventory, retrieve_study, study_inventory
from tuiviewer.store import LocalStore

SLICES = 12


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> list[Dataset]:
    folder = tmp_path_factory.mktemp("warm")
    return [dcmread(p) for p in write_ct_series(folder, slices=SLICES, rows=8, cols=8, seed=91)]


@pytest.fixture(autouse=True)
def nothing_left_open() -> Iterator[None]:
    yield
    warm.release_idle()


def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_the_lead_hands_its_association_to_the_rest_of_the_retrieve(
    datasets: list[Dataset], tmp_path: Path
) -> None:
    study = str(datasets[0].StudyInstanceUID)
    with running_qr_scp(datasets) as (scp, log):
        result = retrieve_study(scp.node(), study, store=LocalStore(tmp_path), focus=ReaderFocus())
        until(lambda: not log.live)
    assert result.error is None and not result.partial and len(result.received) == SLICES
    assert log.accepted == 2  # the C-FIND's, and one C-GET association for everything


def test_enter_takes_the_association_warmed_on_the_row(
    datasets: list[Dataset], tmp_path: Path
) -> None:
    study = str(datasets[0].StudyInstanceUID)
    with running_qr_scp(datasets) as (scp, log):
        node = scp.node()
        assert warm_for_retrieve(node, 2)
        until(lambda: log.accepted == 1)
        result = retrieve_study(node, study, store=LocalStore(tmp_path), focus=ReaderFocus())
        until(lambda: not log.live)
    assert result.error is None and len(result.received) == SLICES
    assert log.accepted == 2  # the warm one and the C-FIND's: no association set up for it


def test_after_a_rest_listing_the_first_c_get_goes_on_the_warm_association(
    datasets: list[Dataset], tmp_path: Path
) -> None:
    study = str(datasets[0].StudyInstanceUID)
    with running_qr_scp(datasets) as (scp, log):
        node = scp.node()
        listed = study_inventory(node, study)
        assert warm_for_retrieve(node, 2)
        until(lambda: log.accepted == 2)
        result = retrieve_study(
            node, study, store=LocalStore(tmp_path), focus=ReaderFocus(), inventory=listed
        )
        until(lambda: not log.live)
    assert result.error is None and len(result.received) == SLICES
    assert log.accepted == 2


def test_a_study_listed_in_another_uncompressed_syntax_still_takes_it(
    datasets: list[Dataset], tmp_path: Path
) -> None:
    """The PACS says it holds the instances in Implicit VR; the warm association took
    Explicit VR for CT: a lossless re-encoding, so it serves."""
    study = str(datasets[0].StudyInstanceUID)
    with running_qr_scp(datasets) as (scp, log):
        node = scp.node()
        listed = study_inventory(node, study)
        held = {
            series: [replace(i, transfer_syntaxes=(str(ImplicitVRLittleEndian),)) for i in items]
            for series, items in listed.series.items()
        }
        assert warm_for_retrieve(node, 2)
        until(lambda: log.accepted == 2)
        result = retrieve_study(
            node, study, store=LocalStore(tmp_path), inventory=StudyInventory(study, held)
        )
        until(lambda: not log.live)
    assert result.error is None and len(result.received) == SLICES
    assert log.accepted == 2


def test_a_warm_association_nobody_takes_is_released(
    datasets: list[Dataset], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(warm, "IDLE_S", 0.3)
    with running_qr_scp(datasets) as (scp, log):
        assert warm_for_retrieve(scp.node(), 2)
        until(lambda: log.accepted == 1)
        until(lambda: not log.live, timeout=3.0)
        assert not warm.available(scp.node())


def test_none_is_opened_where_only_one_association_may_be(datasets: list[Dataset]) -> None:
    with running_qr_scp(datasets) as (scp, log):
        assert not warm_for_retrieve(scp.node(), 1)
        assert not warm_for_retrieve(scp.node(retrieve="move"), 2)
        time.sleep(0.3)
    assert log.accepted == 0


def test_a_pacs_taking_one_association_is_answered_as_without_it(
    datasets: list[Dataset], tmp_path: Path
) -> None:
    """The warm association holds the PACS's only slot: the worklist's next C-FIND is asked
    again once it is closed, and no association is warmed there again."""
    study = str(datasets[0].StudyInstanceUID)
    with running_qr_scp(datasets, max_associations=1) as (scp, log):
        node = scp.node()
        assert warm_for_retrieve(node, 2)
        until(lambda: log.accepted == 1)
        listed = study_inventory(node, study)
        assert listed.count == SLICES
        assert not warm_for_retrieve(node, 2)


def test_a_pacs_taking_one_association_while_the_lead_holds_the_warm_one(
    datasets: list[Dataset], tmp_path: Path
) -> None:
    """Enter at once: the lead takes the warm association, the PACS refuses the C-FIND's;
    the lead lets it go, the C-FIND is asked again, and the whole study arrives."""
    study = str(datasets[0].StudyInstanceUID)
    with running_qr_scp(datasets, max_associations=1) as (scp, log):
        node = scp.node()
        assert warm_for_retrieve(node, 2)
        until(lambda: log.accepted == 1)
        result = retrieve_study(node, study, store=LocalStore(tmp_path), focus=ReaderFocus())
    assert result.error is None and not result.partial
    assert len(result.received) == SLICES and log.yielded == SLICES
