"""What the store acknowledges survives a writer killed at any moment, and nothing half written
becomes an instance: real processes are SIGKILLed (a writer between its fsync and its rename,
a writer in the middle of an instance, the listener right after it acknowledged a pushed
instance) and the next opening of the store finds every acknowledged instance in place, puts
the unfinished write aside, and leaves no slot that could be mistaken for an instance."""

from __future__ import annotations

import logging
import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid
from pynetdicom import AE

from tests.support.ports import LOOPBACK, free_port
from tuiviewer.dicom.datagen import write_ct_series
from tuiviewer.net.listen import read_journal
from tuiviewer.store import (
    INCOMING_DIR,
    PARTIAL_DIR,
    QUARANTINE_DIR,
    SLOT_BATCH,
    LocalStore,
)

ROOT = Path(__file__).resolve().parents[2]


def _uids(path: Path) -> tuple[str, str, str]:
    ds = dcmread(path, stop_before_pixels=True)
    return str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)


def _series(folder: Path, slices: int, seed: int) -> list[Path]:
    return write_ct_series(folder, slices=slices, rows=16, cols=16, seed=seed)


def _run_child(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a fresh interpreter that kills itself (SIGKILL) where it says."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


KILL_AT_RENAME = """
    import os, signal
    import tuiviewer.store as store_module

    def kill_at_rename(renames):
        # The crash a power cut could leave: the slot is fsynced, its rename never happened.
        real_replace = os.replace
        done = [0]

        def replace(src, dst):
            if done[0] == renames:
                os.kill(os.getpid(), signal.SIGKILL)
            done[0] += 1
            real_replace(src, dst)

        store_module.os.replace = replace
"""

WRITER = (
    KILL_AT_RENAME
    + """
    import os, signal, sys
    from pathlib import Path
    from pydicom import dcmread
    from tuiviewer.store import LocalStore

    root, renames, cut, *files = sys.argv[1:]
    renames, cut = int(renames), int(cut)
    store = LocalStore(Path(root))
    kill_at_rename(renames)
    for number, name in enumerate(files):
        ds = dcmread(name, stop_before_pixels=True)
        uids = str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)
        data = Path(name).read_bytes()
        handle, temp = store.open_temp(*uids)
        if number == cut:
            handle.write(data[: len(data) // 2])  # killed in the middle of an instance
            os.kill(os.getpid(), signal.SIGKILL)
        with handle:
            handle.write(data)
        store.commit(temp, *uids)
        print(number, flush=True)
"""
)


def test_a_writer_killed_between_fsync_and_rename_loses_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    files = _series(tmp_path / "ct", slices=4, seed=11)
    deflated = Path(str(get_testdata_file("image_dfl.dcm", download=False)))
    files.append(deflated)
    root = tmp_path / "store"
    # The fourth rename (of the fifth file, the deflated one) is never done.
    done = _run_child(WRITER, str(root), "4", "-1", *map(str, files))
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert done.stdout.split() == ["0", "1", "2", "3"]
    with caplog.at_level(logging.WARNING, logger="tuiviewer.store"):
        store = LocalStore(root)
    for path in files:
        stored = store.instance_path(*_uids(path))
        assert stored.read_bytes() == path.read_bytes()
        assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert store.unfinished() == []
    assert "recovered 1 instance(s)" in caplog.text
    # Opening it again finds nothing more to do.
    assert LocalStore(root).recover().moved == []


def test_a_write_cut_short_is_put_aside_never_made_an_instance(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    files = _series(tmp_path / "ct", slices=3, seed=12)
    root = tmp_path / "store"
    done = _run_child(WRITER, str(root), "99", "2", *map(str, files))
    assert done.returncode == -signal.SIGKILL, done.stderr
    with caplog.at_level(logging.WARNING, logger="tuiviewer.store"):
        store = LocalStore(root)
    study = _uids(files[0])[0]
    assert store.instance_uids(study) == {_uids(p)[2] for p in files[:2]}
    assert not store.has_instance(*_uids(files[2]))
    assert store.unfinished() == []
    [bad] = (root / QUARANTINE_DIR / PARTIAL_DIR).glob("*.dcm.bad")
    assert bad.read_bytes()[132:] == files[2].read_bytes()[132 : len(files[2].read_bytes()) // 2]
    reason = bad.with_suffix(".reason").read_text()
    assert "never acknowledged" in reason and "no 'DICM'" in reason
    assert "cut short" in caplog.text
    [study_row] = store.studies()
    assert study_row.instances == 2


def test_a_dead_writers_pool_is_taken_over_not_multiplied(tmp_path: Path) -> None:
    files = _series(tmp_path / "ct", slices=2, seed=13)
    root = tmp_path / "store"
    for _ in range(3):
        _run_child(WRITER, str(root), "1", "-1", *map(str, files))
    pools = list((root / INCOMING_DIR).iterdir())
    assert len(pools) == 1
    store = LocalStore(root)
    assert all(store.has_instance(*_uids(p)) for p in files)
    handle, temp = store.open_temp(*_uids(files[0]))
    handle.close()
    assert temp.parent == pools[0]  # the dead writer's slots are reused
    store.discard(temp)
    store.close()
    assert stat.S_IMODE((root / INCOMING_DIR).stat().st_mode) == 0o700
    assert stat.S_IMODE(pools[0].stat().st_mode) == 0o700
    slots = [p for p in pools[0].iterdir() if p.name.startswith("s-")]
    assert len(slots) >= SLOT_BATCH // 2
    assert {stat.S_IMODE(p.stat().st_mode) for p in slots} == {0o600}
    assert {p.stat().st_size for p in slots} == {0}


def test_a_second_store_never_takes_a_live_writers_slot(tmp_path: Path) -> None:
    [path] = _series(tmp_path / "ct", slices=1, seed=14)
    uids = _uids(path)
    writer = LocalStore(tmp_path / "store")
    handle, temp = writer.open_temp(*uids)
    with handle:
        handle.write(path.read_bytes()[:1000])
    other = LocalStore(tmp_path / "store")  # another window, the purge command, ...
    assert other.recover().partial == [] and temp.stat().st_size == 1000
    writer.discard(temp)
    handle, temp = writer.open_temp(*uids)
    with handle:
        handle.write(path.read_bytes())
    writer.commit(temp, *uids)
    assert other.instance_path(*uids).read_bytes() == path.read_bytes()


def test_an_instance_already_in_place_is_not_stored_twice_on_recovery(tmp_path: Path) -> None:
    files = _series(tmp_path / "ct", slices=2, seed=15)
    root = tmp_path / "store"
    LocalStore(root).write_dataset(dcmread(files[1]))
    # The child's second rename (of the file already there) never happens.
    _run_child(WRITER, str(root), "1", "-1", *map(str, files))
    store = LocalStore(root)
    assert store.studies()[0].instances == 2
    assert store.unfinished() == []


# --- the listener ---------------------------------------------------------------------------


LISTENER = (
    KILL_AT_RENAME
    + """
    import os, signal, sys, time
    from pathlib import Path
    from tuiviewer.config.listen import ListenConfig
    from tuiviewer.net.listen import Listener
    from tuiviewer.store import LocalStore

    root, port, renames = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    kill_at_rename(renames)
    config = ListenConfig(ae_title="READER", port=port, bind="127.0.0.1", allow=("CLINIC",))
    listener = Listener(config, LocalStore(Path(root)))
    listener.start()
    print("ready", flush=True)
    time.sleep(60)
"""
)


def _start_listener(root: Path, port: int, renames: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(LISTENER), str(root), str(port), str(renames)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready", child.stderr.read() if child.stderr else ""
    return child


def _push(port: int, files: list[Path], kill: subprocess.Popen[str] | None = None) -> list[str]:
    """C-STORE each file on one association; return the SOP Instance UIDs acknowledged.
    ``kill``: SIGKILL that listener right after the last acknowledgement, before releasing."""
    ae = AE(ae_title="CLINIC")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    for sop_class in {dcmread(p, stop_before_pixels=True).SOPClassUID for p in files}:
        ae.add_requested_context(sop_class)
    assoc = ae.associate(LOOPBACK, port, ae_title="READER")
    assert assoc.is_established
    acknowledged = []
    for path in files:
        ds = dcmread(path)
        status = assoc.send_c_store(ds)
        if not status or status.get("Status") != 0:
            break
        acknowledged.append(str(ds.SOPInstanceUID))
    if kill is not None:
        kill.send_signal(signal.SIGKILL)
        kill.wait(10)
    if assoc.is_established:
        assoc.abort() if kill is not None else assoc.release()
    return acknowledged


def test_the_listener_killed_right_after_acknowledging_loses_nothing(tmp_path: Path) -> None:
    files = _series(tmp_path / "ct", slices=6, seed=16)
    root = tmp_path / "store"
    port = free_port()
    child = _start_listener(root, port, renames=99)
    try:
        acknowledged = _push(port, files[:4], kill=child)  # right after the 4th ack
    finally:
        child.kill()
        child.wait(10)
    assert len(acknowledged) == 4
    store = LocalStore(root)
    study = _uids(files[0])[0]
    assert store.instance_uids(study) == set(acknowledged)
    assert store.unfinished() == []
    [record] = read_journal(store)  # who sent it was on disk with the first instance
    assert record.study_uid == study and record.calling_aet == "CLINIC"


def test_the_listener_killed_before_its_rename_finds_the_instance_at_restart(
    tmp_path: Path,
) -> None:
    files = _series(tmp_path / "ct", slices=5, seed=17)
    root = tmp_path / "store"
    port = free_port()
    child = _start_listener(root, port, renames=3)
    try:
        acknowledged = _push(port, files)
    finally:
        child.kill()
        child.wait(10)
    # Three acknowledged; the fourth was fsynced in its slot when the listener died.
    assert len(acknowledged) == 3
    store = LocalStore(root)
    study = _uids(files[0])[0]
    assert set(acknowledged) <= store.instance_uids(study)
    assert store.instance_uids(study) == {_uids(p)[2] for p in files[:4]}
    assert store.unfinished() == []
    # Sending the whole study again stores the fifth and ignores the duplicates.
    port = free_port()
    child = _start_listener(root, port, renames=99)
    try:
        assert len(_push(port, files)) == 5
    finally:
        child.kill()
        child.wait(10)
    assert LocalStore(root).instance_uids(study) == {_uids(p)[2] for p in files}


def test_a_study_uid_from_a_killed_writer_never_escapes_the_store(tmp_path: Path) -> None:
    """A slot whose data set names a study by something that is not a UID is hashed, as on
    arrival: recovery builds paths only through the store's validated names."""
    [path] = _series(tmp_path / "ct", slices=1, seed=18)
    ds = dcmread(path)
    ds.StudyInstanceUID = "../../outside"
    ds.SOPInstanceUID = generate_uid()
    odd = tmp_path / "odd.dcm"
    ds.save_as(odd, enforce_file_format=True)
    root = tmp_path / "store"
    _run_child(WRITER, str(root), "0", "-1", str(odd))
    store = LocalStore(root)
    [row] = store.studies()
    assert row.study_uid.startswith("x-") and row.instances == 1
    assert not (tmp_path / "outside").exists()
    assert store.unfinished() == []


def test_a_slot_whose_end_never_reached_the_disk_is_put_aside(tmp_path: Path) -> None:
    """A power cut during the fsync of an instance (so never acknowledged) can leave its first
    page on disk without the rest: the slot then ends inside an element and is not taken."""
    files = _series(tmp_path / "ct", slices=2, seed=19)
    root = tmp_path / "store"
    _run_child(WRITER, str(root), "1", "-1", *map(str, files))  # the 2nd stays in its slot
    [slot] = [
        p
        for pool in (root / INCOMING_DIR).iterdir()
        for p in pool.iterdir()
        if p.name.startswith("s-") and p.stat().st_size
    ]
    os.truncate(slot, slot.stat().st_size - 10)  # its last bytes lost
    store = LocalStore(root)
    assert store.has_instance(*_uids(files[0]))
    assert not store.has_instance(*_uids(files[1]))
    [bad] = (root / QUARANTINE_DIR / PARTIAL_DIR).glob("*.dcm.bad")
    assert "ends beyond the end of the file" in bad.with_suffix(".reason").read_text()
