"""How fast does ``tuiviewer get`` retrieve a CT study, compared with pynetdicom's getscu?

Starts an Orthanc (tests/support/orthanc.py), loads a generated CT of ``--slices`` slices of
512×512 (:func:`tuiviewer.dicom.datagen.write_ct_series`), then, in the same run, times
``tuiviewer get`` (the CLI engine :func:`tuiviewer.commands.get.run_get` in a child Python)
and ``python -m pynetdicom getscu`` for that study, ``--repeat`` times each, alternating.
It prints the median times, their ratio (target ≤ 1.0) and tuiviewer's peak resident memory
(target < 150 MB), measured by the kernel for the child process (``wait4`` rusage).

    .venv/bin/python benchmarks/retrieve.py --slices 300
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pydicom import dcmread  # noqa: E402

from tests.support.orthanc import Orthanc, store_files  # noqa: E402
from tuiviewer.dicom.datagen import write_ct_series  # noqa: E402

_TUIVIEWER_GET = (
    "import sys\n"
    "from pathlib import Path\n"
    "from tuiviewer.commands.get import run_get\n"
    "sys.exit(run_get(sys.argv[1], sys.argv[2], dest=Path(sys.argv[3]),"
    " stdout=sys.stdout, stderr=sys.stderr))\n"
)


def _run_child(args: list[str]) -> tuple[float, float, str]:
    """Run ``args``; return (wall seconds, peak RSS in MiB, captured output)."""
    started = time.perf_counter()
    child = subprocess.Popen(
        args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert child.stdout is not None
    output = child.stdout.read()
    _pid, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{args[:3]} failed with exit code {child.returncode}:\n{output}")
    # Linux reports ru_maxrss in KiB, macOS in bytes.
    peak = usage.ru_maxrss / (1024 * 1024) if sys.platform == "darwin" else usage.ru_maxrss / 1024
    return elapsed, peak, output


def _count(folder: Path) -> int:
    """Instance files under ``folder`` (the store's dot-named markers and folders, such as
    its pool of empty slots, are not instances)."""
    return sum(
        1
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def run(work: Path, slices: int, repeat: int) -> None:
    orthanc = Orthanc(work / "orthanc")
    orthanc.start()
    try:
        started = time.perf_counter()
        paths = write_ct_series(work / "ct", slices=slices, rows=512, cols=512, seed=300)
        generated = time.perf_counter() - started
        started = time.perf_counter()
        stored = store_files(orthanc.host, orthanc.dicom_port, orthanc.aet, paths)
        loaded = time.perf_counter() - started
        size = sum(p.stat().st_size for p in paths)
        study = str(dcmread(paths[0], stop_before_pixels=True).StudyInstanceUID)
        spec = f"{orthanc.aet}@{orthanc.host}:{orthanc.dicom_port}"
        print(f"study            {slices} slices 512x512, {size / 1e6:.1f} MB")
        print(f"generated        {generated:.1f} s; loaded into Orthanc in {loaded:.1f} s")
        if stored != slices:
            raise SystemExit(f"Orthanc stored {stored} of {slices} instances.")

        ours: list[float] = []
        theirs: list[float] = []
        peaks: list[float] = []
        for attempt in range(repeat):
            dest = work / f"tuiviewer-{attempt}"
            elapsed, peak, _out = _run_child(
                [sys.executable, "-c", _TUIVIEWER_GET, spec, study, str(dest)]
            )
            if _count(dest) != slices:
                raise SystemExit(f"tuiviewer get wrote {_count(dest)} of {slices} files.")
            ours.append(elapsed)
            peaks.append(peak)
            shutil.rmtree(dest)

            dest = work / f"getscu-{attempt}"
            dest.mkdir()
            elapsed, _peak, _out = _run_child(
                [
                    sys.executable, "-m", "pynetdicom", "getscu", "-q", "-S",
                    orthanc.host, str(orthanc.dicom_port), "-aec", orthanc.aet,
                    "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}",
                    "-od", str(dest),
                ]
            )  # fmt: skip
            if _count(dest) != slices:
                raise SystemExit(f"getscu wrote {_count(dest)} of {slices} files.")
            theirs.append(elapsed)
            shutil.rmtree(dest)

        mine, reference = statistics.median(ours), statistics.median(theirs)
        print(f"tuiviewer get    {mine:.2f} s  (runs: {', '.join(f'{t:.2f}' for t in ours)})")
        print(
            f"pynetdicom get   {reference:.2f} s  (runs: {', '.join(f'{t:.2f}' for t in theirs)})"
        )
        print(f"ratio            {mine / reference:.2f}  (target <= 1.0)")
        print(f"tuiviewer RSS    {max(peaks):.1f} MiB peak  (target < 150 MB)")
    finally:
        orthanc.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--slices", type=int, default=300, help="CT slices to generate (300)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each client (3)")
    parser.add_argument("--keep", type=Path, help="work in DIR and keep it (default: temporary)")
    args = parser.parse_args(argv)
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        run(args.keep, args.slices, args.repeat)
    else:
        with tempfile.TemporaryDirectory(prefix="tuiviewer-bench-") as tmp:
            run(Path(tmp), args.slices, args.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
