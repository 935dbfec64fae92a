"""Two volumes at once: a study and its prior side by side (1×2), scrolling linked by position.

On a seeded 512² × 300 CT series (``wire_bytes.ensure_series``) read twice, as the study in view
and as its prior (same frame of reference), the way the volume screen reads them when a hanging
rule lays out "current | prior": the study in view at full size when what is left still holds
the prior averaged 2×2 (:func:`tuiviewer.services.viewer.layouts.start_budget`), the prior with
what is left (:func:`~tuiviewer.services.viewer.layouts.budget_for`), so the two stay within
the one budget.

* bytes held by the two volumes against the budget, how each was averaged to fit, and the peak
  RSS of this process;
* p50/p95 of one linked step in 1×2 at 120×40 cells (10×20-pixel cells, two 580×660-pixel
  boxes): the study's axial plane moved one slice and the prior's crosshair put on its voxel
  nearest the same point (``linked_views``), both panes extracted and drawn
  (``render_layout``);
* the peer, in the same go: one step of the three-pane MPR of one of the volumes at the same
  size (three 400×720 boxes, ``render_panes``, coronal and sagittal reused), which the MPR
  target (p95 ≤ 60 ms) is about. The ratio says what the second volume costs.

``--loaded`` repeats the figures with every core kept busy (``loadgen.busy_machine``).

    .venv/bin/python benchmarks/layouts.py --keep /tmp/bench/ct300
    .venv/bin/python benchmarks/layouts.py --keep /tmp/bench/ct300 --loaded
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import busy_machine  # noqa: E402
from wire_bytes import ensure_series  # noqa: E402

from tuiviewer.render.volume import DEFAULT_VOLUME_BYTES, load_volume  # noqa: E402
from tuiviewer.services.viewer import layouts as ls  # noqa: E402
from tuiviewer.services.viewer import volume_view as vv  # noqa: E402
from tuiviewer.services.viewer.layouts import PaneSpec  # noqa: E402
from tuiviewer.services.viewer.volume_view import VolumeView  # noqa: E402


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run(folder: Path, steps: int) -> None:
    paths = sorted(folder.glob("*.dcm"))
    size = 512 * 512 * len(paths) * 2
    started = time.perf_counter()
    current, _ = load_volume(
        paths, budget_bytes=ls.start_budget(DEFAULT_VOLUME_BYTES, [size, size])
    )
    left, reason = ls.budget_for(DEFAULT_VOLUME_BYTES, {0: current.data.nbytes}, [1])
    assert reason is None, reason
    prior, _ = load_volume(paths, budget_bytes=left)
    built = time.perf_counter() - started
    held = current.data.nbytes + prior.data.nbytes
    print(
        f"  two volumes read in {built:.1f} s: {held / 2**20:.0f} MiB held of the "
        f"{DEFAULT_VOLUME_BYTES / 2**20:.0f} MiB budget (the study averaged "
        f"{current.downsample}×{current.downsample}, the prior {prior.downsample}×"
        f"{prior.downsample}); peak RSS "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )
    assert held <= DEFAULT_VOLUME_BYTES
    volumes = {0: current, 1: prior}
    centre = current.geometry.centre()
    views = {0: VolumeView(at=centre), 1: VolumeView(at=prior.geometry.centre())}
    state = ls.Hanging(grid=ls.Grid.TWO, panes=(PaneSpec(0, 0), PaneSpec(1, 0)))
    boxes = {0: (580, 660), 1: (580, 660)}
    frames = ls.render_layout(volumes, state, views, boxes) or []
    linked: list[float] = []
    for n in range(steps):
        step = 1 if n % 40 < 20 else -1
        started = time.perf_counter()
        moved = {**views, 0: vv.moved_through(current, views[0], step)}
        views, _ = ls.linked_views(volumes, moved, 0)
        frames = (
            ls.render_layout(volumes, state, views, boxes, previous=[f.image for f in frames]) or []
        )
        linked.append((time.perf_counter() - started) * 1000)
    view = VolumeView(at=centre)
    mpr_boxes = {0: (400, 720), 1: (400, 720), 2: (400, 720)}
    previous = [f.image for f in vv.render_panes(current, view, mpr_boxes) or []]
    mpr: list[float] = []
    for n in range(steps):
        step = 1 if n % 40 < 20 else -1
        started = time.perf_counter()
        view = vv.moved_through(current, replace(view, active=0), step)
        got = vv.render_panes(current, view, mpr_boxes, previous=previous) or []
        previous = [f.image for f in got]
        mpr.append((time.perf_counter() - started) * 1000)
    lp50, lp95 = statistics.median(linked), p(linked, 0.95)
    mp50, mp95 = statistics.median(mpr), p(mpr, 0.95)
    print(
        f"  1×2 linked step (two volumes, two panes): p50 {lp50:.1f} ms, p95 {lp95:.1f} ms "
        f"(×{lp95 / mp95:.2f} the peer's p95)"
    )
    print(f"  peer, three-pane MPR step of one volume: p50 {mp50:.1f} ms, p95 {mp95:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="folder for the generated series (reused)")
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--loaded", action="store_true", help="also with every core busy")
    args = parser.parse_args()
    folder = ensure_series(args.keep, args.slices)
    for load in (False, True) if args.loaded else (False,):
        with busy_machine(load) as machine:
            print(f"{args.slices} slices of 512² CT, {machine}:")
            run(folder, args.steps)


if __name__ == "__main__":
    main()
