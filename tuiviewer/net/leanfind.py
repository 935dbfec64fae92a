"""The command line's C-FIND, without pydicom or pynetdicom: rows straight from the answers.

``tuiviewer find`` of 1,000 studies spent most of its time in pynetdicom's per-answer machinery
and in importing it (see :mod:`tuiviewer.net.upperlayer`). This client sends the same
identifier as :func:`tuiviewer.net.find.find` (the keys of
:func:`tuiviewer.net.findquery.identifier_keys`, UTF-8, Specific Character Set ISO_IR 192) over
:class:`~tuiviewer.net.upperlayer.UpperLayer`, reads each answer's few keys straight from its
bytes, and yields the same rows :func:`tuiviewer.dicom.rows.to_row` makes of a Dataset.

It reads only what needs no character set (ASCII values of the text VRs, see
:func:`~tuiviewer.dicom.rows.plain_text`); any other answer (non-ASCII names, ISO 2022 escapes,
a sequence, an unusual VR, bytes it cannot walk) is decoded with pydicom, exactly as pynetdicom
decodes it, and converted by the same ``to_row``, so the rows are the same either way. Status
handling follows :func:`tuiviewer.net.find.find`: pending answers are yielded, a failure or
cancel status raises :class:`~tuiviewer.net.errors.DimseStatusError` worded as there.
:class:`~tuiviewer.net.upperlayer.UnsupportedPeer` is raised, before the first row, when the
query or the peer needs what this client does not speak; the caller then asks pynetdicom.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable, Generator

from tuiviewer.config.nodes import Node
from tuiviewer.dicom.rows import PlainAnswer, QueryLevel, Row, plain_text, to_row
from tuiviewer.net.errors import DimseStatusError, NoAcceptedContext, format_status, status_meaning
from tuiviewer.net.findquery import (
    QUERY_CHARSET,
    RETURN_KEYS,
    FindQuery,
    QueryModel,
    check_key,
    identifier_keys,
)
from tuiviewer.net.upperlayer import UnsupportedPeer, UpperLayer, command_values
from tuiviewer.safetext import clean

EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
#: Proposed in this order, as the pynetdicom path proposes them.
_SYNTAXES = (EXPLICIT_LE, IMPLICIT_LE)
_CONTEXT_ID = 1
#: VRs with a 4-byte length in explicit VR (PS3.5 7.1.2).
_LONG_VRS = frozenset(
    {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}
)
#: VRs this client can write a text value of (anything else: the pynetdicom path).
_TEXT_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI"}
    | {"UR", "UT"}
)
#: Every VR of PS3.5 Table 6.2-1, by its two bytes.
_VRS = {
    vr.encode(): vr
    for vr in (
        "AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI "
        "UL UN UR US UT UV"
    ).split()
}
_NUMBER_VRS = frozenset({"US", "SS", "UL", "SL", "FL", "FD", "AT"})
_PENDING = frozenset({0xFF00, 0xFF01})
_C_FIND_RSP = 0x8020


class Dictionary:
    """Keyword → (tag, VR) from the dictionary cache (:mod:`tuiviewer.dicom.dictcache`)."""

    def __init__(self, before_pydicom: Callable[[], None] | None = None) -> None:
        from tuiviewer.dicom.dictcache import dictionaries

        self._tables = dictionaries(before_pydicom)
        self._by_keyword: dict[str, int] | None = None

    def keyword(self, tag: int) -> str:
        """The keyword of ``tag`` ("" if it has none), as ``pydicom.datadict.keyword_for_tag``."""
        entry = self._tables.entry(tag)
        return entry[1] if entry else ""

    def lookup(self, keyword: str) -> tuple[int | None, str]:
        """(tag, VR) of a public keyword, as ``tag_for_keyword`` and ``dictionary_VR``."""
        if self._by_keyword is None:
            self._by_keyword = {}
            for public, joined in self._tables.public.items():
                parts = joined.split("\t", 2)
                self._by_keyword[parts[1]] = public  # the last one, as pydicom's keyword_dict
        found = self._by_keyword.get(keyword)
        entry = self._tables.entry(found) if found is not None else None
        return found, entry[0] if entry else ""


def query_elements(
    query: FindQuery, model: QueryModel, dictionary: Dictionary
) -> dict[int, tuple[str, str]]:
    """Tag → (VR, value) of the identifier, as :func:`tuiviewer.net.find.build_identifier`
    sets it (Specific Character Set and Query/Retrieve Level first, a later key replacing an
    earlier one).

    Raises:
        ValueError: as ``build_identifier``.
        UnsupportedPeer: a key of a VR this client does not write.
    """
    keys = identifier_keys(query, model)
    elements: dict[int, tuple[str, str]] = {
        0x00080005: ("CS", QUERY_CHARSET),
        0x00080052: ("CS", QueryLevel(query.level).value),
    }
    for keyword, value in keys:
        tag, vr = dictionary.lookup(keyword)
        tag = check_key(keyword, tag, vr, value)
        if vr not in _TEXT_VRS and not (vr in _NUMBER_VRS and not value):
            raise UnsupportedPeer(f"The key {keyword!r} of VR {vr!r} needs the pynetdicom path.")
        elements[tag] = (vr, value)
    return elements


def encode_identifier(elements: dict[int, tuple[str, str]], *, implicit: bool) -> bytes:
    """The identifier's bytes in implicit or explicit VR little endian (PS3.5 7.1), values
    UTF-8 (ISO_IR 192) padded to even length (UI with NUL, text with a space)."""
    out = bytearray()
    for tag in sorted(elements):
        vr, text = elements[tag]
        value = text.encode("utf-8")
        if len(value) % 2:
            value += b"\x00" if vr == "UI" else b" "
        group, element = tag >> 16, tag & 0xFFFF
        if implicit:
            out += struct.pack("<HHI", group, element, len(value))
        elif vr in _LONG_VRS:
            out += struct.pack("<HH2s2xI", group, element, vr.encode(), len(value))
        else:
            out += struct.pack("<HH2sH", group, element, vr.encode(), len(value))
        out += value
    return bytes(out)


def _command(elements: list[tuple[int, bytes]]) -> bytes:
    """A command set (implicit VR little endian) with its group length first (PS3.7 6.3.1)."""
    body = b"".join(
        struct.pack("<HHI", 0, tag, len(value)) + value for tag, value in sorted(elements)
    )
    return struct.pack("<HHII", 0, 0, 4, len(body)) + body


def _ui(uid: str) -> bytes:
    value = uid.encode("ascii")
    return value + b"\x00" if len(value) % 2 else value


def find_rq(model: QueryModel, msg_id: int) -> bytes:
    """C-FIND-RQ (PS3.7 9.3.2.1): priority low, as pynetdicom sends it; a data set follows."""
    return _command(
        [
            (0x0002, _ui(model.value)),
            (0x0100, struct.pack("<H", 0x0020)),
            (0x0110, struct.pack("<H", msg_id)),
            (0x0700, struct.pack("<H", 2)),
            (0x0800, struct.pack("<H", 0x0000)),
        ]
    )


def cancel_rq(msg_id: int) -> bytes:
    """C-CANCEL-RQ (PS3.7 9.3.2.3) for the request ``msg_id``."""
    return _command(
        [
            (0x0100, struct.pack("<H", 0x0FFF)),
            (0x0120, struct.pack("<H", msg_id)),
            (0x0800, struct.pack("<H", 0x0101)),
        ]
    )


def answer_text(
    data: bytes, wanted: dict[int, tuple[str, str]], *, implicit: bool
) -> PlainAnswer | None:
    """Keyword → :func:`plain_text` of the ``wanted`` tags (tag → (keyword, dictionary VR,
    which implicit VR answers are read with)) of an identifier,
    read straight from its top-level elements; None when only pydicom can say (a value that
    needs a character set or a VR conversion, a sequence, an undefined length, an unknown VR,
    bytes that do not walk as elements)."""
    found: dict[str, str] = {}
    offset = 0
    end = len(data)
    unpack = struct.unpack_from
    while offset < end:
        if offset + 8 > end:
            return None
        if implicit:
            group, element, length = unpack("<HHI", data, offset)
            vr = ""
            offset += 8
        else:
            group, element, vr_bytes, length = unpack("<HH2sH", data, offset)
            vr = _VRS.get(vr_bytes, "")
            if not vr:
                return None
            if vr in _LONG_VRS:
                if offset + 12 > end:
                    return None
                (length,) = unpack("<I", data, offset + 8)
                offset += 12
            else:
                offset += 8
        if length == 0xFFFFFFFF or vr == "SQ" or offset + length > end:
            return None
        key = wanted.get(group << 16 | element)
        if key is not None:
            text = plain_text(vr or key[1], data[offset : offset + length])
            if text is None:
                return None
            found[key[0]] = text
        offset += length
    return found


def _pydicom_row(
    level: QueryLevel,
    data: bytes,
    *,
    implicit: bool,
    before_pydicom: Callable[[], None] | None,
) -> Row | None:
    """The row of an answer only pydicom can read, made as the pynetdicom path makes it."""
    from io import BytesIO

    if before_pydicom is not None:
        before_pydicom()
    from pydicom.filereader import read_dataset

    from tuiviewer.net.find import _declare_charset

    try:
        ds = read_dataset(BytesIO(data), implicit, True)
    except Exception:  # noqa: BLE001 - pynetdicom skips an identifier it cannot decode too
        return None
    _declare_charset(ds)
    return to_row(level, ds)


def find_rows(
    node: Node,
    query: FindQuery,
    *,
    model: QueryModel = QueryModel.STUDY_ROOT,
    cancel: threading.Event | None = None,
    before_pydicom: Callable[[], None] | None = None,
) -> Generator[Row, None, None]:
    """Send one C-FIND and yield the row of each match as its pending response arrives.

    As :func:`tuiviewer.net.find.find` followed by ``to_row``: ``cancel`` sends C-CANCEL at
    once and the remaining answers are drained, not yielded; closing the generator early
    aborts the association, as there. ``before_pydicom`` is called before pydicom is first
    needed (the command line sets up its log and imports pydicom lean then).

    Raises:
        ValueError: the query is invalid.
        UnsupportedPeer: before the first row, when the pynetdicom path must answer instead.
        NoAcceptedContext, DimseStatusError, NetError: as ``find``.
    """
    dictionary = Dictionary(before_pydicom)
    elements = query_elements(query, model, dictionary)
    level = QueryLevel(query.level)
    wanted: dict[int, tuple[str, str]] = {}
    for keyword in RETURN_KEYS[level]:
        tag, vr = dictionary.lookup(keyword)
        assert tag is not None
        wanted[tag] = (keyword, vr)
    link = UpperLayer(node)
    link.open([(_CONTEXT_ID, model.value, _SYNTAXES)])
    failed = True
    try:
        result, syntax = link.contexts.get(_CONTEXT_ID, (-1, ""))
        if result != 0:
            from tuiviewer.net.trace import uid_name

            raise NoAcceptedContext(
                f"{node.describe()} accepted none of the presentation contexts needed: "
                f"{uid_name(model.value)} ({model.value}).",
                [model.value],
            )
        if syntax not in _SYNTAXES:
            raise UnsupportedPeer(
                f"{node.describe()} accepted the transfer syntax {clean(syntax)!r}, which was "
                "not proposed."
            )
        implicit = syntax == IMPLICIT_LE
        msg_id = 1
        link.phase = "C-FIND"
        link.send_message(
            _CONTEXT_ID, find_rq(model, msg_id), encode_identifier(elements, implicit=implicit)
        )
        cancelled = False

        def on_cancel() -> None:
            nonlocal cancelled
            if not cancelled:
                cancelled = True
                link.send_message(_CONTEXT_ID, cancel_rq(msg_id), None)

        while True:
            _, command, dataset = link.receive_message("C-FIND", cancel, on_cancel)
            code = _status(node, command, link)
            if code not in _PENDING:
                category, _ = status_meaning("C-FIND", code) if code else ("Success", "")
                if category in ("Failure", "Cancel") and not cancelled:
                    _raise_failure(node, code, command)
                break
            if cancelled or dataset is None:
                continue
            plain = answer_text(dataset, wanted, implicit=implicit)
            row = (
                to_row(level, plain)
                if plain is not None
                else _pydicom_row(level, dataset, implicit=implicit, before_pydicom=before_pydicom)
            )
            if row is not None:
                yield row
            if cancel is not None and cancel.is_set():
                on_cancel()
        failed = False
    finally:
        if failed:
            link.abort()
        else:
            link.release()


def _status(node: Node, command: bytes, link: UpperLayer) -> int:
    """The Status of a C-FIND-RSP; a protocol error for anything else."""
    try:
        values = command_values(command)
    except ValueError as exc:
        link.protocol_error(f"sent a malformed command set ({exc})")
    field = values.get(0x00000100)
    status = values.get(0x00000900)
    responding = values.get(0x00000120)
    if field is None or len(field) != 2 or struct.unpack("<H", field)[0] != _C_FIND_RSP:
        link.protocol_error("answered the C-FIND request with another kind of message")
    # As pynetdicom: a response needs a Status and a Message ID Being Responded To, whose
    # value it does not compare with the request's (one request at a time).
    if status is None or len(status) != 2 or responding is None or len(responding) != 2:
        link.protocol_error("sent a C-FIND response without a Status or Message ID")
    code: int = struct.unpack("<H", status)[0]
    return code


def _raise_failure(node: Node, code: int, command: bytes) -> None:
    """Raise :class:`DimseStatusError` worded as ``tuiviewer.net.association.check_status``."""
    category, description = status_meaning("C-FIND", code)
    where = node.describe()
    if category == "Cancel":
        text = f"{where} cancelled the C-FIND request ({format_status('C-FIND', code)})."
    else:
        text = f"{where} answered the C-FIND request with {format_status('C-FIND', code)}."
    raw = command_values(command).get(0x00000902)
    if raw:
        comment = raw.decode("latin-1").strip(" \x00")
        if comment:
            text = text[:-1] + f" ({clean(comment[:200])})."
    raise DimseStatusError(text, code=code, meaning=description or category, category=category)
