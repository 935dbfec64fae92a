"""``tuiviewer find NODE [--level L] [-k KEY=VALUE]... [--json]``: C-FIND, matches on stdout.

Text output is a table with one row per match (the match count goes to stderr); ``--json``
prints a JSON array with one DICOM JSON model object (PS3.18 F.2) per match.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import fields
from typing import TextIO

from pydicom.datadict import keyword_for_tag, tag_for_keyword

from tuiviewer.commands.common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, print_traces, resolve
from tuiviewer.config.nodes import Node
from tuiviewer.dicom.rows import QueryLevel, Row, to_row
from tuiviewer.net.errors import NetError
from tuiviewer.net.find import FindQuery, QueryModel, build_identifier
from tuiviewer.net.trace import AssociationTrace
from tuiviewer.safetext import clean


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """The parsed ``tuiviewer find`` command line."""
    if getattr(args, "lean", False):
        # The process's own command line. pynetdicom's standard event handlers write only
        # DEBUG lines for a C-FIND (hidden at the log's INFO level), yet run four times per
        # answer, for every PDU and DIMSE message: about 0.1 ms of a 1,000-match query's
        # ~1 ms per answer. Set before the association binds them.
        import pynetdicom._config

        pynetdicom._config.LOG_HANDLER_LEVEL = "none"
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
    node = resolve(node_text, "find", stderr, nodes)
    if node is None:
        return EXIT_USAGE
    if node.kind == "dimse":
        # The DIMSE query alone: the transport layer would bring retrieve, send and DICOMweb.
        from tuiviewer.net.find import find
    else:
        from tuiviewer.net.transport import find
    record = AssociationTrace()
    # Each answer is reduced to what is printed as it arrives (a row, or its JSON), so a
    # large answer is never held as data sets.
    rows: list[Row] = []
    documents: list[dict[str, object]] = []
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
    if as_json:
        print(json.dumps(documents, ensure_ascii=False, indent=2), file=stdout)
    else:
        table = _table(rows)
        if table:
            print(table, file=stdout)
        noun = "match" if len(rows) == 1 else "matches"
        print(f"{len(rows)} {noun}.", file=stderr)
    return EXIT_OK
