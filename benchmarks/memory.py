"""Peak memory while scrolling through a 1000-slice 512² CT series in the viewer.

Runs the real app in a 120×40 pseudo-terminal (``wire_bytes.PtyApp``), opens the viewer and
steps through every slice with the down arrow, waiting for each frame so that every slice is
decoded once; then reads the app's peak resident set size (VmHWM) from /proc. The decoded-frame
cache is bounded in bytes (``DEFAULT_FRAME_CACHE_BYTES`` of ``tuiviewer.services.viewer``), so
the peak must stay flat however long the series. Target: ≤ 400 MB.

    .venv/bin/python benchmarks/memory.py --keep /tmp/bench/ct1000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from wire_bytes import PtyApp, ensure_series  # noqa: E402

from tuiviewer.services.viewer.slices import DEFAULT_FRAME_CACHE_BYTES  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="folder for the series (reused if present)")
    parser.add_argument("--slices", type=int, default=1000)
    parser.add_argument("--graphics", default="halfcell")
    args = parser.parse_args(argv)
    folder = ensure_series(args.keep, args.slices)
    app = PtyApp(folder, args.graphics)
    try:
        app.open_viewer(args.slices)
        opened = app.peak_rss_mib()
        start = time.perf_counter()
        checkpoints = []
        for n in range(1, args.slices):
            app.step(n * 2.5, quiet=0.005)
            if n % (args.slices // 4) == 0:
                checkpoints.append((n, app.peak_rss_mib()))
        elapsed = time.perf_counter() - start
        peak = app.peak_rss_mib()
    finally:
        app.close()
    print(f"{args.slices} slices of 512² CT, {args.graphics}, 120×40 cells")
    print(f"frame cache budget   {DEFAULT_FRAME_CACHE_BYTES / 2**20:.0f} MiB")
    print(f"peak RSS after open  {opened:.0f} MiB")
    for n, rss in checkpoints:
        print(f"peak RSS at {n:4d}     {rss:.0f} MiB")
    verdict = "within" if peak <= 400 else "over"
    per_slice = elapsed / (args.slices - 1) * 1000
    print(f"peak RSS             {peak:.0f} MiB ({verdict} the 400 MB target)")
    print(f"scrolled in          {elapsed:.1f} s ({per_slice:.1f} ms/slice)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
