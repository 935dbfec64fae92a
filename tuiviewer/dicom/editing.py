"""Safe editing of a loaded dataset: typed values checked against their VR, and "save as".

The tag editor lets a user change values in patient data, so every value typed is checked
against the rules of its Value Representation (PS3.5 section 6.2) before anything changes, and
saving never silently replaces a file: writes go to a temporary file that is renamed into place
only once it is complete.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import math
import re
from pathlib import Path
from typing import Any

import pydicom
from pydicom.datadict import (
    dictionary_description,
    dictionary_VM,
    dictionary_VR,
    get_private_entry,
    keyword_for_tag,
    tag_for_keyword,
)
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import correct_ambiguous_vr_element
from pydicom.sequence import Sequence
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from tuiviewer.dicom.loading import TagPath, tag_text
from tuiviewer.dicom.reading import read_dicom
from tuiviewer.exceptions import EditError, SaveError, ValueValidationError
from tuiviewer.files import write_atomically

__all__ = [
    "TagPath",
    "add_element",
    "add_item",
    "delete_element",
    "edited_copy_name",
    "get_element",
    "parse_value",
    "path_text",
    "save_as",
    "set_value",
]

# VRs whose value may hold several values separated by backslash (PS3.5 6.4); LT, ST, UT and
# UR are single-valued, so a backslash there is just a character.
_MULTI_VALUED = frozenset(
    "AE AS AT CS DA DS DT FD FL IS LO PN SH SL SS SV TM UC UI UL US UV".split()
)
_TEXT_VRS = frozenset("AE AS CS DA DS DT IS LO LT PN SH ST TM UC UI UR UT".split())
_BINARY_VRS = {"OB": 1, "UN": 1, "OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}
_INT_RANGES = {
    "US": (0, 2**16 - 1),
    "SS": (-(2**15), 2**15 - 1),
    "UL": (0, 2**32 - 1),
    "SL": (-(2**31), 2**31 - 1),
    "UV": (0, 2**64 - 1),
    "SV": (-(2**63), 2**63 - 1),
}
_FLOAT_VRS = {"FL": 3.4028234663852886e38, "FD": 1.7976931348623157e308}
_ALL_VRS = _TEXT_VRS | _MULTI_VALUED | set(_BINARY_VRS) | set(_INT_RANGES) | set(_FLOAT_VRS)
_ALL_VRS |= {"SQ"}

# Control characters allowed in text VRs: ESC everywhere (ISO 2022 escapes), and CR, LF, FF
# in the long texts (PS3.5 Table 6.2-1).
_ESC = "\x1b"
_TEXT_CONTROLS = "\r\n\x0c" + _ESC

_DS_RE = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_IS_RE = re.compile(r"[+-]?\d+")
_UI_RE = re.compile(r"(0|[1-9]\d*)(\.(0|[1-9]\d*))*")
_AS_RE = re.compile(r"\d{3}[DWMY]")
_CS_RE = re.compile(r"[A-Z0-9 _]*")
_TM_RE = re.compile(r"(\d{2})(?:(\d{2})(?:(\d{2})(\.\d{1,6})?)?)?")
_DT_RE = re.compile(
    r"(\d{4})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(\.\d{1,6})?)?)?)?)?)?"
    r"([+-]\d{4})?"
)
_AT_RE = re.compile(r"\(([0-9A-Fa-f]{4}),\s*([0-9A-Fa-f]{4})\)|([0-9A-Fa-f]{8})")
_TAG_TEXT_RE = re.compile(
    r"\(?\s*([0-9A-Fa-f]{4})\s*,\s*([0-9A-Fa-f]{4})\s*\)?|(?:0x)?([0-9A-Fa-f]{8})"
)
_URI_RE = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*")

# File Meta elements without which the file cannot be read back (PS3.10 Table 7.1-1).
_REQUIRED_META = (0x00020000, 0x00020001, 0x00020002, 0x00020003, 0x00020010, 0x00020012)


# --- naming -------------------------------------------------------------------------------


def describe_tag(tag: int) -> str:
    """``Patient Position (0018,5100)`` for messages; private and unknown tags by number only."""
    if (tag >> 16) % 2 == 0:
        try:
            return f"{dictionary_description(tag)} {tag_text(tag)}"
        except KeyError:
            pass
    return f"{'private element' if (tag >> 16) % 2 else 'element'} {tag_text(tag)}"


def path_text(path: TagPath) -> str:
    """``PatientSetupSequence[0].PatientPosition`` (numbers for private or unknown tags)."""
    if not path:
        return "the root dataset"
    parts: list[str] = []
    for position, part in enumerate(path):
        if position % 2:
            parts[-1] += f"[{part}]"
        else:
            parts.append(keyword_for_tag(part) or tag_text(part))
    return ".".join(parts)


# --- value validation ---------------------------------------------------------------------


def _has_control(text: str, allowed: str = _ESC) -> bool:
    return any((ord(ch) < 0x20 or ord(ch) == 0x7F) and ch not in allowed for ch in text)


def _check_plain(text: str, limit: int | None, allowed: str = _ESC) -> str | None:
    if limit is not None and len(text) > limit:
        return f"at most {limit} characters"
    if _has_control(text, allowed):
        return "no control characters"
    return None


def _check_date(text: str) -> bool:
    if not re.fullmatch(r"\d{8}", text):
        return False
    try:
        dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return False
    return True


def _check_time_parts(hour: str | None, minute: str | None, second: str | None) -> bool:
    # Seconds may reach 60 for a leap second (PS3.5 Table 6.2-1, TM).
    return (
        (hour is None or int(hour) < 24)
        and (minute is None or int(minute) < 60)
        and (second is None or int(second) <= 60)
    )


def _check_dt(text: str) -> bool:
    match = _DT_RE.fullmatch(text)
    if match is None or len(text) > 26:
        return False
    year, month, day, hour, minute, second, _fraction, offset = match.groups()
    if month is not None and not 1 <= int(month) <= 12:
        return False
    if day is not None:
        try:
            dt.date(int(year), int(month), int(day))
        except ValueError:
            return False
    if not _check_time_parts(hour, minute, second):
        return False
    if offset is not None:
        minutes = int(offset[1:3]) * 60 + int(offset[3:])
        signed = -minutes if offset[0] == "-" else minutes
        if int(offset[3:]) > 59 or not -12 * 60 <= signed <= 14 * 60:
            return False
    return True


def _check_pn(text: str) -> str | None:
    rule = (
        "at most 3 component groups separated by '=', each at most 64 characters with at most"
        " 5 components separated by '^', and no control characters"
    )
    groups = text.split("=")
    if len(groups) > 3 or _has_control(text):
        return rule
    for group in groups:
        if len(group) > 64 or len(group.split("^")) > 5:
            return rule
    return None


def _check_text_value(vr: str, value: str) -> str | None:
    """The rule ``value`` breaks for ``vr``, or None when it is valid."""
    if vr == "AE":
        if len(value) > 16 or _has_control(value, "") or (value and not value.strip()):
            return "at most 16 characters, no backslash or control characters, not only spaces"
    elif vr == "AS":
        if not _AS_RE.fullmatch(value):
            return "exactly 3 digits followed by D, W, M or Y (e.g. 045Y)"
    elif vr == "CS":
        if len(value) > 16 or not _CS_RE.fullmatch(value):
            return "at most 16 characters A–Z, 0–9, space or underscore"
    elif vr == "DA":
        if not _check_date(value):
            return "a real date written YYYYMMDD (e.g. 20240131)"
    elif vr == "TM":
        match = _TM_RE.fullmatch(value.rstrip(" "))
        if match is None or not _check_time_parts(*match.groups()[:3]):
            return "a 24-hour time written HH, HHMM, HHMMSS or HHMMSS.FFFFFF (e.g. 134501.5)"
    elif vr == "DT":
        if not _check_dt(value.rstrip(" ")):
            return (
                "a date-time written YYYYMMDDHHMMSS.FFFFFF, leading parts only, with an"
                " optional &ZZXX offset from UTC (e.g. 20240131134501+0100)"
            )
    elif vr == "DS":
        stripped = value.strip(" ")
        ok = len(value) <= 16 and _DS_RE.fullmatch(stripped) is not None
        if not ok or not math.isfinite(float(stripped)):
            return (
                "a decimal number (digits, optional sign, point and exponent),"
                " at most 16 characters"
            )
    elif vr == "IS":
        stripped = value.strip(" ")
        ok = len(value) <= 12 and _IS_RE.fullmatch(stripped) is not None
        if not ok or not -(2**31) <= int(stripped) <= 2**31 - 1:
            return "a whole number from -2147483648 to 2147483647, at most 12 characters"
    elif vr == "UI":
        if len(value) > 64 or not _UI_RE.fullmatch(value):
            return (
                "at most 64 characters of digits and dots, no empty component and no leading"
                " zero in a component"
            )
    elif vr in ("LO", "SH", "UC"):
        limit = {"LO": 64, "SH": 16, "UC": None}[vr]
        broken = _check_plain(value, limit)
        if broken:
            return f"{broken}, no backslash or control characters" if limit else broken
    elif vr in ("LT", "ST", "UT"):
        limit = {"LT": 10240, "ST": 1024, "UT": 2**32 - 2}[vr]
        if _check_plain(value, limit, _TEXT_CONTROLS):
            return (
                f"at most {limit} characters; the only control characters allowed are"
                " CR, LF, FF and ESC"
            )
    elif vr == "PN":
        return _check_pn(value)
    elif vr == "UR":
        if value.startswith(" ") or not _URI_RE.fullmatch(value.rstrip(" ")):
            return "a URI or URL (RFC 3986) with no spaces inside and no leading space"
    return None


def _split_values(vr: str, text: str) -> list[str]:
    return text.split("\\") if vr in _MULTI_VALUED else [text]


def _vm_allows(vm: str, count: int) -> bool:
    """Whether ``count`` values fit a dictionary VM such as ``1``, ``1-3``, ``2-2n`` or ``1-n``."""
    if count == 0:
        return True
    low_text, _, high_text = vm.partition("-")
    try:
        low = int(low_text)
    except ValueError:
        return True
    if not high_text:
        return count == low
    if high_text.endswith("n"):
        step = int(high_text[:-1] or "1")
        return count >= low and (step == 1 or count % step == 0)
    return low <= count <= int(high_text)


def parse_value(vr: str, text: str, *, tag: int | None = None) -> Any:
    """Turn text typed by the user into the value to store for an element of ``vr``.

    Several values are separated by backslash. String VRs give ``str`` (or a list of them),
    integer VRs ``int``, FL/FD ``float``, AT the tag as ``int`` and OB/OW/... hex text such as
    ``"00 ff 1a"`` gives ``bytes``. An empty text gives an empty value.

    Raises:
        ValueValidationError: the text breaks the VR's rule (PS3.5 6.2) or the tag's value
            multiplicity; the message quotes the text and says the rule.
    """
    where = f" for {describe_tag(tag)}" if tag is not None else ""

    def fail(bad: str, rule: str, whole: str | None = None) -> ValueValidationError:
        inside = f" (in {whole!r})" if whole is not None and whole != bad else ""
        return ValueValidationError(f"{bad!r}{inside} is not a valid {vr} value{where}: {rule}.")

    if vr == "SQ":
        raise ValueValidationError(
            f"{text!r} cannot be stored in a sequence{where}: sequences are edited by adding "
            "or deleting items, not as text."
        )
    if vr not in _ALL_VRS:
        raise ValueValidationError(f"{vr!r} is not a DICOM value representation{where}.")

    if vr in _BINARY_VRS:
        digits = "".join(text.split())
        if not re.fullmatch(r"[0-9A-Fa-f]*", digits):
            raise fail(text, "hexadecimal bytes such as '00 ff 1a'")
        if len(digits) % 2:
            raise fail(text, "hexadecimal bytes such as '00 ff 1a' (an even number of hex digits)")
        data = bytes.fromhex(digits)
        unit = _BINARY_VRS[vr]
        if len(data) % unit:
            raise fail(text, f"a whole number of {unit}-byte words ({len(data)} bytes given)")
        return data

    if text == "":
        return None if vr in _INT_RANGES or vr in _FLOAT_VRS or vr == "AT" else ""

    values = _split_values(vr, text)
    if tag is not None and (tag >> 16) % 2 == 0:
        with contextlib.suppress(KeyError):
            vm = dictionary_VM(tag)
            if not _vm_allows(vm, len(values)):
                raise ValueValidationError(
                    f"{text!r} holds {len(values)} backslash-separated values, but "
                    f"{describe_tag(tag)} takes {vm}."
                )

    parsed: list[Any] = []
    for value in values:
        whole = text if len(values) > 1 else None
        if vr in _INT_RANGES:
            low, high = _INT_RANGES[vr]
            rule = f"a whole number from {low} to {high}"
            if not re.fullmatch(r"\s*[+-]?\d+\s*", value):
                raise fail(value, rule, whole)
            number = int(value)
            if not low <= number <= high:
                raise fail(value, rule, whole)
            parsed.append(number)
        elif vr in _FLOAT_VRS:
            limit = _FLOAT_VRS[vr]
            rule = f"a finite number no larger than {limit:.7g} in magnitude"
            try:
                real = float(value)
            except ValueError:
                raise fail(value, rule, whole) from None
            if not math.isfinite(real) or abs(real) > limit:
                raise fail(value, rule, whole)
            parsed.append(real)
        elif vr == "AT":
            match = _AT_RE.fullmatch(value.strip())
            if match is None:
                raise fail(value, "a tag written (gggg,eeee) or ggggeeee in hexadecimal", whole)
            group, element, joined = match.groups()
            parsed.append(int(joined or f"{group}{element}", 16))
        else:
            broken = _check_text_value(vr, value)
            if broken is not None:
                raise fail(value, broken, whole)
            parsed.append(value.strip(" ") if vr in ("DS", "IS") else value)
    return parsed[0] if len(parsed) == 1 else parsed


# --- navigation ---------------------------------------------------------------------------


def _container(ds: Dataset, tag: int, *, at_root: bool, create_meta: bool = False) -> Dataset:
    """The dataset that holds ``tag``: File Meta elements live apart from the root dataset."""
    if at_root and tag >> 16 == 0x0002:
        meta = getattr(ds, "file_meta", None)
        if meta is None:
            if not create_meta:
                return FileMetaDataset()
            meta = FileMetaDataset()
            ds.file_meta = meta
        return meta
    return ds


def _resolve_item(ds: Dataset, item_path: TagPath) -> Dataset:
    if len(item_path) % 2:
        raise EditError(f"{path_text(item_path)} names an element, not a sequence item.")
    current = ds
    for position in range(0, len(item_path), 2):
        tag, index = item_path[position], item_path[position + 1]
        walked = item_path[: position + 1]
        if tag not in current:
            raise EditError(f"There is no sequence {path_text(walked)} in this dataset.")
        elem = current[tag]
        if elem.VR != "SQ":
            raise EditError(f"{path_text(walked)} is not a sequence (its VR is {elem.VR}).")
        items = elem.value
        if not 0 <= index < len(items):
            raise EditError(
                f"{path_text(walked)} has {len(items)} item(s); there is no item [{index}]."
            )
        current = items[index]
    return current


def get_element(ds: Dataset, path: TagPath) -> DataElement:
    """The element at ``path`` (odd length), from the File Meta for group 0002 at the root.

    Raises:
        EditError: no element exists at that path.
    """
    if len(path) % 2 == 0:
        raise EditError(f"{path_text(path)} names a sequence item, not an element.")
    parent = _resolve_item(ds, path[:-1])
    container = _container(parent, path[-1], at_root=len(path) == 1)
    if path[-1] not in container:
        raise EditError(f"There is no element {path_text(path)} in this dataset.")
    return container[path[-1]]


def _resolve_ambiguous_vr(elem: DataElement, container: Dataset, is_little_endian: bool) -> str:
    if " or " not in elem.VR:
        return str(elem.VR)
    with contextlib.suppress(Exception):
        correct_ambiguous_vr_element(elem, container, is_little_endian)
    if " or " in elem.VR:
        raise EditError(
            f"{describe_tag(elem.tag)} may be {elem.VR} and this dataset does not say which "
            "(for example no Pixel Representation); give the VR explicitly."
        )
    return str(elem.VR)


def _little_endian(ds: Dataset) -> bool:
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        return bool(meta.TransferSyntaxUID != ExplicitVRBigEndian)
    return ds.original_encoding[1] is not False


def set_value(ds: Dataset, path: TagPath, text: str) -> None:
    """Validate ``text`` for the element at ``path`` and store it; nothing changes on error.

    Raises:
        EditError: no element at ``path``, or its VR cannot be determined.
        ValueValidationError: ``text`` does not fit the element's VR.
    """
    elem = get_element(ds, path)
    container = _resolve_item(ds, path[:-1])
    vr = _resolve_ambiguous_vr(elem, container, _little_endian(ds))
    value = parse_value(vr, text, tag=elem.tag)
    old = elem.value
    try:
        elem.value = value
    except Exception as exc:
        elem.value = old
        raise ValueValidationError(
            f"{text!r} could not be stored in {describe_tag(elem.tag)}: {exc}"
        ) from exc


# --- adding and deleting ------------------------------------------------------------------


def parse_tag(tag: int | str) -> int:
    """A tag given as int, ``"(0010,0010)"``, ``"0010,0010"``, ``"00100010"`` or keyword.

    Raises:
        EditError: the text is neither a tag number nor a known keyword.
    """
    if isinstance(tag, int):
        if not 0 <= tag <= 0xFFFFFFFF:
            raise EditError(f"{tag!r} is not a DICOM tag: tags are 32-bit numbers.")
        return tag
    text = tag.strip()
    match = _TAG_TEXT_RE.fullmatch(text)
    if match is not None:
        group, element, joined = match.groups()
        return int(joined, 16) if joined else int(group + element, 16)
    found = tag_for_keyword(text)
    if found is None:
        raise EditError(
            f"{tag!r} is neither a tag such as (0010,0010) nor a keyword of the DICOM dictionary."
        )
    return int(found)


def _vr_for_new_element(container: Dataset, tag: int, vr: str | None) -> str:
    group, element = tag >> 16, tag & 0xFFFF
    if vr is not None:
        vr = vr.strip().upper()
        if vr not in _ALL_VRS:
            raise EditError(f"{vr!r} is not a DICOM value representation.")
    if group % 2:
        if 0x0010 <= element <= 0x00FF:
            if vr not in (None, "LO"):
                raise EditError(
                    f"{tag_text(tag)} is a private creator reservation, which is always LO, "
                    f"not {vr}."
                )
            return "LO"
        creator_tag = (group << 16) | (element >> 8)
        if creator_tag not in container:
            raise EditError(
                f"Private element {tag_text(tag)} needs its private creator "
                f"{tag_text(creator_tag)} first: add {tag_text(creator_tag)} (VR LO) with the "
                f"creator's name, then add {tag_text(tag)}."
            )
        if vr is not None:
            return vr
        creator = str(container[creator_tag].value or "")
        try:
            return str(get_private_entry(tag, creator)[0])
        except KeyError:
            raise EditError(
                f"Private element {tag_text(tag)} of creator {creator!r} is not in pydicom's "
                "private dictionary; give its VR."
            ) from None
    try:
        known = str(dictionary_VR(tag))
    except KeyError:
        if vr is None:
            raise EditError(
                f"{tag_text(tag)} is not in the DICOM dictionary; give its VR."
            ) from None
        return vr
    if vr is None:
        return known
    if vr != "UN" and vr not in known.split(" or "):
        raise EditError(
            f"{describe_tag(tag)} has VR {known} in the DICOM dictionary, so {vr!r} cannot be used."
        )
    return vr


def add_element(
    ds: Dataset, parent: TagPath, tag: int | str, text: str = "", *, vr: str | None = None
) -> TagPath:
    """Add a new element under ``parent`` (``()`` or an item path) and return its path.

    ``vr`` defaults to the dictionary's; it is required for unknown tags and for private tags
    the private dictionary does not know. A private element needs its creator reservation
    (gggg,00xx) in the same dataset. Sequences start empty (``text`` must be "").

    Raises:
        EditError: the tag is malformed, reserved, already present, or its VR is unknown.
        ValueValidationError: ``text`` does not fit the VR.
    """
    number = parse_tag(tag)
    group, element = number >> 16, number & 0xFFFF
    if len(parent) % 2:
        raise EditError(f"{path_text(parent)} is an element; elements are added to items.")
    if group == 0x0000:
        raise EditError(f"{tag_text(number)} is a command element; files cannot hold them.")
    if group == 0x0002 and parent:
        raise EditError(f"File Meta element {tag_text(number)} belongs at the root only.")
    if group in (0x0001, 0x0003, 0x0005, 0x0007, 0xFFFF) or (group % 2 and 0 < element < 0x10):
        raise EditError(f"{tag_text(number)} is reserved by the standard and cannot be used.")
    if element == 0x0000:
        raise EditError(f"{tag_text(number)} is a group length; the writer computes it.")
    if number >> 16 == 0xFFFE:
        raise EditError(f"{tag_text(number)} is an item delimiter, not an element.")
    item = _resolve_item(ds, parent)
    container = _container(item, number, at_root=not parent, create_meta=False)
    if number in container:
        raise EditError(f"{path_text(parent + (number,))} already exists; edit its value instead.")
    chosen = _vr_for_new_element(container, number, vr)
    if chosen == "SQ":
        if text:
            parse_value("SQ", text, tag=number)
        new = DataElement(number, "SQ", Sequence())
    else:
        if " or " in chosen:
            probe = DataElement(number, chosen, None)
            chosen = _resolve_ambiguous_vr(probe, item, _little_endian(ds))
        new = DataElement(number, chosen, parse_value(chosen, text, tag=number))
    container = _container(item, number, at_root=not parent, create_meta=True)
    container.add(new)
    return parent + (number,)


def add_item(ds: Dataset, seq_path: TagPath) -> TagPath:
    """Append an empty item to the sequence at ``seq_path``; returns the new item's path.

    Raises:
        EditError: no sequence at that path.
    """
    elem = get_element(ds, seq_path)
    if elem.VR != "SQ":
        raise EditError(f"{path_text(seq_path)} is not a sequence (its VR is {elem.VR}).")
    elem.value.append(Dataset())
    return seq_path + (len(elem.value) - 1,)


def delete_element(ds: Dataset, path: TagPath) -> None:
    """Delete the element (odd path) or the sequence item (even path) at ``path``.

    Raises:
        EditError: nothing at that path; the root cannot be deleted; a private creator still
            has elements; a File Meta element the file cannot be written without.
    """
    if not path:
        raise EditError("The root dataset cannot be deleted.")
    if len(path) % 2 == 0:
        _resolve_item(ds, path)
        del get_element(ds, path[:-1]).value[path[-1]]
        return
    get_element(ds, path)
    tag = path[-1]
    parent = _resolve_item(ds, path[:-1])
    container = _container(parent, tag, at_root=len(path) == 1)
    if tag in _REQUIRED_META:
        raise EditError(f"{describe_tag(tag)} is required to write the file and cannot be deleted.")
    group, element = tag >> 16, tag & 0xFFFF
    if group % 2 and 0x10 <= element <= 0xFF:
        block = (group << 16) | (element << 8)
        owned = [t for t in container.keys() if block <= t <= block + 0xFF]
        if owned:
            raise EditError(
                f"Private creator {tag_text(tag)} still reserves {len(owned)} element(s) such as "
                f"{tag_text(int(owned[0]))}; delete those first."
            )
    del container[tag]


# --- saving -------------------------------------------------------------------------------


def _original_uids(source: Path | None) -> tuple[str | None, str | None]:
    """SOP Class and Instance UID of the file as it is on disk, to see what the user changed."""
    if source is None or not source.is_file():
        return None, None
    try:
        disk = read_dicom(
            source, force=True, stop_before_pixels=True, specific_tags=[0x00080016, 0x00080018]
        )
    except Exception:
        return None, None
    return disk.get("SOPClassUID"), disk.get("SOPInstanceUID")


def _transfer_syntax(ds: Dataset) -> UID:
    implicit, little = ds.original_encoding
    if implicit is None:
        implicit, little = ds.is_implicit_VR, ds.is_little_endian
    if implicit:
        return ImplicitVRLittleEndian
    return ExplicitVRBigEndian if little is False else ExplicitVRLittleEndian


def _meta_for_writing(ds: Dataset, source: Path | None) -> FileMetaDataset:
    """The File Meta to write: the original one, completed only where it is missing parts."""
    meta = FileMetaDataset()
    for elem in getattr(ds, "file_meta", None) or ():
        meta.add(copy.deepcopy(elem))
    sop_class, sop_instance = ds.get("SOPClassUID"), ds.get("SOPInstanceUID")
    if not sop_class or not sop_instance:
        raise SaveError(
            "The dataset has no SOP Class UID or SOP Instance UID, so it cannot be written as a "
            "DICOM file; add them first."
        )
    disk_class, disk_instance = _original_uids(source)
    if "MediaStorageSOPClassUID" not in meta or (disk_class and disk_class != sop_class):
        meta.MediaStorageSOPClassUID = sop_class
    # The meta keeps its own (possibly mismatching) value unless the user changed the UID.
    if "MediaStorageSOPInstanceUID" not in meta or (
        disk_instance and disk_instance != sop_instance
    ):
        meta.MediaStorageSOPInstanceUID = sop_instance
    if "TransferSyntaxUID" not in meta or not meta.TransferSyntaxUID:
        meta.TransferSyntaxUID = _transfer_syntax(ds)
    if "FileMetaInformationVersion" not in meta:
        meta.FileMetaInformationVersion = b"\x00\x01"
    if "ImplementationClassUID" not in meta or not meta.ImplementationClassUID:
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        meta.ImplementationVersionName = f"PYDICOM {pydicom.__version__}"[:16]
    if "FileMetaInformationGroupLength" not in meta:
        meta.FileMetaInformationGroupLength = 0  # the writer fills in the real length
    return meta


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


def save_as(
    ds: Dataset, dest: Path, *, source: Path | None = None, overwrite: bool = False
) -> Path:
    """Write ``ds`` to ``dest`` as a DICOM file, keeping its transfer syntax and File Meta.

    ``source`` is the file ``ds`` was read from (default ``ds.filename``); it is never
    overwritten unless ``overwrite`` is true. The Media Storage SOP Class/Instance UIDs follow
    the dataset only where the user changed SOP Class/Instance UID. Files read without File
    Meta get a minimal one and a zero preamble, so the result is always a Part 10 file.

    Returns:
        The path written.

    Raises:
        SaveError: ``dest`` exists (or is the source) and ``overwrite`` is false, the dataset
            cannot be encoded, or the write failed; ``dest`` is left untouched.
    """
    dest = Path(dest)
    if source is None and isinstance(getattr(ds, "filename", None), str):
        source = Path(ds.filename)
    if not overwrite and (dest.exists() or (source is not None and _same_file(dest, source))):
        raise SaveError(f"{dest.name!r} already exists; choose another name or confirm overwrite.")
    meta = _meta_for_writing(ds, source)
    preamble = getattr(ds, "preamble", None)
    # A shallow copy shares the elements but lets us attach our meta without touching ``ds``.
    out = copy.copy(ds)
    out.file_meta = meta
    out.preamble = preamble if preamble and len(preamble) == 128 else b"\x00" * 128

    def write(handle: Any) -> None:
        # The meta is complete by construction, so writing "as is" keeps the original
        # Implementation Class UID/Version instead of pydicom adding its own name.
        pydicom.dcmwrite(handle, out, enforce_file_format=False)

    write_atomically(dest, write, overwrite=overwrite)
    return dest


def edited_copy_name(source: Path) -> Path:
    """A free name beside ``source`` for "save as new": ``rtplan-edited.dcm``, ``-edited-2``..."""
    source = Path(source)
    suffix = source.suffix if re.fullmatch(r"\.[A-Za-z][A-Za-z0-9]{0,5}", source.suffix) else ""
    stem = source.name[: len(source.name) - len(suffix)] if suffix else source.name
    number = 1
    while True:
        tail = "-edited" if number == 1 else f"-edited-{number}"
        candidate = source.with_name(f"{stem}{tail}{suffix}")
        if not candidate.exists():
            return candidate
        number += 1
