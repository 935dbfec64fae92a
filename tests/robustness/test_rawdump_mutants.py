"""The raw listing of ``tuiviewer dump`` over hundreds of damaged files: it either prints what
the pydicom listing prints for the same file (which then reports no problem) or leaves the file
to it, having printed nothing; it never raises anything else and never hangs."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tests.robustness.bounded import bounded
from tests.support.mutants import all_mutants
from tuiviewer.dicom import rawdump
from tuiviewer.dicom.dump import run_dump

MUTANTS = all_mutants()


@pytest.fixture(scope="module")
def mutant_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("raw-mutants")
    for mutant in MUTANTS:
        (folder / mutant.name).write_bytes(mutant.data)
    return folder


def test_raw_listing_of_a_damaged_file_is_pydicoms_or_nothing(mutant_dir: Path) -> None:
    failures: list[str] = []
    printed = 0
    for mutant in MUTANTS:
        path = str(mutant_dir / mutant.name)
        outcome = bounded(rawdump.listing, path)
        if isinstance(outcome.error, rawdump.Unhandled):
            continue
        if outcome.error is not None:
            failures.append(f"{mutant.name} ({mutant.detail}): raised {outcome.error!r}")
            continue
        out, err = io.StringIO(), io.StringIO()
        status = run_dump([path], as_json=False, stdout=out, stderr=err)
        if (outcome.value, status, err.getvalue()) != (out.getvalue(), 0, ""):
            failures.append(f"{mutant.name} ({mutant.detail}): printed differently")
        printed += 1
    assert not failures, "\n".join(failures[:15])
    # Damage that leaves a well-formed file (a flipped bit in a value, say) is still printed.
    assert printed > 0
