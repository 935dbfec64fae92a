"""The daily loop over real SSH: worklist → open study → step slices → report → the SSH client
dies mid-typing → reconnect → resume the draft → sign → send; then the PACS holds the report.

sshd runs on a free loopback port with a temporary host key; the workstation runs on the far
side of `ssh -t` inside tmux, connected to the Orthanc fixture, driven with send-keys.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset

from tests.conftest import require_tool
from tests.support.orthanc import Orthanc, c_find, store_files
from tests.support.sshd import Sshd, sshd_available
from tests.support.tmux import Tmux
from tuiviewer.dicom.datagen import write_ct_series
from tuiviewer.reports.drafts import DraftStore
from tuiviewer.reports.model import ReportStatus
from tuiviewer.reports.sr.read import read_sr

PATIENT = "Ssh^Reader"
TYPED = "Typed over SSH before the link died"


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    require_tool("OpenSSH server", sshd_available())
    require_tool("tmux", shutil.which("tmux") is not None)
    server = Sshd(tmp_path / "sshd")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def todays_study(empty_orthanc: Orthanc, tmp_path: Path) -> str:
    """A small CT study dated today (the worklist shows the last days) loaded into Orthanc."""
    paths = write_ct_series(
        tmp_path / "ct", slices=8, rows=32, cols=32, seed=31, patient_name=PATIENT
    )
    today = dt.date.today().strftime("%Y%m%d")
    for path in paths:
        ds = pydicom.dcmread(path)
        ds.StudyDate = today
        ds.save_as(path)
    stored = store_files(empty_orthanc.host, empty_orthanc.dicom_port, empty_orthanc.aet, paths)
    assert stored == len(paths)
    return str(pydicom.dcmread(paths[0]).StudyInstanceUID)


def write_settings(base: Path, orthanc: Orthanc) -> dict[str, str]:
    env = {
        "TUIVIEWER_CONFIG_DIR": str(base / "config"),
        "TUIVIEWER_DATA_DIR": str(base / "data"),
        "TUIVIEWER_LOG_DIR": str(base / "log"),
        "TUIVIEWER_CACHE_DIR": str(base / "cache"),
    }
    config = base / "config"
    config.mkdir(parents=True, mode=0o700)
    (config / "nodes.toml").write_text(
        "[nodes.pacs]\n"
        f'ae_title = "{orthanc.aet}"\n'
        f'host = "{orthanc.host}"\n'
        f"port = {orthanc.dicom_port}\n"
    )
    (config / "config.toml").write_text(
        '[pacs]\ndefault_node = "pacs"\n\n[ui]\nreader_name = "Curie^Marie"\n'
    )
    return env


def remote_command(env: dict[str, str]) -> str:
    exports = " ".join(f"{key}={value}" for key, value in env.items())
    return f"exec env {exports} TERM=xterm-256color {sys.executable} -m tuiviewer"


def login(tmux: Tmux, sshd: Sshd, env: dict[str, str], session: str) -> None:
    ssh = " ".join(sshd.ssh_command(tty=True))
    tmux.new_session(session, f"exec {ssh} '{remote_command(env)}'")
    tmux.wait_for(session, PATIENT.replace("^", " "), timeout=30)


def test_reading_loop_over_ssh_survives_a_dropped_link(
    sshd: Sshd, empty_orthanc: Orthanc, todays_study: str, tmp_path: Path
) -> None:
    env = write_settings(tmp_path / "user", empty_orthanc)
    tmux = Tmux({})
    try:
        # Keeps the tmux server alive when the first session's ssh client is killed.
        tmux.new_session("keeper", "sleep 600", width=20, height=5)
        login(tmux, sshd, env, "first")
        # Open the study: it is retrieved and the viewer shows its first series.
        tmux.keys("first", "Enter")
        tmux.wait_for("first", "slice 1/8", timeout=30)
        tmux.keys("first", "Down", "Down", "Down")
        tmux.wait_for("first", "slice 4/8")
        tmux.keys("first", "Escape")
        # Alone, or ESC followed by W reads as alt+W.
        tmux.wait_for("first", "Status filter")
        tmux.keys("first", "W")
        tmux.wait_for("first", "draft saved", timeout=20)
        tmux.keys("first", "-l", TYPED)
        tmux.wait_for("first", TYPED)
        time.sleep(2.0)  # the promise: what was typed 2 s ago is on disk

        # The SSH client dies (laptop lid closed, Wi-Fi gone): kill it outright.
        os.kill(tmux.pid("first"), signal.SIGKILL)
        drafts = DraftStore(Path(env["TUIVIEWER_DATA_DIR"]) / "drafts")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            draft = drafts.load(todays_study)
            if draft is not None and any(
                TYPED in section.text for section in draft.report.sections
            ):
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the draft typed over SSH is not on disk")

        # Reconnect: the worklist again, the report offers the draft, sign, send.
        login(tmux, sshd, env, "second")
        tmux.keys("second", "W")
        tmux.wait_for("second", "Resume it?", timeout=20)
        tmux.keys("second", "y")
        tmux.wait_for("second", TYPED)
        tmux.keys("second", "C-g")
        tmux.wait_for("second", "Sign as")
        tmux.keys("second", "Enter")  # the reader's name comes from config.toml
        tmux.wait_for("second", "Sign the report as")
        tmux.keys("second", "y")
        tmux.wait_for("second", "FINAL", timeout=20)
        tmux.keys("second", "C-t")
        tmux.wait_for("second", "Send the report")
        tmux.keys("second", "y")
        # Not just "sent": "it is sent once it is on disk" may still be on screen.
        tmux.wait_for("second", "Report sent to", timeout=20)
    finally:
        tmux.kill_server()

    query = Dataset()
    query.QueryRetrieveLevel = "SERIES"
    query.StudyInstanceUID = todays_study
    query.SeriesInstanceUID = ""
    query.Modality = "SR"
    found = c_find(empty_orthanc.host, empty_orthanc.dicom_port, empty_orthanc.aet, query)
    assert found, "the signed report is on the PACS"
    # The final report holds what was typed before the link died, and needs no draft any more.
    reports = [
        read_sr(path)
        for path in (Path(env["TUIVIEWER_CACHE_DIR"]) / "store" / todays_study).rglob("*.dcm")
        if pydicom.dcmread(path, stop_before_pixels=True).Modality == "SR"
    ]
    finals = [r for r in reports if r.status is ReportStatus.FINAL]
    assert finals and any(TYPED in section.text for section in finals[-1].sections)
    assert DraftStore(Path(env["TUIVIEWER_DATA_DIR"]) / "drafts").load(todays_study) is None
