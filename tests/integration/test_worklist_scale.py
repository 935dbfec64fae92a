"""Report states of many studies at once, as the worklist asks for them: on a real Orthanc
(list-matching C-FIND on one association, studies without SR never asked, states kept while
nothing changed) and on our mini PACS made to refuse or misread the wide query, or to die
half-way (the states known by then stay, nothing crashes).

Studies are generated in memory (tests/integration/test_worklist.py's ``tiny_study``) with
reports from tuiviewer's SR writer and dose SRs from PS3.16's codes; the expected states follow
from what each study was given.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset

from tests.integration.test_worklist import orthanc_node, store, tiny_study
from tests.support.orthanc import Orthanc
from tests.unit.services.test_worklist import dose_sr, report_sr
from tuiviewer.config.nodes import Node
from tuiviewer.dicom.rows import QueryLevel, StudyRow, to_row
from tuiviewer.net.errors import NetError
from tuiviewer.net.find import FindQuery, find
from tuiviewer.net.minipacs import MiniPacs
from tuiviewer.reports.drafts import DraftStore
from tuiviewer.services.worklist import ReportState, StateCache, StudyStatus, report_states
from tuiviewer.store import LocalStore

KINDS = ("none", "dose", "preliminary", "final", "superseded")
EXPECTED = {
    "none": ReportState.UNREPORTED,
    "dose": ReportState.UNREPORTED,
    "preliminary": ReportState.PRELIMINARY,
    "final": ReportState.FINAL,
    "superseded": ReportState.FINAL,
}


def mixed_studies(count: int, prefix: str) -> tuple[list[Dataset], dict[str, ReportState]]:
    """``count`` one-image studies cycling through :data:`KINDS`, and the state each must show."""
    at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    datasets: list[Dataset] = []
    expected: dict[str, ReportState] = {}
    for n in range(count):
        kind = KINDS[n % len(KINDS)]
        patient = f"S{n:03d}"
        images = tiny_study(f"{prefix}-{n}", patient_id=patient)
        uid = str(images[0].StudyInstanceUID)
        datasets += images
        if kind == "dose":
            datasets.append(dose_sr(uid, comprehensive=True, patient_id=patient))
        elif kind in ("preliminary", "final"):
            datasets.append(report_sr(uid, final=kind == "final", at=at, patient_id=patient))
        elif kind == "superseded":
            first = report_sr(uid, final=False, at=at, patient_id=patient)
            signed = report_sr(uid, final=True, at=at + dt.timedelta(minutes=5), supersedes=first)
            signed.PatientID = patient
            datasets += [first, signed]
        expected[uid] = EXPECTED[kind]
    return datasets, expected


def study_rows(node: Node) -> list[StudyRow]:
    """The worklist's own study-level query (its rows carry the modalities and counts)."""
    rows = [to_row(QueryLevel.STUDY, ds) for ds in find(node, FindQuery(QueryLevel.STUDY))]
    return [row for row in rows if isinstance(row, StudyRow)]


def states_of(statuses: Iterator[StudyStatus] | list[StudyStatus]) -> dict[str, ReportState]:
    return {s.study_uid: s.state for s in statuses}


def test_states_of_a_mix_on_orthanc_then_kept_until_a_study_changes(
    empty_orthanc: Orthanc, tmp_path: Path
) -> None:
    datasets, expected = mixed_studies(30, "orthanc-mix")
    store(empty_orthanc, datasets)
    node = orthanc_node(empty_orthanc)
    local = LocalStore(tmp_path / "store")
    drafts = DraftStore(tmp_path / "drafts")
    cache = StateCache()
    rows = study_rows(node)
    assert {r.uid for r in rows} == set(expected)

    first = list(report_states(node, rows, local, drafts=drafts, cache=cache))
    assert states_of(first) == expected
    assert all(s.error is None for s in first)
    # Orthanc's answers decide every state: nothing came over.
    assert not list(local.root.rglob("*.dcm"))
    # The reader's way (fetch=True): only reports come over, nothing of the studies without
    # SR, no dose report in its class.
    fetched = list(report_states(node, rows, local, drafts=drafts, cache=StateCache(), fetch=True))
    assert states_of(fetched) == expected
    asked = {uid for uid, state in expected.items() if state is not ReportState.UNREPORTED}
    assert {s.study_uid for s in fetched if s.reports} == asked

    # Nothing changed: the states are known without asking (the PACS may even be gone).
    empty_orthanc.kill()
    assert states_of(report_states(node, rows, local, drafts=drafts, cache=cache)) == expected


def test_a_study_that_gets_a_report_changes_state_at_the_next_refresh(
    empty_orthanc: Orthanc, tmp_path: Path
) -> None:
    datasets, expected = mixed_studies(10, "orthanc-change")
    store(empty_orthanc, datasets)
    node = orthanc_node(empty_orthanc)
    local = LocalStore(tmp_path / "store")
    drafts = DraftStore(tmp_path / "drafts")
    cache = StateCache()
    assert states_of(report_states(node, study_rows(node), local, drafts=drafts, cache=cache)) == (
        expected
    )
    unreported = next(uid for uid, s in expected.items() if s is ReportState.UNREPORTED)
    at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    store(empty_orthanc, [report_sr(unreported, final=True, at=at)])
    again = states_of(report_states(node, study_rows(node), local, drafts=drafts, cache=cache))
    assert again == {**expected, unreported: ReportState.FINAL}


# --- PACS that do not answer the wide query as hoped ------------------------------------------


def listed(identifier: Dataset) -> bool:
    """The identifier lists several Study Instance UIDs."""
    return "StudyInstanceUID" in identifier and identifier["StudyInstanceUID"].VM > 1


class RefusesLists(MiniPacs):
    """Refuses a C-FIND with a list of Study Instance UIDs (as a strict hierarchical PACS)."""

    def find(self, identifier: Dataset) -> list[Dataset]:
        if listed(identifier):
            raise ValueError("Study Instance UID must be a single value.")
        return super().find(identifier)


class ReadsListsLiterally(MiniPacs):
    """Takes a list of UIDs as one literal value: the wide query matches nothing."""

    def find(self, identifier: Dataset) -> list[Dataset]:
        if listed(identifier):
            return []
        return super().find(identifier)


class DiesAfter(RefusesLists):
    """Answers ``answers`` C-FINDs of one study, then aborts the association."""

    answers = 6

    def _on_find(self, event: Any) -> Iterator[tuple[int, Dataset | None]]:
        if str(event.identifier.get("QueryRetrieveLevel", "")) != "STUDY":
            self.answers -= 1
            if self.answers < 0:
                event.assoc.abort()
                return
        yield from super()._on_find(event)


@pytest.fixture
def mixed_folder(tmp_path: Path) -> tuple[Path, dict[str, ReportState]]:
    datasets, expected = mixed_studies(15, "mini-mix")
    folder = tmp_path / "files"
    folder.mkdir()
    for index, ds in enumerate(datasets):
        ds.save_as(folder / f"{index:04d}.dcm", enforce_file_format=True)
    return folder, expected


def serve(pacs: MiniPacs, folder: Path) -> Node:
    pacs.add([folder])
    port = pacs.start()
    return Node("mini", pacs.ae_title, "127.0.0.1", port, dimse_timeout=10, acse_timeout=10)


@pytest.mark.parametrize("kind", [MiniPacs, RefusesLists, ReadsListsLiterally])
def test_states_are_right_whatever_the_pacs_makes_of_the_wide_query(
    kind: type[MiniPacs], mixed_folder: tuple[Path, dict[str, ReportState]], tmp_path: Path
) -> None:
    folder, expected = mixed_folder
    pacs = kind(tmp_path / "received", ae_title="MINI")
    node = serve(pacs, folder)
    try:
        local = LocalStore(tmp_path / "store")
        drafts = DraftStore(tmp_path / "drafts")
        rows = study_rows(node)
        # With rows (modalities known) and with bare UIDs (nothing known: every study asked).
        for studies in (rows, [r.uid for r in rows]):
            found = list(report_states(node, studies, local, drafts=drafts, cache=StateCache()))
            assert states_of(found) == expected
            assert all(s.error is None for s in found)
    finally:
        pacs.stop()


def test_a_pacs_that_dies_half_way_keeps_the_states_known_by_then(
    mixed_folder: tuple[Path, dict[str, ReportState]], tmp_path: Path
) -> None:
    folder, expected = mixed_folder
    pacs = DiesAfter(tmp_path / "received", ae_title="MINI")
    node = serve(pacs, folder)
    try:
        rows = study_rows(node)
        local = LocalStore(tmp_path / "store")
        got: list[StudyStatus] = []
        with pytest.raises(NetError):
            for status in report_states(
                node, rows, local, drafts=DraftStore(tmp_path / "drafts"), cache=StateCache()
            ):
                got.append(status)
        # The studies without SR are known at once, before the PACS died; each state given is
        # the right one, and the rest are not claimed.
        known = states_of(got)
        assert 0 < len(known) < len(expected)
        assert all(expected[uid] is state for uid, state in known.items())
        without_sr = {r.uid for r in rows if "SR" not in r.modalities}
        assert without_sr and without_sr <= set(known)
    finally:
        pacs.stop()
