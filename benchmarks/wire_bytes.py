"""How many bytes reach the terminal per slice step, per graphics mode?

Runs ``tuiviewer open`` in a pseudo-terminal (``--size``, default 120×40 cells of ``--cell``,
default 10×20 pixels) on a seeded 512² CT series (noise σ = 10 HU, shown at the file's W/L
40/400), opens the viewer with ``v``, steps ``--steps`` slices with the down arrow, one at a
time, and counts what the app writes between a key and the moment its frame has been written.
The pseudo-terminal answers the viewer's probe as a terminal of that mode would (kitty 0.35
with Unicode placeholders, kitty 0.26 for ``kitty-placed``, xterm for Sixel, WezTerm for
iTerm2), so the app chooses the protocol itself. Also the module the other viewer benchmarks
use to drive the real app (:class:`PtyApp`). ``--low-bandwidth`` runs the app with that flag.
Targets at 120×40, 10×20 cells, a 512² slice shown 1:1: Kitty ≤ 55 KB per step, Sixel ≤ 60 KB,
half-blocks ≤ 25 KB.

    .venv/bin/python benchmarks/wire_bytes.py --keep /tmp/bench/ct300
    .venv/bin/python benchmarks/wire_bytes.py --keep /tmp/bench/ct300 --size 100x30 --cell 8x16
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

#: How the pseudo-terminal answers the probe, per mode (what the real terminals answered).
TERMINALS: dict[str, tuple[str, dict[bytes, bytes]]] = {
    "kitty": ("xterm-kitty", {
        b"\x1b[>0q": b"\x1bP>|kitty(0.35.2)\x1b\\", b"\x1b_Gi=31,": b"\x1b_Gi=31;OK\x1b\\",
        b"\x1b[c": b"\x1b[?62;c",
    }),
    "kitty-placed": ("xterm-kitty", {
        b"\x1b[>0q": b"\x1bP>|kitty(0.26.5)\x1b\\", b"\x1b_Gi=31,": b"\x1b_Gi=31;OK\x1b\\",
        b"\x1b[c": b"\x1b[?62;c",
    }),
    "sixel": ("xterm-256color", {
        b"\x1b[>0q": b"\x1bP>|XTerm(379)\x1b\\", b"\x1b[?1;1;0S": b"\x1b[?1;0;256S",
        b"\x1b[c": b"\x1b[?63;1;2;4;6;9;15;16;22;28c",
    }),
    "iterm2": ("wezterm", {
        b"\x1b[>0q": b"\x1bP>|WezTerm 20240203-110809-5046fc22\x1b\\",
        b"\x1b[c": b"\x1b[?65;4;6;18;22c",
    }),
    "halfcell": ("xterm-256color", {b"\x1b[c": b"\x1b[?62;c"}),
}  # fmt: skip


def parse_size(text: str) -> tuple[int, int]:
    """``WxH`` as (W, H)."""
    width, _, height = text.lower().partition("x")
    return int(width), int(height)


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
        cell: tuple[int, int] = (CELL_W, CELL_H),
        env: dict[str, str] | None = None,
    ) -> None:
        master, slave = os.openpty()
        size = struct.pack("HHHH", rows, cols, cols * cell[0], rows * cell[1])
        fcntl.ioctl(slave, termios.TIOCSWINSZ, size)
        hidden = ("TMUX", "SSH_TTY", "SSH_CONNECTION")  # a plain local terminal
        base = {k: v for k, v in os.environ.items() if k not in hidden}
        term, answers = TERMINALS[graphics]
        self.answers = answers
        self.answers.setdefault(b"\x1b[16t", f"\x1b[6;{cell[1]};{cell[0]}t".encode())
        base.update(TERM=term, COLORTERM="truecolor", **(env or {}))
        command = [sys.executable, "-m", "tuiviewer", "open", str(folder)]
        if low_bandwidth:
            command.append("--low-bandwidth")
        self.proc = subprocess.Popen(
            command,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=base,
            start_new_session=True,
        )
        os.close(slave)
        self.fd = master
        self.buffer = bytearray()
        self._unanswered = b""

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
        self._answer(data)
        return data

    def _answer(self, data: bytes) -> None:
        """Answer the probe's queries as the terminal of this mode does."""
        pending = self._unanswered + data
        if len(self.buffer) > 1 << 16 and b"\x1b" not in pending[-64:]:
            self._unanswered = b""  # past start-up: the probe is over
            return
        for query, answer in self.answers.items():
            while query in pending:
                pending = pending.replace(query, b"", 1)
                os.write(self.fd, answer)
        self._unanswered = pending[-64:]

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
    folder: Path,
    graphics: str,
    slices: int,
    steps: int,
    *,
    low_bandwidth: bool = False,
    size: tuple[int, int] = (COLS, ROWS),
    cell: tuple[int, int] = (CELL_W, CELL_H),
) -> tuple[list[float], list[int]]:
    app = PtyApp(folder, graphics, *size, low_bandwidth=low_bandwidth, cell=cell)
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


def add_options(parser: argparse.ArgumentParser, modes: str) -> None:
    parser.add_argument("--keep", type=Path, help="folder for the series (reused if present)")
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--modes", default=modes, help=f"comma-separated, of {sorted(TERMINALS)}")
    parser.add_argument("--low-bandwidth", action="store_true", help="run with --low-bandwidth")
    parser.add_argument("--size", type=parse_size, default=(COLS, ROWS), help="COLSxROWS")
    parser.add_argument("--cell", type=parse_size, default=(CELL_W, CELL_H), help="WxH pixels")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_options(parser, "halfcell,kitty,kitty-placed,sixel,iterm2")
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args(argv)
    folder = ensure_series(args.keep, args.slices)
    lean = " (--low-bandwidth)" if args.low_bandwidth else ""
    (cols, rows), (cell_w, cell_h) = args.size, args.cell
    print(
        f"{args.steps} slice steps, {cols}×{rows} cells of {cell_w}×{cell_h} px, "
        f"512² CT σ 10 HU, W/L 40/400{lean}"
    )
    for mode in args.modes.split(","):
        _, sizes = measure(
            folder, mode, args.slices, args.steps, low_bandwidth=args.low_bandwidth,
            size=args.size, cell=args.cell,
        )  # fmt: skip
        print(
            f"{mode:12} bytes/step  mean {statistics.mean(sizes) / 1000:6.1f} KB"
            f"  median {statistics.median(sizes) / 1000:6.1f} KB  max {max(sizes) / 1000:6.1f} KB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
