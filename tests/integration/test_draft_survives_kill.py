"""A report draft survives SIGKILL and a dropped terminal (SIGHUP) of the real program.

The workstation runs in tmux as a user would run it over SSH; the test types a report, kills
the process, starts it again and resumes the draft.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.conftest import testdata as sample_file
from tests.support.tmux import Tmux, user_env


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    require_tool("tmux", shutil.which("tmux") is not None)
    env = user_env(tmp_path)
    server = Tmux(env)
    yield server
    server.kill_server()


@pytest.fixture
def study(tmp_path: Path) -> Path:
    folder = tmp_path / "study"
    folder.mkdir()
    shutil.copy(sample_file("CT_small.dcm"), folder / "CT_small.dcm")
    return folder


def type_report(tmux: Tmux, session: str, study: Path, text: str) -> None:
    tmux.start(session, study)
    tmux.wait_for(session, "Scanned 1 file:")
    tmux.keys(session, "W")
    tmux.wait_for(session, "draft saved")
    tmux.keys(session, "-l", text)
    tmux.wait_for(session, text)


def resume(tmux: Tmux, session: str, study: Path) -> str:
    tmux.start(session, study)
    tmux.wait_for(session, "Scanned 1 file:")
    tmux.keys(session, "W")
    tmux.wait_for(session, "Resume it?")
    tmux.keys(session, "y")
    return tmux.wait_for(session, "draft saved")


@pytest.mark.parametrize("how", ["SIGKILL", "SIGHUP"])
def test_draft_survives_the_process_being_killed(tmux: Tmux, study: Path, how: str) -> None:
    text = f"Findings typed before {how}"
    type_report(tmux, "first", study, text)
    # The promise: what was typed more than 2 s ago is on disk.
    time.sleep(2.0)
    pid = tmux.pid("first")
    if how == "SIGKILL":
        os.kill(pid, signal.SIGKILL)
    else:
        # What a dropped SSH connection does: the terminal goes away, the process gets SIGHUP.
        tmux.run("kill-session", "-t", "first")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"the workstation survived {how}")
    screen = resume(tmux, "second", study)
    assert text in screen


def test_a_burst_in_one_send_keys_lands_section_by_section(
    tmux: Tmux, study: Path, tmp_path: Path
) -> None:
    """W and the report typed behind it arrive in one write to the terminal, as over SSH."""
    import pydicom

    from tuiviewer.reports.drafts import DraftStore
    from tuiviewer.reports.model import SectionKind

    uid = str(pydicom.dcmread(study / "CT_small.dcm").StudyInstanceUID)
    tmux.start("burst", study)
    tmux.wait_for("burst", "Scanned 1 file:")
    # One send-keys: tmux writes all of it into the terminal at once.
    tmux.keys("burst", "W", "aaa", "Tab", "bbb", "Tab", "ccc")
    tmux.wait_for("burst", "ccc", timeout=20)
    drafts = DraftStore(tmp_path / "data" / "drafts")
    deadline = time.monotonic() + 10
    texts: tuple[str, str, str] = ("", "", "")
    while time.monotonic() < deadline:
        draft = drafts.load(uid)
        if draft is not None:
            report = draft.report
            texts = (
                report.text_of(SectionKind.HISTORY),
                report.text_of(SectionKind.TECHNIQUE),
                report.text_of(SectionKind.COMPARISON),
            )
            if texts[2] == "ccc":
                break
        time.sleep(0.2)
    assert texts[0] == "aaa", texts
    # The technique starts with the CT template's text: typing goes after it, not before.
    assert texts[1].endswith(".bbb") and "ccc" not in texts[1] and "a" not in texts[1][-4:], texts
    assert texts[2] == "ccc", texts
