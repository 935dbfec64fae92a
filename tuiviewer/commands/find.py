"""``tuiviewer find NODE [--level L] [-k KEY=VALUE]... [--json]``: C-FIND, matches on stdout.

Text output is a table with one row per match (the match count goes to stderr); ``--json``
prints a JSON array with one DICOM JSON model object (PS3.18 F.2) per match.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import fields
from typing import TextIO

from tuiviewer.commands.common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, print_traces, resolve
from tuiviewer.config.nodes import Node
from tuiviewer.dicom.rows import QueryLevel, Row
from tuiviewer.net.errors import NetError
from tuiviewer.net.findquery import FindQuery, QueryModel
from tuiviewer.net.leanfind import Dictionary, find_rows, query_elements
from tuiviewer.net.upperlayer import UnsupportedPeer
from tuiviewer.safetext import clean

#: Set for the process's own command line (``args.lean``): pydicom is then imported without
#: its pixel back-ends and pynetdicom without its standard event handlers, when they are
#: needed at all.
_own_process = False
#: Set when the CLI left the log to us (``args.log_on_demand``): it is set up only before
#: pydicom or pynetdicom is imported, for their warnings; the lean client logs nothing.
_log_on_demand = False


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """The parsed ``tuiviewer find`` command line."""
    global _own_process, _log_on_demand
    _own_process = bool(getattr(args, "lean", False))
    _log_on_demand = bool(getattr(args, "log_on_demand", False))
    return run_find(
        args.node,
        args.level,
        args.keys,
        as_json=args.json,
        model=args.model,
        trace=args.trace,
        stdout=stdout,
        stderr=stderr,
    )


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


def _keyword(key: str, dictionary: Dictionary) -> str:
    """A keyword as given, or the keyword of a ``gggg,eeee`` / ``ggggeeee`` tag."""
    text = key.strip().strip("()")
    hex_digits = text.replace(",", "")
    if len(hex_digits) == 8 and all(c in "0123456789abcdefABCDEF" for c in hex_digits):
        keyword = dictionary.keyword(int(hex_digits, 16))
        if not keyword:
            raise ValueError(f"Key {key!r} is not a tag of the DICOM dictionary.")
        return keyword
    if dictionary.lookup(text)[0] is None:
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
    dictionary = Dictionary(_before_pydicom)
    for item in keys:
        key, _, value = item.partition("=")
        if not key.strip():
            raise ValueError(f"Query key {item!r} must be KEY=VALUE or KEY.")
        keyword = _keyword(key, dictionary)
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


def _table(rows: Sequence[Row]) -> str:
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
    lean: bool = True,
) -> int:
    """``tuiviewer find NODE [--level L] [-k KEY=VALUE]... [--json] [--model study|patient]``.

    Text output is a table with one row per match; ``--json`` prints a JSON array with one
    DICOM JSON model object (PS3.18 F.2) per match. ``model`` defaults to Patient Root at
    patient level and Study Root otherwise. ``lean=False`` takes the pynetdicom path even
    where the lean client could answer (the tests compare the two).
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
        # Validated before connecting.
        query_elements(query, query_model, Dictionary(_before_pydicom))
    except UnsupportedPeer:
        lean = False
    except ValueError as exc:
        print(f"tuiviewer find: {exc}", file=stderr)
        return EXIT_USAGE
    node = resolve(node_text, "find", stderr, nodes)
    if node is None:
        return EXIT_USAGE
    rows: list[Row] = []
    documents: list[dict[str, object]] = []
    # The table of a DIMSE query comes from the lean client (net/leanfind.py), which makes
    # the same rows without importing pydicom and pynetdicom; JSON (whole data sets), the
    # association trace (pynetdicom's events) and what the lean client does not speak take
    # the pynetdicom path. Nothing is printed before the rows are complete, so falling back
    # from the lean client never shows anything twice.
    if lean and node.kind == "dimse" and not as_json and not trace:
        try:
            rows = list(find_rows(node, query, model=query_model, before_pydicom=_before_pydicom))
        except UnsupportedPeer:
            rows = []
        except NetError as exc:
            print(f"tuiviewer find: {exc.message}", file=stderr)
            return EXIT_FAILURE
        else:
            return _print(rows, documents, as_json, stdout, stderr)
    status = _pynetdicom_find(
        node, query, query_model, query_level, as_json, trace, rows, documents, stderr
    )
    if status != EXIT_OK:
        return status
    return _print(rows, documents, as_json, stdout, stderr)


def _before_pydicom() -> None:
    """Set up the log (if left to us) and import pydicom lean (in our own process), once."""
    global _log_on_demand
    if _log_on_demand:
        _log_on_demand = False
        from tuiviewer.logsetup import setup_logging

        setup_logging()
    if _own_process:
        from tuiviewer.dicom.lean import import_pydicom_without_pixel_backends

        import_pydicom_without_pixel_backends()


def _pynetdicom_find(
    node: Node,
    query: FindQuery,
    query_model: QueryModel,
    query_level: QueryLevel,
    as_json: bool,
    trace: bool,
    rows: list[Row],
    documents: list[dict[str, object]],
    stderr: TextIO,
) -> int:
    """The query through pynetdicom (or DICOMweb), answers into ``rows`` or ``documents``."""
    _before_pydicom()
    if _own_process:
        # pynetdicom's standard event handlers write only DEBUG lines for a C-FIND (hidden
        # at the log's INFO level), yet run four times per answer, for every PDU and DIMSE
        # message. Set before the association binds them.
        import pynetdicom._config

        pynetdicom._config.LOG_HANDLER_LEVEL = "none"
    from tuiviewer.dicom.rows import to_row
    from tuiviewer.net.trace import AssociationTrace

    if node.kind == "dimse":
        # The DIMSE query alone: the transport layer would bring retrieve, send and DICOMweb.
        from tuiviewer.net.find import find
    else:
        from tuiviewer.net.transport import find
    record = AssociationTrace()
    # Each answer is reduced to what is printed as it arrives (a row, or its JSON), so a
    # large answer is never held as data sets.
    try:
        for match in find(node, query, model=query_model, trace=record):
            if as_json:
                documents.append(match.to_json_dict())
            else:
                rows.append(to_row(query_level, match))
    except NetError as exc:
        print(f"tuiviewer find: {exc.message}", file=stderr)
        return EXIT_FAILURE
    finally:
        if trace:
            print_traces([record], stderr)
    return EXIT_OK


def _print(
    rows: Sequence[Row],
    documents: list[dict[str, object]],
    as_json: bool,
    stdout: TextIO,
    stderr: TextIO,
) -> int:
    if as_json:
        import json

        print(json.dumps(documents, ensure_ascii=False, indent=2), file=stdout)
    else:
        table = _table(rows)
        if table:
            print(table, file=stdout)
        noun = "match" if len(rows) == 1 else "matches"
        print(f"{len(rows)} {noun}.", file=stderr)
    return EXIT_OK
