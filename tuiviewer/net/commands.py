"""Engines of the networking sub-commands: ``echo``, ``find``, ``get`` and ``send``.

``tuiviewer.cli`` parses the arguments and calls these with its streams; they call the same
core functions as the screens and turn outcomes into text and exit codes for scripts:
0 success, 1 failure, 2 usage error (bad KEY=VALUE, unknown node, bad UID), 3 partial
failure (some sub-operations failed). Errors go to ``stderr`` without PHI; ``find`` prints
its matches (the output the user asked for) to ``stdout``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any, Literal, TextIO

from pydicom.datadict import keyword_for_tag, tag_for_keyword
from pydicom.dataset import Dataset

from tuiviewer.exceptions import ConfigError, TuiviewerError
from tuiviewer.net.echo import echo
from tuiviewer.net.errors import DimseStatusError, NetError
from tuiviewer.net.find import FindQuery, QueryLevel, QueryModel, build_identifier, find, to_row
from tuiviewer.net.nodes import Node, resolve_node
from tuiviewer.net.retrieve import RetrieveProgress, RetrieveResult, resume_study, retrieve_study
from tuiviewer.net.send import SendProgress, send_files
from tuiviewer.net.trace import AssociationTrace
from tuiviewer.safetext import clean
from tuiviewer.store import InvalidUIDError, LocalStore, format_size, validate_uid

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3

#: ``-k`` keywords that map to :class:`FindQuery` fields (which add the level's matching
#: rules, e.g. ModalitiesInStudy at study level); any other keyword goes in ``extra``.
_QUERY_FIELDS = {
    "PatientName": "patient_name",
    "PatientID": "patient_id",
    "AccessionNumber": "accession_number",
    "StudyDate": "study_date",
    "ModalitiesInStudy": "modality",
    "Modality": "modality",
    "StudyDescription": "study_description",
    "ReferringPhysicianName": "referring_physician",
    "StudyInstanceUID": "study_uid",
    "SeriesInstanceUID": "series_uid",
}


def _resolve(
    node_text: str, command: str, stderr: TextIO, nodes: dict[str, Node] | None
) -> Node | None:
    try:
        return resolve_node(node_text, nodes)
    except ConfigError as exc:
        print(f"tuiviewer {command}: {exc.message}", file=stderr)
        return None


def _print_traces(traces: Sequence[AssociationTrace | None], stderr: TextIO) -> None:
    for trace in traces:
        if trace is not None and (trace.contexts or trace.outcome or trace.events):
            print(trace.format(), file=stderr)


# --- echo -------------------------------------------------------------------------------------


def run_echo(
    node_text: str,
    *,
    trace: bool = False,
    stdout: TextIO,
    stderr: TextIO,
    nodes: dict[str, Node] | None = None,
) -> int:
    """``tuiviewer echo NODE``: C-ECHO and print the round-trip time."""
    node = _resolve(node_text, "echo", stderr, nodes)
    if node is None:
        return EXIT_USAGE
    record = AssociationTrace()
    try:
        result = echo(node, trace=record)
    except NetError as exc:
        print(f"tuiviewer echo: {exc.message}", file=stderr)
        return EXIT_FAILURE
    finally:
        if trace:
            _print_traces([record], stderr)
    print(
        f"C-ECHO to {node.describe()}: success (0x{result.status:04X}) in {result.rtt_ms:.1f} ms.",
        file=stdout,
    )
    return EXIT_OK


# --- find -------------------------------------------------------------------------------------


def _keyword(key: str) -> str:
    """A keyword as given, or the keyword of a ``gggg,eeee`` / ``ggggeeee`` tag."""
    text = key.strip().strip("()")
    hex_digits = text.replace(",", "")
    if len(hex_digits) == 8 and all(c in "0123456789abcdefABCDEF" for c in hex_digits):
        keyword = keyword_for_tag(int(hex_digits, 16))
        if not keyword:
            raise ValueError(f"Key {key!r} is not a tag of the DICOM dictionary.")
        return str(keyword)
    if tag_for_keyword(text) is None:
        raise ValueError(
            f"Key {key!r} is not a DICOM keyword (for example PatientName=DOE* or "
            "StudyDate=20240101-20240131)."
        )
    return text


def parse_keys(keys: Sequence[str], level: QueryLevel) -> FindQuery:
    """Turn ``-k KEY=VALUE`` (or ``-k KEY`` for a return key) into a :class:`FindQuery`.

    Raises:
        ValueError: unknown keyword or tag; the message quotes it.
    """
    values: dict[str, str] = {}
    extra: dict[str, str] = {}
    for item in keys:
        key, _, value = item.partition("=")
        if not key.strip():
            raise ValueError(f"Query key {item!r} must be KEY=VALUE or KEY.")
        keyword = _keyword(key)
        field_name = _QUERY_FIELDS.get(keyword)
        if field_name is not None and value:
            values[field_name] = value
        else:
            extra[keyword] = value
    return FindQuery(level=level, extra=extra, **values)


def _cell(value: object) -> str:
    """A table cell as the PACS sent it, cleaned to one safe line."""
    if value is None:
        return ""
    if isinstance(value, tuple):
        return clean("\\".join(str(v) for v in value))
    return clean(value)


def _table(level: QueryLevel, matches: Sequence[Dataset]) -> str:
    rows = [to_row(level, ds) for ds in matches]
    if not rows:
        return ""
    names = [f.name for f in fields(rows[0])]
    cells = [[_cell(getattr(row, name)) for name in names] for row in rows]
    headers = [name.replace("_", " ").upper() for name in names]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row_cells in cells:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row_cells, widths, strict=True)).rstrip())
    return "\n".join(lines)


def run_find(
    node_text: str,
    level: str,
    keys: Sequence[str],
    *,
    as_json: bool = False,
    model: str | None = None,
    trace: bool = False,
    stdout: TextIO,
    stderr: TextIO,
    nodes: dict[str, Node] | None = None,
) -> int:
    """``tuiviewer find NODE [--level L] [-k KEY=VALUE]... [--json] [--model study|patient]``.

    Text output is a table with one row per match; ``--json`` prints a JSON array with one
    DICOM JSON model object (PS3.18 F.2) per match. ``model`` defaults to Patient Root at
    patient level and Study Root otherwise.
    """
    try:
        query_level = QueryLevel(level.upper())
    except ValueError:
        print(
            f"tuiviewer find: level {level!r} must be patient, study, series or image.",
            file=stderr,
        )
        return EXIT_USAGE
    if model is None:
        model = "patient" if query_level is QueryLevel.PATIENT else "study"
    models = {"study": QueryModel.STUDY_ROOT, "patient": QueryModel.PATIENT_ROOT}
    if model.lower() not in models:
        print(f"tuiviewer find: model {model!r} must be 'study' or 'patient'.", file=stderr)
        return EXIT_USAGE
    query_model = models[model.lower()]
    try:
        query = parse_keys(keys, query_level)
        build_identifier(query, query_model)  # validate before connecting
    except ValueError as exc:
        print(f"tuiviewer find: {exc}", file=stderr)
        return EXIT_USAGE
    node = _resolve(node_text, "find", stderr, nodes)
    if node is None:
        return EXIT_USAGE
    record = AssociationTrace()
    matches: list[Dataset] = []
    try:
        for match in find(node, query, model=query_model, trace=record):
            matches.append(match)
    except NetError as exc:
        print(f"tuiviewer find: {exc.message}", file=stderr)
        return EXIT_FAILURE
    finally:
        if trace:
            _print_traces([record], stderr)
    if as_json:
        payload = [ds.to_json_dict() for ds in matches]
        print(json.dumps(payload, ensure_ascii=False, indent=2), file=stdout)
    else:
        table = _table(query_level, matches)
        if table:
            print(table, file=stdout)
        noun = "match" if len(matches) == 1 else "matches"
        print(f"{len(matches)} {noun}.", file=stderr)
    return EXIT_OK


# --- get --------------------------------------------------------------------------------------


def _progress_line(p: RetrieveProgress) -> str:
    total = "?" if p.total is None else str(p.total)
    text = f"{p.done}/{total} instances  {p.bytes / 1e6:.1f} MB  {p.mb_per_s:.1f} MB/s"
    if p.failed:
        text += f"  {p.failed} failed"
    eta = p.eta_s
    if eta is not None:
        text += f"  ETA {eta:.0f} s"
    return text


def _tty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _run_cancellable(work: Callable[[threading.Event], Any]) -> Any:
    """Run ``work(cancel)`` in a thread so Ctrl-C becomes a clean C-CANCEL, not an abort."""
    cancel = threading.Event()
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = work(cancel)
        except BaseException as exc:  # handed to the caller's thread below
            box["error"] = exc

    thread = threading.Thread(target=target, name="tuiviewer-net", daemon=True)
    thread.start()
    while thread.is_alive():
        try:
            thread.join(0.2)
        except KeyboardInterrupt:
            cancel.set()
    if "error" in box:
        raise box["error"]
    return box["result"]


def run_get(
    node_text: str,
    study: str,
    series: Sequence[str] | None = None,
    dest: Path | None = None,
    move: bool = False,
    trace: bool = False,
    *,
    resume: bool = False,
    stdout: TextIO,
    stderr: TextIO,
    nodes: dict[str, Node] | None = None,
) -> int:
    """``tuiviewer get NODE --study UID [--series UID]... [--dest DIR] [--move] [--resume]``.

    Instances go to the local store, or with ``dest`` to ``DIR/<study>/<series>/<sop>.dcm``.
    Progress lines go to ``stderr`` when it is a terminal; the summary goes to ``stdout``.
    ``resume`` fetches only the instances not yet in the store. Ctrl-C cancels (C-CANCEL)
    and keeps what arrived.
    """
    try:
        validate_uid(study, "Study Instance UID")
        for uid in series or ():
            validate_uid(uid, "Series Instance UID")
    except InvalidUIDError as exc:
        print(f"tuiviewer get: {exc.message}", file=stderr)
        return EXIT_USAGE
    node = _resolve(node_text, "get", stderr, nodes)
    if node is None:
        return EXIT_USAGE
    try:
        store = LocalStore(root=dest) if dest is not None else LocalStore()
    except TuiviewerError as exc:
        print(f"tuiviewer get: {exc.message}", file=stderr)
        return EXIT_FAILURE
    tty = _tty(stderr)
    shown = [0]

    def on_progress(p: RetrieveProgress) -> None:
        line = _progress_line(p)
        print("\r" + line.ljust(shown[0]), end="", file=stderr, flush=True)
        shown[0] = len(line)

    retrieve_trace, find_trace = AssociationTrace(), AssociationTrace()
    method: Literal["move"] | None = "move" if move else None
    operation = resume_study if resume else retrieve_study

    def work(cancel: threading.Event) -> RetrieveResult:
        return operation(
            node,
            study,
            store=store,
            series_uids=list(series) if series else None,
            method=method,
            progress=on_progress if tty else None,
            cancel=cancel,
            trace=retrieve_trace,
            find_trace=find_trace,
        )

    try:
        result: RetrieveResult = _run_cancellable(work)
    except TuiviewerError as exc:
        if shown[0]:
            print(file=stderr)
        print(f"tuiviewer get: {exc.message}", file=stderr)
        if trace:
            _print_traces([find_trace, retrieve_trace], stderr)
        return EXIT_FAILURE
    if shown[0]:
        print(file=stderr)
    if trace:
        _print_traces([find_trace, retrieve_trace], stderr)
    return _report_get(result, store, resume, stdout, stderr)


def _report_get(
    result: RetrieveResult, store: LocalStore, resume: bool, stdout: TextIO, stderr: TextIO
) -> int:
    count = len(result.received)
    if resume and result.total == 0:
        print(f"Nothing to resume: study {result.study_uid} is complete in the store.", file=stdout)
        return EXIT_OK
    if not count and not (
        result.completed or result.failed or result.cancelled or result.error or result.refused
    ):
        print(
            f"tuiviewer get: the PACS sent no instance of study {result.study_uid}; "
            "it may not hold that study.",
            file=stderr,
        )
        return EXIT_FAILURE
    of = f" of {result.total}" if result.total is not None else ""
    rate = result.bytes / 1e6 / result.elapsed_s if result.elapsed_s > 0 else 0.0
    noun = "instance" if count == 1 else "instances"
    where = str(store.study_dir(result.study_uid))
    print(
        f"Retrieved {count}{of} {noun} ({format_size(result.bytes)}) of study {result.study_uid} "
        f"in {result.elapsed_s:.1f} s ({rate:.1f} MB/s) into {where!r}.",
        file=stdout,
    )
    if result.warning:
        print(f"{result.warning} sub-operations completed with warnings.", file=stdout)
    for sop, reason in result.refused:
        print(f"tuiviewer get: instance {clean(sop)} not kept: {clean(reason)}", file=stderr)
    for call in result.rejected_calls:
        print(f"tuiviewer get: our storage SCP {clean(call)}.", file=stderr)
    if result.failed or result.failed_sops:
        print(
            f"tuiviewer get: {result.failed} sub-operations failed at the PACS.",
            file=stderr,
        )
        for sop in result.failed_sops:
            print(f"  failed: {clean(sop)}", file=stderr)
    if result.cancelled:
        print(
            f"tuiviewer get: cancelled; the {count} {noun} received are kept "
            "(--resume fetches the rest).",
            file=stderr,
        )
        return EXIT_PARTIAL
    if result.error is not None:
        print(
            f"tuiviewer get: {result.error.message} The {count} {noun} received are kept; "
            "run again with --resume to fetch the rest.",
            file=stderr,
        )
        # The PACS answered with a failure status after some sub-operations: a partial
        # failure. A dead association is a failure whatever arrived before.
        return EXIT_PARTIAL if isinstance(result.error, DimseStatusError) else EXIT_FAILURE
    if result.partial:
        return EXIT_PARTIAL
    return EXIT_OK


# --- send -------------------------------------------------------------------------------------


def run_send(
    node_text: str,
    paths: Sequence[Path],
    trace: bool = False,
    *,
    stdout: TextIO,
    stderr: TextIO,
    nodes: dict[str, Node] | None = None,
) -> int:
    """``tuiviewer send NODE PATH...``: C-STORE files and folders (recursively)."""
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        print(f"tuiviewer send: {str(missing[0])!r}: no such file or folder.", file=stderr)
        return EXIT_USAGE
    node = _resolve(node_text, "send", stderr, nodes)
    if node is None:
        return EXIT_USAGE
    tty = _tty(stderr)
    shown = [0]

    def on_progress(p: SendProgress) -> None:
        line = f"{p.done}/{p.total} files  {p.bytes / 1e6:.1f} MB"
        if p.failed:
            line += f"  {p.failed} failed"
        print("\r" + line.ljust(shown[0]), end="", file=stderr, flush=True)
        shown[0] = len(line)

    first_trace = AssociationTrace()
    try:
        result = _run_cancellable(
            lambda cancel: send_files(
                node,
                [Path(p) for p in paths],
                progress=on_progress if tty else None,
                cancel=cancel,
                trace=first_trace,
            )
        )
    except TuiviewerError as exc:
        if shown[0]:
            print(file=stderr)
        print(f"tuiviewer send: {exc.message}", file=stderr)
        if trace:
            _print_traces([first_trace], stderr)
        return EXIT_FAILURE
    if shown[0]:
        print(file=stderr)
    if trace:
        _print_traces(result.traces, stderr)
    for _path, reason in result.failed:
        print(f"tuiviewer send: {reason}", file=stderr)
    for _path, reason in result.warnings:
        print(f"tuiviewer send: warning: {reason}", file=stderr)
    print(
        f"Sent {len(result.sent)} files to {node.describe()}; {len(result.failed)} failed, "
        f"{len(result.skipped_not_dicom)} skipped (not DICOM).",
        file=stdout,
    )
    if result.cancelled:
        print("tuiviewer send: cancelled.", file=stderr)
    if not result.sent and not result.failed:
        print("tuiviewer send: no DICOM file found to send.", file=stderr)
        return EXIT_FAILURE
    if result.failed or result.cancelled:
        return EXIT_PARTIAL if result.sent else EXIT_FAILURE
    return EXIT_OK
