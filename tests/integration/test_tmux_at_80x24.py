"""The real program in tmux at 80×24, keys sent in bursts (one send-keys each, as they arrive
over SSH): the browser, the report editor and the worklist show what their users need, and Esc
after typing in a dialog leaves things as they were (the node dialog keeps what was typed, the
report's "Resume it?" resumes the draft)."""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.functional.test_lists_at_80x24 import pacs  # noqa: F401
from tests.support.scps import Scp
from tests.support.tmux import Tmux, user_env
from tuiviewer.dicom.datagen import write_ct_series

WIDTH, HEIGHT = 80, 24


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write_ct_series(
        tmp_path / "ct", slices=3, rows=16, cols=16, seed=311,
        patient_name="Burst^Reader", patient_id="TMUX-80",
    )  # fmt: skip
    return tmp_path / "ct"


def reader_env(base: Path, scp: Scp | None = None) -> dict[str, str]:
    env = user_env(base)
    config = base / "config"
    config.mkdir(parents=True, mode=0o700)
    if scp is not None:
        (config / "nodes.toml").write_text(
            f'[nodes.pacs]\nae_title = "TESTSCP"\nhost = "127.0.0.1"\nport = {scp.port}\n'
        )
        (config / "config.toml").write_text('[pacs]\ndefault_node = "pacs"\n')
    return env


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    require_tool("tmux", shutil.which("tmux") is not None)
    server = Tmux({})
    yield server
    server.kill_server()


def start(tmux: Tmux, env: dict[str, str], session: str, *args: str) -> None:
    exports = " ".join(f"{key}={value}" for key, value in env.items())
    command = f"exec env {exports} {sys.executable} -m tuiviewer {' '.join(args)}"
    tmux.new_session(session, command, WIDTH, HEIGHT)


def wait_gone(tmux: Tmux, session: str, text: str, timeout: float = 20) -> str:
    """The screen once ``text`` has left it (a key after Esc within the terminal's escape
    delay would be read as Alt+key, as in any terminal program: wait before the next)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        screen = tmux.screen(session)
        if text not in screen:
            return screen
        time.sleep(0.2)
    raise AssertionError(f"{text!r} stayed on screen:\n{tmux.screen(session)}")


def wait_line(tmux: Tmux, session: str, *parts: str, timeout: float = 20) -> str:
    """The screen once one of its lines holds every one of ``parts``."""
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = tmux.screen(session)
        if any(all(part in line for part in parts) for line in screen.split("\n")):
            return screen
        time.sleep(0.2)
    raise AssertionError(f"no line with {parts!r}; the screen was:\n{screen}")


def footer(screen: str) -> str:
    return screen.rstrip("\n").split("\n")[-1]


def test_browser_report_and_worklist_at_80x24(
    tmux: Tmux,
    folder: Path,
    tmp_path: Path,
    pacs: Scp,  # noqa: F811
) -> None:
    env = reader_env(tmp_path / "user", pacs)
    start(tmux, env, "s", "open", str(folder))
    screen = tmux.wait_for("s", "Scanned 3 files")
    # The browser: the studies above, the tags below with their values, the main keys.
    screen = tmux.wait_for("s", "SOPClassUID")
    assert "Burst^Reader" in screen and "TMUX-80" in screen, screen
    assert any(
        "SOPClassUID" in line and "1.2.840.10008.5.1.4.1.1.2" in line for line in screen.split("\n")
    )
    for key in ("v View", "/ Search", "W Report", "? Help"):
        assert key in footer(screen), footer(screen)
    tmux.keys("s", "/", "PatientID")  # one burst: the search box gets all of it
    # The search runs as the keys arrive: wait for the whole word's hit, the tag on screen.
    screen = wait_line(tmux, "s", "(0010,0020)", "PatientID", "TMUX-80")
    assert "Hit 1/" in screen and "No element matches" not in screen, screen
    tmux.keys("s", "Escape")
    wait_gone(tmux, "s", "▊▔")  # the search box closed
    # The report, opened and typed into in one burst: each section gets its own words.
    tmux.keys("s", "W", "aaa", "Tab", "bbb")
    screen = tmux.wait_for("s", "bbb", timeout=30)
    screen = tmux.wait_for("s", "draft saved")
    # "bbb" went to the second section (Technique, behind its template text), not the first;
    # the first, just typed in, is still in view above it (not scrolled away by the Tab).
    screen = wait_line(tmux, "s", "Axial CT of the chest.bbb")
    assert [line for line in screen.split("\n") if line.rstrip().endswith("▕ aaa")], screen
    assert screen.count("aaa") == 1 and screen.count("bbb") == 1, screen
    for key in ("^s Save", "^g Sign", "esc Back"):
        assert key in footer(screen), footer(screen)
    tmux.keys("s", "Escape")
    tmux.wait_for("s", "Scanned 3 files")
    # The worklist: patient, date, modality, description and report state; its keys.
    tmux.keys("s", "F1")
    screen = tmux.wait_for("s", "3 studies on pacs", timeout=30)
    screen = tmux.wait_for("s", "unreported")
    header = next(line for line in screen.split("\n") if "Patient" in line and "Report" in line)
    for column in ("Report", "Patient", "Date", "Mod", "Description"):
        assert column in header, header
    assert "GARCIA MARIA ELENA" in screen and "CT CHEST" in screen, screen
    for key in ("o Open", "W Report", "? Help"):
        assert key in footer(screen), footer(screen)
    tmux.keys("s", "q")


def test_esc_after_typing_in_the_node_dialog_keeps_what_was_typed(
    tmux: Tmux, folder: Path, tmp_path: Path
) -> None:
    env = reader_env(tmp_path / "user")
    start(tmux, env, "n", "open", str(folder))
    tmux.wait_for("n", "Scanned 3 files")
    tmux.keys("n", "F5")
    tmux.wait_for("n", "PACS nodes")
    # Add, type a name and an AE title, and Esc: all in one burst.
    tmux.keys("n", "a", "clinic", "Tab", "CLINICAE", "Escape")
    screen = tmux.wait_for("n", "Discard what you typed")
    assert "Esc: Keep editing" in screen
    tmux.keys("n", "Escape")  # Esc on the question: keep editing
    screen = wait_gone(tmux, "n", "Discard what you typed")
    assert "Enter saves" in screen, "the node dialog is still open"
    assert "clinic" in screen and "CLINICAE" in screen, "the typing is still in the form"
    # Finishing the form saves what was typed before the two Esc.
    tmux.keys("n", "Tab", "127.0.0.1", "Enter")
    screen = tmux.wait_for("n", "CLINICAE@127.0.0.1:104")
    nodes = (tmp_path / "user" / "config" / "nodes.toml").read_text()
    assert "clinic" in nodes and "CLINICAE" in nodes
    tmux.keys("n", "q")


def test_esc_on_resume_it_brings_the_draft_back(tmux: Tmux, folder: Path, tmp_path: Path) -> None:
    env = reader_env(tmp_path / "user")
    start(tmux, env, "r", "open", str(folder))
    tmux.wait_for("r", "Scanned 3 files")
    tmux.keys("r", "W", "Nodule in the right upper lobe")
    tmux.wait_for("r", "Nodule in the right upper lobe", timeout=30)
    tmux.wait_for("r", "draft saved")  # on one line: the sections have the width
    tmux.keys("r", "Escape")
    tmux.wait_for("r", "Scanned 3 files")
    drafts = list((tmp_path / "user" / "data").rglob("*.json"))
    saved = [p for p in drafts if "Nodule in the right upper lobe" in p.read_text()]
    assert saved, drafts
    # W then Esc in one burst. Esc never starts over: it answers "Resume it?" (resume) if the
    # question is up when it is read, or, if the editor was still opening, leaves it as it was
    # (Esc always leaves a screen that is not ready). Either way the draft is intact.
    tmux.keys("r", "W", "Escape")
    try:
        screen = tmux.wait_for("r", "Nodule in the right upper lobe", timeout=20)
    except AssertionError:  # left while opening: back on the browser, nothing changed
        screen = tmux.screen("r")
        assert "Scanned 3 files" in screen and "v View" in screen, screen
    assert "Resume it?" not in screen
    assert "Nodule in the right upper lobe" in saved[0].read_text()
    assert not (saved[0].parent / (saved[0].stem + ".previous.json")).exists()
    if "Nodule in the right upper lobe" not in screen:  # ask again; Esc on the question
        tmux.keys("r", "W")
        tmux.wait_for("r", "Resume it?", timeout=30)
        tmux.keys("r", "Escape")
        screen = tmux.wait_for("r", "Nodule in the right upper lobe", timeout=30)
    tmux.keys("r", " and a second one")
    screen = tmux.wait_for("r", "and a second one")
    assert "Nodule in the right upper lobe and a second one" in screen, screen
    tmux.wait_for("r", "draft saved")
    text = json.dumps(json.loads(saved[0].read_text()))
    assert "Nodule in the right upper lobe" in text
    assert not (saved[0].parent / (saved[0].stem + ".previous.json")).exists(), (
        "nothing was started over"
    )
    tmux.keys("r", "Escape")
