"""The first instance of a study comes while the PACS is still listing it (the lead): the
reader's first slice does not wait for the image-level C-FIND of a big study to end. A PACS
that will not take the lead's association, or refuses image level, still gets the whole study,
and nothing is asked for twice.
"""

from __future__ import annotations

import time
from pathlib import Path

from pydicom import dcmread

from tests.support.paced_pacs import PacedPacs
from tuiviewer.config.nodes import Node
from tuiviewer.dicom.datagen import write_ct_series
from tuiviewer.net.retrieve import ReaderFocus, RetrieveProgress, retrieve_study
from tuiviewer.store import LocalStore

SLICES = 30


def test_the_first_instance_lands_before_the_pacs_has_listed_the_study(tmp_path: Path) -> None:
    files = write_ct_series(tmp_path / "ct", slices=SLICES, rows=16, cols=16, seed=51)
    pacs = PacedPacs(tmp_path / "pacs", ae_title="LISTS", find_pace=0.05)  # 1.5 s to list
    pacs.add(files)
    port = pacs.start()
    first: list[tuple[float, int]] = []

    def progress(p: RetrieveProgress) -> None:
        if p.path is not None and not first:
            listed = p.inventory.count if p.inventory is not None else 0
            first.append((time.monotonic(), listed))

    try:
        study = LocalStore(tmp_path / "store")
        uid = str(dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
        result = retrieve_study(
            Node("lists", "LISTS", "127.0.0.1", port, dimse_timeout=30), uid, store=study,
            focus=ReaderFocus(), associations=2, progress=progress,
        )  # fmt: skip
    finally:
        pacs.stop()
    assert result.error is None and not result.partial, result
    assert len(result.received) == SLICES and result.completed == SLICES
    assert pacs.sent == SLICES  # nothing was sent twice
    (at, listed), done = first[0], pacs.find_done
    assert done is not None and at < done, "the first instance waited for the whole list"
    # Its progress report said where it lies as far as the PACS had listed.
    assert 1 <= listed < SLICES
