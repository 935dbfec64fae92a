"""Time to the worklist's first rows on a PACS with 1,000 studies, and the app's peak RSS.

Starts an Orthanc (tests/support/orthanc.py), C-STOREs ``--studies`` one-image studies of today
(8×8 CT, generated in memory), then runs the real app headless (Textual's ``run_test``, 160×40)
with that Orthanc as its default node, and measures from the app's start: the first rows on
screen, every row on screen, and every report state known. Target: first rows ≤ 1 s.

    .venv/bin/python benchmarks/worklist.py [--studies 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from textual.widgets import DataTable  # noqa: E402

from tests.integration.test_worklist import tiny_study  # noqa: E402
from tests.support.orthanc import Orthanc, StoreError, store_datasets  # noqa: E402
from tuiviewer.app import make_app  # noqa: E402
from tuiviewer.config.nodes import Node  # noqa: E402
from tuiviewer.config.settings import Config  # noqa: E402
from tuiviewer.screens.worklist import WorklistScreen  # noqa: E402
from tuiviewer.store import LocalStore  # noqa: E402


def load(orthanc: Orthanc, studies: int) -> float:
    started = time.perf_counter()
    stored = 0
    # Generated 100 studies at a time, so the peak RSS below is the app's, not the generator's.
    for start in range(0, studies, 100):
        chunk = [
            ds
            for n in range(start, min(start + 100, studies))
            for ds in tiny_study(f"bench-{n}", patient_id=f"B{n % 250:03d}")
        ]
        try:
            count = store_datasets(orthanc.host, orthanc.dicom_port, orthanc.aet, chunk)
        except StoreError:
            # Orthanc sometimes stalls one response past the DIMSE timeout on a busy machine;
            # it accepts instances it already holds, so the chunk is simply sent again.
            count = store_datasets(orthanc.host, orthanc.dicom_port, orthanc.aet, chunk)
        stored += count
    if stored != studies:
        raise SystemExit(f"Orthanc stored {stored} of {studies} instances.")
    return time.perf_counter() - started


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
    return marks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=1000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tuiviewer-worklist-") as tmp:
        work = Path(tmp)
        # The app's drafts and logs go to the temporary folder, not the user's.
        for name in ("CONFIG", "DATA", "LOG"):
            os.environ[f"TUIVIEWER_{name}_DIR"] = str(work / name.lower())
        with Orthanc(work / "orthanc") as orthanc:
            loaded = load(orthanc, args.studies)
            node = Node("bench", orthanc.aet, orthanc.host, orthanc.dicom_port)
            marks = asyncio.run(measure(node, work / "store", args.studies))
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.studies} studies loaded into Orthanc in {loaded:.1f} s")
    for label in ("first rows", "all rows", "all report states"):
        value = marks.get(label)
        print(f"{label:18} {'not reached' if value is None else f'{value:.2f} s'}")
    first = marks.get("first rows")
    verdict = "within" if first is not None and first <= 1.0 else "over"
    print(f"time to first rows {verdict} the 1 s target")
    print(f"peak RSS           {peak_mib:.0f} MiB (this process: the app and its PACS client)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
