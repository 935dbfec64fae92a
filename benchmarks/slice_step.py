"""How long from a slice-step key to its frame written to the terminal, per graphics mode?

Runs the real app in a pseudo-terminal (see ``wire_bytes.PtyApp``; ``--size`` cells of
``--cell`` pixels) on a 300-slice 512² CT series, opens the viewer, presses the down arrow
``--steps`` times, one key at a time at a tapping pace, and prints p50/p95 of the time between
writing the key and the last byte of the screen update that shows the new slice (so decoding,
rendering, encoding and Textual's write are all inside). The viewer prefetches ahead in the
scroll direction, as it does for a user. Target: p95 ≤ 40 ms in every mode and cell size.
Also the app's CPU per step (every thread, the prefetch's decoding included): steadier than the
latency on a busy machine, yet not load-free (a backed-up writer makes the pixel protocols send
a draft and then the refined frame, two encodes for one step; caches are shared). After each
mode: the time our encoder and the peers (see ``wire_bytes``) take for the same frame in this
process, and p95 as a ratio to them. ``--load`` keeps every core busy meanwhile.

    .venv/bin/python benchmarks/slice_step.py --keep /tmp/bench/ct300
    .venv/bin/python benchmarks/slice_step.py --keep /tmp/bench/ct300 --size 100x30 --cell 8x16
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import os  # noqa: E402

from loadgen import busy_machine  # noqa: E402
from wire_bytes import (  # noqa: E402
    CPU_PER_STEP,
    add_options,
    ensure_series,
    frame_box,
    image_pane,
    measure,
    ours,
    peer_frame,
    peers,
)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


TARGET_MS = 40


def stages(
    folder: Path, mode: str, cell: tuple[int, int], pane: tuple[int, int], count: int = 12
) -> dict[str, float]:
    """Median milliseconds of each stage of a step, in this process, on ``count`` slices:
    reading the file, decoding its pixels, windowing and resampling, and our encoder on the
    default near-lossless frame (the rest of a step is Textual's update and the write)."""
    import pydicom

    from tuiviewer.render.pipeline import RenderRequest, load_frame, render_frame

    box = frame_box(mode, cell, pane)
    names = ("read", "decode", "window+resample", "encode")
    timings: dict[str, list[float]] = {name: [] for name in names}
    for path in sorted(folder.glob("*.dcm"))[:count]:
        started = time.perf_counter()
        ds = pydicom.dcmread(path)
        read = time.perf_counter()
        frame = load_frame(ds, 0)
        decoded = time.perf_counter()
        pixels = render_frame(ds, frame, RenderRequest(size=box)).pixels
        rendered = time.perf_counter()
        timings["read"].append(read - started)
        timings["decode"].append(decoded - read)
        timings["window+resample"].append(rendered - decoded)
        timings["encode"].append(ours(mode, pixels, cell, pane, exact=False).seconds)
    return {name: statistics.median(values) * 1000 for name, values in timings.items()}


def profile_path(folder: Path | None, mode: str) -> Path | None:
    if folder is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{mode}.prof"
    path.unlink(missing_ok=True)
    return path


def print_profile(path: Path | None, steps: int, top: int = 25) -> None:
    """The functions of the event loop with the most time of their own over the steps, in ms
    per step (under cProfile, so read the shares), and the cumulative time of a few known
    stages."""
    import pstats

    if path is None or not path.exists():
        print(f"{'':12}   (no profile was written to {path})")
        return
    stats = pstats.Stats(str(path))
    rows = stats.stats  # type: ignore[attr-defined]
    total = sum(row[2] for row in rows.values())
    print(f"{'':12}   profile {path}: {total / steps * 1000:.1f} ms a step on the event loop")
    ranked = sorted(rows.items(), key=lambda item: item[1][2], reverse=True)[:top]
    for (file, line, name), (_cc, calls, own, cumulative, _callers) in ranked:
        where = f"{Path(file).parent.name}/{Path(file).name}:{line} {name}"
        print(
            f"{'':12}     own {own / steps * 1000:6.2f} ms  cum {cumulative / steps * 1000:6.2f}"
            f"  calls/step {calls / steps:7.1f}  {where}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_options(parser, "halfcell,kitty,kitty-placed,sixel,iterm2")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument(
        "--profile", type=Path, metavar="DIR",
        help="write a cProfile of the app's event loop over the steps to DIR/MODE.prof and "
        "print its top functions",
    )  # fmt: skip
    args = parser.parse_args(argv)
    folder = ensure_series(args.keep, args.slices)
    lean = " (--low-bandwidth)" if args.low_bandwidth else ""
    (cols, rows), (cell_w, cell_h) = args.size, args.cell
    with busy_machine(args.load) as state:
        print(
            f"{args.steps} steps, {cols}×{rows} cells of {cell_w}×{cell_h} px, "
            f"{args.slices} slices of 512² CT{lean}; {state}, load average "
            f"{os.getloadavg()[0]:.1f}"
        )
        for mode in args.modes.split(","):
            profile = profile_path(args.profile, mode)
            times, _ = measure(
                folder, mode, args.slices, args.steps, low_bandwidth=args.low_bandwidth,
                size=args.size, cell=args.cell, profile=profile,
            )  # fmt: skip
            ms = [t * 1000 for t in times]
            p95 = percentile(ms, 0.95)
            verdict = "ok" if p95 <= TARGET_MS else f"over the {TARGET_MS} ms target"
            print(
                f"{mode:12} key→frame  p50 {statistics.median(ms):6.1f} ms  "
                f"p95 {p95:6.1f} ms  max {max(ms):6.1f} ms  ({verdict}); "
                f"app CPU {CPU_PER_STEP[mode] * 1000:5.1f} ms a step"
            )
            if args.profile is not None:
                print_profile(profile, args.steps)
            if not args.no_peers:
                # The encoder alone on the same frame, in this process and at this load: how
                # much of the step is ours to encode, and the floor a step cannot go under.
                pane = image_pane(mode, args.size, args.cell)
                parts = stages(folder, mode, args.cell, pane)
                rest = statistics.median(ms) - sum(parts.values())
                print(
                    f"{'':12}   one step, median ms: "
                    + ", ".join(f"{name} {value:.1f}" for name, value in parts.items())
                    + f"; Textual's update and the write (p50 less those) {rest:.1f}"
                )
                pixels = peer_frame(folder, size=frame_box(mode, args.cell, pane))
                mine = ours(mode, pixels, args.cell, pane, exact=False)
                print(
                    f"{'':12}   encoding the frame alone: ours {mine.seconds * 1000:5.1f} ms"
                    f" (p95/encode {p95 / (mine.seconds * 1000):5.1f})"
                )
                for peer in peers(mode, pixels, pane):
                    print(
                        f"{'':12}   {peer.name:32} {peer.seconds * 1000:5.1f} ms"
                        f"  (p95/peer {p95 / (peer.seconds * 1000):5.1f},"
                        f" ours/peer encode {mine.seconds / peer.seconds:4.2f})"
                    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
