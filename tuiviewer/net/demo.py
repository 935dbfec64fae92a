"""The embedded demo PACS: :mod:`tuiviewer.net.minipacs` in its own process on a free port.

``tuiviewer demo`` starts it on the demo's studies (:mod:`tuiviewer.services.demo`: pydicom's
samples and generated CT and CR studies, dated today, yesterday... by the overrides it is given)
with a temporary store for what the workstation sends, and opens the workstation connected to
it. A real Q/R SCP answering like a PACS (descriptions, modalities in study, counts), so
C-ECHO, C-FIND, C-GET, C-MOVE and C-STORE behave as they would against a small archive. It runs
in a process of its own, as a PACS would, so serving a study never competes with the UI.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from tuiviewer import locations
from tuiviewer.config.nodes import Node
from tuiviewer.exceptions import TuiviewerError
from tuiviewer.net.echo import echo
from tuiviewer.net.errors import NetError
from tuiviewer.net.send import SendProgress, SendResult, send_files

DEMO_AET = "DEMOPACS"
CALLING_AET = "TUIVIEWER"

#: pydicom's bundled files a PACS accepts as studies: CT, MR, RT plan/structures/dose, SRs.
SAMPLE_NAMES = (
    "CT_small.dcm",
    "MR_small.dcm",
    "rtplan.dcm",
    "rtstruct.dcm",
    "rtdose.dcm",
    "test-SR.dcm",
    "reportsi.dcm",
    "JPEG2000.dcm",
    "SC_rgb_small_odd.dcm",
)

#: Size of the generated CT series (bump DEMO_CT_VERSION when its content changes).
DEMO_CT_SLICES = 120
DEMO_CT_SIZE = 512
DEMO_CT_VERSION = "1"


class DemoError(TuiviewerError):
    """The demo PACS could not be started or loaded."""

    title = "Demo PACS"


def free_port() -> int:
    """A TCP port that is free on the loopback interface right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sample_files() -> list[Path]:
    """pydicom's bundled sample files used by the demo (those present in this install)."""
    from pydicom.data import get_testdata_file

    found: list[Path] = []
    for name in SAMPLE_NAMES:
        path = get_testdata_file(name, download=False)
        if path is not None:
            found.append(Path(str(path)))
    return found


def demo_ct(progress: Callable[[str], None] | None = None) -> Path:
    """The generated demo CT series, written once into the user data dir and reused."""
    from tuiviewer.dicom.datagen import write_ct_series

    folder = locations.data_dir() / "demo" / f"ct-v{DEMO_CT_VERSION}"
    marker = folder / ".complete"
    if marker.exists():
        _make_private(folder)
        return folder
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, mode=0o700)
    if progress is not None:
        progress(f"Generating a {DEMO_CT_SLICES}-slice {DEMO_CT_SIZE}² CT series (once)…")
    write_ct_series(
        folder,
        slices=DEMO_CT_SLICES,
        rows=DEMO_CT_SIZE,
        cols=DEMO_CT_SIZE,
        seed=2026,
        patient_name="Demo^Chest",
        patient_id="DEMO001",
    )
    marker.write_text("ok\n")
    _make_private(folder)
    return folder


def _make_private(folder: Path) -> None:
    """Synthetic data, but it lives among real patient data: same rules (0700, 0600)."""
    for path in [folder.parent, folder, *folder.rglob("*")]:
        os.chmod(path, 0o700 if path.is_dir() else 0o600)


class DemoPacs:
    """A running mini PACS with its own temporary store; use as a context manager."""

    def __init__(self, *, aet: str = DEMO_AET, calling_aet: str = CALLING_AET) -> None:
        self.aet = aet
        self.calling_aet = calling_aet
        self.workdir = Path(tempfile.mkdtemp(prefix="tuiviewer-demo-"))
        os.chmod(self.workdir, 0o700)
        self.port = 0
        self.move_port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def node(self) -> Node:
        """How the workstation reaches the demo PACS."""
        return Node(
            name="demo",
            ae_title=self.aet,
            host="127.0.0.1",
            port=self.port,
            calling_aet=self.calling_aet,
            move_port=self.move_port,
            connect_timeout=5,
            acse_timeout=10,
            dimse_timeout=30,
            network_timeout=30,
        )

    def start(
        self,
        paths: Sequence[Path] = (),
        overrides: Mapping[str, Mapping[str, str]] | None = None,
        timeout: float = 30,
    ) -> Node:
        """Start the mini PACS serving ``paths`` and wait until it answers C-ECHO.

        ``overrides``: per Study Instance UID, attributes every answer and instance carries.

        Raises:
            DemoError: it exited or did not answer within ``timeout`` seconds (the message
                quotes the end of its log).
        """
        self.port = free_port()
        self.move_port = free_port()
        plan = self.workdir / "overrides.json"
        plan.write_text(json.dumps({k: dict(v) for k, v in (overrides or {}).items()}))
        os.chmod(plan, 0o600)
        command = [
            sys.executable,
            "-m",
            "tuiviewer.net.minipacs",
            "--aet",
            self.aet,
            "--port",
            str(self.port),
            "--store",
            str(self.workdir / "instances"),
            "--overrides",
            str(plan),
            "--destination",
            f"{self.calling_aet}=127.0.0.1:{self.move_port}",
        ]
        for path in paths:
            command += ["--load", str(path)]
        log = open(self.workdir / "pacs.log", "wb")  # noqa: SIM115 - owned by the process
        self._process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.workdir,
        )
        log.close()
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise DemoError(f"The demo PACS exited at start: {self.log_tail()}")
            try:
                echo(self.node)
                return self.node
            except NetError as exc:
                last = exc
                time.sleep(0.2)
        self.stop()
        raise DemoError(f"The demo PACS did not answer C-ECHO within {timeout:g} s: {last}")

    def load(
        self,
        paths: Sequence[Path],
        progress: Callable[[SendProgress], None] | None = None,
    ) -> SendResult:
        """C-STORE ``paths`` (files and folders) into the demo PACS."""
        return send_files(self.node, list(paths), progress=progress)

    def log_tail(self, lines: int = 10) -> str:
        try:
            text = (self.workdir / "pacs.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(text.strip().splitlines()[-lines:]) or "(empty log)"

    def stop(self) -> None:
        """Stop the PACS and delete its store (what the workstation sent goes with it)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> DemoPacs:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
