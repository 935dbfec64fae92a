"""Prototype: how fast could a C-GET receiver without pynetdicom take a whole study?

Issue 10 wants the whole-study retrieve at ≤ 0.6× pynetdicom's getscu against Orthanc. A
py-spy profile of the retrieve (``--gil``) puts ~80 % of its run's CPU in pynetdicom's
per-PDU and per-message machinery (the DUL and association reactors, decoding P-DATA,
encoding each C-STORE-RSP with pydicom), ~15 % in ours, and fsync is not the bound (it runs
in the writer's background thread, ~4 ms an instance, overlapped with receiving). This
measures the other way, the one ``tuiviewer find`` took (net/leanfind.py): one study-level
C-GET over :class:`tuiviewer.net.upperlayer.UpperLayer` (the SCP role for CT Image Storage
added to its A-ASSOCIATE-RQ here), each C-STORE's data set written raw into a store slot with
the product's file meta bytes, committed (fsync, rename) on ``--commits`` threads, and a
hand-made C-STORE-RSP. Against the product's retrieve (RetrieveJob, one association) and
getscu, in child Pythons, alternating, on one Orthanc. No checks a product needs (identity
of each instance against the request, refusals, cancel, timeouts): a floor, not a client.

    .venv/bin/python benchmarks/lean_get.py [--slices 300] [--repeat 3] [--commits 1] [--load]
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
sys.path.insert(0, str(ROOT / "benchmarks"))

import pydicom  # noqa: E402
from first_pixel import _RETRIEVE, _count  # noqa: E402
from loadgen import busy_machine  # noqa: E402

from tests.support.orthanc import Orthanc, store_datasets  # noqa: E402
from tuiviewer.dicom.datagen import write_ct_series  # noqa: E402

_LEAN_GET = r'''
import struct, sys
from concurrent.futures import ThreadPoolExecutor
from tuiviewer.config.nodes import Node
from tuiviewer.net import upperlayer
from tuiviewer.net.leanfind import _command, _ui, encode_identifier
from tuiviewer.net.move import file_meta_bytes, instance_identity
from tuiviewer.net.upperlayer import UpperLayer, _item, command_values
from tuiviewer.store import LocalStore

GET, CT = "1.2.840.10008.5.1.4.1.2.2.3", "1.2.840.10008.5.1.4.1.1.2"
SYNTAXES = ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"]
plain_rq = upperlayer.associate_rq

def with_role(called, calling, contexts):
    """The A-ASSOCIATE-RQ with an SCP/SCU Role Selection item (PS3.7 D.3.3.4) for CT."""
    body = bytearray(plain_rq(called, calling, contexts)[6:])
    role = _item(0x54, struct.pack(">H", len(CT)) + CT.encode() + b"\x00\x01")
    user = body.rfind(b"\x50\x00")  # the User Information item is the last
    (length,) = struct.unpack_from(">H", body, user + 2)
    body[user + 2 : user + 4] = struct.pack(">H", length + len(role))
    body += role
    return struct.pack(">BxI", 1, len(body)) + bytes(body)

upperlayer.associate_rq = with_role
aet, host, port, study, dest, commits = sys.argv[1:]
store = LocalStore(dest)
link = UpperLayer(Node("bench", aet, host, int(port), dimse_timeout=60))
link.open([(1, GET, SYNTAXES), (3, CT, SYNTAXES)])
implicit = link.contexts[1][1] == SYNTAXES[1]
keys = {0x00080052: ("CS", "STUDY"), 0x0020000D: ("UI", study)}
rq = _command([(0x0002, _ui(GET)), (0x0100, struct.pack("<H", 0x0010)),
               (0x0110, struct.pack("<H", 1)), (0x0700, struct.pack("<H", 2)),
               (0x0800, struct.pack("<H", 0x0000))])
link.send_message(1, rq, encode_identifier(keys, implicit=implicit))
pool = ThreadPoolExecutor(int(commits))
pending = []
while True:
    context, command, data = link.receive_message("C-GET")
    values = command_values(command)
    (field,) = struct.unpack("<H", values[0x0100])
    if field == 0x0001:  # C-STORE-RQ
        sop = values[0x1000].rstrip(b"\x00 ").decode()
        sop_class = values[0x0002].rstrip(b"\x00 ").decode()
        syntax = link.contexts[context][1]
        series = instance_identity(data, syntax).series_uid
        handle, temp = store.open_temp(study, series, sop)
        with handle:
            handle.write(file_meta_bytes(sop_class, sop, syntax))
            handle.write(data)
        pending.append(pool.submit(store.commit, temp, study, series, sop))
        rsp = _command([(0x0002, _ui(sop_class)), (0x0100, struct.pack("<H", 0x8001)),
                        (0x0120, values[0x0110]), (0x0800, struct.pack("<H", 0x0101)),
                        (0x0900, struct.pack("<H", 0x0000)), (0x1000, _ui(sop))])
        link.send_message(context, rsp, None)
    elif field == 0x8010 and struct.unpack("<H", values[0x0900])[0] != 0xFF00:
        break  # the final C-GET-RSP
for future in pending:
    future.result()
store.flush()
link.release()
'''


def _timed(args: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{args[:3]} failed: {done.stdout}{done.stderr[-3000:]}")
    return time.perf_counter() - started


def run(work: Path, slices: int, repeat: int, commits: int, load: bool) -> None:
    paths = write_ct_series(work / "ct", slices=slices, rows=512, cols=512, seed=310)
    study = str(pydicom.dcmread(paths[0], stop_before_pixels=True).StudyInstanceUID)
    with Orthanc(work / "orthanc") as orthanc:
        if (
            store_datasets(
                orthanc.host, orthanc.dicom_port, orthanc.aet, [pydicom.dcmread(p) for p in paths]
            )
            != slices
        ):
            raise SystemExit("Orthanc did not store the whole study.")
        where = [orthanc.aet, orthanc.host, str(orthanc.dicom_port), study]
        for loaded in [False, True] if load else [False]:
            with busy_machine(loaded) as state:
                times: dict[str, list[float]] = {"lean": [], "product": [], "getscu": []}
                for attempt in range(repeat):
                    for name in times:
                        dest = work / f"{name}-{attempt}"
                        if name == "lean":
                            args = [
                                sys.executable,
                                "-c",
                                _LEAN_GET,
                                *where,
                                str(dest),
                                str(commits),
                            ]
                        elif name == "product":
                            args = [sys.executable, "-c", _RETRIEVE, *where, str(dest), "1"]
                        else:
                            dest.mkdir()
                            args = [sys.executable, "-m", "pynetdicom", "getscu", "-q", "-S",
                                    orthanc.host, str(orthanc.dicom_port), "-aec", orthanc.aet,
                                    "-k", "QueryRetrieveLevel=STUDY",
                                    "-k", f"StudyInstanceUID={study}",
                                    "-od", str(dest)]  # fmt: skip
                        times[name].append(_timed(args))
                        if _count(dest) != slices:
                            raise SystemExit(f"{name} wrote {_count(dest)} of {slices} files.")
                        shutil.rmtree(dest)
                peer = statistics.median(times["getscu"])
                print(f"{state} (load average {os.getloadavg()[0]:.1f}), median of {repeat}:")
                for name, values in times.items():
                    mid = statistics.median(values)
                    print(f"  {name:8} {mid:6.2f} s   ratio to getscu {mid / peer:.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--slices", type=int, default=300, help="CT slices to generate (300)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each (3)")
    parser.add_argument("--commits", type=int, default=1, help="commit threads (1)")
    parser.add_argument("--load", action="store_true", help="also with every core busy")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tuiviewer-lean-get-") as tmp:
        run(Path(tmp), args.slices, args.repeat, args.commits, args.load)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
