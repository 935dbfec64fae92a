"""How long the command-line tools take, start to finish, next to dcmtk's in the same run.

1. ``tuiviewer dump`` of one CT slice (pydicom's CT_small.dcm) against ``dcmdump``
   (target: ≤ 120 ms), run as the console script of this checkout and again as an installed
   package starts (``python -S`` with site-packages and the checkout on PYTHONPATH: without
   the editable install's import hook, which costs a development checkout 25-40 ms).
2. ``tuiviewer echo`` against ``echoscu``, to an Orthanc on loopback.
3. ``tuiviewer find`` of ``--studies`` studies against ``findscu`` with the same return keys,
   from that Orthanc (target: ≤ 2× findscu). The table comes from the lean C-FIND client
   (net/leanfind.py); ``find --json`` is timed too, for the pynetdicom path it still takes.

Every command runs once untimed (the dump makes its dictionary cache then), then ``--repeat``
times, alternating with its peer; medians of wall time are
printed with the ratio, and the medians of CPU time (user + system) beside them, which say what
a command costs whatever else the machine runs. The package is byte-compiled first, as an
installed one is. The whole set runs idle, then with a busy loop on every core (``--load``:
loaded only).

    .venv/bin/python benchmarks/startup.py --studies 1000
"""

from __future__ import annotations

import argparse
import compileall
import os
import resource
import shutil
import site
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import busy_machine  # noqa: E402
from pydicom.data import get_testdata_file  # noqa: E402
from worklist import load  # noqa: E402

from tests.support.orthanc import Orthanc  # noqa: E402
from tuiviewer.net.find import FindQuery, build_identifier  # noqa: E402

TUIVIEWER = str(Path(sys.executable).with_name("tuiviewer"))


def _seconds(cmd: list[str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one run of ``cmd``."""
    env = None
    if cmd[:2] == [sys.executable, "-S"]:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([*site.getsitepackages(), str(ROOT)]))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu


def compare(label: str, ours: list[str], peer: list[str], repeat: int, target: str) -> None:
    mine, theirs = [], []
    _seconds(ours)
    _seconds(peer)
    for _ in range(repeat):
        mine.append(_seconds(ours))
        theirs.append(_seconds(peer))
    a, b = (statistics.median(w for w, _ in mine), statistics.median(w for w, _ in theirs))
    ca, cb = (statistics.median(c for _, c in mine), statistics.median(c for _, c in theirs))
    # CPU time says what the command costs whatever else the machine runs; wall time is
    # what the user waits.
    print(
        f"  {label:7} tuiviewer {a * 1000:7.0f} ms   {Path(peer[0]).name:8} {b * 1000:6.0f} ms"
        f"   ratio {a / b:5.1f}   (cpu {ca * 1000:5.0f} / {cb * 1000:4.0f} ms)   ({target})"
    )


def findscu_keys() -> list[str]:
    """``-k`` arguments for every key of the identifier ``tuiviewer find`` sends."""
    identifier = build_identifier(FindQuery())
    keys: list[str] = []
    for element in identifier:
        value = "" if element.value is None else str(element.value)
        keys += ["-k", f"{element.keyword}={value}" if value else element.keyword]
    return keys


def run(orthanc: Orthanc, studies: int, repeat: int) -> None:
    ct = get_testdata_file("CT_small.dcm", download=False)
    assert ct is not None
    node = f"{orthanc.aet}@{orthanc.host}:{orthanc.dicom_port}"
    compare("dump", [TUIVIEWER, "dump", ct], ["dcmdump", ct], repeat, "target ≤ 120 ms")
    installed = [sys.executable, "-S", "-m", "tuiviewer", "dump", ct]
    compare("dump -S", installed, ["dcmdump", ct], repeat, "as installed, target ≤ 120 ms")
    compare(
        "echo",
        [TUIVIEWER, "echo", node],
        ["echoscu", "-aec", orthanc.aet, orthanc.host, str(orthanc.dicom_port)],
        repeat,
        "no target",
    )
    findscu = ["findscu", "-S", "-aec", orthanc.aet, *findscu_keys()]
    compare(
        "find",
        [TUIVIEWER, "find", node],
        [*findscu, orthanc.host, str(orthanc.dicom_port)],
        repeat,
        f"{studies} studies, target ratio ≤ 2",
    )
    compare(
        "find -j",
        [TUIVIEWER, "find", "--json", node],
        [*findscu, orthanc.host, str(orthanc.dicom_port)],
        repeat,
        "pynetdicom path, no target",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--studies", type=int, default=1000, help="studies in the PACS (1000)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each command (5)")
    parser.add_argument("--load", action="store_true", help="only the run with the machine loaded")
    args = parser.parse_args(argv)
    for tool in ("dcmdump", "echoscu", "findscu"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} (dcmtk) is not installed.")
    # An installed package has its bytecode (pip compiles it); a checkout run with
    # PYTHONDONTWRITEBYTECODE would compile every module on every start instead.
    compileall.compile_dir(ROOT / "tuiviewer", quiet=1)
    with tempfile.TemporaryDirectory(prefix="tuiviewer-startup-") as tmp:
        work = Path(tmp)
        for name in ("CONFIG", "DATA", "LOG", "CACHE"):
            os.environ[f"TUIVIEWER_{name}_DIR"] = str(work / name.lower())
        with Orthanc(work / "orthanc") as orthanc:
            loaded, _ = load(orthanc, args.studies, 0.0)
            print(f"{args.studies} one-image studies loaded into Orthanc in {loaded:.1f} s")
            for state in (True,) if args.load else (False, True):
                with busy_machine(state) as described:
                    print(f"machine {described}, medians of {args.repeat} runs")
                    run(orthanc, args.studies, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
