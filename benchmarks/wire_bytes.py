"""How many bytes reach the terminal per slice step, per graphics mode?

Runs ``tuiviewer open`` in a pseudo-terminal of 120×40 cells (10×20-pixel cells) on a seeded
512² CT series (noise σ = 10 HU, shown at the file's W/L 40/400), opens the viewer with ``v``,
steps ``--steps`` slices with the down arrow, one at a time, and counts what the app writes
between a key and the moment its frame has been written. Also the module the other viewer
benchmarks use to drive the real app (:class:`PtyApp`). ``--low-bandwidth`` runs the app with
that flag (target: ≤ 40 KB per step in half-block mode).

    .venv/bin/python benchmarks/wire_bytes.py --keep /tmp/bench/ct300
    .venv/bin/python benchmarks/wire_bytes.py --keep /tmp/bench/ct300 --low-bandwidth
"""

from __future__ import annotations

import argparse
import fcntl
import os
import re
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

from tuiviewer.dicom.datagen import write_ct_series

DOWN = b"\x1b[B"
COLS, ROWS = 120, 40
CELL_W, CELL_H = 10, 20
_ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


def ensure_series(folder: Path | None, slices: int) -> Path:
    """A folder holding ``slices`` 512² CT slices (generated once, seed 42)."""
    if folder is None:
        folder = Path(tempfile.mkdtemp(prefix=f"tuiviewer-ct{slices}-"))
    if len(list(folder.glob("*.dcm"))) < slices:
        print(f"generating {slices} slices of 512² CT into {folder} …", file=sys.stderr)
        write_ct_series(folder, slices=slices, rows=512, cols=512, seed=42, noise_hu=10.0)
    return folder


class PtyApp:
    """``tuiviewer open FOLDER`` in a pseudo-terminal, with helpers to wait for what it draws."""

    def __init__(
        self,
        folder: Path,
        graphics: str,
        cols: int = COLS,
        rows: int = ROWS,
        *,
        low_bandwidth: bool = False,
    ) -> None:
        master, slave = os.openpty()
        size = struct.pack("HHHH", rows, cols, cols * CELL_W, rows * CELL_H)
        fcntl.ioctl(slave, termios.TIOCSWINSZ, size)
        hidden = ("TMUX", "SSH_TTY", "SSH_CONNECTION")  # a plain local terminal
        env = {k: v for k, v in os.environ.items() if k not in hidden}
        env.update(TERM="xterm-256color", COLORTERM="truecolor")
        command = [sys.executable, "-m", "tuiviewer", "open", str(folder), "--graphics", graphics]
        if low_bandwidth:
            command.append("--low-bandwidth")
        self.proc = subprocess.Popen(
            command,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
        )
        os.close(slave)
        self.fd = master
        self.buffer = bytearray()

    def read(self, timeout: float) -> bytes:
        """Whatever arrives within ``timeout`` seconds of silence (b"" if nothing)."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return b""
        try:
            data = os.read(self.fd, 1 << 20)
        except OSError:
            return b""
        self.buffer.extend(data)
        return data

    def wait_for(self, pattern: bytes, timeout: float = 60.0) -> float:
        """Read until regex ``pattern`` (escape codes stripped) appears; returns when it did."""
        deadline = time.perf_counter() + timeout
        start = len(self.buffer)
        regex = re.compile(pattern)
        while time.perf_counter() < deadline:
            self.read(0.05)
            if regex.search(_ANSI.sub(b"", bytes(self.buffer[start:]))):
                return time.perf_counter()
        raise TimeoutError(f"{pattern!r} did not appear within {timeout} s")

    def drain(self, quiet: float = 0.05) -> float:
        """Read until ``quiet`` seconds pass without output; returns when the last byte came."""
        last = time.perf_counter()
        while self.read(quiet):
            last = time.perf_counter()
        return last

    def send(self, data: bytes) -> float:
        at = time.perf_counter()
        os.write(self.fd, data)
        return at

    def open_viewer(self, slices: int) -> None:
        self.wait_for(f"Scanned {slices} files".encode(), timeout=120)
        self.drain(0.3)
        self.send(b"v")
        self.wait_for(f"slice 1/{slices}".encode())
        self.drain(0.5)

    def step(self, expected_z: float, quiet: float = 0.03) -> tuple[float, int]:
        """One down-arrow; (seconds until the frame was written, bytes written)."""
        mark = len(self.buffer)
        sent = self.send(DOWN)
        # The position line is updated in the same screen update as the image.
        self.wait_for(rf"z {expected_z:.1f}(?![0-9])".replace(".", r"\.", 1).encode(), timeout=10)
        done = self.drain(quiet)
        return done - sent, len(self.buffer) - mark

    def peak_rss_mib(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        found = re.search(r"VmHWM:\s+(\d+) kB", status)
        return int(found.group(1)) / 1024 if found else float("nan")

    def close(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)
        os.close(self.fd)


def measure(
    folder: Path, graphics: str, slices: int, steps: int, *, low_bandwidth: bool = False
) -> tuple[list[float], list[int]]:
    app = PtyApp(folder, graphics, low_bandwidth=low_bandwidth)
    try:
        app.open_viewer(slices)
        times, sizes = [], []
        for n in range(1, steps + 1):
            elapsed, size = app.step(n * 2.5)
            times.append(elapsed)
            sizes.append(size)
            time.sleep(0.02)
        return times, sizes
    finally:
        app.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="folder for the series (reused if present)")
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--modes", default="halfcell,kitty", help="comma-separated modes")
    parser.add_argument("--low-bandwidth", action="store_true", help="run with --low-bandwidth")
    args = parser.parse_args(argv)
    folder = ensure_series(args.keep, args.slices)
    lean = " (--low-bandwidth)" if args.low_bandwidth else ""
    print(f"{args.steps} slice steps, {COLS}×{ROWS} cells, 512² CT σ 10 HU, W/L 40/400{lean}")
    for mode in args.modes.split(","):
        _, sizes = measure(folder, mode, args.slices, args.steps, low_bandwidth=args.low_bandwidth)
        print(
            f"{mode:9} bytes/step  mean {statistics.mean(sizes) / 1024:7.1f} KiB"
            f" ({statistics.mean(sizes) / 1000:.1f} KB)"
            f"  median {statistics.median(sizes) / 1024:7.1f} KiB  max {max(sizes) / 1024:7.1f} KiB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
