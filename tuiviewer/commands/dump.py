"""``tuiviewer dump FILE... [--json]``: datasets as dcmdump-like text or the DICOM JSON model.

A text dump first tries :func:`tuiviewer.dicom.rawdump.listing`, which reads a well-formed
file without importing pydicom (a dump of one slice must start in about 0.1 s); any file it
leaves alone, and every JSON dump, goes to :mod:`tuiviewer.dicom.dump`, which also reports the
problems of a damaged file. Both print the same text for the files the raw listing takes.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TextIO


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """The parsed ``tuiviewer dump`` command line."""
    before_pydicom = _before_pydicom(args)
    if args.json:
        before_pydicom()
        from tuiviewer.dicom.dump import run_dump

        return run_dump(args.files, as_json=True, stdout=stdout, stderr=stderr)
    from tuiviewer.dicom.rawdump import listing

    status = 0
    several = len(args.files) > 1
    for path in args.files:
        try:
            text = listing(path, before_pydicom=before_pydicom)
        except Exception:  # noqa: BLE001 - Unhandled, or anything odd: pydicom's listing decides
            before_pydicom()
            from tuiviewer.dicom.dump import dump_one_text

            status = max(status, dump_one_text(path, several, stdout, stderr))
            continue
        stdout.write((f"# File: {path}\n" if several else "") + text)
    return status


def _before_pydicom(args: argparse.Namespace) -> Callable[[], None]:
    """What to do once, before pydicom is first imported: set up the log (its warnings go
    there) when the CLI left that to us, and, as the process's own command line, import it
    without its pixel back-ends."""
    done: list[bool] = []

    def prepare() -> None:
        if done:
            return
        done.append(True)
        if getattr(args, "log_on_demand", False):
            from tuiviewer.logsetup import setup_logging

            setup_logging()
        if getattr(args, "lean", False):
            from tuiviewer.dicom.lean import import_pydicom_without_pixel_backends

            import_pydicom_without_pixel_backends()

    return prepare
