"""Command line: ``tuiviewer open PATH`` (or bare ``tuiviewer PATH``), ``dump`` and ``demo``.

Sub-commands call the same core functions as the screens. Exit codes: 0 success, 1 failure,
2 usage error.
"""

from __future__ import annotations

import argparse
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
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tuiviewer",
        description="Terminal DICOM workstation. `tuiviewer PATH` means `tuiviewer open PATH`.",
    )
    parser.add_argument("--version", action="version", version=f"tuiviewer {__version__}")
    parser.add_argument("--config", type=Path, help="configuration file (default: user config dir)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p_open = sub.add_parser("open", help="browse files, folders (recursively) and DICOMDIRs")
    p_open.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    _graphics_option(p_open)

    p_dump = sub.add_parser("dump", help="print datasets as text (dcmdump-like) or DICOM JSON")
    p_dump.add_argument("files", nargs="+", metavar="FILE")
    p_dump.add_argument("--json", action="store_true", help="DICOM JSON model (PS3.18 Annex F)")

    p_demo = sub.add_parser(
        "demo", help="start a demo PACS loaded with sample studies and connect the workstation"
    )
    p_demo.add_argument(
        "--local", action="store_true", help="no PACS: browse pydicom's sample files on disk"
    )
    _graphics_option(p_demo)

    p_render = sub.add_parser("render", help="write the image the viewer would show as a PNG")
    p_render.add_argument("file", metavar="FILE")
    p_render.add_argument("-o", "--output", required=True, metavar="OUT.png")
    p_render.add_argument("--frame", type=int, default=1, help="frame number, from 1 (default 1)")
    p_render.add_argument(
        "--window", type=_window, metavar="CENTER,WIDTH", help="window (default: the file's)"
    )
    p_render.add_argument("--size", type=_size, metavar="WxH", help="fit into W×H pixels")

    p_echo = sub.add_parser("echo", help="C-ECHO a node: is it there and how fast does it answer")
    p_echo.add_argument("node", metavar="NODE", help="node name from nodes.toml, or AET@HOST:PORT")
    p_echo.add_argument(
        "--trace", action="store_true", help="print the association trace to stderr"
    )

    p_find = sub.add_parser("find", help="C-FIND: query a node")
    p_find.add_argument("node", metavar="NODE")
    p_find.add_argument("--level", default="study", choices=["patient", "study", "series", "image"])
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

    p_get = sub.add_parser("get", help="retrieve a study (C-GET, or C-MOVE with --move)")
    p_get.add_argument("node", metavar="NODE")
    p_get.add_argument("--study", required=True, metavar="UID")
    p_get.add_argument("--series", action="append", metavar="UID", help="only this series")
    p_get.add_argument("--dest", type=Path, metavar="DIR", help="write DIR/<study>/<series>/…")
    p_get.add_argument("--move", action="store_true", help="C-MOVE to our storage SCP")
    p_get.add_argument("--resume", action="store_true", help="fetch only what is not stored")
    p_get.add_argument("--trace", action="store_true", help="print the association trace")

    p_send = sub.add_parser("send", help="C-STORE files and folders to a node")
    p_send.add_argument("node", metavar="NODE")
    p_send.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    p_send.add_argument("--trace", action="store_true", help="print the association trace")

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
        "--organization", metavar="NAME", help="the reader's organization (default: the study's)"
    )
    p_rnew.add_argument(
        "--send", metavar="NODE", help="C-STORE the SR to NODE (nodes.toml name or AET@HOST:PORT)"
    )
    p_rshow = report_sub.add_parser("show", help="print an SR document as indented text")
    p_rshow.add_argument("file", type=Path, metavar="SR.dcm")

    p_doctor = sub.add_parser("doctor", help="print the environment for a support request (no PHI)")
    p_doctor.add_argument(
        "--no-echo",
        dest="check_nodes",
        action="store_false",
        help="do not C-ECHO the nodes of nodes.toml",
    )

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


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WxH (e.g. 512x512)") from None
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"size {text!r} must be positive")
    return width, height


def _run_app(
    config_path: Path | None,
    paths: list[Path],
    *,
    demo: bool = False,
    local_demo: bool = False,
    graphics: str = "auto",
    low_bandwidth: bool = False,
) -> int:
    import os

    from tuiviewer.widgets.image.probe import GraphicsMode, probe_and_plan

    # Before Textual is imported (it reads TEXTUAL_COLOR_SYSTEM once, at import) and reads the
    # keyboard (the terminal's answers would be lost): ask the terminal what it can show.
    mode = GraphicsMode(graphics)
    probe, color = probe_and_plan(mode, os.environ)
    os.environ.update(color.env)

    from tuiviewer.app import make_app
    from tuiviewer.config import load_config
    from tuiviewer.exceptions import ConfigError, TuiviewerError
    from tuiviewer.logsetup import native_stderr_to, setup_logging
    from tuiviewer.net.nodes import load_nodes, nodes_path

    missing = [p for p in paths if not p.exists()]
    if missing:
        print(f"tuiviewer: {missing[0]}: no such file or folder", file=sys.stderr)
        return 2
    try:
        config = load_config(config_path)
        nodes = {} if demo else load_nodes()
    except ConfigError as exc:
        print(f"tuiviewer: {exc.message}", file=sys.stderr)
        return 2
    log_path = setup_logging(config.logging.level, phi=config.logging.phi)
    if local_demo:
        paths = demo_paths()
    if not demo:
        with native_stderr_to(log_path):
            app = make_app(
                config,
                paths,
                nodes=nodes,
                default_node=config.pacs.default_node or next(iter(nodes), None),
                nodes_file=nodes_path(),
                graphics=mode,
                color=color,
                low_bandwidth=low_bandwidth,
                probe=probe,
            )
            app.run()
        return 0
    from tuiviewer.net.demo import DemoPacs, demo_ct, sample_files

    pacs = DemoPacs()
    try:
        print("tuiviewer demo: starting the demo PACS (pynetdicom qrscp)…", file=sys.stderr)
        node = pacs.start()
        files = [*sample_files(), demo_ct(lambda text: print(text, file=sys.stderr))]
        print(f"tuiviewer demo: loading sample studies into {node.address}…", file=sys.stderr)
        result = pacs.load(files)
        print(f"tuiviewer demo: {len(result.sent)} instances loaded.", file=sys.stderr)
        with native_stderr_to(log_path):
            app = make_app(
                config,
                [],
                nodes={node.name: node},
                default_node=node.name,
                graphics=mode,
                color=color,
                low_bandwidth=low_bandwidth,
                probe=probe,
            )
            app.run()
    except TuiviewerError as exc:
        print(f"tuiviewer demo: {exc.message}", file=sys.stderr)
        return 1
    finally:
        pacs.stop()
    return 0


def demo_paths() -> list[Path]:
    """The sample files that ship with pydicom (real CT, MR, RT, SR, DICOMDIR, broken ones)."""
    from pydicom.data import get_testdata_file

    sample = get_testdata_file("CT_small.dcm", download=False)
    if sample is None:  # pragma: no cover - pydicom always ships it
        raise SystemExit("tuiviewer: pydicom's sample files are missing")
    return [Path(sample).parent]


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
    parser = build_parser()
    args = parser.parse_args(args_list)
    # Not for doctor: setting up the log creates and chmods the log dir, which would hide the
    # permission problems the doctor is there to report.
    if args.command not in (None, "open", "demo", "doctor"):
        # pydicom's warnings about odd files go to the log, not between the command's output.
        from tuiviewer.logsetup import setup_logging

        setup_logging()
    if args.command is None:
        return _run_app(args.config, [])
    if args.command == "open":
        return _run_app(
            args.config,
            list(args.paths),
            graphics=args.graphics,
            low_bandwidth=args.low_bandwidth,
        )
    if args.command == "demo":
        return _run_app(
            args.config,
            [],
            demo=not args.local,
            local_demo=args.local,
            graphics=args.graphics,
            low_bandwidth=args.low_bandwidth,
        )
    if args.command == "dump":
        from tuiviewer.dicom.dump import run_dump

        return run_dump(args.files, as_json=args.json, stdout=sys.stdout, stderr=sys.stderr)
    if args.command == "render":
        from tuiviewer.render.cli import run_render

        return run_render(
            args.file,
            args.output,
            frame=args.frame,
            window=args.window,
            size=args.size,
            stdout=sys.stdout,
            stderr=sys.stderr,
        )
    if args.command in ("echo", "find", "get", "send"):
        from tuiviewer.net import commands

        out, err = sys.stdout, sys.stderr
        if args.command == "echo":
            return commands.run_echo(args.node, trace=args.trace, stdout=out, stderr=err)
        if args.command == "find":
            return commands.run_find(
                args.node,
                args.level,
                args.keys,
                as_json=args.json,
                model=args.model,
                trace=args.trace,
                stdout=out,
                stderr=err,
            )
        if args.command == "get":
            return commands.run_get(
                args.node,
                args.study,
                args.series,
                args.dest,
                args.move,
                args.trace,
                resume=args.resume,
                stdout=out,
                stderr=err,
            )
        return commands.run_send(args.node, args.paths, args.trace, stdout=out, stderr=err)
    if args.command == "report":
        from tuiviewer.reports.commands import run_report_new, run_report_show

        if args.report_command == "new":
            return run_report_new(
                args.study,
                args.from_md,
                args.output,
                final=args.final,
                reader=args.reader,
                send=args.send,
                organization=args.organization,
                stdout=sys.stdout,
                stderr=sys.stderr,
            )
        return run_report_show(args.file, stdout=sys.stdout, stderr=sys.stderr)
    if args.command == "doctor":
        from tuiviewer.doctor import run_doctor

        return run_doctor(stdout=sys.stdout, stderr=sys.stderr, check_nodes=args.check_nodes)
    if args.command == "purge":
        from tuiviewer.store import run_purge

        return run_purge(args.study, yes=args.yes, stdout=sys.stdout, stderr=sys.stderr)
    parser.print_help()
    return 2
