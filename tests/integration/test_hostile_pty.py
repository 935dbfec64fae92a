"""The app under a real pseudo-terminal, fed by a lying PACS and an escape-laden file: every
byte it writes is scanned for the sequences the data carries (OSC 52 clipboard, OSC 0 title,
CSI 2J, the C1 CSI), which it must show escaped and never emit."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import sys
import termios
import time
from pathlib import Path

from tests.support.hostile import (
    RAW_SEQUENCES,
    escape_image,
    escape_values,
    find_answer,
    running_hostile_scp,
)


def _drain(fd: int, output: bytearray) -> bool:
    """Add what the app wrote within 0.1 s to ``output``; False once the pty is closed."""
    ready, _, _ = select.select([fd], [], [], 0.1)
    if not ready:
        return True
    try:
        chunk = os.read(fd, 65536)
    except OSError:
        return False
    output += chunk
    return bool(chunk)


def run_in_pty(
    args: list[str], env: dict[str, str], *, seconds: float, keys: list[bytes], until: bytes
) -> bytes:
    """Run ``args`` on a 120x40 pty; type ``keys`` once ``until`` was written; return all
    output (the process is asked to quit with q, then killed)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the app
        os.execvpe(args[0], args, env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    output = bytearray()
    deadline = time.monotonic() + seconds
    typed = False
    try:
        while time.monotonic() < deadline:
            if not _drain(fd, output):
                break
            if not typed and until in output:
                typed = True
                for key in keys:
                    os.write(fd, key)
                    time.sleep(0.3)
                deadline = min(deadline, time.monotonic() + 3)
        os.write(fd, b"q")
        end = time.monotonic() + 5
        while time.monotonic() < end:
            if not _drain(fd, output):
                break
            finished, _ = os.waitpid(pid, os.WNOHANG)
            if finished:
                pid = 0
                break
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
    return bytes(output)


def _env(tmp_path: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TMUX", "TEXTUAL", "PYTEST"))
    }
    env.update(
        {
            "TERM": "xterm-256color",
            "COLORTERM": "truecolor",
            "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
            "TUIVIEWER_CONFIG_DIR": str(tmp_path / "config"),
            "TUIVIEWER_DATA_DIR": str(tmp_path / "data"),
            "TUIVIEWER_CACHE_DIR": str(tmp_path / "cache"),
            "TUIVIEWER_LOG_DIR": str(tmp_path / "log"),
        }
    )
    return env


def _assert_clean(output: bytes) -> None:
    assert len(output) > 2000, f"the app wrote almost nothing: {output[:500]!r}"
    for sequence in RAW_SEQUENCES:
        assert sequence not in output, f"{sequence!r} from the data reached the terminal"


def test_the_browser_writes_no_escape_from_a_file(tmp_path: Path) -> None:
    folder = tmp_path / "files"
    folder.mkdir()
    escape_image(folder / "evil.dcm")
    output = run_in_pty(
        [sys.executable, "-m", "tuiviewer", "open", str(folder), "--graphics", "halfcell"],
        _env(tmp_path),
        seconds=40,
        keys=[b"\t", b"j", b"j", b"j"],
        until=b"Evil",
    )
    _assert_clean(output)
    assert b"Evil\\x1b]52;c;aGFja2Vk" in output, "the name is shown, escaped"


def test_the_worklist_writes_no_escape_from_a_pacs(tmp_path: Path) -> None:
    values = escape_values()
    answer = find_answer(
        PatientName=values["PatientName"],
        PatientID=values["PatientID"],
        StudyDescription=values["StudyDescription"],
        AccessionNumber=values["AccessionNumber"],
        StudyInstanceUID="1.2.3.4",
        StudyDate=time.strftime("%Y%m%d"),
        ModalitiesInStudy="CT",
    )
    with running_hostile_scp(find_answers=[answer]) as (scp, _):
        config = tmp_path / "config"
        config.mkdir()
        (config / "nodes.toml").write_text(
            f'[nodes.evil]\nae_title = "{scp.ae_title}"\nhost = "127.0.0.1"\n'
            f"port = {scp.port}\ndimse_timeout = 5\n",
            encoding="utf-8",
        )
        (config / "config.toml").write_text('[pacs]\ndefault_node = "evil"\n', encoding="utf-8")
        output = run_in_pty(
            [sys.executable, "-m", "tuiviewer"],
            _env(tmp_path),
            seconds=40,
            keys=[b"j", b"k"],
            until=b"Evil",
        )
    _assert_clean(output)
    assert b"Evil\\x1b]52;c;aGFja2Vk" in output
