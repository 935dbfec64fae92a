"""Warnings recorded for one thread stay that thread's: two files loaded at once each get their
own problems (the browser's banner once counted another file's), and silencing one thread does
not silence the rest of the process."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from pathlib import Path

from tests.support.mutants import all_mutants
from tuiviewer.dicom.loading import load_file
from tuiviewer.dicom.warned import quiet, recording


def _together(*work: Callable[[], object]) -> list[object]:
    """Run each callable in its own thread, started together; return their results."""
    start = threading.Barrier(len(work))
    results: list[object] = [None] * len(work)

    def run(index: int) -> None:
        start.wait()
        results[index] = work[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(work))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def _warn_many(label: str, count: int) -> list[str]:
    with recording() as caught:
        for number in range(count):
            warnings.warn(f"{label} {number}", UserWarning, stacklevel=1)
            if number % 10 == 0:
                threading.Event().wait(0.001)  # let the other thread in
    return [str(w.message) for w in caught]


def test_two_threads_recording_at_once_each_get_only_their_own_warnings() -> None:
    first, second = _together(lambda: _warn_many("a", 200), lambda: _warn_many("b", 150))
    assert first == [f"a {n}" for n in range(200)]
    assert second == [f"b {n}" for n in range(150)]


def test_quiet_in_one_thread_leaves_another_threads_warnings_alone() -> None:
    quiet_entered = threading.Event()
    release = threading.Event()

    def silent() -> None:
        with quiet():
            quiet_entered.set()
            warnings.warn("dropped", UserWarning, stacklevel=1)
            release.wait(10)

    thread = threading.Thread(target=silent)
    thread.start()
    try:
        assert quiet_entered.wait(10)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            warnings.warn("kept", UserWarning, stacklevel=1)
    finally:
        release.set()
        thread.join(10)
    assert [str(w.message) for w in seen] == ["kept"]


def test_after_the_last_user_leaves_the_process_filters_are_as_before() -> None:
    before_filters = list(warnings.filters)
    before_show = warnings.showwarning
    with recording(), quiet():
        pass
    assert list(warnings.filters) == before_filters
    assert warnings.showwarning is before_show


def _flipped_files(tmp_path: Path, wanted: int) -> list[Path]:
    """CT slices with random bit flips: each loads with a different set of problems, many of
    them pydicom warnings about values that no longer convert."""
    found = []
    for mutant in all_mutants():
        if mutant.name.startswith("CT_small-random-flips-"):
            path = tmp_path / mutant.name
            path.write_bytes(mutant.data)
            found.append(path)
        if len(found) == wanted:
            break
    return found


def test_files_loaded_at_the_same_time_report_the_problems_each_has_alone(
    tmp_path: Path,
) -> None:
    paths = _flipped_files(tmp_path, 4)
    assert len(paths) == 4
    alone = [load_file(path).banner for path in paths]
    assert len(set(alone)) == 4  # four different answers, so a mix-up shows
    for _ in range(10):
        together = _together(*(lambda p=p: load_file(p).banner for p in paths))
        assert together == alone
