"""``tuiviewer demo [--local]``: a demo PACS loaded with sample studies, and the workstation on it.

pynetdicom's qrscp starts on a free loopback port with a temporary store, is loaded over
C-STORE with pydicom's sample files and a generated CT, and is deleted when the user quits.
``--local`` skips the PACS and opens pydicom's sample files in the local browser.
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
    from tuiviewer.net.demo import DemoPacs, demo_ct, sample_files

    pacs = DemoPacs()
    try:
        print("tuiviewer demo: starting the demo PACS (pynetdicom qrscp)…", file=stderr)
        node = pacs.start()
        files = [*sample_files(), demo_ct(lambda text: print(text, file=stderr))]
        print(f"tuiviewer demo: loading sample studies into {node.address}…", file=stderr)
        result = pacs.load(files)
        print(f"tuiviewer demo: {len(result.sent)} instances loaded.", file=stderr)
        run_app(session, [], nodes={node.name: node}, default_node=node.name, nodes_file=None)
    except TuiviewerError as exc:
        print(f"tuiviewer demo: {exc.message}", file=stderr)
        return EXIT_FAILURE
    finally:
        pacs.stop()
    return EXIT_OK
