"""Two transports, measured against their peers in the same run.

1. **Receiving**: instances per second that ``tuiviewer listen`` takes in from dcmtk's
   ``storescu`` (a generated CT of ``--slices`` slices of 512x512), as a ratio to dcmtk's own
   ``storescp`` receiving the same files on the same machine (target >= 0.8). Our listener
   fsyncs every instance before acknowledging it; storescp does not.
2. **WADO-RS**: ``tuiviewer get URL`` (WADO-RS, series by series, streamed to disk) of the same
   study from Orthanc with its DICOMweb plugin, as a ratio of wall time to ``tuiviewer get
   AET@HOST:PORT`` (C-GET) of the same study from the same Orthanc.

Each client runs in a child process, ``--repeat`` times, alternating; medians are compared.
``--load`` runs a busy loop on every core meanwhile (the machine loaded).

    .venv/bin/python benchmarks/listen.py --slices 300
    .venv/bin/python benchmarks/listen.py --slices 300 --load
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import busy_machine  # noqa: E402
from pydicom import dcmread  # noqa: E402

from tests.support.orthanc import Orthanc, OrthancConfig, store_files  # noqa: E402
from tests.support.ports import LOOPBACK, free_port  # noqa: E402
from tuiviewer.dicom.datagen import write_ct_series  # noqa: E402

_LISTEN = (
    "import sys\n"
    "from tuiviewer.commands.listen import run_listen\n"
    "sys.exit(run_listen(ae_title='READER', port=int(sys.argv[1]), allow='CLINIC',"
    " service=False, config_path=None, stdout=sys.stdout, stderr=sys.stderr))\n"
)
_GET = (
    "import sys\n"
    "from pathlib import Path\n"
    "from tuiviewer.commands.get import run_get\n"
    "sys.exit(run_get(sys.argv[1], sys.argv[2], dest=Path(sys.argv[3]),"
    " stdout=sys.stdout, stderr=sys.stderr, nodes={}))\n"
)


def _wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"Nothing listens on port {port} after {timeout} s.")


@contextmanager
def _server(args: list[str], port: int, env: dict[str, str]) -> Iterator[None]:
    child = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        _wait_port(port)
        yield
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _push(paths: list[Path], port: int) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        ["storescu", "-aet", "CLINIC", "-aec", "READER", LOOPBACK, str(port),
         *map(str, paths)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"storescu failed: {done.stderr[-2000:]}")
    return elapsed


def receive(work: Path, paths: list[Path], repeat: int) -> tuple[float, float]:
    """Median instances/s of our listener and of storescp."""
    ours: list[float] = []
    theirs: list[float] = []
    # TCP_NODELAY for DCMTK, as the Orthanc fixture does: otherwise every answer waits ~40 ms.
    env = {**os.environ, "TCP_NODELAY": "1"}
    for attempt in range(repeat):
        port = free_port()
        cache = work / f"cache-{attempt}"
        listen_env = {**env, "TUIVIEWER_CACHE_DIR": str(cache)}
        with _server([sys.executable, "-c", _LISTEN, str(port)], port, listen_env):
            elapsed = _push(paths, port)
        got = sum(1 for _ in (cache / "store").rglob("*.dcm"))
        if got != len(paths):
            raise SystemExit(f"tuiviewer listen stored {got} of {len(paths)} instances.")
        ours.append(len(paths) / elapsed)
        shutil.rmtree(cache)

        port = free_port()
        out = work / f"storescp-{attempt}"
        out.mkdir()
        with _server(["storescp", "-aet", "READER", "-od", str(out), str(port)], port, env):
            elapsed = _push(paths, port)
        got = sum(1 for p in out.iterdir() if p.is_file())
        if got != len(paths):
            raise SystemExit(f"storescp stored {got} of {len(paths)} instances.")
        theirs.append(len(paths) / elapsed)
        shutil.rmtree(out)
    print(f"  tuiviewer listen  {statistics.median(ours):7.1f} instances/s  (runs: "
          f"{', '.join(f'{r:.0f}' for r in ours)})")  # fmt: skip
    print(f"  dcmtk storescp    {statistics.median(theirs):7.1f} instances/s  (runs: "
          f"{', '.join(f'{r:.0f}' for r in theirs)})")  # fmt: skip
    return statistics.median(ours), statistics.median(theirs)


def _get(node: str, study: str, dest: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _GET, node, study, str(dest)],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"tuiviewer get {node} failed: {done.stdout}{done.stderr}")
    return elapsed


def retrieve(work: Path, paths: list[Path], repeat: int) -> tuple[float, float]:
    """Median seconds of WADO-RS and of C-GET for the study."""
    orthanc = Orthanc(work / "orthanc", OrthancConfig(dicomweb=True))
    orthanc.start()
    try:
        stored = store_files(orthanc.host, orthanc.dicom_port, orthanc.aet, paths)
        if stored != len(paths):
            raise SystemExit(f"Orthanc stored {stored} of {len(paths)} instances.")
        study = str(dcmread(paths[0], stop_before_pixels=True).StudyInstanceUID)
        dimse = f"{orthanc.aet}@{orthanc.host}:{orthanc.dicom_port}"
        web: list[float] = []
        get: list[float] = []
        for attempt in range(repeat):
            for node, times in ((orthanc.dicomweb_url, web), (dimse, get)):
                dest = work / f"get-{attempt}-{len(times)}"
                times.append(_get(node, study, dest))
                got = sum(1 for _ in dest.rglob("*.dcm"))
                if got != len(paths):
                    raise SystemExit(f"tuiviewer get {node} wrote {got} of {len(paths)} files.")
                shutil.rmtree(dest)
    finally:
        orthanc.stop()
    print(f"  WADO-RS           {statistics.median(web):7.2f} s  (runs: "
          f"{', '.join(f'{t:.2f}' for t in web)})")  # fmt: skip
    print(f"  C-GET             {statistics.median(get):7.2f} s  (runs: "
          f"{', '.join(f'{t:.2f}' for t in get)})")  # fmt: skip
    return statistics.median(web), statistics.median(get)


def run(work: Path, slices: int, repeat: int, load: bool, receive_only: bool = False) -> None:
    for tool in ("storescu", "storescp"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} (dcmtk) is not installed.")
    paths = write_ct_series(work / "ct", slices=slices, rows=512, cols=512, seed=900)
    size = sum(p.stat().st_size for p in paths)
    print(f"study             {slices} slices 512x512, {size / 1e6:.1f} MB")
    with busy_machine(load) as state:
        print(f"machine           {state}")
        print("receiving (dcmtk storescu pushes the study)")
        ours, theirs = receive(work, paths, repeat)
        print(f"  ratio             {ours / theirs:.2f}  (tuiviewer / storescp, target >= 0.8)")
        if receive_only:
            return
        print("retrieving from Orthanc (tuiviewer get)")
        web, get = retrieve(work, paths, repeat)
        print(f"  ratio             {web / get:.2f}  (WADO-RS time / C-GET time)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--slices", type=int, default=300, help="CT slices to generate (300)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each (3)")
    parser.add_argument("--load", action="store_true", help="a busy loop on every core meanwhile")
    parser.add_argument(
        "--receive-only", action="store_true", help="only the listener against storescp"
    )
    parser.add_argument("--keep", type=Path, help="work in DIR and keep it (default: temporary)")
    args = parser.parse_args(argv)
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        run(args.keep, args.slices, args.repeat, args.load, args.receive_only)
    else:
        with tempfile.TemporaryDirectory(prefix="tuiviewer-bench-") as tmp:
            run(Path(tmp), args.slices, args.repeat, args.load, args.receive_only)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
