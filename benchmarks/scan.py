"""How fast does a folder scan show its first results, and how fast does it finish?

The study browser's feel depends on two numbers: the time until the first batch of instances
appears and the files per second of the whole scan. This script generates ``--files`` tiny CT
files with :func:`tuiviewer.dicom.datagen.write_many` (or reuses ``--keep DIR``), scans them with
:func:`tuiviewer.dicom.scanning.scan` into a :class:`~tuiviewer.dicom.index.StudyIndex`, and
prints both, with the peak resident memory.

    .venv/bin/python benchmarks/scan.py --files 2000
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

from tuiviewer.dicom.datagen import write_many
from tuiviewer.dicom.index import StudyIndex
from tuiviewer.dicom.scanning import ScanProgress, scan


def _peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def run(folder: Path) -> None:
    index = StudyIndex()
    last: list[ScanProgress] = []
    start = time.perf_counter()
    first_batch: float | None = None
    for batch in scan([folder], progress=last.append):
        if first_batch is None:
            first_batch = time.perf_counter() - start
        index.add(batch)
        index.patients()  # what the UI does after each batch
    total = time.perf_counter() - start
    done = last[-1]
    print(f"files            {done.files_seen}")
    print(f"instances        {done.instances} ({len(index)} indexed)")
    print(f"first batch      {first_batch if first_batch is not None else float('nan'):.3f} s")
    print(f"total            {total:.3f} s")
    print(f"files/s          {done.files_seen / total:.0f}")
    print(f"peak RSS         {_peak_rss_mib():.1f} MiB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000, help="files to generate (2000)")
    parser.add_argument(
        "--keep",
        type=Path,
        help="generate into DIR and keep it; reuse it if it already holds files",
    )
    args = parser.parse_args(argv)
    if args.keep is not None:
        folder: Path = args.keep
        if not folder.exists() or not any(folder.iterdir()):
            t = time.perf_counter()
            write_many(folder, count=args.files)
            print(f"generated        {args.files} files in {time.perf_counter() - t:.1f} s")
        run(folder)
        return 0
    with tempfile.TemporaryDirectory(prefix="tuiviewer-bench-") as tmp:
        t = time.perf_counter()
        write_many(Path(tmp), count=args.files)
        print(f"generated        {args.files} files in {time.perf_counter() - t:.1f} s")
        run(Path(tmp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
