"""What every sub-command shares: exit codes, naming a node, the association trace on stderr,
and running a network call in a thread so that Ctrl-C becomes a clean C-CANCEL.

Exit codes, for scripts: 0 success, 1 failure, 2 usage error (bad KEY=VALUE, unknown node, bad
UID), 3 partial failure (some sub-operations failed). Errors go to ``stderr`` without PHI.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from tuiviewer.exceptions import ConfigError

if TYPE_CHECKING:
    # Only for the signatures: `dump` imports this module too, and must not pay for the
    # network layer (pynetdicom) it never uses.
    from tuiviewer.config.nodes import Node
    from tuiviewer.net.trace import AssociationTrace

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3


def resolve(
    node_text: str, command: str, stderr: TextIO, nodes: dict[str, Node] | None
) -> Node | None:
    """The node ``node_text`` names (a nodes.toml name or ``AET@HOST:PORT``); None, with the
    reason on ``stderr``, when it names none."""
    from tuiviewer.config.nodes import resolve_node

    try:
        return resolve_node(node_text, nodes)
    except ConfigError as exc:
        print(f"tuiviewer {command}: {exc.message}", file=stderr)
        return None


def configure_limits(config_path: Path | None) -> str | None:
    """Apply ``[limits]`` of the configuration to every read of this process; the error
    message if the configuration is invalid."""
    from tuiviewer.config import limits
    from tuiviewer.config.settings import load_config

    try:
        limits.configure(load_config(config_path).limits)
    except ConfigError as exc:
        return exc.message
    return None


def print_traces(traces: Sequence[AssociationTrace | None], stderr: TextIO) -> None:
    """``--trace``: each association that got as far as proposing contexts, on ``stderr``."""
    for trace in traces:
        if trace is not None and (trace.contexts or trace.outcome or trace.events):
            print(trace.format(), file=stderr)


def is_tty(stream: TextIO) -> bool:
    """Whether progress lines (carriage returns) belong on ``stream``."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def run_cancellable(work: Callable[[threading.Event], Any]) -> Any:
    """Run ``work(cancel)`` in a thread so Ctrl-C becomes a clean C-CANCEL, not an abort."""
    cancel = threading.Event()
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = work(cancel)
        except BaseException as exc:  # handed to the caller's thread below
            box["error"] = exc

    thread = threading.Thread(target=target, name="tuiviewer-net", daemon=True)
    thread.start()
    while thread.is_alive():
        try:
            thread.join(0.2)
        except KeyboardInterrupt:
            cancel.set()
    if "error" in box:
        raise box["error"]
    return box["result"]
