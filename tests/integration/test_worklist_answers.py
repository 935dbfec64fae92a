"""Report states settled from the PACS's C-FIND answers are the states retrieving the documents
gives, on a real Orthanc holding every kind of study the worklist must tell apart, and on PACS
that do not return sequences (there the documents are retrieved, so the state never depends on
what the PACS chooses to answer).

Orthanc (Debian 1.10) reads the keys it does not index from the stored file when it answers a
C-FIND, sequences included, so its answers carry the root's title and template, the flags and
the Predecessor Documents Sequence. The bomb SR is the exception: Orthanc cannot answer its
title, and it goes the retrieving way, where it is refused and quarantined.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from tests.integration import test_hostile_worklist as hostile
from tests.integration.test_worklist import orthanc_node, store, tiny_study
from tests.integration.test_worklist_scale import (
    mixed_studies,
    serve,
    states_of,
    study_rows,
)
from tests.support.orthanc import OrthancPool
from tests.unit.services.test_worklist import cad_sr, dose_sr, report_sr
from tuiviewer.dicom.rows import StudyRow
from tuiviewer.net.minipacs import MiniPacs
from tuiviewer.reports.drafts import DraftStore
from tuiviewer.services.worklist import ReportState, StateCache, merge_answers, report_states
from tuiviewer.store import LocalStore


def _cases(at: dt.datetime) -> tuple[list[Dataset], dict[str, str], dict[str, ReportState]]:
    """One study per case: its images and SR documents, its UID by name, its state."""
    datasets: list[Dataset] = []
    uids: dict[str, str] = {}
    names = (
        "none",
        "dose",
        "cad",
        "prelim",
        "final",
        "superseded",
        "backdated",
        "addendum",
        "misfiled",
    )
    for name in names:
        images = tiny_study(f"answers-{name}", patient_id=f"A-{name}")
        uids[name] = str(images[0].StudyInstanceUID)
        datasets += images

    def report(
        name: str, final: bool, minutes: int = 0, supersedes: Dataset | None = None
    ) -> Dataset:
        ds = report_sr(
            uids[name],
            final=final,
            at=at + dt.timedelta(minutes=minutes),
            supersedes=supersedes,
            patient_id=f"A-{name}",
        )
        datasets.append(ds)
        return ds

    datasets += [
        dose_sr(uids["dose"], patient_id="A-dose"),
        dose_sr(uids["dose"], comprehensive=True, patient_id="A-dose"),
    ]
    cad = cad_sr(uids["cad"])
    cad.PatientID = "A-cad"
    datasets.append(cad)
    report("prelim", False)
    report("final", True)
    # A signed report superseding the preliminary one; written first, listed second.
    first = report("superseded", False)
    report("superseded", True, 5, supersedes=first)
    # A signed report dated before the preliminary one it supersedes: only the predecessor
    # link says which counts (the newest is superseded).
    later = report("backdated", False, 5)
    report("backdated", True, 0, supersedes=later)
    # An unsigned addendum to a signed report: the study is preliminary again.
    signed = report("addendum", True)
    report("addendum", False, 5, supersedes=signed)
    # A signed report filed under another Patient ID (Orthanc makes it a study of its own).
    misfiled = report("misfiled", True)
    misfiled.PatientID = "SOMEONE-ELSE"
    expected = {
        "none": ReportState.UNREPORTED,
        "dose": ReportState.UNREPORTED,
        "cad": ReportState.UNREPORTED,
        "prelim": ReportState.PRELIMINARY,
        "final": ReportState.FINAL,
        "superseded": ReportState.FINAL,
        "backdated": ReportState.FINAL,
        "addendum": ReportState.PRELIMINARY,
        "misfiled": ReportState.FINAL,
        "bomb": ReportState.UNREADABLE,
    }
    return datasets, uids, expected


def test_states_from_the_answers_are_the_states_from_the_documents_on_orthanc(
    orthanc_factory: OrthancPool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Beyond the 256 MiB reading limit, but quicker for Orthanc to read than a GiB.
    monkeypatch.setattr(hostile, "BOMB_MIB", 320)
    orthanc = orthanc_factory.start()
    at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    datasets, uids, expected = _cases(at)
    bomb_images = tiny_study("answers-bomb", patient_id="BOMB1")
    uids["bomb"] = str(bomb_images[0].StudyInstanceUID)
    store(orthanc, datasets + bomb_images)
    _, bomb_sop = hostile._put_bomb(orthanc, uids["bomb"], tmp_path)
    node = orthanc_node(orthanc, dimse_timeout=60)
    names = {uid: name for name, uid in uids.items()}
    drafts = DraftStore(tmp_path / "drafts")
    # The worklist's rows: Orthanc answers twice for the misfiled study, the screen merges them.
    rows: dict[str, StudyRow] = {}
    for row in study_rows(node):
        rows[row.uid] = merge_answers(rows[row.uid], row) if row.uid in rows else row
    assert set(rows) == set(names)

    def both_ways(
        studies: list[str | StudyRow],
    ) -> tuple[dict[str, ReportState], dict[str, ReportState]]:
        answered = LocalStore(tmp_path / f"answered-{len(studies)}-{id(studies)}")
        retrieved = LocalStore(tmp_path / f"retrieved-{len(studies)}-{id(studies)}")
        by_answers = list(report_states(node, studies, answered, drafts=drafts, cache=StateCache()))
        by_documents = list(
            report_states(node, studies, retrieved, drafts=drafts, cache=StateCache(), fetch=True)
        )
        # The answers decided every study but the bomb's: none of their documents came over.
        for name, uid in uids.items():
            if name != "bomb":
                assert answered.instance_uids(uid) == set(), name
        bomb = [q.sop_uid for q in answered.quarantined(uids["bomb"])]
        assert bomb == [q.sop_uid for q in retrieved.quarantined(uids["bomb"])]
        assert bomb == ([bomb_sop] if uids["bomb"] in names_of(studies) else [])
        # The retrieving way did fetch the reports (so the comparison compares something).
        assert retrieved.instance_uids(uids["final"])
        return (
            {names[s.study_uid]: s.state for s in by_answers},
            {names[s.study_uid]: s.state for s in by_documents},
        )

    def names_of(studies: list[str | StudyRow]) -> set[str]:
        return {s.uid if isinstance(s, StudyRow) else s for s in studies}

    # The worklist's rows, then bare UIDs (the misfiled report seen without the merge); the
    # bomb (Orthanc takes seconds to read it for each query) only in the first.
    with_rows: list[str | StudyRow] = [*rows.values()]
    bare: list[str | StudyRow] = [uid for name, uid in uids.items() if name != "bomb"]
    for studies in (with_rows, bare):
        by_answers, by_documents = both_ways(studies)
        want = {names[uid]: expected[names[uid]] for uid in names_of(studies)}
        assert by_answers == by_documents == want


class NoSequences(MiniPacs):
    """Answers without any sequence (as a PACS that returns only what it indexes)."""

    def find(self, identifier: Dataset) -> list[Dataset]:
        answers = super().find(identifier)
        for answer in answers:
            for element in list(answer):
                if element.VR == "SQ":
                    del answer[element.tag]
        return answers


class RefusesSequences(MiniPacs):
    """Refuses a C-FIND that has a sequence among its keys."""

    def find(self, identifier: Dataset) -> list[Dataset]:
        if any(element.VR == "SQ" for element in identifier):
            raise ValueError("Sequences are not supported as keys.")
        return super().find(identifier)


@pytest.mark.parametrize("kind", [MiniPacs, NoSequences, RefusesSequences])
def test_a_pacs_that_does_not_answer_sequences_gets_its_documents_retrieved(
    kind: type[MiniPacs], tmp_path: Path
) -> None:
    datasets, expected = mixed_studies(15, "answers-mini")
    folder = tmp_path / "files"
    folder.mkdir()
    for index, ds in enumerate(datasets):
        ds.save_as(folder / f"{index:04d}.dcm", enforce_file_format=True)
    pacs = kind(tmp_path / "received", ae_title="MINI")
    node = serve(pacs, folder)
    try:
        local = LocalStore(tmp_path / "store")
        found = list(
            report_states(
                node, study_rows(node), local, drafts=DraftStore(tmp_path / "d"), cache=StateCache()
            )
        )
        assert states_of(found) == expected
        assert all(s.error is None for s in found)
        reported = [u for u, s in expected.items() if s is not ReportState.UNREPORTED]
        fetched = [u for u in reported if local.instance_uids(u)]
        # With sequences in the answers nothing is retrieved; without, every report is.
        assert fetched == ([] if kind is MiniPacs else reported)
    finally:
        pacs.stop()
