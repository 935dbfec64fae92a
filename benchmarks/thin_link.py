"""How long from a slice step to its full-quality frame over a 1 Mbit/s link?

The app runs in a pseudo-terminal as in ``wire_bytes`` (``--size`` cells of ``--cell`` px), but
its output reaches the "terminal" through a pacer that reads at most ``--rate`` bit/s from the
pty (10-ms ticks), as a thin SSH link drains it: the pty's buffer fills, the app's writes wait,
its writer queue backs up. Keys go the other way unpaced (they are bytes). One slice at a time:
a key, then the time until the last byte of that step has arrived, the refined frame included
(drafts are refined 150 ms after the last key), then a pause before the next key.
Target: ≤ 0.3 s from key to refined frame.
Each mode also prints the time its bytes alone need at this rate (the floor). ``--load`` keeps
every core busy meanwhile.

    .venv/bin/python benchmarks/thin_link.py --keep /tmp/bench/ct300
    .venv/bin/python benchmarks/thin_link.py --keep /tmp/bench/ct300 --low-bandwidth
"""

from __future__ import annotations

import argparse
import os
import select
import statistics
import sys
import threading
import time
from collections import deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import busy_machine  # noqa: E402
from slice_step import percentile  # noqa: E402
from wire_bytes import DOWN, PtyApp, add_options, ensure_series  # noqa: E402

TICK = 0.01
TARGET_S = 0.3


class PacedPtyApp(PtyApp):
    """:class:`PtyApp` whose output arrives at ``rate`` bit/s."""

    def __init__(self, *args: object, rate: int, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.rate = rate
        self._arrived: deque[bytes] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pace, daemon=True)
        self._thread.start()

    def _pace(self) -> None:
        budget = 0.0
        while not self._stop.is_set():
            budget = min(budget + self.rate / 8 * TICK, self.rate / 8 * 0.05)
            ready, _, _ = select.select([self.fd], [], [], TICK)
            if ready and budget >= 1:
                try:
                    data = os.read(self.fd, int(budget))
                except OSError:
                    return
                budget -= len(data)
                with self._lock:
                    self._arrived.append(data)
            time.sleep(TICK)

    def read(self, timeout: float) -> bytes:
        deadline = time.perf_counter() + timeout
        while True:
            with self._lock:
                data = b"".join(self._arrived)
                self._arrived.clear()
            if data or time.perf_counter() >= deadline:
                break
            time.sleep(0.002)
        if data:
            self.buffer.extend(data)
            self._answer(data)
        return data

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        super().close()


def measure(args: argparse.Namespace, mode: str, folder: Path) -> tuple[list[float], list[int]]:
    app = PacedPtyApp(
        folder, mode, *args.size, low_bandwidth=args.low_bandwidth, cell=args.cell, rate=args.rate
    )
    try:
        app.open_viewer(args.slices)
        app.drain(1.0)
        times, sizes = [], []
        for n in range(1, args.steps + 1):
            mark = len(app.buffer)
            sent = app.send(DOWN)
            expected = f"z {n * 2.5:.1f}".replace(".", r"\.", 1)
            app.wait_for(rf"{expected}(?![0-9])".encode(), timeout=30)
            done = app.drain(0.4)  # longer than the 150-ms refinement
            times.append(done - sent)
            sizes.append(len(app.buffer) - mark)
        return times, sizes
    finally:
        app.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_options(parser, "halfcell,kitty,sixel")
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--rate", type=int, default=1_000_000, help="link speed in bit/s")
    args = parser.parse_args(argv)
    folder = ensure_series(args.keep, args.slices)
    lean = " (--low-bandwidth)" if args.low_bandwidth else ""
    (cols, rows), (cell_w, cell_h) = args.size, args.cell
    with busy_machine(args.load) as state:
        print(
            f"{args.steps} single steps through {args.rate / 1e6:g} Mbit/s, {cols}×{rows} "
            f"cells of {cell_w}×{cell_h} px, 512² CT{lean}; {state}, load average "
            f"{os.getloadavg()[0]:.1f}"
        )
        for mode in args.modes.split(","):
            times, sizes = measure(args, mode, folder)
            p95 = percentile(times, 0.95)
            verdict = "ok" if p95 <= TARGET_S else f"over the {TARGET_S} s target"
            floor = statistics.mean(sizes) * 8 / args.rate
            print(
                f"{mode:12} key→refined frame  p50 {statistics.median(times):5.2f} s  "
                f"p95 {p95:5.2f} s  ({statistics.mean(sizes) / 1000:.1f} KB/step, {verdict});"
                f" the bytes alone take {floor:4.2f} s at this rate (p95/that {p95 / floor:4.2f})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
