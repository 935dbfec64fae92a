"""Peak memory and time on hostile files, beside dcmdump on the same files.

Deflate bombs (262 KB, 1.5 MB and 4 MB files that inflate to 270 MiB, 1.5 GiB and 4 GiB) and a
file of a million tiny elements (10 MB), each read by a child process with RLIMIT_AS 3 GiB:

* ``read``  — :func:`tuiviewer.dicom.reading.read_dicom` (what scan/render/SR/send use);
* ``dump``  — ``tuiviewer dump FILE`` (streams element by element);
* ``tree``  — the browser opening the file, until its tag tree shows the first screen (a
  headless Textual app: the preview's rows are in the tree), counted from the process start
  and from the moment the scan selected the file, and until the whole file is in;
* ``dcmdump FILE`` for comparison (dcmtk; it inflates everything it is given).

Targets (issue 15): peak RSS ≤ 1.5 GiB for any input file; first screen of the tag tree ≤ 2 s
(once the file is selected: the scan of the folder comes before, and is measured with it).

    .venv/bin/python benchmarks/hostile.py [--keep /tmp/bench/hostile] [--quick]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.hostile import (  # noqa: E402
    MEMORY_TARGET,
    Limited,
    deflate_bomb,
    element_bomb,
    run_with_memory_limit,
)

_READ = """
import sys
from tuiviewer.dicom.reading import read_dicom
from tuiviewer.exceptions import TuiviewerError
try:
    read_dicom(sys.argv[1])
    print("read")
except TuiviewerError as exc:
    print("refused:", exc.message)
"""

_TREE = """
import asyncio, sys, time
from pathlib import Path
from tuiviewer.app import make_app
from tuiviewer.config.settings import Config
from tuiviewer.widgets.tag_tree import TagTree

async def main() -> None:
    started = time.monotonic()
    app = make_app(Config(), [Path(sys.argv[1])])
    first = whole = chosen = None
    async with app.run_test(size=(120, 40)) as pilot:
        deadline = started + 600
        while time.monotonic() < deadline:
            await pilot.pause(0.02)
            screen = app.screen
            loaded = getattr(screen, "loaded", None)
            tree = screen.query(TagTree)
            if chosen is None and getattr(screen, "_requested", None) is not None:
                chosen = time.monotonic() - started
            if loaded is not None and tree and tree.first().rows and first is None:
                first = time.monotonic() - started
            if loaded is not None and not loaded.partial and tree and tree.first().rows:
                whole = time.monotonic() - started
                break
    def shown(seconds: float | None) -> str:
        return "never" if seconds is None else f"{seconds:.2f} s"

    after = None if first is None or chosen is None else first - chosen
    print(f"first screen {shown(first)} ({shown(after)} after the file was selected), "
          f"whole file {shown(whole)}")

asyncio.run(main())
"""


def _mib(n: int) -> str:
    return f"{n / 2**20:7.0f} MiB"


def _line(what: str, ours: Limited, theirs: Limited | None, note: str = "") -> None:
    text = f"  {what:<7} {ours.seconds:7.2f} s {_mib(ours.peak_rss)}"
    if theirs is not None and theirs.seconds > 0:
        time_ratio = ours.seconds / theirs.seconds
        rss_ratio = ours.peak_rss / theirs.peak_rss
        text += (
            f"   dcmdump {theirs.seconds:7.2f} s {_mib(theirs.peak_rss)}"
            f"   ×{time_ratio:5.2f} time ×{rss_ratio:5.2f} RSS"
        )
    verdict = "ok" if ours.peak_rss <= MEMORY_TARGET else "OVER 1.5 GiB"
    print(f"{text}  [{verdict}] {note}".rstrip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="folder for the files (reused if present)")
    parser.add_argument("--quick", action="store_true", help="smaller bombs, 200k elements")
    args = parser.parse_args(argv)
    folder = args.keep or Path(tempfile.mkdtemp(prefix="tuiviewer-hostile-"))
    folder.mkdir(parents=True, exist_ok=True)
    home = folder / "home"
    env = {
        "TUIVIEWER_CONFIG_DIR": str(home / "config"),
        "TUIVIEWER_LOG_DIR": str(home / "log"),
        "TUIVIEWER_DATA_DIR": str(home / "data"),
        "TUIVIEWER_CACHE_DIR": str(home / "cache"),
    }
    dcmdump = shutil.which("dcmdump")
    sizes = [270, 1536] if args.quick else [270, 1536, 4095]
    cases: list[tuple[str, Path]] = []
    for mib in sizes:
        path = folder / f"bomb-{mib}.dcm"
        if not path.exists():
            deflate_bomb(path, mib)
        cases.append((f"deflate bomb → {mib} MiB ({path.stat().st_size / 1e6:.2f} MB file)", path))
    count = 200_000 if args.quick else 1_000_000
    wide = folder / f"wide-{count}.dcm"
    if not wide.exists():
        element_bomb(wide, count)
    cases.append((f"{count:,} elements ({wide.stat().st_size / 1e6:.1f} MB file)", wide))

    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; RLIMIT_AS 3 GiB")
    for title, path in cases:
        print(title)
        theirs = None
        if dcmdump is not None:
            theirs = run_with_memory_limit([dcmdump, str(path)], timeout=900)
            if theirs.returncode != 0:
                error = theirs.stderr.strip().splitlines()[-1:] or ["?"]
                print(f"  dcmdump exit {theirs.returncode}: {error[0][:100]}")
        read = run_with_memory_limit([sys.executable, "-c", _READ, str(path)], env=env)
        _line("read", read, theirs, read.stdout.strip()[:70])
        dump = run_with_memory_limit(
            [sys.executable, "-m", "tuiviewer", "dump", str(path)], env=env, timeout=900
        )
        problem = (dump.stderr.strip() or dump.stdout.strip().splitlines()[-1])[:70]
        _line("dump", dump, theirs, problem if dump.returncode else "")
        tree = run_with_memory_limit([sys.executable, "-c", _TREE, str(path)], env=env, timeout=900)
        _line("tree", tree, None, tree.stdout.strip() or tree.stderr.strip()[-200:])
    if args.keep is None:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
