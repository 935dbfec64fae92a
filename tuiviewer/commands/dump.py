"""``tuiviewer dump FILE... [--json]``: datasets as dcmdump-like text or the DICOM JSON model.

The listing itself is :func:`tuiviewer.dicom.dump.run_dump`, which also reports the problems of a
damaged file; this is the command's entry from :mod:`tuiviewer.cli`.
"""

from __future__ import annotations

import argparse
from typing import TextIO

from tuiviewer.dicom.dump import run_dump


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """The parsed ``tuiviewer dump`` command line."""
    return run_dump(args.files, as_json=args.json, stdout=stdout, stderr=stderr)
