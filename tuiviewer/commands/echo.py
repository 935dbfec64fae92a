"""``tuiviewer echo NODE``: C-ECHO a node (or a one-study QIDO-RS search of a DICOMweb node) and
print the round-trip time."""

from __future__ import annotations

import argparse
from typing import TextIO

from tuiviewer.commands.common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, print_traces, resolve
from tuiviewer.config.nodes import Node
from tuiviewer.net.errors import NetError
from tuiviewer.net.trace import AssociationTrace


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """The parsed ``tuiviewer echo`` command line."""
    return run_echo(args.node, trace=args.trace, stdout=stdout, stderr=stderr)


def run_echo(
    node_text: str,
    *,
    trace: bool = False,
    stdout: TextIO,
    stderr: TextIO,
    nodes: dict[str, Node] | None = None,
) -> int:
    """``tuiviewer echo NODE``: C-ECHO and print the round-trip time."""
    node = resolve(node_text, "echo", stderr, nodes)
    if node is None:
        return EXIT_USAGE
    if node.kind == "dimse":
        # The DIMSE call alone: the transport layer would bring retrieve, send and DICOMweb.
        from tuiviewer.net.echo import echo
    else:
        from tuiviewer.net.transport import echo
    record = AssociationTrace()
    try:
        result = echo(node, trace=record)
    except NetError as exc:
        print(f"tuiviewer echo: {exc.message}", file=stderr)
        return EXIT_FAILURE
    finally:
        if trace:
            print_traces([record], stderr)
    if node.kind == "dicomweb":
        text = f"QIDO-RS echo to {node.describe()}: success (HTTP {result.status})"
    else:
        text = f"C-ECHO to {node.describe()}: success (0x{result.status:04X})"
    print(f"{text} in {result.rtt_ms:.1f} ms.", file=stdout)
    return EXIT_OK
