"""How soon does a study a PACS is still sending show its first image, and how long does the
whole study take?

1. **First pixel.** An in-process C-GET SCP (the mini PACS of :mod:`tuiviewer.net.minipacs`,
   paced by tests/support/paced_pacs.py) sends a generated CT of ``--slices`` slices of 512×512
   (:func:`tuiviewer.dicom.datagen.write_ct_series`) at ``--rate`` MB/s (default 8). The real
   app runs under a pseudo-terminal on its worklist; the time is from Enter on the study's row
   to the first image bytes on the pty (half-block cells, or a Kitty/Sixel/iTerm2 image).
   Target ≤ 0.5 s; measured with Enter at once, and after a rest on the row (the app lists
   the study's instances while the reader rests, so Enter sends the first C-GET at once).
   ``--timeline`` prints each phase (benchmarks/first_pixel_probe.py). The peer figure of
   the same run is the time the same link needs for the
   whole first series, which is what the viewer waited for before. The same is measured from
   the Orthanc of part 2, unpaced, whose C-FIND answers faster than the Python mini PACS.
2. **Whole study.** Against a real Orthanc (unpaced), the retrieve Enter runs
   (:class:`tuiviewer.services.jobs.RetrieveJob` following the reader, on one association and
   on two, ``[pacs] associations``; in a child Python) against
   ``python -m pynetdicom getscu`` for the same study, alternating, ``--repeat`` times each;
   the ratio of medians, target ≤ 0.6.

Each figure is printed idle and, with ``--load``, also with every core kept busy
(benchmarks/loadgen.py ``busy_machine``).

    .venv/bin/python benchmarks/first_pixel.py [--slices 300] [--rate 8] [--load]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import pydicom  # noqa: E402
from loadgen import busy_machine  # noqa: E402

from tests.support.orthanc import Orthanc, store_datasets  # noqa: E402
from tests.support.paced_pacs import PacedPacs  # noqa: E402
from tuiviewer.config.nodes import Node, save_nodes  # noqa: E402
from tuiviewer.dicom.datagen import write_ct_series  # noqa: E402

#: What an image looks like on the pty: half-block cells, or a Kitty, Sixel or iTerm2 image.
IMAGE_MARKS = (b"\xe2\x96\x80", b"\xe2\x96\x84", b"\x1b_G", b"\x1bP", b"\x1b]1337;File")

#: ``--timeline``: print where the first pixel's time went (benchmarks/first_pixel_probe.py).
TIMELINE = False

_RETRIEVE = (
    "import sys\n"
    "from tuiviewer.config.nodes import Node\n"
    "from tuiviewer.net.retrieve import ReaderFocus\n"
    "from tuiviewer.services.jobs import RetrieveJob\n"
    "from tuiviewer.store import LocalStore\n"
    "aet, host, port, study, dest, lanes = sys.argv[1:]\n"
    "node = Node('bench', aet, host, int(port), dimse_timeout=60)\n"
    "job = RetrieveJob(node=node, study_uid=study, label='bench', focus=ReaderFocus(),\n"
    "                  associations=int(lanes))\n"
    "job.run(LocalStore(dest))\n"
    "sys.exit(0 if job.state == 'done' else f'{job.state}: {job.error}')\n"
)


def _env(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TMUX", "TEXTUAL"))}
    if TIMELINE:  # the probe, loaded as sitecustomize, notes each phase
        probe = work / "probe"
        probe.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "benchmarks" / "first_pixel_probe.py", probe / "sitecustomize.py")
        env["PYTHONPATH"] = f"{probe}:{env.get('PYTHONPATH', '')}"
        env["FIRST_PIXEL_TIMELINE"] = str(work / "timeline.txt")
    env.update(
        TERM="xterm-256color",
        COLORTERM="truecolor",
        PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
        TUIVIEWER_CONFIG_DIR=str(work / "config"),
        TUIVIEWER_DATA_DIR=str(work / "data"),
        TUIVIEWER_CACHE_DIR=str(work / "cache"),
        TUIVIEWER_LOG_DIR=str(work / "log"),
    )
    return env


def _read(fd: int, output: bytearray, wait: float) -> bool:
    ready, _, _ = select.select([fd], [], [], wait)
    if not ready:
        return True
    try:
        chunk = os.read(fd, 1 << 16)
    except OSError:
        return False
    output += chunk
    return bool(chunk)


def first_pixel(
    work: Path, node: Node, row_text: bytes, rest: float = 0.1, timeout: float = 120
) -> float:
    """Seconds from Enter on the worklist row to the first image bytes on the pty; Enter comes
    ``rest`` seconds after the row is shown (the app lists a study's instances once the reader
    has rested 0.3 s on its row: 0.1 s is a reader who does not wait)."""
    config = work / "config"
    config.mkdir(parents=True, exist_ok=True)
    save_nodes({node.name: node}, config / "nodes.toml")
    (config / "config.toml").write_text(f'[pacs]\ndefault_node = "{node.name}"\n')
    # An empty store (under the cache folder) and no state: everything is fetched. (Before,
    # only the data folder was emptied, so every run after the first found the study there.)
    for folder in ("data", "cache"):
        shutil.rmtree(work / folder, ignore_errors=True)
    pid, fd = pty.fork()
    if pid == 0:  # the child: the app on its worklist
        os.execvpe("tuiviewer", ["tuiviewer"], _env(work))
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    output = bytearray()
    try:
        deadline = time.monotonic() + timeout
        while row_text not in output:
            if time.monotonic() > deadline or not _read(fd, output, 0.05):
                raise SystemExit("The worklist never showed the study's row.")
        time.sleep(rest)  # the reader looks at the row
        while _read(fd, output, 0.05) and select.select([fd], [], [], 0)[0]:
            pass
        start = len(output)
        pressed = time.perf_counter()
        os.write(fd, b"\r")
        stamps: list[tuple[float, int]] = []
        while not any(mark in output[start:] for mark in IMAGE_MARKS):
            if time.monotonic() > deadline or not _read(fd, output, 0.01):
                raise SystemExit("No image reached the pty after Enter.")
            stamps.append((time.perf_counter() - pressed, len(output)))
        if os.environ.get("FIRST_PIXEL_DUMP"):
            for what in (b"Retrieving", b" arrived", b"slice 1/"):
                at = output.find(what, start)
                when = next((t for t, n in stamps if n > at), None) if at >= 0 else None
                print(f"    {what.decode()!r} at {when}")
        elapsed = time.perf_counter() - pressed
        if TIMELINE:
            _print_timeline(work / "timeline.txt", pressed, elapsed)
        if os.environ.get("FIRST_PIXEL_DUMP"):
            Path(os.environ["FIRST_PIXEL_DUMP"]).write_bytes(bytes(output[start:]))
        return elapsed
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)


def _print_timeline(path: Path, pressed: float, elapsed: float) -> None:
    """The probe's phases, in seconds after Enter, and the first image bytes on the pty."""
    time.sleep(0.2)  # the app's last notes
    lines = path.read_text().splitlines() if path.exists() else []
    phases = [(float(at) - pressed, phase) for at, phase in (ln.split(" ", 1) for ln in lines)]
    phases.append((elapsed, "image bytes on the pty"))
    for at, phase in sorted(phases):
        if at >= -0.001:
            print(f"    {at:6.3f} s  {phase}")
    path.unlink(missing_ok=True)


def _child(args: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{args[:4]} failed: {done.stdout}{done.stderr}")
    return elapsed


def _count(folder: Path) -> int:
    """Instance files under ``folder`` (the store's dot-named markers and folders, such as
    its pool of empty slots, are not instances)."""
    return sum(
        1
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def whole_study(
    work: Path, orthanc: Orthanc, study: str, slices: int, repeat: int, lanes: int
) -> str:
    ours: list[float] = []
    theirs: list[float] = []
    for attempt in range(repeat):
        dest = work / f"ours-{attempt}"
        ours.append(
            _child(
                [sys.executable, "-c", _RETRIEVE, orthanc.aet, orthanc.host,
                 str(orthanc.dicom_port), study, str(dest), str(lanes)]
            )
        )  # fmt: skip
        if _count(dest) != slices:
            raise SystemExit(f"tuiviewer wrote {_count(dest)} of {slices} instances.")
        shutil.rmtree(dest)
        dest = work / f"getscu-{attempt}"
        dest.mkdir()
        theirs.append(
            _child(
                [sys.executable, "-m", "pynetdicom", "getscu", "-q", "-S",
                 orthanc.host, str(orthanc.dicom_port), "-aec", orthanc.aet,
                 "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}",
                 "-od", str(dest)]
            )
        )  # fmt: skip
        if _count(dest) != slices:
            raise SystemExit(f"getscu wrote {_count(dest)} of {slices} files.")
        shutil.rmtree(dest)
    mine, reference = statistics.median(ours), statistics.median(theirs)
    return (
        f"  whole study ({lanes} association{'s' if lanes > 1 else ''}): tuiviewer "
        f"{mine:.2f} s, getscu {reference:.2f} s, "
        f"ratio {mine / reference:.2f} (target <= 0.6)"
    )


def run(
    work: Path, slices: int, rate: float, repeat: int, load: bool, first_only: bool = False
) -> None:
    paths = write_ct_series(work / "ct", slices=slices, rows=512, cols=512, seed=310)
    head = pydicom.dcmread(paths[0], stop_before_pixels=True)
    study = str(head.StudyInstanceUID)
    size = sum(p.stat().st_size for p in paths)
    today = time.strftime("%Y%m%d")
    series_s = size / (rate * 1e6)
    print(f"study: {slices} slices 512x512, {size / 1e6:.1f} MB; paced link {rate:g} MB/s")
    pacs = PacedPacs(
        work / "pacs", rate=rate * 1e6, ae_title="PACED", overrides={study: {"StudyDate": today}}
    )
    pacs.add(paths)
    port = pacs.start()
    orthanc = None if first_only else Orthanc(work / "orthanc")
    try:
        if orthanc is not None:
            orthanc.start()
            # Dated today, as the paced PACS says, so that the worklist lists it.
            dated = []
            for path in paths:
                ds = pydicom.dcmread(path)
                ds.StudyDate = today
                dated.append(ds)
            if store_datasets(orthanc.host, orthanc.dicom_port, orthanc.aet, dated) != slices:
                raise SystemExit("Orthanc did not store the whole study.")
            del dated
        node = Node("paced", "PACED", "127.0.0.1", port, dimse_timeout=60)
        name = str(head.PatientName).replace("^", " ").encode()
        for loaded in [False, True] if load else [False]:
            with busy_machine(loaded) as state:
                print(f"{state} (load average {os.getloadavg()[0]:.1f}):")
                for rest, how in ((0.1, "Enter at once"), (2.5, "after a 2.5 s rest")):
                    for _ in range(repeat if first_only else 1):
                        pixel = first_pixel(work / "app", node, name, rest)
                        print(
                            f"  first pixel, {how}: {pixel:.2f} s after Enter (target <= 0.5 s);"
                            f" the first series whole over this link: {series_s:.1f} s; "
                            f"ratio {pixel / series_s:.3f}"
                        )
                if orthanc is None:
                    continue
                direct = Node("orthanc", orthanc.aet, orthanc.host, orthanc.dicom_port)
                pixel = first_pixel(work / "app", direct, name)
                print(f"  first pixel from Orthanc (unpaced, its C-FIND in C++): {pixel:.2f} s")
                for lanes in (1, 2):
                    print(whole_study(work, orthanc, study, slices, repeat, lanes))
    finally:
        if orthanc is not None:
            orthanc.stop()
        pacs.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--slices", type=int, default=300, help="CT slices to generate (300)")
    parser.add_argument("--rate", type=float, default=8.0, help="paced link, MB/s (8)")
    parser.add_argument("--repeat", type=int, default=3, help="whole-study runs of each (3)")
    parser.add_argument("--load", action="store_true", help="also with every core busy")
    parser.add_argument(
        "--first-only", action="store_true", help="only the paced first pixel, --repeat times"
    )
    parser.add_argument(
        "--timeline", action="store_true", help="where the first pixel's time goes, by phase"
    )
    args = parser.parse_args(argv)
    global TIMELINE
    TIMELINE = args.timeline
    with tempfile.TemporaryDirectory(prefix="tuiviewer-first-pixel-") as tmp:
        run(Path(tmp), args.slices, args.rate, args.repeat, args.load, args.first_only)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
