"""Plain rows for the tag tree: one frozen :class:`ElementRow` per data element.

The tag-tree widget, ``tuiviewer dump`` and search all need the same facts about an element
(tag text, keyword, private creator, a one-line value that never decodes pixels), so they are
computed here once, from a pydicom dataset, without any Textual import.
"""

from __future__ import annotations

import bisect
import re
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, overload

from pydicom.datadict import get_entry, get_private_entry
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag

from tuiviewer.dicom.loading import LoadProblem, TagPath, tag_text
from tuiviewer.dicom.warned import quiet
from tuiviewer.safetext import clean

__all__ = [
    "LAZY_ROWS",
    "ElementRow",
    "ItemRow",
    "RowSequence",
    "TagPath",
    "dataset_rows",
    "element_at",
    "converted",
    "element_row",
    "full_value",
    "meta_rows",
    "search",
    "walk",
]

SUMMARY_WIDTH = 64
"""The longest value summary, in characters (the "…" included)."""
HEX_DUMP_LIMIT = 64 * 1024
"""``full_value`` shows at most this many bytes of a binary value."""
_SEARCH_TEXT_LIMIT = 8192
LAZY_ROWS = 2000
"""A data set with more elements than this gets a :class:`RowSequence`: its rows are made
when asked for, so a million-element file shows its first screen at once."""
# PS3.5 7.1.2: these VRs have a 4-byte length field in explicit VR.
_LONG_HEADER_VRS = frozenset("OB OD OF OL OV OW SQ SV UC UN UR UT UV".split())
_PIXEL_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})
_LONG_TEXT = 64 * 1024
#: Bytes per value of the binary number VRs (PS3.5 Table 6.2-1).
_BINARY_SIZES = {"US": 2, "SS": 2, "UL": 4, "SL": 4, "FL": 4, "FD": 8, "AT": 4, "SV": 8, "UV": 8}
_CONTROL = re.compile(r"\r\n|[\x00-\x1f\x7f]")
_TAG_FORM = re.compile(r"^\(?\s*([0-9a-f]{4})\s*[,\s]?\s*([0-9a-f]{4})\s*\)?$")
_GROUP_FORM = re.compile(r"^\(?\s*([0-9a-f]{4})\s*,?\s*\)?$")


@dataclass(frozen=True)
class ElementRow:
    """One data element as the tag tree shows it."""

    path: TagPath
    tag: int
    tag_text: str
    """``(0018,5100)``: upper-case hex."""
    keyword: str
    """``PatientPosition``; a known private tag's dictionary name; "" if unknown."""
    name: str
    """``Patient Position``; "Private tag data" for unknown private tags; "Group Length"."""
    vr: str
    vm: int
    value: str
    """Single-line summary of at most :data:`SUMMARY_WIDTH` characters."""
    summarised: bool
    """True when ``value`` is not the whole value (long text, binary, many values)."""
    length: int | None
    """Value length in bytes as it would be encoded (explicit VR little endian), if known."""
    is_private: bool
    private_creator: str | None
    """e.g. ``GEMS_ACQU_01`` for (0019,10xx); None for the creator element itself."""
    is_meta: bool
    items: tuple[ItemRow, ...]
    """Only for SQ; empty otherwise. Each item makes its rows when first asked."""
    problem: str | None = None
    """A LoadProblem message attached to this element, if any."""
    search_text: str = field(default="", repr=False, compare=False)
    """The whole textual value (capped at 8 KiB) that search looks in; "" for binary."""


@dataclass(frozen=True, eq=False)
class ItemRow:
    """One item of a sequence; its rows are made the first time they are asked for."""

    path: TagPath
    """Even length: ``(seq_tag, index)``, or longer inside nested sequences."""
    index: int
    source: Dataset = field(repr=False)
    """The item's data set."""
    problems: dict[Any, list[str]] = field(repr=False, default_factory=dict)
    is_meta: bool = False

    @cached_property
    def rows(self) -> Sequence[ElementRow]:
        """The item's elements (a :class:`RowSequence` for a very large item)."""
        return _rows(self.source, self.problems, self.path, is_meta=self.is_meta)


class RowSequence(Sequence["ElementRow"]):
    """The rows of a large data set, made on demand (and kept once made).

    Iterating makes every row without keeping them, so a search over a million elements
    costs time, not memory.
    """

    def __init__(
        self, ds: Dataset, problems: dict[Any, list[str]], base: TagPath, *, is_meta: bool
    ) -> None:
        self.ds = ds
        self.problems = problems
        self.base = base
        self.is_meta = is_meta
        self.tags = sorted(ds._dict)
        self._made: dict[int, ElementRow] = {}

    def __len__(self) -> int:
        return len(self.tags)

    def _make(self, index: int, keep: bool = True) -> ElementRow:
        row = self._made.get(index)
        if row is None:
            tag = self.tags[index]
            with quiet():
                row = _row(
                    self.ds,
                    converted(self.ds, tag),
                    (*self.base, int(tag)),
                    self.problems,
                    self.is_meta,
                )
            if keep:
                self._made[index] = row
        return row

    @overload
    def __getitem__(self, index: int) -> ElementRow: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[ElementRow]: ...
    def __getitem__(self, index: int | slice) -> ElementRow | Sequence[ElementRow]:
        if isinstance(index, slice):
            return tuple(self._make(i) for i in range(*index.indices(len(self.tags))))
        if index < 0:
            index += len(self.tags)
        if not 0 <= index < len(self.tags):
            raise IndexError(f"Row {index} is beyond the {len(self.tags)} rows.")
        return self._make(index)

    def __iter__(self) -> Iterator[ElementRow]:
        for index in range(len(self.tags)):
            yield self._make(index, keep=False)

    def index_of(self, tag: int) -> int | None:
        """Position of the row of ``tag``, or None."""
        at = bisect.bisect_left(self.tags, tag)
        return at if at < len(self.tags) and self.tags[at] == tag else None


def dataset_rows(
    ds: Dataset, problems: Sequence[LoadProblem] = (), *, base: TagPath = ()
) -> Sequence[ElementRow]:
    """Return the rows of ``ds`` (its file meta excluded), sequences expanded into items.

    Parameters:
        ds: the dataset, or a sequence item when ``base`` is its item path.
        problems: load problems to attach to the rows they concern (by path, else by tag).
        base: the item path of ``ds`` inside its top-level dataset; ``()`` at the top.

    Returns:
        A tuple, or a :class:`RowSequence` when ``ds`` has more than :data:`LAZY_ROWS`
        elements.
    """
    # Rows are built while the UI owns the terminal: a stray warning would garble it, and
    # load_file has already reported every conversion warning as a LoadProblem.
    with quiet():
        return _rows(ds, _problem_index(problems), base, is_meta=False)


def converted(ds: Dataset, tag: int) -> DataElement:
    """``ds[tag]``, without pydicom's lookup when the element is converted already."""
    elem = ds._dict.get(tag)  # type: ignore[call-overload]
    return elem if isinstance(elem, DataElement) else ds[tag]


def element_row(ds: Dataset, tag: int, problems: Sequence[LoadProblem] = ()) -> ElementRow:
    """The row of the top-level element ``tag`` of ``ds`` (as :func:`dataset_rows` makes it)."""
    with quiet():
        return _row(ds, converted(ds, tag), (int(tag),), _problem_index(problems), False)


def meta_rows(ds: Dataset, problems: Sequence[LoadProblem] = ()) -> Sequence[ElementRow]:
    """Return the rows of ``ds.file_meta`` (empty when it has none), with ``is_meta`` set."""
    meta = getattr(ds, "file_meta", None)
    if meta is None:
        return ()
    with quiet():
        return _rows(meta, _problem_index(problems), (), is_meta=True)


def walk(rows: Iterable[ElementRow]) -> Iterator[ElementRow]:
    """Yield every row depth-first in document order, items' rows included."""
    for row in rows:
        yield row
        for item in row.items:
            yield from walk(item.rows)


def search(rows: Iterable[ElementRow], query: str) -> list[TagPath]:
    """Return the paths of rows matching ``query``, depth-first.

    Case-insensitive; matches keyword or name substrings, a tag in the forms ``0018,5100``,
    ``(0018,5100)``, ``00185100`` and ``0018 5100``, a group (``0018``: every element in it),
    and substrings of the value summary or of the whole textual value.
    """
    needle = query.strip().lower()
    if not needle:
        return []
    squeezed = needle.replace(" ", "")
    exact: int | None = None
    group: int | None = None
    if match := _TAG_FORM.match(needle):
        exact = int(match.group(1) + match.group(2), 16)
    elif match := _GROUP_FORM.match(needle):
        group = int(match.group(1), 16)
    hits: list[TagPath] = []
    for row in walk(rows):
        if (
            row.tag == exact
            or (group is not None and row.tag >> 16 == group)
            or needle in row.keyword.lower()
            or needle in row.name.lower()
            or squeezed in row.name.lower().replace(" ", "")
            or needle in row.value.lower()
            or needle in row.search_text.lower()
        ):
            hits.append(row.path)
    return hits


def element_at(ds: Dataset, path: TagPath) -> DataElement:
    """Return the element at ``path``; group 0002 tags are looked up in the file meta.

    Raises:
        KeyError: nothing is at ``path``.
    """
    if not path or len(path) % 2 == 0:
        raise KeyError(f"Path {_path_text(path)} does not name an element (odd length needed).")
    current = ds
    for depth in range(0, len(path) - 1, 2):
        elem = _lookup(current, path[depth], path)
        index = path[depth + 1]
        if elem.VR != "SQ" or not 0 <= index < len(elem.value):
            raise KeyError(f"Path {_path_text(path)} has no item {index} in {tag_text(elem.tag)}.")
        current = elem.value[index]
    return _lookup(current, path[-1], path)


def full_value(ds: Dataset, path: TagPath) -> str:
    """Return the whole value of the element at ``path`` for the "expand" key.

    Text and multi-values in full; binary values as a hex dump (offset, 16 bytes a line,
    ASCII) capped at 64 KiB, with a closing line saying how many bytes were not shown.

    Raises:
        KeyError: nothing is at ``path``.
    """
    with quiet():
        elem = element_at(ds, path)
        value = elem.value
    if elem.VR == "SQ":
        count = len(value)
        return f"Sequence of {count} item{'s' if count != 1 else ''}."
    if isinstance(value, bytes | bytearray):
        return _hex_dump(bytes(value))
    return _text(elem)


# -- building rows --------------------------------------------------------------------------


def _problem_index(problems: Sequence[LoadProblem]) -> dict[Any, list[str]]:
    index: dict[Any, list[str]] = {}
    for problem in problems:
        if problem.path is not None:
            index.setdefault(problem.path, []).append(problem.message)
        elif problem.tag is not None:
            index.setdefault(problem.tag, []).append(problem.message)
    return index


def _rows(
    ds: Dataset, problems: dict[Any, list[str]], base: TagPath, *, is_meta: bool
) -> Sequence[ElementRow]:
    if len(ds._dict) > LAZY_ROWS:
        return RowSequence(ds, problems, base, is_meta=is_meta)
    rows = []
    with quiet():
        for elem in ds:
            rows.append(_row(ds, elem, (*base, int(elem.tag)), problems, is_meta))
    return tuple(rows)


def _row(
    ds: Dataset,
    elem: DataElement,
    path: TagPath,
    problems: dict[Any, list[str]],
    is_meta: bool,
) -> ElementRow:
    tag = int(elem.tag)
    keyword, name, creator = _names(ds, elem.tag)
    items: tuple[ItemRow, ...] = ()
    if elem.VR == "SQ":
        items = tuple(
            ItemRow((*path, index), index, item, problems, is_meta)
            for index, item in enumerate(elem.value)
        )
    summary, summarised, search_text = _summary(ds, elem)
    messages = problems.get(path) or problems.get(tag)
    try:
        vm = int(elem.VM)
    except Exception:  # noqa: BLE001 - a broken value still gets a row
        vm = 1
    return ElementRow(
        path=path,
        tag=tag,
        tag_text=tag_text(tag),
        keyword=keyword,
        name=name,
        vr=str(elem.VR),
        vm=vm,
        value=summary,
        summarised=summarised,
        length=_length(ds, elem),
        is_private=elem.tag.is_private,
        private_creator=creator,
        is_meta=is_meta,
        items=items,
        problem=" ".join(messages) if messages else None,
        search_text=search_text,
    )


def _names(ds: Dataset, tag: BaseTag) -> tuple[str, str, str | None]:
    """Return (keyword, name, private creator) for ``tag`` within ``ds``."""
    if tag.element == 0:
        try:
            _, _, name, _, keyword = get_entry(tag)
            return keyword, name, None
        except KeyError:
            return "", "Group Length", None
    if tag.is_private:
        if tag.is_private_creator:
            return "", "Private Creator", None
        creator = _creator(ds, tag)
        if creator:
            try:
                entry_name = get_private_entry(tag, creator)[2]
                return entry_name, entry_name, creator
            except KeyError:
                pass
        return "", "Private tag data", creator
    try:
        _, _, name, _, keyword = get_entry(tag)
        return keyword, name, None
    except KeyError:
        return "", "Unknown", None


def _creator(ds: Dataset, tag: BaseTag) -> str | None:
    block = tag.element >> 8
    if block < 0x10:
        return None  # (gggg,0001-00FF) are not in any private block
    creator_elem = ds._dict.get(tag.group << 16 | block)  # type: ignore[call-overload]
    if creator_elem is None or creator_elem.value in (None, b"", ""):
        return None
    value = creator_elem.value
    if isinstance(value, bytes):
        return value.decode("latin-1").strip(" \0")
    return str(value).strip(" \0")


def _summary(ds: Dataset, elem: DataElement) -> tuple[str, bool, str]:
    """Return (one-line summary, summarised?, whole text for search)."""
    value = elem.value
    if elem.VR == "SQ":
        count = len(value)
        return f"{count} item{'s' if count != 1 else ''}", False, ""
    if int(elem.tag) in _PIXEL_TAGS and isinstance(value, bytes | bytearray):
        text = f"<{len(value)} bytes {elem.VR}>"
        if elem.is_undefined_length:
            text += " encapsulated"
        frames = ds.get(0x00280008)
        if frames is not None and frames.value not in (None, ""):
            text += f", {frames.value} frame{'' if str(frames.value) == '1' else 's'}"
        return text, True, ""
    if isinstance(value, bytes | bytearray):
        head = " ".join(f"{b:02x}" for b in value[:8])
        more = len(value) > 8
        text = f"<{len(value)} bytes>" + (f" {head}" if head else "") + (" …" if more else "")
        return text, more, ""
    whole = _text(elem)
    head = whole[:_SEARCH_TEXT_LIMIT]  # a value may be hundreds of MB: look at its start only
    line = _CONTROL.sub(_control_char, head)
    if len(line) > SUMMARY_WIDTH:
        return line[: SUMMARY_WIDTH - 1] + "…", True, head
    return line, line != whole, head


def _control_char(match: re.Match[str]) -> str:
    # Line breaks read as such; any other control character shows as its escape (\x1b).
    return "⏎" if match.group() in ("\r\n", "\n", "\r") else clean(match.group())


def _text(elem: DataElement) -> str:
    """The whole value as text, multiple values joined with a backslash like dcmdump."""
    value = elem.value
    if value is None:
        return ""
    if isinstance(value, MultiValue | list | tuple):
        return "\\".join(_one(item, elem.VR) for item in value)
    return _one(value, elem.VR)


def _one(value: Any, vr: str) -> str:
    if value is None:
        return ""
    if vr == "AT":
        try:
            return tag_text(int(value))
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, float) and vr in ("FL", "OF"):
        # Single precision: more digits would show conversion noise, not data.
        return f"{value:.9g}"
    if isinstance(value, bytes | bytearray):
        return " ".join(f"{b:02x}" for b in value)
    return str(value)


def _length(ds: Dataset, elem: DataElement) -> int | None:
    """Value length as pydicom would encode it (explicit VR little endian), when cheap."""
    if elem.VR == "SQ":
        return None
    value = elem.value
    if value is None:
        return 0
    if isinstance(value, bytes | bytearray):
        return len(value) + len(value) % 2
    if isinstance(value, str) and len(value) > _LONG_TEXT and value.isascii():
        # A long text (a report, a bomb's 256 MiB): ASCII is one byte a character, padded
        # to even length; encoding it all to count would copy it twice.
        return len(value) + len(value) % 2
    size = _BINARY_SIZES.get(str(elem.VR))
    if size is not None:  # fixed-size binary numbers: no need to encode them to know
        if isinstance(value, MultiValue | list | tuple):
            return size * len(value)
        return size if value != "" else 0
    try:
        fp = DicomBytesIO()
        fp.is_little_endian = True
        fp.is_implicit_VR = False
        write_data_element(fp, elem, ds._character_set)
        data = fp.getvalue()
    except Exception:  # noqa: BLE001 - an unencodable value simply has no known length
        return None
    if len(data) >= 12 and data[4:6].decode("latin-1") in _LONG_HEADER_VRS:
        return int(struct.unpack_from("<L", data, 8)[0])
    if len(data) >= 8:
        return int(struct.unpack_from("<H", data, 6)[0])
    return None


def _hex_dump(data: bytes) -> str:
    shown = data[:HEX_DUMP_LIMIT]
    lines = []
    for offset in range(0, len(shown), 16):
        chunk = shown[offset : offset + 16]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        lines.append(f"{offset:08x}  {hexes:<47}  |{text}|")
    if not data:
        lines.append("(empty)")
    if len(data) > len(shown):
        lines.append(f"… {len(data) - len(shown)} more bytes not shown ({len(data)} bytes in all).")
    return "\n".join(lines)


def _lookup(ds: Dataset, tag: int, path: TagPath) -> DataElement:
    if tag in ds:
        return ds[tag]
    meta = getattr(ds, "file_meta", None)
    if meta is not None and tag >> 16 == 2 and tag in meta:
        return meta[tag]  # type: ignore[no-any-return]
    raise KeyError(f"Path {_path_text(path)}: no element {tag_text(tag)}.")


def _path_text(path: TagPath) -> str:
    parts = []
    for position, number in enumerate(path):
        parts.append(tag_text(number) if position % 2 == 0 else f"[{number}]")
    return "".join(parts) or "()"
