"""``tuiviewer doctor [--no-echo]``: print the environment for a support request, without PHI.

The facts come from :func:`tuiviewer.services.doctor.examine`; this prints them on stdout and
each problem once more on stderr, so a script sees them, and exits 1 when there is one.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import TextIO

from tuiviewer.services.doctor import ECHO_TIMEOUT_S, examine


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """The parsed ``tuiviewer doctor`` command line."""
    return run_doctor(stdout=stdout, stderr=stderr, check_nodes=args.check_nodes)


def run_doctor(
    *,
    stdout: TextIO,
    stderr: TextIO,
    check_nodes: bool = True,
    env: Mapping[str, str] | None = None,
    echo_timeout: float = ECHO_TIMEOUT_S,
) -> int:
    """Print the environment report to ``stdout``; return 0 when all is well, else 1.

    Parameters:
        check_nodes: C-ECHO every node of ``nodes.toml`` (in parallel, ``echo_timeout`` s each).
        env: the environment to describe (default ``os.environ``); for tests.
        stderr: receives one line per problem, after the report, so a script sees them.
    """
    report = examine(terminal=stdout, check_nodes=check_nodes, env=env, echo_timeout=echo_timeout)
    stdout.write("\n".join(report.lines) + "\n")
    for finding in report.findings:
        stderr.write(f"tuiviewer doctor: {finding.what}\n")
    return 1 if report.findings else 0
