"""How long does one slice take to resize for the terminal, idle and with the machine loaded?

Times ``render.resample.resample`` (area averaging when shrinking) on a 512² CT slice for the
sizes the viewer asks for (half-blocks at 120×40 cells, Sixel/Kitty at 100×30 cells of 8×16 px
and at 120×40 cells of 10×20 px), next to Pillow's ``Image.resize`` with the BOX filter (the
peer: the same area average in C) and the matrix product this module used before issue 10
(which runs on BLAS's thread pool). Prints p50/p95 per size and the ratio of our p95 to
Pillow's, first idle, then with a busy loop on every core (``--load`` only the loaded run).

    .venv/bin/python benchmarks/resample.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loadgen import busy_machine  # noqa: E402

from tuiviewer.render.resample import resample  # noqa: E402

SIZES = {
    "half-blocks 120×40": (118, 76),
    "sixel 100×30 8×16": (464, 464),
    "kitty 120×40 10×20": (760, 760),
}


def _area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """The dense area-averaging weights the matrix-product version built (for comparison)."""
    step = n_in / n_out
    w = np.zeros((n_out, n_in), dtype=np.float32)
    for k in range(n_out):
        lo, hi = k * step, (k + 1) * step
        for j in range(int(lo), min(int(np.ceil(hi)), n_in)):
            w[k, j] = max(0.0, min(hi, j + 1.0) - max(lo, float(j))) / step
    return w


def _matmul(img: np.ndarray, out_w: int, out_h: int) -> Callable[[], object]:
    wy, wx = _area_matrix(img.shape[0], out_h), _area_matrix(img.shape[1], out_w)
    src = img.astype(np.float32)
    return lambda: np.clip(np.rint(wy @ src @ wx.T), 0, 255).astype(np.uint8)


def _times(call: Callable[[], object], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def run(repeat: int) -> None:
    rng = np.random.default_rng(7)
    img = rng.integers(0, 256, (512, 512), dtype=np.uint8)
    pil = Image.fromarray(img)
    for name, (w, h) in SIZES.items():
        ours = _times(lambda w=w, h=h: resample(img, w, h), repeat)
        peer = _times(lambda w=w, h=h: pil.resize((w, h), Image.Resampling.BOX), repeat)
        before = _times(_matmul(img, w, h), repeat) if w < 512 else []
        line = (
            f"  {name:20} ours p50 {statistics.median(ours):5.2f} p95 {_p95(ours):5.2f} ms   "
            f"Pillow p95 {_p95(peer):5.2f} ms   ratio {_p95(ours) / _p95(peer):4.1f}"
        )
        if before:
            line += f"   matrix product p95 {_p95(before):6.2f} ms"
        print(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200, help="resizes per size (200)")
    parser.add_argument("--load", action="store_true", help="only the run with the machine loaded")
    args = parser.parse_args(argv)
    for load in (True,) if args.load else (False, True):
        with busy_machine(load) as state:
            print(f"512² slice, {args.repeat} resizes per size, machine {state}")
            run(args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
