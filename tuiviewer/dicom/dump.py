"""The engine of ``tuiviewer dump``: a dcmdump-like text listing or the DICOM JSON model.

It works from :func:`tuiviewer.dicom.loading.load_file`, so a damaged file is dumped as far as
it could be read, followed by the problems found, instead of ending in a traceback. The text
listing streams: each top-level element is written as soon as it is read and then dropped
(:class:`_TextDump` is the loader's sink), so a million-element file is dumped in bounded
memory. Values are cleaned (:mod:`tuiviewer.safetext`): nothing from the file drives the
terminal.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.encaps import generate_fragments
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element, write_dataset
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag
from pydicom.uid import UID_dictionary

from tuiviewer.dicom.dumpformat import (
    META_HEAD,
    NO_VALUE,
    PIXEL_TAGS,
    PRINT_LIMIT,
    bracketed,
    data_head,
    fallback_keyword,
    hex_bytes,
    line,
    pixel_sequence,
    shorten,
)
from tuiviewer.dicom.elements import ElementRow, converted, dataset_rows, element_row, meta_rows
from tuiviewer.dicom.loading import LoadedFile, load_file
from tuiviewer.dicom.warned import quiet
from tuiviewer.exceptions import TuiviewerError
from tuiviewer.safetext import clean

__all__ = ["BULK_DATA_THRESHOLD", "dump_json", "dump_text", "run_dump"]

BULK_DATA_THRESHOLD = 64 * 1024
"""Pixel Data longer than this becomes a BulkDataURI in JSON instead of InlineBinary."""
_PIXEL_TAGS = PIXEL_TAGS
_PRINT_LIMIT = PRINT_LIMIT
_NUMERIC_VRS = frozenset({"US", "SS", "UL", "SL", "FL", "FD", "SV", "UV", "IS", "DS", "AT"})


def dump_text(loaded: LoadedFile) -> str:
    """Return a dcmdump-like listing of ``loaded``, problems appended as comment lines."""
    ds = loaded.dataset
    lines = _header_lines(loaded)
    with quiet():
        _dump_rows(lines, ds, dataset_rows(ds), 0, _encoding(ds))
    lines.extend(_problem_lines(loaded))
    return "\n".join(lines) + "\n"


def _header_lines(loaded: LoadedFile) -> list[str]:
    ds = loaded.dataset
    lines = list(META_HEAD)
    with quiet():
        meta = getattr(ds, "file_meta", None) or Dataset()
        _dump_rows(lines, meta, meta_rows(ds), 0, (False, True))
    lines.extend(data_head(_ts_name(loaded.transfer_syntax)))
    return lines


def _problem_lines(loaded: LoadedFile) -> Iterator[str]:
    for problem in loaded.problems:
        where = f" at byte {problem.offset}" if problem.offset is not None else ""
        yield f"# Problem{where}: {clean(problem.message)}"


class _TextDump:
    """The loader's sink for ``dump``: writes each top-level element as it is read."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.encoding = (False, True)

    def begin(self, header: LoadedFile) -> None:
        self.out.write("\n".join(_header_lines(header)) + "\n")
        self.encoding = _encoding(header.dataset)

    def element(self, ds: Dataset, tag: BaseTag) -> None:
        # Warnings are already off for the whole stream (see stream_text): entering a
        # warnings block per element costs more than writing a tiny element's line.
        lines: list[str] = []
        _dump_rows(lines, ds, [element_row(ds, tag)], 0, self.encoding)
        self.out.write("\n".join(lines) + "\n")


def stream_text(path: str, out: TextIO) -> LoadedFile:
    """Write the listing of ``path`` to ``out`` as it is read; return what was read (its
    data set left empty) for the exit status.

    Raises:
        TuiviewerError: the file cannot be read at all (nothing was written then).
    """
    sink = _TextDump(out)
    with quiet():
        # The loader records pydicom's warnings as problems (its own blocks catch them);
        # what the listing itself would warn about is noise.
        loaded = load_file(path, sink=sink)
    lines = list(_problem_lines(loaded))
    if lines:
        out.write("\n".join(lines) + "\n")
    return loaded


def dump_json(loaded: LoadedFile) -> dict[str, Any]:
    """Return the DICOM JSON model (PS3.18 Annex F) of the dataset, file meta excluded.

    Binary values are InlineBinary (base64), except Pixel Data longer than 64 KiB, which is a
    ``BulkDataURI`` (``file://...?offset=N&length=M``) into the file when its position is
    known, and otherwise just its ``vr``. A value that has no valid JSON form (an IS of
    ``'1A'``) keeps only its ``vr``, so that ``Dataset.from_json`` always reads the result.
    """
    uri = loaded.path.resolve().as_uri()
    deflated = loaded.transfer_syntax == "1.2.840.10008.1.2.1.99"
    with quiet():
        return _json_dataset(loaded.dataset, None if deflated else uri)


def run_dump(paths: Sequence[str], *, as_json: bool, stdout: TextIO, stderr: TextIO) -> int:
    """Dump every file in ``paths``; return the exit status (0 only if all were clean).

    A file that cannot be read at all gets one line on ``stderr`` ("tuiviewer dump: <path>:
    <reason>") and nothing on ``stdout``; the other files are still dumped. In JSON mode the
    problems of a partly read file go to ``stderr`` too, keeping ``stdout`` valid JSON: one
    object for one file, an array for several.
    """
    status = 0
    documents: list[dict[str, Any]] = []
    several = len(paths) > 1
    for path in paths:
        if not as_json:
            status = max(status, dump_one_text(path, several, stdout, stderr))
            continue
        try:
            loaded = load_file(path)
        except TuiviewerError as exc:
            stderr.write(f"tuiviewer dump: {path}: {exc.message}\n")
            status = 1
            continue
        except Exception as exc:  # noqa: BLE001 - the command promises no traceback
            stderr.write(f"tuiviewer dump: {path}: unexpected error: {exc!r}\n")
            status = 1
            continue
        if loaded.problems:
            status = 1
        try:
            documents.append(dump_json(loaded))
            for problem in loaded.problems:
                stderr.write(f"tuiviewer dump: {path}: {problem.message}\n")
        except Exception as exc:  # noqa: BLE001 - the command promises no traceback
            stderr.write(f"tuiviewer dump: {path}: cannot dump: {exc!r}\n")
            status = 1
    if as_json:
        if several:
            json.dump(documents, stdout, indent=2)
            stdout.write("\n")
        elif documents:
            json.dump(documents[0], stdout, indent=2)
            stdout.write("\n")
    return status


def dump_one_text(path: str, several: bool, stdout: TextIO, stderr: TextIO) -> int:
    """Stream one file's listing; its exit status (see :func:`run_dump`)."""
    # The listing is written while the file is read; a file that cannot be read at all
    # writes nothing to stdout, so the header goes out only once the first element is in.
    pending = io.StringIO()
    target = _FirstWrite(pending, stdout, f"# File: {path}\n" if several else "")
    try:
        loaded = stream_text(path, target)  # type: ignore[arg-type]
    except TuiviewerError as exc:
        stderr.write(f"tuiviewer dump: {path}: {exc.message}\n")
        return 1
    except Exception as exc:  # noqa: BLE001 - the command promises no traceback
        target.flush_pending()
        stderr.write(f"tuiviewer dump: {path}: cannot dump: {exc!r}\n")
        return 1
    target.flush_pending()
    return 1 if loaded.problems else 0


class _FirstWrite(io.TextIOBase):
    """Holds the header back until the first element proves the file is readable DICOM."""

    def __init__(self, pending: io.StringIO, out: TextIO, prefix: str) -> None:
        super().__init__()
        self.pending: io.StringIO | None = pending
        self.out = out
        self.prefix = prefix
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        if self.pending is not None and self.writes == 1:
            self.pending.write(text)  # the header: held until an element follows
            return len(text)
        self.flush_pending()
        self.out.write(text)
        return len(text)

    def flush_pending(self) -> None:
        if self.pending is not None:
            self.out.write(self.prefix + self.pending.getvalue())
            self.pending = None


# -- text -------------------------------------------------------------------------------------


def _dump_rows(
    lines: list[str],
    ds: Dataset,
    rows: Sequence[ElementRow],
    depth: int,
    encoding: tuple[bool, bool],
) -> None:
    indent = "  " * depth
    for row in rows:
        elem = converted(ds, row.tag)
        tag = f"({row.tag >> 16:04x},{row.tag & 0xFFFF:04x})"
        label = row.keyword.replace(" ", "") if row.keyword else _fallback_keyword(row)
        if row.vr == "SQ":
            kind = "undefined" if elem.is_undefined_length else "explicit"
            length = "u/l" if elem.is_undefined_length else _sq_length(elem, encoding)
            text = f"(Sequence with {kind} length #={len(row.items)})"
            lines.append(line(indent, tag, "SQ", text, length, 1, label))
            for item_row, item in zip(row.items, elem.value, strict=True):
                undefined = bool(getattr(item, "is_undefined_length_sequence_item", False))
                kind = "undefined" if undefined else "explicit"
                length = "u/l" if undefined else _item_length(item, encoding)
                text = f"(Item with {kind} length #={len(item_row.rows)})"
                lines.append(line(indent + "  ", "(fffe,e000)", "na", text, length, 1, "Item"))
                _dump_rows(lines, item, item_row.rows, depth + 2, encoding)
                text = "(ItemDelimitationItem" + ("" if undefined else " for re-encoding") + ")"
                lines.append(
                    line(indent + "  ", "(fffe,e00d)", "na", text, "0", 0, "ItemDelimitationItem")
                )
            text = "(SequenceDelimitationItem" + (
                "" if elem.is_undefined_length else " for re-encod."
            )
            lines.append(
                line(indent, "(fffe,e0dd)", "na", text + ")", "0", 0, "SequenceDelimitationItem")
            )
            continue
        if row.tag in _PIXEL_TAGS and elem.is_undefined_length:
            _dump_encapsulated(lines, indent, tag, row, elem, label)
            continue
        text = _value_text(elem)
        length = str(row.length) if row.length is not None else "?"
        lines.append(line(indent, tag, row.vr, text, length, row.vm, label))
        if row.problem:
            lines.append(f"{indent}# Problem: {row.problem}")


def _dump_encapsulated(
    lines: list[str], indent: str, tag: str, row: ElementRow, elem: DataElement, label: str
) -> None:
    try:
        fragments = list(generate_fragments(elem.value, endianness="<"))
    except Exception:  # noqa: BLE001 - damaged fragments are shown as one raw value
        lines.append(line(indent, tag, row.vr, _value_text(elem), "u/l", 1, label))
        return
    shown = [(shorten(hex_bytes(f)) if f else NO_VALUE, len(f)) for f in fragments]
    lines.extend(pixel_sequence(indent, tag, row.vr, label, shown))


def _fallback_keyword(row: ElementRow) -> str:
    return fallback_keyword(row.tag, row.is_private, row.private_creator is not None)


def _value_text(elem: DataElement) -> str:
    value = elem.value
    if (
        value is None
        or value == ""
        or value == b""
        or (isinstance(value, MultiValue | list) and len(value) == 0)
    ):
        return NO_VALUE
    if isinstance(value, bytes | bytearray):
        return shorten(hex_bytes(bytes(value), elem.VR))
    items = list(value) if isinstance(value, MultiValue | list) else [value]
    if elem.VR == "AT":
        text = "\\".join(f"({int(v) >> 16:04x},{int(v) & 0xFFFF:04x})" for v in items)
        return shorten(text)
    if elem.VR in _NUMERIC_VRS and elem.VR not in ("IS", "DS"):
        return shorten("\\".join(_number(v, elem.VR) for v in items))
    if elem.VR == "UI" and len(items) == 1 and str(items[0]) in UID_dictionary:
        return "=" + str(UID_dictionary[str(items[0])][4] or UID_dictionary[str(items[0])][0])
    # Only the start of each value is needed (a text may be hundreds of MB long).
    return bracketed([str(v)[: _PRINT_LIMIT + 1] for v in items[: _PRINT_LIMIT + 1]])


def _number(value: Any, vr: str) -> str:
    if isinstance(value, float) and vr == "FL":
        return f"{value:.9g}"
    return str(value)


def _encoding(ds: Dataset) -> tuple[bool, bool]:
    implicit, little = ds.original_encoding
    return bool(implicit), little is not False


def _sq_length(elem: DataElement, encoding: tuple[bool, bool]) -> str:
    try:
        fp = DicomBytesIO()
        fp.is_implicit_VR, fp.is_little_endian = encoding
        write_data_element(fp, elem)
        return str(len(fp.getvalue()) - (8 if encoding[0] else 12))
    except Exception:  # noqa: BLE001 - the length is decoration; never fail the dump on it
        return "?"


def _item_length(item: Dataset, encoding: tuple[bool, bool]) -> str:
    try:
        fp = DicomBytesIO()
        fp.is_implicit_VR, fp.is_little_endian = encoding
        write_dataset(fp, item)
        return str(len(fp.getvalue()))
    except Exception:  # noqa: BLE001 - the length is decoration; never fail the dump on it
        return "?"


def _ts_name(uid: str | None) -> str:
    if not uid:
        return "(unknown)"
    if uid in UID_dictionary:
        return str(UID_dictionary[uid][0])
    return uid


# -- JSON -------------------------------------------------------------------------------------


def _json_dataset(ds: Dataset, uri: str | None) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for elem in ds:
        key = f"{int(elem.tag):08X}"
        result[key] = _json_element(elem, uri)
    return result


def _json_element(elem: DataElement, uri: str | None) -> dict[str, Any]:
    vr = str(elem.VR)
    value = elem.value
    if vr == "SQ":
        return {"vr": vr, "Value": [_json_dataset(item, uri) for item in value]}
    if isinstance(value, bytes | bytearray):
        if int(elem.tag) in _PIXEL_TAGS and len(value) > BULK_DATA_THRESHOLD:
            tell = getattr(elem, "file_tell", None)
            if uri is not None and tell is not None:
                return {"vr": vr, "BulkDataURI": f"{uri}?offset={tell}&length={len(value)}"}
            return {"vr": vr}
        if vr not in ("OB", "OD", "OF", "OL", "OV", "OW", "UN"):
            vr = "UN"  # a value kept as raw bytes after a failed conversion
        if not value:
            return {"vr": vr}
        return {"vr": vr, "InlineBinary": base64.b64encode(bytes(value)).decode("ascii")}
    try:
        encoded = elem.to_json_dict(None, 2**62)
        json.dumps(encoded)
        return dict(encoded)
    except Exception:  # noqa: BLE001 - e.g. IS '1A' has no JSON number; keep the VR only
        return {"vr": vr}
