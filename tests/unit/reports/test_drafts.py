"""Drafts are never lost: atomic writes (a failed rename leaves the old draft), private modes,
and a real child process that types through the Autosaver and is killed (SIGKILL, SIGHUP): the
draft on disk holds everything typed up to 2 s before the kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tuiviewer.reports.drafts import Autosaver, Draft, DraftStore
from tuiviewer.reports.model import DraftError, Report, Section, SectionKind
from tuiviewer.store import uid_name

STUDY = "1.2.826.0.1.3680043.8.498.1"
OTHER = "1.2.826.0.1.3680043.8.498.2"
ROOT = Path(__file__).resolve().parents[3]


def _draft(text: str, study: str = STUDY) -> Draft:
    report = Report(sections=(Section(SectionKind.FINDINGS, text),))
    return Draft(study, report, patient_name="Doe^Jane", patient_id="P1", accession="A7")


def test_save_load_round_trip_with_private_modes(tmp_path: Path) -> None:
    store = DraftStore(tmp_path / "drafts")
    saved = store.save(_draft("Épanchement — Лёгкие"))
    loaded = store.load(STUDY)
    assert loaded is not None
    assert loaded.report.text_of(SectionKind.FINDINGS) == "Épanchement — Лёгкие"
    assert (loaded.patient_name, loaded.patient_id, loaded.accession) == ("Doe^Jane", "P1", "A7")
    assert loaded.saved_at == saved.saved_at
    assert (tmp_path / "drafts").stat().st_mode & 0o777 == 0o700
    assert store.path_for(STUDY).stat().st_mode & 0o777 == 0o600
    assert store.has_draft(STUDY) and not store.has_draft(OTHER)
    assert store.load(OTHER) is None


def test_default_store_lives_in_the_data_dir(private_user_dirs: Path) -> None:
    store = DraftStore()
    store.save(_draft("x"))
    assert (private_user_dirs / "data" / "drafts" / f"{STUDY}.json").is_file()


def test_failed_rename_leaves_the_old_draft_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = DraftStore(tmp_path)
    store.save(_draft("old text"))
    before = store.path_for(STUDY).read_bytes()

    def broken_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("tuiviewer.reports.drafts.os.replace", broken_replace)
    with pytest.raises(DraftError, match="No space left on device.*previous draft is unchanged"):
        store.save(_draft("new text"))
    monkeypatch.undo()
    assert store.path_for(STUDY).read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [f"{STUDY}.json"]  # no temp file left


def test_invalid_study_uid_never_becomes_a_path(tmp_path: Path) -> None:
    store = DraftStore(tmp_path / "drafts")
    store.save(_draft("x", study="../../etc"))
    (saved,) = (tmp_path / "drafts").iterdir()
    assert saved.name == f"{uid_name('../../etc')}.json"  # a hash, never the raw text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["drafts"]
    loaded = store.load("../../etc")
    assert loaded is not None and loaded.study_uid == "../../etc"
    assert [i.study_uid for i in store.list()] == ["../../etc"]
    assert not store.has_draft("../x")
    with pytest.raises(DraftError, match="empty"):
        store.save(_draft("x", study=""))


def test_a_hex_study_uid_gets_a_draft_of_its_own(tmp_path: Path) -> None:
    store = DraftStore(tmp_path)
    hex_uid = "6b8a4c2e9f0d4d7e8b1a2c3d4e5f6a7b"
    store.save(_draft("hex study", study=hex_uid))
    store.save(_draft("dotted study", study=STUDY))
    loaded = store.load(hex_uid)
    assert loaded is not None and loaded.report.text_of(SectionKind.FINDINGS) == "hex study"
    assert store.path_for(hex_uid).name.startswith("x-")


def test_list_newest_first_and_discard(tmp_path: Path) -> None:
    store = DraftStore(tmp_path)
    store.save(_draft("a", STUDY))
    time.sleep(0.01)
    store.save(_draft("b", OTHER))
    (tmp_path / "broken.json").write_text("{not json")
    infos = store.list()
    assert [i.study_uid for i in infos] == [OTHER, STUDY]
    assert infos[0].patient_name == "Doe^Jane" and infos[0].accession == "A7"
    assert store.discard(STUDY) is True
    assert store.discard(STUDY) is False
    assert [i.study_uid for i in store.list()] == [OTHER]


def test_corrupt_draft_is_reported_with_its_path(tmp_path: Path) -> None:
    store = DraftStore(tmp_path)
    store.path_for(STUDY).write_text(json.dumps({"format": 1, "study_uid": STUDY}))
    with pytest.raises(DraftError, match=f"{STUDY}.json"):
        store.load(STUDY)


def test_start_over_keeps_the_draft_as_a_backup_and_restore_swaps(tmp_path: Path) -> None:
    store = DraftStore(tmp_path)
    assert store.keep_previous(STUDY) is None  # nothing to keep
    store.save(_draft("yesterday's text"))
    backup = store.keep_previous(STUDY)
    assert backup == store.previous_path(STUDY) and backup.stat().st_mode & 0o777 == 0o600
    assert store.load(STUDY) is None and store.has_previous(STUDY)
    assert store.list() == []  # a backup is not an unfinished draft
    store.save(_draft("today's text"))
    restored = store.restore_previous(STUDY)
    assert restored.report.text_of(SectionKind.FINDINGS) == "yesterday's text"
    current = store.load(STUDY)
    assert current is not None and current.report.text_of(SectionKind.FINDINGS) == (
        "yesterday's text"
    )
    # What restore replaced is the backup now, so restoring again swaps back.
    again = store.restore_previous(STUDY)
    assert again.report.text_of(SectionKind.FINDINGS) == "today's text"
    assert [i.study_uid for i in store.list()] == [STUDY]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"{STUDY}.json",
        f"{STUDY}.previous.json",
    ]


def test_restore_without_a_backup_says_so(tmp_path: Path) -> None:
    store = DraftStore(tmp_path)
    with pytest.raises(DraftError, match="no earlier draft"):
        store.restore_previous(STUDY)


def test_autosaver_writes_within_the_delay_and_flushes(tmp_path: Path) -> None:
    store = DraftStore(tmp_path)
    saver = Autosaver(store, delay=0.2)
    try:
        saver.touch(_draft("first"))
        assert not store.has_draft(STUDY)  # not written synchronously on each keystroke
        deadline = time.monotonic() + 2
        while not store.has_draft(STUDY) and time.monotonic() < deadline:
            time.sleep(0.02)
        loaded = store.load(STUDY)
        assert loaded is not None and loaded.report.text_of(SectionKind.FINDINGS) == "first"
        saver.touch(_draft("second"))
        saver.flush()
        loaded = store.load(STUDY)
        assert loaded is not None and loaded.report.text_of(SectionKind.FINDINGS) == "second"
        assert not saver.pending
    finally:
        saver.close()


def test_autosaver_writes_during_continuous_typing(tmp_path: Path) -> None:
    """Typing without pause must not postpone the save indefinitely."""
    store = DraftStore(tmp_path)
    saver = Autosaver(store, delay=0.3)
    try:
        start = time.monotonic()
        count = 0
        while time.monotonic() - start < 1.0:
            count += 1
            saver.touch(_draft(f"word{count}"))
            time.sleep(0.01)
        loaded = store.load(STUDY)
        assert loaded is not None  # written while the typing went on
    finally:
        saver.close()
    final = store.load(STUDY)
    assert final is not None and final.report.text_of(SectionKind.FINDINGS) == f"word{count}"


def test_autosaver_reports_write_errors_and_retries(tmp_path: Path) -> None:
    blocked = tmp_path / "drafts"
    blocked.write_text("a file where the folder should be")
    errors: list[DraftError] = []
    saver = Autosaver(DraftStore(blocked), delay=0.1, on_error=errors.append)
    saver.touch(_draft("text"))
    deadline = time.monotonic() + 2
    while not errors and time.monotonic() < deadline:
        time.sleep(0.02)
    assert errors and "drafts" in errors[0].message
    assert saver.pending  # kept for the next attempt
    blocked.unlink()
    saver.flush()
    assert DraftStore(blocked).load(STUDY) is not None
    assert saver.close() is None


def test_closing_with_a_draft_that_cannot_be_written_returns_the_error(tmp_path: Path) -> None:
    blocked = tmp_path / "drafts"
    blocked.write_text("a file where the folder should be")
    saver = Autosaver(DraftStore(blocked), delay=0.1)
    saver.touch(_draft("text"))
    error = saver.close()  # never raises: it runs while a screen or the app goes away
    assert isinstance(error, DraftError) and str(blocked) in error.message
    with pytest.raises(DraftError, match="drafts"):
        DraftStore(blocked).check_writable()


# --- a real process, really killed -------------------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from tuiviewer.reports.drafts import Autosaver, Draft, DraftStore
    from tuiviewer.reports.model import Report, Section, SectionKind

    saver = Autosaver(DraftStore(Path(sys.argv[1])))
    text = ""
    n = 0
    while True:
        n += 1
        text += f"w{n} "
        report = Report(sections=(Section(SectionKind.FINDINGS, text),))
        saver.touch(Draft(sys.argv[2], report))
        # CLOCK_MONOTONIC is system-wide on Linux: the parent compares it with its own.
        print(n, time.monotonic(), flush=True)
        time.sleep(0.03)
    """
)


def _type_then_kill(tmp_path: Path, sig: signal.Signals, typing_seconds: float = 3.0) -> None:
    drafts = tmp_path / "drafts"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(drafts), STUDY],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    assert child.stdout is not None
    typed: list[tuple[int, float]] = []
    try:
        start = time.monotonic()
        while time.monotonic() - start < typing_seconds:
            line = child.stdout.readline()
            assert line, "the typing process died early"
            number, at = line.split()
            typed.append((int(number), float(at)))
        killed_at = time.monotonic()
        os.kill(child.pid, sig)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -sig

    draft = DraftStore(drafts).load(STUDY)
    assert draft is not None, "no draft on disk after the kill"
    text = draft.report.text_of(SectionKind.FINDINGS)
    words = text.split()
    # A consistent snapshot: exactly the first N words, never a torn file.
    assert words == [f"w{n}" for n in range(1, len(words) + 1)]
    must_have = [n for n, at in typed if at <= killed_at - 2.0]
    assert must_have, "the test typed for too short a time to mean anything"
    assert len(words) >= max(must_have), (
        f"draft holds {len(words)} words; everything typed 2 s before the kill "
        f"({max(must_have)} words) must be there"
    )


def test_sigkill_loses_at_most_the_last_two_seconds(tmp_path: Path) -> None:
    _type_then_kill(tmp_path, signal.SIGKILL)


def test_sighup_loses_at_most_the_last_two_seconds(tmp_path: Path) -> None:
    _type_then_kill(tmp_path, signal.SIGHUP)


# --- damaged drafts ----------------------------------------------------------------------------


def _damage(store: DraftStore, how: str) -> None:
    path = store.path_for(STUDY)
    if how == "truncated":
        store.save(_draft("a long findings text"))
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif how == "garbage":
        path.write_bytes(bytes(range(256)) * 4)
    elif how == "not a draft":
        path.write_text(json.dumps({"format": 1, "study_uid": STUDY, "report": "?"}))
    elif how == "folder":
        path.mkdir()
    elif how == "fifo":
        os.mkfifo(path)  # reading it would block the app for ever


@pytest.mark.parametrize("how", ["truncated", "garbage", "not a draft", "folder", "fifo"])
def test_a_damaged_draft_is_set_aside_and_never_blocks(tmp_path: Path, how: str) -> None:
    store = DraftStore(tmp_path)
    store.save(_draft("another study's draft", OTHER))
    _damage(store, how)
    assert store.has_draft(STUDY)
    assert [i.study_uid for i in store.list()] == [OTHER]  # listing skips it, never raises
    with pytest.raises(DraftError, match=STUDY):
        store.load(STUDY)
    draft, aside = store.load_or_set_aside(STUDY)
    assert draft is None and aside is not None
    assert aside.name.startswith(f"{STUDY}.damaged-") and aside.name.endswith(".json")
    if how not in ("folder", "fifo"):
        assert aside.stat().st_mode & 0o777 == 0o600
    assert not store.has_draft(STUDY)
    store.save(_draft("a fresh report"))  # the place is free for a new draft
    assert [i.study_uid for i in store.list()] == [STUDY, OTHER]
    assert aside.exists()


def test_drafts_with_and_without_a_time_zone_are_listed_together(tmp_path: Path) -> None:
    store = DraftStore(tmp_path)
    store.save(_draft("a", STUDY))
    path = store.path_for(OTHER)
    data = json.loads(store.path_for(STUDY).read_text())
    data.update(study_uid=OTHER, saved_at="2020-01-01T08:00:00")
    path.write_text(json.dumps(data))
    assert [i.study_uid for i in store.list()] == [STUDY, OTHER]
