"""Element-by-element comparison of two datasets, for "what did this edit (or that PACS) change?".

Rows are plain frozen dataclasses so the diff screen and the CLI can show them without
knowing pydicom. Sequences are compared item by item; binary values (pixel data included) are
compared by their bytes without decoding, and shown as a length and a hash prefix.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

from pydicom.datadict import keyword_for_tag
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from tuiviewer.dicom.editing import TagPath, tag_text

__all__ = ["DiffRow", "diff_datasets", "value_text"]

_BINARY_VRS = frozenset({"OB", "OW", "OF", "OL", "OD", "OV", "UN", "OB or OW", "US or OW"})
_MAX_TEXT = 200
_ITEM_TAG = 0xFFFEE000


@dataclass(frozen=True)
class DiffRow:
    """One difference between the left and the right dataset."""

    path: TagPath
    """Element path (odd length) or, for a whole item added or removed, the item path."""
    tag_text: str
    """``(0010,0010)``; ``(FFFE,E000)`` for an item."""
    keyword: str
    """Dictionary keyword, ``Item`` for items, empty for private or unknown tags."""
    kind: Literal["added", "removed", "changed"]
    """Relative to left → right."""
    left: str | None
    """One-line value on the left, None when absent there."""
    right: str | None
    """One-line value on the right, None when absent there."""


def _is_binary(elem: DataElement) -> bool:
    return elem.VR in _BINARY_VRS or isinstance(elem.value, bytes | bytearray)


def _binary(elem: DataElement) -> bytes:
    value = elem.value
    return bytes(value) if value else b""


def value_text(elem: DataElement) -> str:
    """The element's value on one line; binary values as length and SHA-256 prefix."""
    if elem.VR == "SQ":
        count = len(elem.value or ())
        return f"{count} item{'s' if count != 1 else ''}"
    if _is_binary(elem):
        data = _binary(elem)
        return f"{len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()[:12]}"
    text = _full_text(elem.value)
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"


def _full_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, MultiValue | list | tuple):
        return "\\".join(_full_text(part) for part in value)
    return str(value)


def _comparable(elem: DataElement) -> tuple[str, Any]:
    """What must be equal for two elements to count as unchanged: the VR and the value."""
    if _is_binary(elem):
        return str(elem.VR), _binary(elem)
    # str() keeps DS/IS as written ("1.0" vs "1.00" is a real change in the file).
    return str(elem.VR), _full_text(elem.value)


def _keyword(tag: int) -> str:
    return keyword_for_tag(tag) if (tag >> 16) % 2 == 0 else ""


def _item_text(item: Dataset, index: int) -> str:
    count = len(item)
    return f"item {index + 1}, {count} element{'s' if count != 1 else ''}"


def _diff_level(
    left: Dataset, right: Dataset, prefix: TagPath, rows: list[DiffRow], ignored: frozenset[int]
) -> None:
    for tag in sorted(set(left.keys()) | set(right.keys())):
        number = int(tag)
        if number in ignored:
            continue
        path = prefix + (number,)
        if number not in right:
            elem = left[number]
            rows.append(
                DiffRow(path, tag_text(number), _keyword(number), "removed", value_text(elem), None)
            )
            continue
        if number not in left:
            elem = right[number]
            rows.append(
                DiffRow(path, tag_text(number), _keyword(number), "added", None, value_text(elem))
            )
            continue
        a, b = left[number], right[number]
        if a.VR == "SQ" and b.VR == "SQ":
            _diff_items(list(a.value or ()), list(b.value or ()), path, rows, ignored)
        elif _comparable(a) != _comparable(b):
            left_text, right_text = value_text(a), value_text(b)
            if a.VR != b.VR:
                left_text, right_text = f"{a.VR} {left_text}", f"{b.VR} {right_text}"
            rows.append(
                DiffRow(path, tag_text(number), _keyword(number), "changed", left_text, right_text)
            )


def _diff_items(
    left: list[Dataset],
    right: list[Dataset],
    seq_path: TagPath,
    rows: list[DiffRow],
    ignored: frozenset[int],
) -> None:
    for index in range(max(len(left), len(right))):
        path = seq_path + (index,)
        if index >= len(right):
            text = _item_text(left[index], index)
            rows.append(DiffRow(path, tag_text(_ITEM_TAG), "Item", "removed", text, None))
        elif index >= len(left):
            text = _item_text(right[index], index)
            rows.append(DiffRow(path, tag_text(_ITEM_TAG), "Item", "added", None, text))
        else:
            _diff_level(left[index], right[index], path, rows, ignored)


def diff_datasets(
    left: Dataset, right: Dataset, *, include_meta: bool = True, ignore: Collection[int] = ()
) -> list[DiffRow]:
    """Every difference from ``left`` to ``right``, in document order.

    Sequences are compared item by item (position by position); a whole item present on one
    side only is one row with the item path. A VR change counts as "changed". Private tags
    are compared like any other; binary values by content, without decoding pixel data.

    Args:
        include_meta: also compare the File Meta (group 0002), shown first as in the file.
        ignore: tags to skip at every nesting level.

    Returns:
        The rows; empty when the datasets are equal.
    """
    ignored = frozenset(int(tag) for tag in ignore)
    rows: list[DiffRow] = []
    if include_meta:
        left_meta = getattr(left, "file_meta", None) or Dataset()
        right_meta = getattr(right, "file_meta", None) or Dataset()
        _diff_level(left_meta, right_meta, (), rows, ignored)
    _diff_level(left, right, (), rows, ignored)
    return rows
