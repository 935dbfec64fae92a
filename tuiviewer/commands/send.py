"""``tuiviewer send NODE PATH...``: C-STORE files and folders (recursively) to a node."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

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
from tuiviewer.net.send import SendProgress
from tuiviewer.net.trace import AssociationTrace
from tuiviewer.net.transport import send_files


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """The parsed ``tuiviewer send`` command line."""
    return run_send(args.node, args.paths, args.trace, stdout=stdout, stderr=stderr)


def run_send(
    node_text: str,
    paths: Sequence[Path],
    trace: bool = False,
    *,
    stdout: TextIO,
    stderr: TextIO,
    nodes: dict[str, Node] | None = None,
) -> int:
    """``tuiviewer send NODE PATH...``: C-STORE files and folders (recursively)."""
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        print(f"tuiviewer send: {str(missing[0])!r}: no such file or folder.", file=stderr)
        return EXIT_USAGE
    node = resolve(node_text, "send", stderr, nodes)
    if node is None:
        return EXIT_USAGE
    tty = is_tty(stderr)
    shown = [0]

    def on_progress(p: SendProgress) -> None:
        line = f"{p.done}/{p.total} files  {p.bytes / 1e6:.1f} MB"
        if p.failed:
            line += f"  {p.failed} failed"
        print("\r" + line.ljust(shown[0]), end="", file=stderr, flush=True)
        shown[0] = len(line)

    first_trace = AssociationTrace()
    try:
        result = run_cancellable(
            lambda cancel: send_files(
                node,
                [Path(p) for p in paths],
                progress=on_progress if tty else None,
                cancel=cancel,
                trace=first_trace,
            )
        )
    except TuiviewerError as exc:
        if shown[0]:
            print(file=stderr)
        print(f"tuiviewer send: {exc.message}", file=stderr)
        if trace:
            print_traces([first_trace], stderr)
        return EXIT_FAILURE
    if shown[0]:
        print(file=stderr)
    if trace:
        print_traces(result.traces, stderr)
    for _path, reason in result.failed:
        print(f"tuiviewer send: {reason}", file=stderr)
    for _path, reason in result.warnings:
        print(f"tuiviewer send: warning: {reason}", file=stderr)
    print(
        f"Sent {len(result.sent)} files to {node.describe()}; {len(result.failed)} failed, "
        f"{len(result.skipped_not_dicom)} skipped (not DICOM).",
        file=stdout,
    )
    if result.cancelled:
        print("tuiviewer send: cancelled.", file=stderr)
    if not result.sent and not result.failed:
        print("tuiviewer send: no DICOM file found to send.", file=stderr)
        return EXIT_FAILURE
    if result.failed or result.cancelled:
        return EXIT_PARTIAL if result.sent else EXIT_FAILURE
    return EXIT_OK
