"""What C libraries print to fd 2 goes to the log while the UI runs, not over the screen."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

CHILD = """
import os, sys
from pathlib import Path
from tuiviewer.logsetup import native_stderr_to
log = Path(sys.argv[1])
with native_stderr_to(log):
    os.write(2, b"Corrupt JPEG data: bad Huffman code\\n")   # what gdcm does
    sys.__stderr__.write("drawn by the UI\\n")               # what Textual does
    sys.__stderr__.flush()
os.write(2, b"after the UI\\n")
"""


def test_native_writes_to_fd_2_go_to_the_log_and_the_ui_keeps_the_terminal(
    tmp_path: Path,
) -> None:
    log = tmp_path / "tuiviewer.log"
    run = subprocess.run(
        [sys.executable, "-c", CHILD, str(log)], capture_output=True, text=True, check=True
    )
    assert "drawn by the UI" in run.stderr
    assert "after the UI" in run.stderr
    assert "Corrupt JPEG data" not in run.stderr
    assert "Corrupt JPEG data" in log.read_text()
    assert log.stat().st_mode & 0o777 == 0o600


def test_the_app_folder_above_the_log_folder_is_private_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import stat

    from tuiviewer import locations

    state = tmp_path / "state" / "tuiviewer"
    state.mkdir(parents=True, mode=0o755)
    os.chmod(state, 0o755)  # as an earlier version left ~/.local/state/tuiviewer
    monkeypatch.setenv("TUIVIEWER_LOG_DIR", str(state / "log"))
    log = locations.log_dir()
    assert stat.S_IMODE(log.stat().st_mode) == 0o700
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    fresh = tmp_path / "new" / "tuiviewer" / "log"
    monkeypatch.setenv("TUIVIEWER_LOG_DIR", str(fresh))
    locations.log_dir()
    for folder in (fresh, fresh.parent, fresh.parent.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder


PYNETDICOM_LATE = """
import os, sys
os.environ["TUIVIEWER_LOG_DIR"] = sys.argv[1]
from tuiviewer.logsetup import setup_logging
setup_logging(phi=sys.argv[2] == "phi")
print("pynetdicom" in sys.modules)
from pynetdicom import _config
print(_config.LOG_REQUEST_IDENTIFIERS, _config.LOG_RESPONSE_IDENTIFIERS)
"""


def test_pynetdicom_loaded_after_logging_starts_still_keeps_identifiers_out(
    tmp_path: Path,
) -> None:
    """`dump` does not load pynetdicom; when a command does later, its PHI switches are set."""
    for phi, expected in (("", "False False"), ("phi", "True True")):
        run = subprocess.run(
            [sys.executable, "-c", PYNETDICOM_LATE, str(tmp_path), phi],
            capture_output=True,
            text=True,
            check=True,
        )
        loaded_early, switches = run.stdout.split("\n")[:2]
        assert loaded_early == "False"
        assert switches == expected


PENDING_CHILD = """
import logging, sys
from tuiviewer.logsetup import setup_logging
path = setup_logging()
log = logging.getLogger("pynetdicom.association")
log.info("Requesting Association")
for n in range(1, 4):
    log.info(f"Find SCP Response: {n} - 0xFF00 (Pending)")
    log.info(f"Get SCP Response: {n} - 0xFF00 (Pending)")
log.info("Find SCP Result: 0x0000 (Success)")
log.warning("Get SCP Response: 4 - 0xFF00 (Pending)")
print(path)
"""


def test_the_log_keeps_each_association_and_its_outcome_not_every_pending_match(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUIVIEWER_LOG_DIR", str(tmp_path / "log"))
    run = subprocess.run(
        [sys.executable, "-c", PENDING_CHILD], capture_output=True, text=True, check=True
    )
    text = Path(run.stdout.strip()).read_text()
    assert "Requesting Association" in text
    assert "Find SCP Result: 0x0000 (Success)" in text
    assert "Find SCP Response: 1" not in text and "Get SCP Response: 3" not in text
    assert "WARNING pynetdicom.association: Get SCP Response: 4" in text  # not at INFO: kept
