"""``tuiviewer open PATH...`` (and bare ``tuiviewer [PATH...]``): the workstation itself.

The terminal is asked what it can show and the colour plan settled before Textual is imported
(it reads ``TEXTUAL_COLOR_SYSTEM`` once, at import) and reads the keyboard, the configuration
and nodes are read strictly (a mistake is exit status 2 with the file and key), logging goes to
the private log file, and what C libraries print to fd 2 goes there too while the UI owns the
terminal.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from tuiviewer.graphics.probe import ColorPlan, GraphicsMode, TerminalProbe, probe_and_plan

if TYPE_CHECKING:
    from tuiviewer.config.nodes import Node
    from tuiviewer.config.settings import Config

EXIT_OK = 0
EXIT_USAGE = 2


@dataclass(frozen=True)
class Session:
    """What the app starts with: configuration, nodes, where the log goes, how to draw."""

    config: Config
    nodes: dict[str, Node]
    log_path: Path
    color: ColorPlan
    graphics: GraphicsMode
    low_bandwidth: bool
    probe: TerminalProbe | None = None
    """The terminal's answers (None: output is not a terminal)."""


def start_session(
    config_path: Path | None,
    *,
    graphics: str = "auto",
    low_bandwidth: bool = False,
    with_nodes: bool = True,
) -> Session:
    """Ask the terminal, settle colours, read the configuration (and ``nodes.toml`` unless
    ``with_nodes`` is false), set up the log.

    Raises:
        ConfigError: a configuration file is invalid; the message names the file and key.
    """
    # Before Textual is imported (it reads TEXTUAL_COLOR_SYSTEM once, at import) and reads the
    # keyboard (the terminal's answers would be lost): ask the terminal what it can show.
    mode = GraphicsMode(graphics)
    probe, color = probe_and_plan(mode, os.environ)
    os.environ.update(color.env)

    from tuiviewer.config.nodes import load_nodes
    from tuiviewer.config.settings import load_config
    from tuiviewer.logsetup import setup_logging

    config = load_config(config_path)
    nodes = load_nodes() if with_nodes else {}
    log_path = setup_logging(config.logging.level, phi=config.logging.phi)
    from tuiviewer.config import limits

    limits.configure(config.limits)
    return Session(config, nodes, log_path, color, mode, low_bandwidth, probe)


def run_app(
    session: Session,
    paths: list[Path],
    *,
    nodes: dict[str, Node],
    default_node: str | None,
    nodes_file: Path | None,
) -> None:
    """Run the workstation until the user quits."""
    from tuiviewer.app import make_app
    from tuiviewer.logsetup import native_stderr_to

    with native_stderr_to(session.log_path):
        app = make_app(
            session.config,
            paths,
            nodes=nodes,
            default_node=default_node,
            nodes_file=nodes_file,
            graphics=session.graphics,
            color=session.color,
            low_bandwidth=session.low_bandwidth,
            probe=session.probe,
        )
        from tuiviewer.services.viewer.collector import settle

        settle()  # later full garbage collections walk only what the running app makes
        app.run()


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """The parsed ``tuiviewer open`` command line (or bare ``tuiviewer``)."""
    return run_workstation(
        args.config,
        list(getattr(args, "paths", None) or []),
        graphics=getattr(args, "graphics", "auto"),
        low_bandwidth=getattr(args, "low_bandwidth", False),
        stderr=stderr,
    )


def run_workstation(
    config_path: Path | None,
    paths: list[Path],
    *,
    graphics: str = "auto",
    low_bandwidth: bool = False,
    stderr: TextIO = sys.stderr,
) -> int:
    """The workstation on ``paths`` (files, folders, DICOMDIRs), or on the PACS nodes."""
    from tuiviewer.config.nodes import nodes_path
    from tuiviewer.exceptions import ConfigError

    missing = [p for p in paths if not p.exists()]
    if missing:
        print(f"tuiviewer: {missing[0]}: no such file or folder", file=stderr)
        return EXIT_USAGE
    try:
        session = start_session(config_path, graphics=graphics, low_bandwidth=low_bandwidth)
    except ConfigError as exc:
        print(f"tuiviewer: {exc.message}", file=stderr)
        return EXIT_USAGE
    run_app(
        session,
        paths,
        nodes=session.nodes,
        default_node=session.config.pacs.default_node or next(iter(session.nodes), None),
        nodes_file=nodes_path(),
    )
    return EXIT_OK
