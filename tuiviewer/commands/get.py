"""``tuiviewer get NODE --study UID [--series UID]... [--dest DIR] [--move] [--resume]``.

Retrieves into the local store (or ``--dest``) through the same core as the retrieve queue;
progress goes to stderr on a terminal, the summary to stdout, and the exit code says whether
everything, part or nothing arrived.
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, TextIO

from tuiviewer.commands.common import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    is_tty,
    print_traces,
    resolve,
    run_cancellable,
)
from tuiviewer.config.nodes import Node
from tuiviewer.exceptions import TuiviewerError
from tuiviewer.net.errors import DimseStatusError
from tuiviewer.net.retrieve import RetrieveProgress, RetrieveResult
from tuiviewer.net.trace import AssociationTrace
from tuiviewer.net.transport import resume_study, retrieve_study
from tuiviewer.safetext import clean
from tuiviewer.store import (
    InvalidUIDError,
    LocalStore,
    foreign_uid,
    format_size,
    is_uid_name,
)


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """The parsed ``tuiviewer get`` command line."""
    return run_get(
        args.node,
        args.study,
        args.series,
        args.dest,
        args.move,
        args.trace,
        resume=args.resume,
        stdout=stdout,
        stderr=stderr,
    )


def _progress_line(p: RetrieveProgress) -> str:
    total = "?" if p.total is None else str(p.total)
    text = f"{p.done}/{total} instances  {p.bytes / 1e6:.1f} MB  {p.mb_per_s:.1f} MB/s"
    if p.failed:
        text += f"  {p.failed} failed"
    eta = p.eta_s
    if eta is not None:
        text += f"  ETA {eta:.0f} s"
    return text


def run_get(
    node_text: str,
    study: str,
    series: Sequence[str] | None = None,
    dest: Path | None = None,
    move: bool = False,
    trace: bool = False,
    *,
    resume: bool = False,
    stdout: TextIO,
    stderr: TextIO,
    nodes: dict[str, Node] | None = None,
) -> int:
    """``tuiviewer get NODE --study UID [--series UID]... [--dest DIR] [--move] [--resume]``.

    Instances go to the local store, or with ``dest`` to ``DIR/<study>/<series>/<sop>.dcm``.
    Progress lines go to ``stderr`` when it is a terminal; the summary goes to ``stdout``.
    ``resume`` fetches only the instances not yet in the store. Ctrl-C cancels (C-CANCEL)
    and keeps what arrived.
    """
    try:
        for uid, what in [(study, "Study"), *((u, "Series") for u in series or ())]:
            foreign_uid(uid, f"{what} Instance UID")
            if not is_uid_name(uid):
                # Some archives hold such UIDs; ask for it as given, as getscu does.
                print(
                    f"tuiviewer get: note: {what} Instance UID {uid!r} is not a conformant "
                    "DICOM UID; asking the PACS for it anyway.",
                    file=stderr,
                )
    except InvalidUIDError as exc:
        print(f"tuiviewer get: {exc.message}", file=stderr)
        return EXIT_USAGE
    node = resolve(node_text, "get", stderr, nodes)
    if node is None:
        return EXIT_USAGE
    if move and node.kind == "dicomweb":
        print(
            f"tuiviewer get: {node.describe()} is a DICOMweb node; it retrieves over WADO-RS, "
            "so --move does not apply.",
            file=stderr,
        )
        return EXIT_USAGE
    try:
        store = LocalStore(root=dest) if dest is not None else LocalStore()
    except TuiviewerError as exc:
        print(f"tuiviewer get: {exc.message}", file=stderr)
        return EXIT_FAILURE
    tty = is_tty(stderr)
    shown = [0]

    def on_progress(p: RetrieveProgress) -> None:
        line = _progress_line(p)
        print("\r" + line.ljust(shown[0]), end="", file=stderr, flush=True)
        shown[0] = len(line)

    retrieve_trace, find_trace = AssociationTrace(), AssociationTrace()
    method: Literal["move"] | None = "move" if move else None
    operation = resume_study if resume else retrieve_study

    def work(cancel: threading.Event) -> RetrieveResult:
        return operation(
            node,
            study,
            store=store,
            series_uids=list(series) if series else None,
            method=method,
            progress=on_progress if tty else None,
            cancel=cancel,
            trace=retrieve_trace,
            find_trace=find_trace,
        )

    try:
        result: RetrieveResult = run_cancellable(work)
    except TuiviewerError as exc:
        if shown[0]:
            print(file=stderr)
        print(f"tuiviewer get: {exc.message}", file=stderr)
        if trace:
            print_traces([find_trace, retrieve_trace], stderr)
        return EXIT_FAILURE
    if shown[0]:
        print(file=stderr)
    if trace:
        print_traces([find_trace, retrieve_trace], stderr)
    return _report_get(result, store, resume, stdout, stderr)


def _report_get(
    result: RetrieveResult, store: LocalStore, resume: bool, stdout: TextIO, stderr: TextIO
) -> int:
    count = len(result.received)
    if resume and result.total == 0:
        print(f"Nothing to resume: study {result.study_uid} is complete in the store.", file=stdout)
        return EXIT_OK
    if not count and not (
        result.completed or result.failed or result.cancelled or result.error or result.refused
    ):
        print(
            f"tuiviewer get: the PACS sent no instance of study {result.study_uid}; "
            "it may not hold that study.",
            file=stderr,
        )
        return EXIT_FAILURE
    of = f" of {result.total}" if result.total is not None else ""
    rate = result.bytes / 1e6 / result.elapsed_s if result.elapsed_s > 0 else 0.0
    noun = "instance" if count == 1 else "instances"
    where = str(store.study_dir(result.study_uid))
    print(
        f"Retrieved {count}{of} {noun} ({format_size(result.bytes)}) of study {result.study_uid} "
        f"in {result.elapsed_s:.1f} s ({rate:.1f} MB/s) into {where!r}.",
        file=stdout,
    )
    if result.warning:
        print(f"{result.warning} sub-operations completed with warnings.", file=stdout)
    for sop, reason in result.refused:
        print(f"tuiviewer get: instance {clean(sop)} not kept: {clean(reason)}", file=stderr)
    for call in result.rejected_calls:
        print(f"tuiviewer get: our storage SCP {clean(call)}.", file=stderr)
    if result.failed or result.failed_sops:
        print(
            f"tuiviewer get: {result.failed} sub-operations failed at the PACS.",
            file=stderr,
        )
        for sop in result.failed_sops:
            print(f"  failed: {clean(sop)}", file=stderr)
    if result.cancelled:
        print(
            f"tuiviewer get: cancelled; the {count} {noun} received are kept "
            "(--resume fetches the rest).",
            file=stderr,
        )
        return EXIT_PARTIAL
    if result.error is not None:
        print(
            f"tuiviewer get: {result.error.message} The {count} {noun} received are kept; "
            "run again with --resume to fetch the rest.",
            file=stderr,
        )
        # The PACS answered with a failure status after some sub-operations: a partial
        # failure. A dead association is a failure whatever arrived before.
        return EXIT_PARTIAL if isinstance(result.error, DimseStatusError) else EXIT_FAILURE
    if result.partial:
        return EXIT_PARTIAL
    return EXIT_OK
