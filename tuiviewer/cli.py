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

SUBCOMMANDS = ("open", "dump", "demo", "purge", "render")


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

    p_dump = sub.add_parser("dump", help="print datasets as text (dcmdump-like) or DICOM JSON")
    p_dump.add_argument("files", nargs="+", metavar="FILE")
    p_dump.add_argument("--json", action="store_true", help="DICOM JSON model (PS3.18 Annex F)")

    sub.add_parser("demo", help="open the workstation on the sample studies shipped with pydicom")

    p_render = sub.add_parser("render", help="write the image the viewer would show as a PNG")
    p_render.add_argument("file", metavar="FILE")
    p_render.add_argument("-o", "--output", required=True, metavar="OUT.png")
    p_render.add_argument("--frame", type=int, default=1, help="frame number, from 1 (default 1)")
    p_render.add_argument(
        "--window", type=_window, metavar="CENTER,WIDTH", help="window (default: the file's)"
    )
    p_render.add_argument("--size", type=_size, metavar="WxH", help="fit into W×H pixels")

    p_purge = sub.add_parser("purge", help="delete retrieved studies from the local store")
    p_purge.add_argument(
        "study", nargs="?", metavar="STUDY", help="Study Instance UID (default: all)"
    )
    p_purge.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    return parser


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


def _run_app(config_path: Path | None, paths: list[Path]) -> int:
    from tuiviewer.app import make_app
    from tuiviewer.config import load_config
    from tuiviewer.exceptions import ConfigError
    from tuiviewer.logsetup import setup_logging

    missing = [p for p in paths if not p.exists()]
    if missing:
        print(f"tuiviewer: {missing[0]}: no such file or folder", file=sys.stderr)
        return 2
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        print(f"tuiviewer: {exc.message}", file=sys.stderr)
        return 2
    setup_logging(config.logging.level, phi=config.logging.phi)
    make_app(config, paths).run()
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
    if args.command == "open":
        return _run_app(args.config, list(args.paths))
    if args.command == "demo":
        return _run_app(args.config, demo_paths())
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
    if args.command == "purge":
        from tuiviewer.store import run_purge

        return run_purge(args.study, yes=args.yes, stdout=sys.stdout, stderr=sys.stderr)
    parser.print_help()
    return 2
