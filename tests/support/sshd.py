"""A private OpenSSH server on a free loopback port, for end-to-end tests over real SSH.

Temporary host key, a generated client key authorised for the current user, no password login,
nothing written outside the given folder (but /run/sshd, which sshd insists on).
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import time
from pathlib import Path

from tests.support.ports import free_port
from tests.support.processes import stop_process

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def sshd_available() -> bool:
    return Path(SSHD).exists() and shutil.which("ssh") is not None


class Sshd:
    """Start with :meth:`start`; :meth:`ssh_command` is how a client logs in."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = 0
        self.user = getpass.getuser()
        self.client_key = workdir / "client_key"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.workdir, 0o700)
        host_key = self.workdir / "host_key"
        for key in (host_key, self.client_key):
            if not key.exists():
                subprocess.run(
                    ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True
                )
        authorized = self.workdir / "authorized_keys"
        shutil.copy(self.client_key.with_suffix(".pub"), authorized)
        os.chmod(authorized, 0o600)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
        self.port = free_port()
        config = self.workdir / "sshd_config"
        config.write_text(
            f"Port {self.port}\n"
            "ListenAddress 127.0.0.1\n"
            f"HostKey {host_key}\n"
            f"AuthorizedKeysFile {authorized}\n"
            f"PidFile {self.workdir / 'sshd.pid'}\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "PubkeyAuthentication yes\n"
            "PermitRootLogin prohibit-password\n"
            "StrictModes no\n"
            "UsePAM no\n"
            "PrintMotd no\n"
            "AcceptEnv TUIVIEWER_* COLORTERM\n"
            "ClientAliveInterval 0\n"
        )
        log = open(self.workdir / "sshd.log", "wb")  # noqa: SIM115 - owned by the process
        self._process = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"sshd exited: {self.log_tail()}")
            probe = subprocess.run(
                [*self.ssh_command(tty=False), "true"], capture_output=True, timeout=10
            )
            if probe.returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError(f"sshd did not accept a login within {timeout} s: {self.log_tail()}")

    def ssh_command(self, *, tty: bool = True) -> list[str]:
        return [
            "ssh",
            "-t" if tty else "-T",
            "-p",
            str(self.port),
            "-i",
            str(self.client_key),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "BatchMode=yes",
            f"{self.user}@127.0.0.1",
        ]

    def log_tail(self) -> str:
        try:
            return (self.workdir / "sshd.log").read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        process, self._process = self._process, None
        stop_process(process)
