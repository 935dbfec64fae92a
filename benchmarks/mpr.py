"""How fast are reformats and slabs, and how much memory does a 1000-slice volume take?

On a seeded 512² CT series (``wire_bytes.ensure_series``: 2.5 mm slices, σ = 10 HU noise):

* time to build the volume from the files, then to the first coronal plane once it is built
  (native resolution, and fitted to a pane);
* p50/p95 of one crosshair step of the axial pane in a three-pane layout at 120×40 cells
  (10×20-pixel cells: 400×720-pixel boxes), as the viewer does it: the axial plane extracted
  and windowed, the coronal and sagittal images reused with the crosshair moved
  (``mpr_planes(previous=...)``); this is the rendering part of the 60 ms three-pane target;
* the same with all three planes recomputed (a W/L change, an oblique turn);
* p95 of a 20 mm coronal MIP slab in a pane;
* peak RSS of a separate process that builds the volume of ``--big`` slices and extracts
  planes (target ≤ 400 MB for 1000 slices);
* ``--growth``: a series arriving (the volume screen headless at 120×40, on
  ``ArrivingSeries`` filled from the files at one slice every ``--pace`` ms, as the viewer's
  retrieve feed fills it): seconds from the last instance landing to the final volume on
  screen (complete, planned from the files alone, every pane drawn from it), against the peer,
  the same screen opened on the complete series (a fresh ``M``: read, plan, first panes);
* ``--screen``: the volume screen itself, the real app in a pseudo-terminal at 120×40 cells
  (half-blocks, as ``slice_step.py`` runs it): p50/p95 from writing a key to the last byte of
  the screen update that shows all three panes moved (decoding is done: the volume is built;
  extraction, crosshair, encoding and Textual's write are inside), for PgDn in the axial pane
  (the axial plane re-cut, coronal and sagittal re-drawn) and for → (the coronal and sagittal
  planes re-cut). Target p95 ≤ 60 ms. The peer, run in the same go and the same app, is the
  slice viewer's own step (one pane, ↓). Idle, and loaded with ``loadgen.busy_machine``.

Each time is also given as a ratio to the plainest peer, numpy indexing of the same volume
held as one float32 HU array (what a naive implementation would keep, at 4 bytes a voxel):
the ratio says what geometry checking, holes and per-slice rescale cost. ``--loaded`` repeats
the figures with two processes burning both cores (each stops by itself after 10 minutes and is
ended by this script).

    .venv/bin/python benchmarks/mpr.py --keep /tmp/bench/ct300 --keep-big /tmp/bench/ct1000
    .venv/bin/python benchmarks/mpr.py --keep /tmp/bench/ct300 --keep-big /tmp/bench/ct1000 --loaded
    .venv/bin/python benchmarks/mpr.py --keep /tmp/bench/ct300 --screen-only
    .venv/bin/python benchmarks/mpr.py --keep /tmp/bench/ct300 --growth-only
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import re  # noqa: E402

import numpy as np  # noqa: E402
from loadgen import busy_machine  # noqa: E402
from wire_bytes import PtyApp, ensure_series  # noqa: E402

from tuiviewer.render.lut import Window, apply_window  # noqa: E402
from tuiviewer.render.mpr import (  # noqa: E402
    Plane,
    PlaneRequest,
    Projection,
    extract_plane,
    mpr_planes,
    step_crosshair,
)
from tuiviewer.render.volume import load_volume  # noqa: E402

PANE = (400, 720)
WINDOW = Window(40.0, 400.0)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ms(values: list[float]) -> str:
    v = [t * 1000 for t in values]
    return f"p50 {statistics.median(v):6.1f} ms  p95 {percentile(v, 0.95):6.1f} ms"


def naive_planes(hu: np.ndarray, k: int, i: int, j: int) -> None:
    """The peer: three numpy slices of a float32 HU array, windowed (no resampling)."""
    for plane in (hu[k], hu[::-1, i, :], hu[::-1, :, j]):
        apply_window(plane, WINDOW)


def measure(folder: Path, steps: int) -> dict[str, float | str]:
    paths = sorted(folder.glob("*.dcm"))
    start = time.perf_counter()
    volume, _ = load_volume(paths)
    built = time.perf_counter() - start
    at = volume.geometry.centre()
    start = time.perf_counter()
    first = extract_plane(volume, PlaneRequest(Plane.standard("coronal"), at=at, window=WINDOW))
    first_native = time.perf_counter() - start
    start = time.perf_counter()
    extract_plane(volume, PlaneRequest(Plane.standard("coronal"), at=at, size=PANE, window=WINDOW))
    first_pane = time.perf_counter() - start
    assert first is not None
    axial = Plane.standard("axial")
    step_times, full_times = [], []
    shown = mpr_planes(volume, at, size=PANE, window=WINDOW) or []
    for n in range(steps):
        at = step_crosshair(volume, at, axial, 1 if n % 40 < 20 else -1)
        start = time.perf_counter()
        shown = mpr_planes(volume, at, size=PANE, window=WINDOW, previous=shown) or []
        step_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        mpr_planes(volume, at, size=PANE, window=WINDOW)
        full_times.append(time.perf_counter() - start)
    slab_times = []
    coronal = Plane.standard("coronal")
    for n in range(max(steps // 2, 10)):
        at = step_crosshair(volume, at, coronal, 1 if n % 20 < 10 else -1)
        request = PlaneRequest(
            coronal, at=at, size=PANE, slab=20.0, projection=Projection.MIP, window=WINDOW
        )
        start = time.perf_counter()
        extract_plane(volume, request)
        slab_times.append(time.perf_counter() - start)
    # The peer holds the same volume as one float32 HU array.
    hu = np.stack([volume.slice_values(k) for k in range(volume.geometry.slices)])
    peer = []
    g = volume.geometry
    for n in range(steps):
        k = (g.slices // 2 + n) % g.slices
        start = time.perf_counter()
        naive_planes(hu, k, g.rows // 2, g.cols // 2)
        peer.append(time.perf_counter() - start)
    return {
        "slices": g.slices,
        "build": built,
        "first_native": first_native,
        "first_pane": first_pane,
        "native_size": f"{first.pixels.shape[1]}x{first.pixels.shape[0]}",
        "step_p50": statistics.median(step_times),
        "step_p95": percentile(step_times, 0.95),
        "full_p50": statistics.median(full_times),
        "full_p95": percentile(full_times, 0.95),
        "slab_p50": statistics.median(slab_times),
        "slab_p95": percentile(slab_times, 0.95),
        "peer_p50": statistics.median(peer),
        "peer_p95": percentile(peer, 0.95),
        "bytes": int(volume.data.nbytes),
        "downsample": volume.downsample,
    }


def peak_rss_child(folder: Path) -> None:
    """Run in a child: build the volume, extract planes, print the peak RSS as JSON."""
    volume, _ = load_volume(sorted(folder.glob("*.dcm")))
    at = volume.geometry.centre()
    mpr_planes(volume, at, size=PANE, window=WINDOW)
    mpr_planes(volume, at, window=WINDOW)
    extract_plane(
        volume, PlaneRequest(Plane.standard("coronal"), at=at, slab=20.0, size=PANE, window=WINDOW)
    )
    # VmHWM, not getrusage: ru_maxrss survives fork + exec, so it would report the parent's peak.
    with open("/proc/self/status", encoding="ascii") as status:
        peak_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    print(
        json.dumps(
            {
                "peak_mib": peak_kib / 1024,
                "downsample": volume.downsample,
                "volume_mib": volume.data.nbytes / 2**20,
                "slices": volume.geometry.slices,
            }
        )
    )


def burners() -> list[subprocess.Popen[bytes]]:
    code = "import time\nend = time.time() + 600\nwhile time.time() < end: pass\n"
    return [subprocess.Popen([sys.executable, "-c", code]) for _ in range(2)]


def report(label: str, figures: dict[str, float | str], big: dict[str, float] | None) -> None:
    f = figures
    print(f"--- {label}: {f['slices']} slices of 512² CT, panes {PANE[0]}x{PANE[1]} px")
    print(f"volume built from files      {float(f['build']):6.2f} s "
          f"({float(f['bytes']) / 2**20:.0f} MiB, averaged {f['downsample']}x)")  # fmt: skip
    print(f"first coronal, native {f['native_size']:>9}  {float(f['first_native']) * 1000:6.1f} ms")
    print(f"first coronal, pane          {float(f['first_pane']) * 1000:6.1f} ms")
    step_p95, full_p95, peer_p95 = (float(f[k]) for k in ("step_p95", "full_p95", "peer_p95"))
    verdict = "ok" if step_p95 <= 0.060 else "over"
    print(
        f"axial step, 3 panes          p50 {float(f['step_p50']) * 1000:6.1f} ms  "
        f"p95 {step_p95 * 1000:6.1f} ms ({verdict} vs the 60 ms three-pane target; coronal and "
        "sagittal reused)"
    )
    verdict = "ok" if full_p95 <= 0.060 else "over"
    print(
        f"all 3 planes recomputed      p50 {float(f['full_p50']) * 1000:6.1f} ms  "
        f"p95 {full_p95 * 1000:6.1f} ms ({verdict}; a W/L change or an oblique turn)"
    )
    print(
        f"  peer: numpy slices of a float32 HU array  p95 {peer_p95 * 1000:6.1f} ms  "
        f"(ratio all-3/peer {full_p95 / peer_p95:4.1f}×, peer keeps "
        f"{float(f['bytes']) * 2 * (f['downsample'] ** 2) / 2**20:.0f} MiB)"  # type: ignore[operator]
    )
    print(
        f"coronal MIP 20 mm slab       p50 {float(f['slab_p50']) * 1000:6.1f} ms  "
        f"p95 {float(f['slab_p95']) * 1000:6.1f} ms"
    )
    if big is not None:
        verdict = "within" if big["peak_mib"] <= 400 else "over"
        print(
            f"peak RSS, {big['slices']:.0f} slices       {big['peak_mib']:6.0f} MiB "
            f"({verdict} the 400 MB target; volume {big['volume_mib']:.0f} MiB, averaged "
            f"{big['downsample']:.0f}x{big['downsample']:.0f})"
        )


PGDN, RIGHT = b"\x1b[6~", b"\x1b[C"
SCREEN_TARGET_MS = 60


def _last(app: PtyApp, pattern: bytes) -> int:
    """The number captured by the last match of ``pattern`` in what the app wrote."""
    found = re.findall(pattern, re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b"", bytes(app.buffer)))
    return int(found[-1])


def _key_to_panes(app: PtyApp, key: bytes, pattern: str, quiet: float = 0.03) -> float:
    """Seconds from writing ``key`` to the last byte of the update whose title matches."""
    sent = app.send(key)
    app.wait_for(pattern.encode(), timeout=20)
    return app.drain(quiet) - sent


def screen_figures(
    folder: Path, slices: int, steps: int, profile: Path | None = None
) -> dict[str, list[float]]:
    """Key → frame times in the real app: the viewer's step, then the volume screen's
    (``profile``: a cProfile of the event loop over the → steps, see ``profiled.py``)."""
    app = PtyApp(folder, "halfcell", 120, 40, profile=profile)
    try:
        app.open_viewer(slices)
        viewer = [app.step(n * 2.5)[0] for n in range(1, steps + 1)]
        app.send(b"M")
        app.wait_for(rf"Axial {steps + 1}/{slices}".encode(), timeout=180)
        app.drain(1.0)
        axial, across = [], []
        for n in range(steps):
            time.sleep(0.05)  # tapping, not holding: one key, one update
            axial.append(_key_to_panes(app, PGDN, rf"Axial {steps + 2 + n}/{slices}(?![0-9])"))
        sagittal = _last(app, rb"Sagittal (\d+)/")
        if profile is not None:
            os.kill(app.proc.pid, signal.SIGUSR1)
        for n in range(steps):
            time.sleep(0.05)
            # → moves +x: the sagittal pane (numbered from the patient's left) goes one down.
            across.append(_key_to_panes(app, RIGHT, rf"Sagittal {sagittal - 1 - n}/"))
        if profile is not None:
            os.kill(app.proc.pid, signal.SIGUSR2)
            time.sleep(1.0)
        return {"viewer": viewer, "axial": axial, "across": across}
    finally:
        app.close()


def screen_report(label: str, figures: dict[str, list[float]]) -> None:
    viewer_p95 = percentile(figures["viewer"], 0.95)
    print(f"--- volume screen, {label}: 120×40 cells, half-blocks, key → last byte written")
    print(f"peer: slice viewer ↓ (1 pane)  {ms(figures['viewer'])}")
    for name, what in (
        ("axial", "PgDn in axial (axial re-cut)"),
        ("across", "→ in axial (coronal + sagittal re-cut)"),
    ):
        p95 = percentile(figures[name], 0.95)
        verdict = (
            "ok" if p95 * 1000 <= SCREEN_TARGET_MS else f"over the {SCREEN_TARGET_MS} ms target"
        )
        print(
            f"{what:38} {ms(figures[name])} ({verdict}; ×{p95 / viewer_p95:.1f} the viewer's p95)"
        )


def growth_figures(folder: Path, pace: float) -> dict[str, float]:
    """Seconds from the last instance landing to the final volume on screen, and the fresh
    open of the complete series (the peer), in one headless app."""
    import asyncio

    from tuiviewer.app import make_app
    from tuiviewer.config.settings import Config
    from tuiviewer.dicom.scanning import scan
    from tuiviewer.graphics.probe import GraphicsMode
    from tuiviewer.screens.volume import VolumeScreen
    from tuiviewer.services.viewer.arrival import ArrivingSeries

    records = sorted(
        (r for batch in scan([folder]) for r in batch), key=lambda r: r.instance_number or 0
    )
    listed = [(r.sop_instance_uid, r.instance_number) for r in records]
    figures: dict[str, float] = {}

    def final_on_screen(screen: VolumeScreen) -> bool:
        volume = screen.volumes.get(0)
        return (
            screen.arriving is None
            and volume is not None
            and volume.complete
            and not screen._rendering
            and not screen._dirty
            and len(screen.frames) == 3
            and all(
                f.image.key[:2] == (id(volume.data), volume.loaded) for f in screen.frames.values()
            )
        )

    async def run() -> None:
        app = make_app(Config(), [folder], graphics=GraphicsMode.HALFCELL)
        async with app.run_test(size=(120, 40)) as pilot:
            series = ArrivingSeries(records[0].study_uid, records[0].series_uid, listed)
            series.add(records[:16])
            screen = VolumeScreen(records[:16], arriving=series)
            await app.push_screen(screen)
            while 0 not in screen.volumes:
                await pilot.pause(0.01)
            for record in records[16:]:
                series.add([record])
                await pilot.pause(pace / 1000)
            landed = time.perf_counter()
            while not final_on_screen(screen):
                await pilot.pause(0.005)
            figures["growth"] = time.perf_counter() - landed
            figures["grows"] = screen.grows
            app.pop_screen()
            start = time.perf_counter()
            fresh = VolumeScreen(records)
            await app.push_screen(fresh)
            while not final_on_screen(fresh):
                await pilot.pause(0.005)
            figures["fresh"] = time.perf_counter() - start

    asyncio.run(run())
    return figures


def growth_report(label: str, slices: int, pace: float, figures: dict[str, float]) -> None:
    print(f"--- a {slices}-slice series arriving ({pace:g} ms a slice), {label}: headless, 120×40")
    ratio = figures["growth"] / figures["fresh"]
    print(
        f"last instance landed → final volume on screen  {figures['growth']:6.2f} s "
        f"({figures['grows']:.0f} reads while it arrived; ×{ratio:.2f} the peer)"
    )
    print(f"peer: fresh M on the complete series (read, plan, panes)  {figures['fresh']:6.2f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="folder for the 300-slice series (reused)")
    parser.add_argument("--keep-big", type=Path, help="folder for the 1000-slice series (reused)")
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--big", type=int, default=1000, help="slices for the RSS figure (0: skip)")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--loaded", action="store_true", help="also with both cores busy")
    parser.add_argument("--screen", action="store_true", help="also the volume screen's steps")
    parser.add_argument("--screen-only", action="store_true", help="only the volume screen")
    parser.add_argument("--growth", action="store_true", help="also a series arriving")
    parser.add_argument("--growth-only", action="store_true", help="only a series arriving")
    parser.add_argument("--pace", type=float, default=20.0, help="ms between two slices landing")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="FILE",
        help="with --screen: a cProfile of the app's event loop over the → steps (idle run)",
    )
    parser.add_argument("--rss-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_child is not None:
        peak_rss_child(args.rss_child)
        return 0
    folder = ensure_series(args.keep, args.slices)
    if args.growth or args.growth_only:
        for load in (False, True) if args.loaded or args.growth_only else (False,):
            with busy_machine(load) as state:
                print(f"load average before: {os.getloadavg()[0]:.1f}")
                growth_report(state, args.slices, args.pace, growth_figures(folder, args.pace))
        if args.growth_only:
            return 0
    if args.screen or args.screen_only:
        for load in (False, True) if args.loaded or args.screen_only else (False,):
            with busy_machine(load) as state:
                print(f"load average before: {os.getloadavg()[0]:.1f}")
                profile = args.profile if not load else None
                figures = screen_figures(folder, args.slices, args.steps // 2, profile)
                screen_report(state, figures)
                if profile is not None:
                    from slice_step import print_profile

                    print_profile(profile, args.steps // 2, top=40)
        if args.screen_only:
            return 0
    big_folder = ensure_series(args.keep_big, args.big) if args.big else None

    def big_figure() -> dict[str, float] | None:
        if big_folder is None:
            return None
        done = subprocess.run(
            [sys.executable, __file__, "--rss-child", str(big_folder)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
        return result

    report("idle", measure(folder, args.steps), big_figure())
    if args.loaded:
        procs = burners()
        try:
            time.sleep(1.0)
            report("loaded (2 cores burning)", measure(folder, args.steps), big_figure())
        finally:
            for proc in procs:
                os.kill(proc.pid, 15)
                proc.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
