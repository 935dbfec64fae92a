"""Command line: the argument parser of every sub-command, and nothing else.

``tuiviewer PATH`` means ``tuiviewer open PATH``. Each sub-command ``NAME`` is the module
:mod:`tuiviewer.commands.NAME`, whose ``run(args, stdout, stderr)`` returns the exit status:
0 success, 1 failure, 2 usage error, 3 partial failure.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from tuiviewer import __version__

SUBCOMMANDS = (
    "open",
    "dump",
    "demo",
    "purge",
    "render",
    "echo",
    "find",
    "get",
    "send",
    "report",
    "doctor",
    "listen",
)

#: Sub-commands that print text and never decode a pixel. ``dump`` imports pydicom only for
#: the files its raw listing leaves alone, and hides the back-ends then (commands/dump.py).
_TEXT_ONLY = frozenset({"echo"})  # find imports pydicom lean itself, when it needs it


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or with ``only`` the one sub-command the command line names.

    Each ``add_argument`` looks its help text up with gettext, which searches the disk for
    translations every time: the whole parser takes 10-20 ms to build, a sixth of the time a
    ``dump`` may take in all. ``tuiviewer dump --help`` reads the same either way.
    """
    parser = argparse.ArgumentParser(
        prog="tuiviewer",
        description="Terminal DICOM workstation. `tuiviewer PATH` means `tuiviewer open PATH`.",
    )
    parser.add_argument("--version", action="version", version=f"tuiviewer {__version__}")
    parser.add_argument("--config", type=Path, help="configuration file (default: user config dir)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    if only in (None, "open"):
        p_open = sub.add_parser("open", help="browse files, folders (recursively) and DICOMDIRs")
        p_open.add_argument("paths", nargs="+", type=Path, metavar="PATH")
        _graphics_option(p_open)

    if only in (None, "dump"):
        p_dump = sub.add_parser("dump", help="print datasets as text (dcmdump-like) or DICOM JSON")
        p_dump.add_argument("files", nargs="+", metavar="FILE")
        p_dump.add_argument("--json", action="store_true", help="DICOM JSON model (PS3.18 Annex F)")

    if only in (None, "demo"):
        p_demo = sub.add_parser(
            "demo", help="start a demo PACS loaded with sample studies and connect the workstation"
        )
        p_demo.add_argument(
            "--local", action="store_true", help="no PACS: browse pydicom's sample files on disk"
        )
        _graphics_option(p_demo)

    if only in (None, "render"):
        p_render = sub.add_parser("render", help="write the image the viewer would show as a PNG")
        p_render.add_argument("file", metavar="FILE")
        p_render.add_argument("-o", "--output", required=True, metavar="OUT.png")
        p_render.add_argument(
            "--frame", type=int, default=1, help="frame number, from 1 (default 1)"
        )
        p_render.add_argument(
            "--window", type=_window, metavar="CENTER,WIDTH", help="window (default: the file's)"
        )
        p_render.add_argument("--size", type=_size, metavar="WxH", help="fit into W×H pixels")
        p_render.add_argument(
            "--plane",
            choices=("axial", "coronal", "sagittal"),
            help="reformat the series in FILE (a folder, or a multi-frame file) through this plane",
        )
        p_render.add_argument(
            "--at", type=_point, metavar="X,Y,Z", help="crosshair in patient mm (default: centre)"
        )
        p_render.add_argument(
            "--slab", type=float, default=0.0, metavar="MM", help="slab thickness"
        )
        p_render.add_argument(
            "--project", choices=("mip", "minip", "mean"), default="mip", help="slab projection"
        )

    if only in (None, "echo"):
        p_echo = sub.add_parser(
            "echo", help="C-ECHO a node: is it there and how fast does it answer"
        )
        p_echo.add_argument(
            "node",
            metavar="NODE",
            help="node name from nodes.toml, AET@HOST:PORT or a DICOMweb URL",
        )
        p_echo.add_argument(
            "--trace", action="store_true", help="print the association trace to stderr"
        )

    if only in (None, "find"):
        p_find = sub.add_parser("find", help="C-FIND: query a node")
        p_find.add_argument("node", metavar="NODE")
        p_find.add_argument(
            "--level", default="study", choices=["patient", "study", "series", "image"]
        )
        p_find.add_argument(
            "-k",
            "--key",
            dest="keys",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="matching key (KEY=VALUE) or return key (KEY); repeatable",
        )
        p_find.add_argument(
            "--model",
            choices=["study", "patient"],
            default=None,
            help="information model (default: patient at patient level, else study)",
        )
        p_find.add_argument(
            "--json", action="store_true", help="JSON array, DICOM JSON model per match"
        )
        p_find.add_argument("--trace", action="store_true", help="print the association trace")

    if only in (None, "get"):
        p_get = sub.add_parser("get", help="retrieve a study (C-GET, or C-MOVE with --move)")
        p_get.add_argument("node", metavar="NODE")
        p_get.add_argument("--study", required=True, metavar="UID")
        p_get.add_argument("--series", action="append", metavar="UID", help="only this series")
        p_get.add_argument("--dest", type=Path, metavar="DIR", help="write DIR/<study>/<series>/…")
        p_get.add_argument("--move", action="store_true", help="C-MOVE to our storage SCP")
        p_get.add_argument("--resume", action="store_true", help="fetch only what is not stored")
        p_get.add_argument("--trace", action="store_true", help="print the association trace")

    if only in (None, "send"):
        p_send = sub.add_parser("send", help="C-STORE files and folders to a node")
        p_send.add_argument("node", metavar="NODE")
        p_send.add_argument("paths", nargs="+", type=Path, metavar="PATH")
        p_send.add_argument("--trace", action="store_true", help="print the association trace")

    if only in (None, "report"):
        p_report = sub.add_parser(
            "report", help="write reports as DICOM SR; print SR documents as text"
        )
        report_sub = p_report.add_subparsers(dest="report_command", metavar="ACTION", required=True)
        p_rnew = report_sub.add_parser(
            "new", help="build a Basic Text SR (TID 2000) from a Markdown report"
        )
        p_rnew.add_argument(
            "study", type=Path, metavar="STUDY", help="a study folder or a file of the study"
        )
        p_rnew.add_argument(
            "--from",
            dest="from_md",
            type=Path,
            required=True,
            metavar="REPORT.md",
            help="Markdown whose '## ' headings are sections (Findings, Impression, ...)",
        )
        p_rnew.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.dcm")
        p_rnew.add_argument(
            "--final", action="store_true", help="signed, verified report (needs --reader)"
        )
        p_rnew.add_argument("--reader", metavar="NAME", help="the radiologist, e.g. 'Curie^Marie'")
        p_rnew.add_argument(
            "--organization",
            metavar="NAME",
            help="the reader's organization (default: the study's)",
        )
        p_rnew.add_argument(
            "--send",
            metavar="NODE",
            help="C-STORE the SR to NODE (nodes.toml name or AET@HOST:PORT)",
        )
        p_rshow = report_sub.add_parser("show", help="print an SR document as indented text")
        p_rshow.add_argument("file", type=Path, metavar="SR.dcm")

    if only in (None, "listen"):
        p_listen = sub.add_parser(
            "listen", help="receive studies senders push (C-STORE) into the local store"
        )
        p_listen.add_argument(
            "--aet", metavar="AET", help="our AE title (default: [listen] ae_title)"
        )
        p_listen.add_argument("--port", type=int, metavar="N", help="TCP port (default: 11112)")
        p_listen.add_argument(
            "--allow", metavar="AET,...", help="calling AE titles that may send ('*': any)"
        )
        p_listen.add_argument(
            "--service", action="store_true", help="run unattended: log to stderr too (systemd)"
        )

    if only in (None, "doctor"):
        p_doctor = sub.add_parser(
            "doctor", help="print the environment for a support request (no PHI)"
        )
        p_doctor.add_argument(
            "--no-echo",
            dest="check_nodes",
            action="store_false",
            help="do not C-ECHO the nodes of nodes.toml",
        )

    if only in (None, "purge"):
        p_purge = sub.add_parser("purge", help="delete retrieved studies from the local store")
        p_purge.add_argument(
            "study", nargs="?", metavar="STUDY", help="Study Instance UID (default: all)"
        )
        p_purge.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    return parser


def _graphics_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--graphics",
        choices=("auto", "kitty", "iterm2", "sixel", "halfcell"),
        default="auto",
        help="how the viewer draws images (default: ask the terminal, also over SSH and in tmux)",
    )
    parser.add_argument(
        "--low-bandwidth",
        action="store_true",
        help="for thin links: quantised images, only changes repainted, W/L debounced, "
        "cine capped at 5 fps (also [ui] low_bandwidth in config.toml)",
    )


def _window(text: str) -> tuple[float, float]:
    try:
        center, width = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not CENTER,WIDTH (e.g. 40,400)") from None
    if width < 1:
        raise argparse.ArgumentTypeError(f"window width must be at least 1, not {width:g}")
    return center, width


def _point(text: str) -> tuple[float, float, float]:
    try:
        x, y, z = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not X,Y,Z in mm (e.g. 0,-20.5,110)"
        ) from None
    return x, y, z


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WxH (e.g. 512x512)") from None
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"size {text!r} must be positive")
    return width, height


def _configure_limits(config: Path | None) -> str | None:
    """Apply ``[limits]`` of the configuration; the error message if it is invalid.

    Without a configuration file the defaults stand (as ``load_config`` would give them), and
    the configuration modules, some 25 ms of imports, are not loaded at all.
    """
    from tuiviewer import locations

    path = config if config is not None else locations.config_dir() / "config.toml"
    if not path.exists():
        return None
    from tuiviewer.commands.common import configure_limits

    return configure_limits(path)


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    # A bare `tuiviewer PATH` means `tuiviewer open PATH` when PATH is not a sub-command.
    index = 0
    while index < len(args_list):
        arg = args_list[index]
        if arg == "--config":
            index += 2
            continue
        if not arg.startswith("-"):
            if arg not in SUBCOMMANDS:
                args_list.insert(index, "open")
            break
        index += 1
    named = args_list[index] if index < len(args_list) else None
    parser = build_parser(named if named in SUBCOMMANDS else None)
    args = parser.parse_args(args_list)
    # Only as the process's own command line: a caller that imports the CLI (a test, a
    # script) keeps its pydicom whole.
    args.lean = argv is None
    if args.lean and args.command in _TEXT_ONLY:
        from tuiviewer.dicom.lean import import_pydicom_without_pixel_backends

        import_pydicom_without_pixel_backends()
    # Not for doctor: setting up the log creates and chmods the log dir, which would hide the
    # permission problems the doctor is there to report. The workstation sets up its own.
    if args.command not in (None, "open", "demo", "doctor"):
        # pydicom's warnings about odd files go to the log, not between the command's output.
        # A dump or a find sets the log up only if it imports pydicom (commands/dump.py,
        # commands/find.py): the raw listing and the lean C-FIND client log nothing.
        args.log_on_demand = args.command in ("dump", "find")
        if not args.log_on_demand:
            from tuiviewer.logsetup import setup_logging

            setup_logging()
        problem = _configure_limits(args.config)
        if problem is not None:
            print(f"tuiviewer: {problem}", file=sys.stderr)
            return 2
    stdout, stderr = sys.stdout, sys.stderr
    if args.command not in (None, "open", "demo"):
        # Values from files and PACS answers are printed: nothing raw reaches the terminal.
        from tuiviewer.safetext import TerminalStream

        as_json = bool(getattr(args, "json", False))
        if not isinstance(stdout, TerminalStream):
            stdout = sys.stdout = TerminalStream(stdout, json=as_json)
        if not isinstance(stderr, TerminalStream):
            stderr = sys.stderr = TerminalStream(stderr)
    # Each sub-command is the module of that name in tuiviewer.commands, imported only when
    # asked for: a network command does not pay for numpy, a dump does not pay for Textual.
    module = importlib.import_module(f"tuiviewer.commands.{args.command or 'open'}")
    status: int = module.run(args, stdout, stderr)
    return status
