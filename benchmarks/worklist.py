"""Time to the worklist's rows and report states on a PACS with 1,000 studies, idle and loaded.

Starts an Orthanc (tests/support/orthanc.py), C-STOREs ``--studies`` one-image studies of today
(8×8 CT, generated in memory), ``--reported`` of them with a report SR (half signed, half
preliminary), then runs the real app headless (Textual's ``run_test``, 160×40) with that Orthanc
as its default node, and measures from the app's start: the first rows on screen, every row on
screen, and every report state known (the reports retrieved into an empty store); then a refresh
(Ctrl+R) with nothing changed. Targets: first rows ≤ 1 s, all report states ≤ 2 s. With
``--load`` every core is kept busy meanwhile (benchmarks/loadgen.py).

The peer is the state phase as it was before (one association per study, four at a time):
19.4 s for 1,000 studies on this 2-core machine (issue 10).

    .venv/bin/python benchmarks/worklist.py [--studies 1000] [--reported 0.25] [--load]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pydicom.dataset import Dataset  # noqa: E402
from textual.widgets import DataTable  # noqa: E402

from benchmarks.loadgen import busy_machine  # noqa: E402
from tests.integration.test_worklist import tiny_study  # noqa: E402
from tests.support.orthanc import Orthanc, StoreError, store_datasets  # noqa: E402
from tests.unit.services.test_worklist import report_sr  # noqa: E402
from tuiviewer.app import make_app  # noqa: E402
from tuiviewer.config.nodes import Node  # noqa: E402
from tuiviewer.config.settings import Config  # noqa: E402
from tuiviewer.screens.worklist import WorklistScreen  # noqa: E402
from tuiviewer.store import LocalStore  # noqa: E402


def _study(n: int, every: int, at: dt.datetime) -> list[Dataset]:
    images = tiny_study(f"bench-{n}", patient_id=f"B{n % 250:03d}")
    if every and n % every == 0:
        uid = str(images[0].StudyInstanceUID)
        final = (n // every) % 2 == 0
        images.append(report_sr(uid, final=final, at=at, patient_id=f"B{n % 250:03d}"))
    return images


def load(orthanc: Orthanc, studies: int, reported: float) -> tuple[float, int]:
    started = time.perf_counter()
    stored = 0
    every = round(1 / reported) if reported > 0 else 0
    at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    expected = sum(1 + (1 if every and n % every == 0 else 0) for n in range(studies))
    # Generated 100 studies at a time, so the peak RSS below is the app's, not the generator's.
    for start in range(0, studies, 100):
        chunk = [ds for n in range(start, min(start + 100, studies)) for ds in _study(n, every, at)]
        try:
            count = store_datasets(orthanc.host, orthanc.dicom_port, orthanc.aet, chunk)
        except StoreError:
            # Orthanc sometimes stalls one response past the DIMSE timeout on a busy machine;
            # it accepts instances it already holds, so the chunk is simply sent again.
            count = store_datasets(orthanc.host, orthanc.dicom_port, orthanc.aet, chunk)
        stored += count
    if stored != expected:
        raise SystemExit(f"Orthanc stored {stored} of {expected} instances.")
    return time.perf_counter() - started, (studies + every - 1) // every if every else 0


async def measure(node: Node, store_root: Path, studies: int) -> dict[str, float]:
    app = make_app(
        Config(), [], nodes={node.name: node}, default_node=node.name, store=LocalStore(store_root)
    )
    marks: dict[str, float] = {}
    started = time.perf_counter()
    async with app.run_test(size=(160, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, WorklistScreen)
        table = screen.query_one("#worklist", DataTable)
        deadline = started + 300
        while time.perf_counter() < deadline:
            now = time.perf_counter() - started
            if "first rows" not in marks and table.row_count:
                marks["first rows"] = now
            if "all rows" not in marks and table.row_count >= studies:
                marks["all rows"] = now
            if "all report states" not in marks and len(screen.states) >= studies:
                marks["all report states"] = now
                break
            await pilot.pause(0.005)
        # A refresh with nothing changed on the PACS: rows again, states from what is kept.
        while screen.refreshing and time.perf_counter() < deadline:
            await pilot.pause(0.005)
        screen.states.clear()
        again = time.perf_counter()
        await pilot.press("ctrl+r")
        while time.perf_counter() < deadline:
            if len(screen.states) >= studies and not screen.refreshing:
                marks["refresh, states again"] = time.perf_counter() - again
                break
            await pilot.pause(0.005)
    return marks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=1000)
    parser.add_argument("--reported", type=float, default=0.25, help="share with a report SR")
    parser.add_argument("--load", action="store_true", help="keep every core busy meanwhile")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tuiviewer-worklist-") as tmp:
        work = Path(tmp)
        # The app's drafts and logs go to the temporary folder, not the user's.
        for name in ("CONFIG", "DATA", "LOG"):
            os.environ[f"TUIVIEWER_{name}_DIR"] = str(work / name.lower())
        with Orthanc(work / "orthanc") as orthanc:
            loaded, reports = load(orthanc, args.studies, args.reported)
            node = Node("bench", orthanc.aet, orthanc.host, orthanc.dicom_port)
            with busy_machine(args.load) as machine:
                marks = asyncio.run(measure(node, work / "store", args.studies))
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.studies} studies ({reports} reported) loaded into Orthanc in {loaded:.1f} s")
    print(f"machine            {machine}")
    for label in ("first rows", "all rows", "all report states", "refresh, states again"):
        value = marks.get(label)
        print(f"{label:21} {'not reached' if value is None else f'{value:.2f} s'}")
    first = marks.get("first rows")
    verdict = "within" if first is not None and first <= 1.0 else "over"
    print(f"time to first rows {verdict} the 1 s target")
    states = marks.get("all report states")
    rows = marks.get("all rows")
    if states is not None and rows is not None:
        verdict = "within" if states <= 2.0 else "over"
        print(
            f"all report states {states:.2f} s from start ({states - rows:.2f} s after the rows): "
            f"{verdict} the 2 s target; {19.4 / states:.1f}x faster than the 19.4 s before"
        )
    print(f"peak RSS           {peak_mib:.0f} MiB (this process: the app and its PACS client)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
