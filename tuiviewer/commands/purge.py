"""``tuiviewer purge [STUDY] [--yes]``: delete retrieved studies from the local store.

PHI at rest on a shared server should not pile up; this says what it deletes by Study Instance
UID and size, never by patient, and asks first unless told ``--yes``.
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from tuiviewer.store import (
    InvalidUIDError,
    LocalStore,
    StoredStudy,
    StoreError,
    format_size,
    validate_uid,
)


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """The parsed ``tuiviewer purge`` command line."""
    return run_purge(args.study, yes=args.yes, stdout=stdout, stderr=stderr)


def _describe(study: StoredStudy) -> str:
    noun = "instance" if study.instances == 1 else "instances"
    return f"{study.study_uid}  ({study.instances} {noun}, {format_size(study.size_bytes)})"


def run_purge(
    study: str | None,
    *,
    yes: bool,
    stdout: TextIO,
    stderr: TextIO,
    store: LocalStore | None = None,
    stdin: TextIO | None = None,
) -> int:
    """Engine of ``tuiviewer purge [STUDY] [--yes]``: delete stored studies, say what went.

    Without ``yes`` it asks on the terminal, and refuses when stdin is not a terminal (a script
    must say ``--yes``). Output names studies by UID with sizes, never by patient.

    :returns: 0 done (or nothing to do), 1 failure, unknown study or declined, 2 usage error.
    """
    stdin = sys.stdin if stdin is None else stdin
    try:
        if study is not None:
            validate_uid(study, "Study Instance UID")
        if store is None:
            store = LocalStore()
    except InvalidUIDError as exc:
        print(f"tuiviewer purge: {exc.message}", file=stderr)
        return 2
    except StoreError as exc:
        print(f"tuiviewer purge: {exc.message}", file=stderr)
        return 1

    stored = store.studies()
    if study is not None:
        targets = [s for s in stored if s.study_uid == study]
        if not targets:
            print(
                f"tuiviewer purge: no study {study!r} in the local store at {str(store.root)!r}.",
                file=stderr,
            )
            return 1
    else:
        targets = stored
        if not targets and store.size_bytes() == 0:
            print(f"The local store at {str(store.root)!r} is already empty.", file=stdout)
            return 0

    if not yes:
        if not stdin.isatty():
            print(
                "tuiviewer purge: refusing to delete without confirmation because stdin is not "
                "a terminal; add --yes to confirm.",
                file=stderr,
            )
            return 2
        what = f"study {study}" if study is not None else f"all {len(targets)} studies in the store"
        total = sum(s.size_bytes for s in targets)
        print(f"Delete {what} ({format_size(total)}) from {str(store.root)!r}?", file=stdout)
        for target in targets:
            print(f"  {_describe(target)}", file=stdout)
        print("Type 'yes' to confirm: ", end="", file=stdout, flush=True)
        answer = stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            print("Nothing deleted.", file=stdout)
            return 1

    try:
        removed = set(store.purge(study))
    except StoreError as exc:
        print(f"tuiviewer purge: {exc.message}", file=stderr)
        return 1
    freed = 0
    for target in targets:
        if target.study_uid in removed:
            print(f"Removed {_describe(target)}", file=stdout)
            freed += target.size_bytes
    skipped = [t.study_uid for t in targets if t.study_uid not in removed]
    for uid in skipped:  # pragma: no cover - only when this process is retrieving the study
        print(f"tuiviewer purge: study {uid} is in use and was kept.", file=stderr)
    noun = "study" if len(removed) == 1 else "studies"
    print(f"Removed {len(removed)} {noun}, {format_size(freed)}.", file=stdout)
    return 1 if skipped else 0
