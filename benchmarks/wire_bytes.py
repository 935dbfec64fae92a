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
After each mode, the same 1:1 frame (the second slice, as ``tuiviewer render`` writes it) is
encoded by our encoder alone and by peers, where installed: img2sixel (libsixel) and chafa for
Sixel, Pillow's optimised PNG in base64 for Kitty/iTerm2 (with a table of deflate set-ups),
chafa's truecolour half-blocks; ours/peer ratios in bytes and time. ``--load`` runs everything
with every core kept busy (``loadgen.busy_machine``); ``--no-peers`` skips the peers.

    .venv/bin/python benchmarks/wire_bytes.py --keep /tmp/bench/ct300
    .venv/bin/python benchmarks/wire_bytes.py --keep /tmp/bench/ct300 --size 100x30 --cell 8x16
"""

from __future__ import annotations

import argparse
import fcntl
import os
import re
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import busy_machine  # noqa: E402

from tuiviewer.dicom.datagen import write_ct_series  # noqa: E402

DOWN = b"\x1b[B"
COLS, ROWS = 120, 40
CELL_W, CELL_H = 10, 20
_ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")
_BADGE = re.compile(rb"(?:Sixel|Kitty|iTerm2|half-blocks) (\d+)\xc3\x97(\d+) px")
SHOWN: dict[str, tuple[int, int]] = {}
"""Frame size (pixels) each mode's badge last said, from :func:`measure`: the peers get it."""
CPU_PER_STEP: dict[str, float] = {}
"""Seconds of CPU (all its threads, user and system) the app spent per step in each mode's
last :func:`measure` (steadier than the latency on a busy machine, not load-free)."""

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
        profile: Path | None = None,
    ) -> None:
        master, slave = os.openpty()
        size = struct.pack("HHHH", rows, cols, cols * cell[0], rows * cell[1])
        fcntl.ioctl(slave, termios.TIOCSWINSZ, size)
        hidden = ("TMUX", "SSH_TTY", "SSH_CONNECTION")  # a plain local terminal
        base = {k: v for k, v in os.environ.items() if k not in hidden}
        term, answers = TERMINALS[graphics]
        self.answers = answers
        self.answers.setdefault(b"\x1b[16t", f"\x1b[6;{cell[1]};{cell[0]}t".encode())
        # A home of its own: no notes from the user's drafts or settings over the viewer.
        self.home = tempfile.mkdtemp(prefix="tuiviewer-bench-home-")
        base.update(
            TERM=term,
            COLORTERM="truecolor",
            TUIVIEWER_CONFIG_DIR=os.path.join(self.home, "config"),
            TUIVIEWER_DATA_DIR=os.path.join(self.home, "data"),
            TUIVIEWER_CACHE_DIR=os.path.join(self.home, "cache"),
            TUIVIEWER_LOG_DIR=os.path.join(self.home, "log"),
            **(env or {}),
        )
        command = [sys.executable, "-m", "tuiviewer", "open", str(folder)]
        if profile is not None:  # see profiled.py: cProfile from SIGUSR1 to SIGUSR2
            command[1:3] = [str(Path(__file__).with_name("profiled.py")), str(profile)]
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

    def cpu_seconds(self) -> float:
        """CPU the app has used so far (user and system, every thread), from /proc."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

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
        shutil.rmtree(self.home, ignore_errors=True)


def measure(
    folder: Path,
    graphics: str,
    slices: int,
    steps: int,
    *,
    low_bandwidth: bool = False,
    size: tuple[int, int] = (COLS, ROWS),
    cell: tuple[int, int] = (CELL_W, CELL_H),
    profile: Path | None = None,
) -> tuple[list[float], list[int]]:
    """Seconds and bytes of each of ``steps`` down-arrow steps in the viewer; ``profile``: a
    cProfile of the app's event loop over the steps is written there (see profiled.py)."""
    app = PtyApp(folder, graphics, *size, low_bandwidth=low_bandwidth, cell=cell, profile=profile)
    try:
        app.open_viewer(slices)
        if profile is not None:
            os.kill(app.proc.pid, signal.SIGUSR1)
            app.drain(0.2)
        times, sizes = [], []
        cpu = app.cpu_seconds()
        for n in range(1, steps + 1):
            elapsed, size = app.step(n * 2.5)
            times.append(elapsed)
            sizes.append(size)
            time.sleep(0.02)
        CPU_PER_STEP[graphics] = (app.cpu_seconds() - cpu) / steps
        if profile is not None:
            os.kill(app.proc.pid, signal.SIGUSR2)
            for _ in range(100):
                if profile.exists():
                    break
                time.sleep(0.05)
            time.sleep(0.3)  # the dump finishing
        badges = _BADGE.findall(_ANSI.sub(b"", bytes(app.buffer)))
        if badges:
            SHOWN[graphics] = (int(badges[-1][0]), int(badges[-1][1]))
        return times, sizes
    finally:
        app.close()


@dataclass
class Peer:
    """What a peer encoder makes of the same 1:1 frame: its bytes and seconds (best of 3)."""

    name: str
    size: int
    seconds: float


def peer_frame(folder: Path, slot: int = 1, size: tuple[int, int] | None = None) -> np.ndarray:
    """The ``slot``-th slice by position as ``tuiviewer render`` writes it: 1:1, or fitted
    into ``size`` (width, height) pixels."""
    import pydicom

    from tuiviewer.render.pipeline import RenderRequest, render

    files = sorted(folder.glob("*.dcm"))
    ordered = sorted(
        (pydicom.dcmread(path) for path in files[: slot + 40]),
        key=lambda ds: float(ds.ImagePositionPatient[2]),
    )
    return render(ordered[slot], RenderRequest(size=size)).pixels


def _best(run: Callable[[], int]) -> tuple[int, float]:
    size, best = 0, float("inf")
    for _ in range(3):
        started = time.perf_counter()
        size = run()
        best = min(best, time.perf_counter() - started)
    return size, best


def ours(
    mode: str,
    pixels: np.ndarray,
    cell: tuple[int, int],
    pane: tuple[int, int],
    *,
    exact: bool = True,
) -> Peer:
    """Our encoder on the frame, padded to its cells as the viewer does (no screen text);
    half-blocks get the frame already fitted to the pane (two pixels a cell). ``exact``
    False: the viewer's default near-lossless frame (each pixel within one level, the
    quantising counted in the time)."""
    from tuiviewer.graphics import iterm2, kitty
    from tuiviewer.graphics.pixels import centred, pad, within_one
    from tuiviewer.graphics.sixel import encode_sixel
    from tuiviewer.widgets.image.halfcell import StyleCache, halfcell_lines, within_one_cells
    from tuiviewer.widgets.image.png import PngEncoder

    height, width = pixels.shape[:2]
    padded = pad(pixels, centred(width, height, cell, pane))
    tolerance = 0 if exact else 1
    if mode == "sixel":
        return Peer("ours", *_best(lambda: len(encode_sixel(padded, tolerance=tolerance).data)))
    if mode in ("kitty", "kitty-placed", "iterm2"):
        encoder = PngEncoder()
        wrap = (
            (lambda png: kitty.transmit(1, png))
            if mode != "iterm2"
            else (lambda png: iterm2.inline_image(png, *pane))
        )
        near = (lambda frame: frame) if exact else within_one
        return Peer("ours", *_best(lambda: len(wrap(encoder.encode(near(padded))))))
    from rich.console import Console
    from textual.strip import Strip

    console = Console(color_system="truecolor", force_terminal=True, width=pane[0])
    styles = StyleCache()

    def halfcell() -> int:
        frame = pixels if exact else within_one_cells(pixels)
        lines, _ = halfcell_lines(frame, pane[0], pane[1], styles)
        return sum(len(Strip(line, pane[0]).render(console)) + 8 for line in lines)

    return Peer("ours", *_best(halfcell))


def peers(mode: str, pixels: np.ndarray, pane: tuple[int, int]) -> list[Peer]:
    """Peer encoders of the same frame, where installed: img2sixel (libsixel) and chafa for
    Sixel, Pillow's PNG (optimize) in base64 for Kitty/iTerm2, chafa half-blocks."""
    import base64
    import io

    from PIL import Image

    folder = Path(tempfile.mkdtemp(prefix="tuiviewer-peer-"))
    try:
        png = folder / "frame.png"
        Image.fromarray(pixels).save(png)
        cells = f"{pane[0]}x{pane[1]}"
        commands = {
            "sixel": [("img2sixel", ["img2sixel", str(png)]),
                      ("img2sixel -p 101 -d none -q full",
                       ["img2sixel", "-p", "101", "-d", "none", "-q", "full", str(png)]),
                      ("chafa sixels", ["chafa", "-f", "sixels", "--size", cells, str(png)])],
            "halfcell": [("chafa half-blocks, truecolour", ["chafa", "-f", "symbols", "-c", "full",
                                                "--symbols", "vhalf", "--size", cells, str(png)])],
        }.get(mode, [])  # fmt: skip
        found = []
        for name, command in commands:
            if shutil.which(command[0]) is None:
                continue
            found.append(Peer(name, *_best(lambda c=command: len(  # type: ignore[misc]
                subprocess.run(c, capture_output=True, check=True).stdout))))  # fmt: skip
        if mode in ("kitty", "kitty-placed", "iterm2"):

            def pillow() -> int:
                out = io.BytesIO()
                Image.fromarray(pixels).save(out, format="PNG", optimize=True)
                return len(base64.standard_b64encode(out.getvalue()))

            found.append(Peer("Pillow PNG optimize, base64", *_best(pillow)))
        return found
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def png_table(pixels: np.ndarray) -> list[str]:
    """Deflate set-ups on the frame (bytes in base64, ms): what PngEncoder chooses among."""
    import zlib

    from tuiviewer.render.png import encode_png
    from tuiviewer.widgets.image.png import CANDIDATES

    chosen = {(m.filter_type, m.level, m.strategy) for m in CANDIDATES}
    rows = []
    for filter_type in (0, 1, 2):
        for level, strategy, name in (
            (1, zlib.Z_RLE, "rle"), (6, zlib.Z_FILTERED, "filtered"),
            (6, zlib.Z_DEFAULT_STRATEGY, "default"), (9, zlib.Z_DEFAULT_STRATEGY, "default"),
        ):  # fmt: skip
            size, seconds = _best(
                lambda f=filter_type, lv=level, st=strategy: len(  # type: ignore[misc]
                    encode_png(pixels, level=lv, filter_type=f, strategy=st)
                )
            )
            mark = " (a candidate)" if (filter_type, level, strategy) in chosen else ""
            rows.append(
                f"{'':12}   PNG filter {filter_type} level {level} {name:8} "
                f"{size * 4 / 3 / 1000:6.1f} KB base64 in {seconds * 1000:5.1f} ms{mark}"
            )
    return rows


def frame_box(mode: str, cell: tuple[int, int], pane: tuple[int, int]) -> tuple[int, int] | None:
    """The pixel box the viewer rendered the frame into, as its badge said (None: 1:1)."""
    shown = SHOWN.get(mode)
    if shown is not None:
        return shown
    if mode == "halfcell":
        return pane[0], pane[1] * 2
    box = pane[0] * cell[0], pane[1] * cell[1]
    return box if min(box) < 512 else None


def peer_lines(mode: str, folder: Path, cell: tuple[int, int], pane: tuple[int, int]) -> list[str]:
    """One line per peer: its bytes and time for the frame, and ours as a ratio to it."""
    pixels = peer_frame(folder, size=frame_box(mode, cell, pane))
    mine = ours(mode, pixels, cell, pane)
    near = ours(mode, pixels, cell, pane, exact=False)
    lines = [
        f"{'':12}   frame only: ours exact {mine.size / 1000:6.1f} KB in "
        f"{mine.seconds * 1000:5.1f} ms; within ±1 (the default) {near.size / 1000:6.1f} KB in "
        f"{near.seconds * 1000:5.1f} ms"
    ]
    if mode == "kitty":
        from tuiviewer.graphics.pixels import centred, pad

        height, width = pixels.shape[:2]
        lines += png_table(pad(pixels, centred(width, height, cell, pane)))
    for peer in peers(mode, pixels, pane):
        lines.append(
            f"{'':12}   {peer.name:32} {peer.size / 1000:6.1f} KB in {peer.seconds * 1000:5.1f} ms"
            f"   ours/peer: bytes {mine.size / peer.size:4.2f} (±1: {near.size / peer.size:4.2f})"
            f" time {mine.seconds / peer.seconds:4.2f} (±1: {near.seconds / peer.seconds:4.2f})"
        )
    return lines


def add_options(parser: argparse.ArgumentParser, modes: str) -> None:
    parser.add_argument("--keep", type=Path, help="folder for the series (reused if present)")
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--modes", default=modes, help=f"comma-separated, of {sorted(TERMINALS)}")
    parser.add_argument("--low-bandwidth", action="store_true", help="run with --low-bandwidth")
    parser.add_argument("--size", type=parse_size, default=(COLS, ROWS), help="COLSxROWS")
    parser.add_argument("--cell", type=parse_size, default=(CELL_W, CELL_H), help="WxH pixels")
    parser.add_argument("--load", action="store_true", help="keep every core busy meanwhile")
    parser.add_argument("--no-peers", action="store_true", help="skip the peer encoders")


def image_pane(mode: str, size: tuple[int, int], cell: tuple[int, int]) -> tuple[int, int]:
    """Cells the shown frame covers (from its badge, see :data:`SHOWN`); before a run, a guess
    from the terminal's ``size`` (the series list left, the info column right)."""
    shown = SHOWN.get(mode)
    if shown is None:
        return max(8, size[0] - 54), max(4, size[1] - 5)
    width, height = shown
    if mode == "halfcell":
        return width, -(-height // 2)
    return -(-width // cell[0]), -(-height // cell[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_options(parser, "halfcell,kitty,kitty-placed,sixel,iterm2")
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args(argv)
    folder = ensure_series(args.keep, args.slices)
    lean = " (--low-bandwidth)" if args.low_bandwidth else ""
    (cols, rows), (cell_w, cell_h) = args.size, args.cell
    with busy_machine(args.load) as state:
        print(
            f"{args.steps} slice steps, {cols}×{rows} cells of {cell_w}×{cell_h} px, "
            f"512² CT σ 10 HU, W/L 40/400{lean}; {state}, load average "
            f"{os.getloadavg()[0]:.1f}"
        )
        for mode in args.modes.split(","):
            _, sizes = measure(
                folder, mode, args.slices, args.steps, low_bandwidth=args.low_bandwidth,
                size=args.size, cell=args.cell,
            )  # fmt: skip
            print(
                f"{mode:12} bytes/step  mean {statistics.mean(sizes) / 1000:6.1f} KB"
                f"  median {statistics.median(sizes) / 1000:6.1f} KB"
                f"  max {max(sizes) / 1000:6.1f} KB"
            )
            if not args.no_peers:
                pane = image_pane(mode, args.size, args.cell)
                for line in peer_lines(mode, folder, args.cell, pane):
                    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
