"""``tuiviewer echo NODE``: C-ECHO a node and print the round-trip time."""

from __future__ import annotations

import argparse
from typing import TextIO

from tuiviewer.commands.common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, print_traces, resolve
from tuiviewer.config.nodes import Node
from tuiviewer.net.echo import echo
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
    record = AssociationTrace()
    try:
        result = echo(node, trace=record)
    except NetError as exc:
        print(f"tuiviewer echo: {exc.message}", file=stderr)
        return EXIT_FAILURE
    finally:
        if trace:
            print_traces([record], stderr)
    print(
        f"C-ECHO to {node.describe()}: success (0x{result.status:04X}) in {result.rtt_ms:.1f} ms.",
        file=stdout,
    )
    return EXIT_OK
