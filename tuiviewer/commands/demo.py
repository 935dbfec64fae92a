"""``tuiviewer demo [--local]``: a demo PACS serving a day's reading list, and the workstation.

Our mini PACS (:mod:`tuiviewer.net.minipacs`) starts in its own process on a free loopback port,
serving the studies of :mod:`tuiviewer.services.demo` (pydicom's samples and generated series,
dated from today), with a temporary store deleted when the user quits. ``--local`` skips the
PACS and opens pydicom's sample files in the local browser.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TextIO

from tuiviewer.commands.open import run_app, run_workstation, start_session

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def demo_paths() -> list[Path]:
    """The sample files that ship with pydicom (real CT, MR, RT, SR, DICOMDIR, broken ones)."""
    from pydicom.data import get_testdata_file

    sample = get_testdata_file("CT_small.dcm", download=False)
    if sample is None:  # pragma: no cover - pydicom always ships it
        raise SystemExit("tuiviewer: pydicom's sample files are missing")
    return [Path(sample).parent]


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """The parsed ``tuiviewer demo`` command line."""
    if args.local:
        return run_workstation(
            args.config,
            demo_paths(),
            graphics=args.graphics,
            low_bandwidth=args.low_bandwidth,
            stderr=stderr,
        )
    return run_demo(
        args.config, graphics=args.graphics, low_bandwidth=args.low_bandwidth, stderr=stderr
    )


def run_demo(
    config_path: Path | None, *, graphics: str, low_bandwidth: bool, stderr: TextIO
) -> int:
    """Start the demo PACS, load it, run the workstation on it, delete it afterwards."""
    from tuiviewer.exceptions import ConfigError, TuiviewerError

    try:
        session = start_session(
            config_path, graphics=graphics, low_bandwidth=low_bandwidth, with_nodes=False
        )
    except ConfigError as exc:
        print(f"tuiviewer: {exc.message}", file=stderr)
        return EXIT_USAGE
    from tuiviewer.net.demo import DemoPacs
    from tuiviewer.services.demo import prepare_demo

    pacs = DemoPacs()
    try:
        content = prepare_demo(pacs.workdir, progress=lambda text: print(text, file=stderr))
        print("tuiviewer demo: starting the demo PACS…", file=stderr)
        node = pacs.start(content.paths, content.overrides)
        patients = len({study.patient for study in content.studies})
        print(
            f"tuiviewer demo: {len(content.studies)} studies of {patients} patients "
            f"({len(content.paths)} instances) on {node.address}.",
            file=stderr,
        )
        run_app(session, [], nodes={node.name: node}, default_node=node.name, nodes_file=None)
    except TuiviewerError as exc:
        print(f"tuiviewer demo: {exc.message}", file=stderr)
        return EXIT_FAILURE
    except OSError as exc:
        print(f"tuiviewer demo: cannot prepare the demo studies: {exc}", file=stderr)
        return EXIT_FAILURE
    finally:
        pacs.stop()
    return EXIT_OK
