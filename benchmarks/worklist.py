"""Time to the worklist's rows and report states on a PACS with 1,000 studies, idle and loaded.

Starts an Orthanc (tests/support/orthanc.py), C-STOREs ``--studies`` one-image studies of today
(8×8 CT, generated in memory), ``--reported`` of them with a report SR (half signed, half
preliminary), then runs the real app headless (Textual's ``run_test``, 160×40) with that Orthanc
as its default node, and measures from the app's start: the first rows on screen, every row on
screen, and every report state known. Three cases:

* **empty store**: a reader starting the workstation on a new server (no SR on disk);
* **refresh**: Ctrl+R in that session with nothing changed on the PACS;
* **warm store**: a new launch with the report SRs already on disk (the reader opened them).

Targets: first rows ≤ 1 s, all report states ≤ 2 s. With ``--load`` every core is kept busy
meanwhile (benchmarks/loadgen.py).

Peers, run in the same go against the same Orthanc: dcmtk's ``findscu`` for the study-level
query the rows come from, and the state phase the way it was before the states were read from
the C-FIND answers (every report SR retrieved into an empty store: ``report_states(...,
fetch=True)``, which the reader still uses when it opens a report). Figures are printed as
ratios to them. (Issue 10's first figure, one association per study: 19.4 s.)

    .venv/bin/python benchmarks/worklist.py [--studies 1000] [--reported 0.25] [--load]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import resource
import shutil
import subprocess
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
from tuiviewer.dicom.rows import QueryLevel, StudyRow, to_row  # noqa: E402
from tuiviewer.net.find import FindQuery, find  # noqa: E402
from tuiviewer.screens.worklist import WorklistScreen  # noqa: E402
from tuiviewer.services import worklist  # noqa: E402
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
        for attempt in range(4):
            try:
                count = store_datasets(orthanc.host, orthanc.dicom_port, orthanc.aet, chunk)
                break
            except StoreError:
                # Orthanc sometimes stalls one response past the DIMSE timeout on a busy
                # machine; it accepts instances it already holds, so the chunk is sent again.
                if attempt == 3:
                    raise
        stored += count
    if stored != expected:
        raise SystemExit(f"Orthanc stored {stored} of {expected} instances.")
    return time.perf_counter() - started, (studies + every - 1) // every if every else 0


async def measure(node: Node, store_root: Path, studies: int, refresh: bool) -> dict[str, float]:
    """One launch of the app: time to first rows, all rows, all states (and a refresh)."""
    worklist.STATES.clear()  # a new launch remembers no state
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
        if not refresh:
            return marks
        # A refresh with nothing changed on the PACS: rows again, states from what is kept.
        while screen.refreshing and time.perf_counter() < deadline:
            await pilot.pause(0.005)
        screen.states.clear()
        again = time.perf_counter()
        await pilot.press("ctrl+r")
        while time.perf_counter() < deadline:
            if len(screen.states) >= studies and not screen.refreshing:
                marks["refresh, rows and states"] = time.perf_counter() - again
                break
            await pilot.pause(0.005)
    return marks


def findscu_seconds(node: Node) -> float | None:
    """dcmtk's findscu asking the worklist's study-level query (its answers thrown away)."""
    binary = shutil.which("findscu", path="/usr/bin:/bin")
    if binary is None:
        return None
    keys = ["QueryRetrieveLevel=STUDY", "StudyInstanceUID", "StudyDate", "StudyTime"]
    keys += ["PatientName", "PatientID", "ModalitiesInStudy", "NumberOfStudyRelatedInstances"]
    keys += ["NumberOfStudyRelatedSeries", "StudyDescription", "AccessionNumber"]
    command = [binary, "-S", "-aec", node.ae_title, node.host, str(node.port)]
    for key in keys:
        command += ["-k", key]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def core_states(node: Node, store_root: Path, fetch: bool) -> float:
    """The state phase alone (no app): the study query's rows given, states into ``store_root``."""
    rows = [to_row(QueryLevel.STUDY, ds) for ds in find(node, FindQuery(QueryLevel.STUDY))]
    started = time.perf_counter()
    statuses = list(
        worklist.report_states(
            node,
            [r for r in rows if isinstance(r, StudyRow)],
            LocalStore(store_root),
            cache=worklist.StateCache(),
            fetch=fetch,
        )
    )
    if any(s.error for s in statuses):
        raise SystemExit(
            f"A state came with an error: {next(s.error for s in statuses if s.error)}"
        )
    return time.perf_counter() - started


def _line(label: str, value: float | None, peer: float | None = None, name: str = "") -> str:
    text = f"{label:34} {'not reached' if value is None else f'{value:6.2f} s'}"
    if value is not None and peer:
        text += f"   {value / peer:5.2f}x {name}"
    return text


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
            findscu_seconds(node)  # Orthanc's caches warm for everyone alike
            with busy_machine(args.load) as machine:
                findscu = findscu_seconds(node)
                # The state phase as before (every report SR retrieved), then as now.
                before = core_states(node, work / "peer", fetch=True)
                now = core_states(node, work / "core", fetch=False)
                empty = asyncio.run(measure(node, work / "store", args.studies, refresh=True))
                # The reader has opened the reports: the SRs are on disk at the next launch.
                core_states(node, work / "store", fetch=True)
                warm = asyncio.run(measure(node, work / "store", args.studies, refresh=False))
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.studies} studies ({reports} reported) loaded into Orthanc in {loaded:.1f} s")
    print(f"machine            {machine}; load average {os.getloadavg()[0]:.1f} at the end")
    print(_line("findscu, study query (peer)", findscu))
    print(_line("states alone, as before (peer)", before))
    print(_line("states alone, now", now, before, "of before"))
    for title, marks in (("empty store", empty), ("warm store", warm)):
        print(f"-- app, {title}")
        for label in ("first rows", "all rows", "all report states", "refresh, rows and states"):
            if label in marks or label != "refresh, rows and states":
                print(_line(f"   {label}", marks.get(label), findscu, "of findscu"))
        states, rows = marks.get("all report states"), marks.get("all rows")
        if states is not None and rows is not None:
            after = states - rows
            verdict = "within" if after <= 2.0 else "over"
            print(_line("   states after the rows", after, before, "of before"))
            print(f"   all report states {verdict} the 2 s target (after the rows)")
    first = empty.get("first rows")
    verdict = "within" if first is not None and first <= 1.0 else "over"
    print(f"time to first rows {verdict} the 1 s target")
    print(f"peak RSS           {peak_mib:.0f} MiB (this process: the app and its PACS client)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
