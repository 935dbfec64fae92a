"""``tuiviewer dump`` of a well-formed file straight from its bytes, without importing pydicom.

``import pydicom`` costs about 190 ms of CPU, more than the 120 ms a dump of one slice may take
in all. This reader lists the common case itself: the preamble and ``DICM`` (or a bare file
that starts with its meta group), the File Meta Information, explicit and implicit VR little
endian and explicit VR big endian data sets, sequences and items of defined and undefined
length, and encapsulated Pixel Data as its fragments (only the bytes shown are read: the file
is memory-mapped). Tag names, VRs of implicit VR files and UID names come from pydicom's
dictionaries through :mod:`tuiviewer.dicom.dictcache`.

It prints exactly what the pydicom listing (:mod:`tuiviewer.dicom.dump`) prints, or nothing:
whatever it does not handle, or would handle differently, raises :class:`Unhandled` *before*
anything is written, and the caller falls back to the pydicom listing. That covers every file
with a problem to report (truncation, bad lengths, values pydicom would warn about or fail to
convert, elements out of order, limits of ``[limits]`` exceeded: the pydicom path states them),
deflated data sets, text that is not plain ASCII, ambiguous VRs of implicit VR files (US or
SS, OB or OW), ``UN`` elements whose VR pydicom would look up, and values too large to be worth
checking here (over 1 MiB of text).
"""

from __future__ import annotations

import mmap
import re
import struct
import sys
from collections.abc import Callable
from typing import Any

from tuiviewer.dicom.dictcache import Dictionaries, dictionaries
from tuiviewer.dicom.dumpformat import (
    META_HEAD,
    NO_VALUE,
    PIXEL_TAGS,
    bracketed,
    data_head,
    fallback_keyword,
    hex_bytes,
    line,
    pixel_sequence,
    shorten,
)

__all__ = ["Unhandled", "listing"]

_ITEM = 0xFFFEE000
_ITEM_DELIM = 0xFFFEE00D
_SEQ_DELIM = 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
_TEXT_LIMIT = 1 << 20
_LUT_DESCRIPTORS = frozenset({0x00281101, 0x00281102, 0x00281103, 0x00283002})
_ITEM_ENDS = (b"\xfe\xff\x0d\xe0", b"\xff\xfe\xe0\x0d")  # (FFFE,E00D) LE, BE
# PS3.5 7.1.2: these VRs have a 4-byte length field in explicit VR.
_LONG_VRS = frozenset("OB OD OF OL OV OW SQ SV UC UN UR UT UV".split())
_KNOWN_VRS = frozenset(
    "AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL "
    "UN UR US UT UV".split()
)
_BYTES_VRS = frozenset("OB OD OF OL OV OW UN".split())
_NUMBER_FORMATS = {"US": "H", "SS": "h", "UL": "L", "SL": "l", "FL": "f", "FD": "d"}
_NUMBER_FORMATS |= {"SV": "q", "UV": "Q"}
# Transfer syntaxes read without a guess: (implicit, little endian) (PS3.5 A.1-A.3); every
# other registered one is encapsulated, explicit VR little endian (A.4). Deflate is not here.
_NATIVE = {
    "1.2.840.10008.1.2": (True, True),
    "1.2.840.10008.1.2.1": (False, True),
    "1.2.840.10008.1.2.2": (False, False),
}
_DEFLATED = frozenset({"1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.4.201"})

# What a value must look like for pydicom to take it without a warning (PS3.5 Table 6.2-1,
# with pydicom's limits: MAX_VALUE_LEN and its validators). Stricter is safe: a value that
# fails here only sends the file to the pydicom listing, which then reports it.
_MAX_LENGTH = {"AE": 16, "CS": 16, "DS": 16, "IS": 12, "LO": 64, "LT": 10240, "SH": 16}
_MAX_LENGTH |= {"ST": 1024, "UI": 64}
_DATE = r"\d{4}(?:0[1-9]|1[0-2])(?:[0-2]\d|3[01])"
_TIME = r"(?:[01]\d|2[0-3])(?:[0-5]\d(?:(?:60|[0-5]\d)(?:\.\d{1,6} ?)?)?)?"
_DATETIME = (
    r"\d{4}(?:(?:0[1-9]|1[0-2])(?:(?:[0-2]\d|3[01])(?:(?:[01]\d|2[0-3])"
    r"(?:[0-5]\d(?:(?:60|[0-5]\d)(?:\.\d{1,6} ?)?)?)?)?)?)?(?:[+-][01]\d\d\d)?"
)


def _ranged(one: str) -> str:
    # PS3.4 C.2.2.2.5: a date, time or datetime may be a range.
    return rf"(?:{one}|-{one} ?|{one}- ?|{one}-{one} ?)\Z"


_PATTERNS = {
    "AE": r"[\x20-\x7e]*\Z",
    "AS": r"\d\d\d[DWMY]\Z",
    "CS": r"[A-Z0-9 _]*\Z",
    "DS": r" *[+-]?(?:\d+|\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)? *\Z",
    "IS": r" *[+-]?\d+ *\Z",
    "DA": _ranged(_DATE),
    "DT": _ranged(_DATETIME),
    "TM": _ranged(_TIME),
    "UI": r"(?:0|[1-9]\d*)(?:\.(?:0|[1-9]\d*))*\Z",
    "UR": r"[A-Za-z_\d:/?#\[\]@!$&'()*+,;=%\-.~]* *\Z",
}
_compiled: dict[str, re.Pattern[str]] = {}
"""Compiled on first use: a slice needs half of them, and compiling all costs 5 ms."""


class Unhandled(Exception):  # noqa: N818 - a decision, not an error the user sees
    """This file is for the pydicom listing; the reason says why (for tests and logs)."""


class _Element:
    """One element as listed. A plain class: ``dataclasses`` costs ~10 ms to import, a tenth
    of a dump's budget."""

    __slots__ = (
        "tag",
        "vr",
        "text",
        "length",
        "vm",
        "label",
        "items",
        "undefined",
        "fragments",
        "values",
    )

    def __init__(
        self,
        tag: int,
        vr: str,
        text: str,
        length: int,
        vm: int,
        *,
        items: list[_Item] | None = None,
        undefined: bool = False,
        fragments: list[tuple[str, int]] | None = None,
        values: list[str] | None = None,
    ) -> None:
        self.tag = tag
        self.vr = vr
        self.text = text
        """The value column (already shortened and cleaned)."""
        self.length = length
        """The value length as pydicom would write it (explicit VR little endian)."""
        self.vm = vm
        self.label = ""
        """The keyword column."""
        self.items = items
        """Only for SQ."""
        self.undefined = undefined
        self.fragments = fragments
        """Encapsulated Pixel Data: (value column, length) of each fragment."""
        self.values = values
        """Text values as pydicom converts them (for the meta group's transfer syntax)."""


class _Item:
    __slots__ = ("elements", "undefined")

    def __init__(self, undefined: bool) -> None:
        self.elements: list[_Element] = []
        self.undefined = undefined


#: Without a configuration file the CLI never imports tuiviewer.config.limits (nor, with it,
#: dataclasses): nothing can have changed the defaults then, and they are above these bounds,
#: so the module is imported only once a file goes past them.
_QUICK_ELEMENTS = 100_000
_QUICK_DEPTH = 16


class _Limits:
    """``[limits]`` max_elements and max_depth, read from tuiviewer.config.limits only when
    it is loaded or a file needs more than the quick bounds."""

    def __init__(self) -> None:
        self.max_elements = _QUICK_ELEMENTS
        self.max_depth = _QUICK_DEPTH
        self.exact = False
        if "tuiviewer.config.limits" in sys.modules:
            self.load()

    def load(self) -> None:
        from tuiviewer.config import limits

        current = limits.current()
        self.max_elements, self.max_depth, self.exact = (
            current.max_elements,
            current.max_depth,
            True,
        )


class _Reader:
    def __init__(self, buf: Any, tables: Dictionaries) -> None:
        self.buf = buf
        self.tables = tables
        self.limits = _Limits()
        self.count = 0

    # -- structure ------------------------------------------------------------------------
    def dataset(
        self,
        pos: int,
        end: int,
        implicit: bool,
        little: bool,
        depth: int,
        *,
        item: bool = False,
        meta: bool = False,
    ) -> tuple[list[_Element], int]:
        """Elements from ``pos`` to ``end`` (or the item delimiter); the position after."""
        elements: list[_Element] = []
        creators: dict[int, str] = {}
        pixel_rep: int | None = None
        previous = -1
        endian = "<" if little else ">"
        buf = self.buf
        while pos < end:
            if meta and (end - pos < 2 or struct.unpack_from("<H", buf, pos)[0] != 2):
                break
            if end - pos < 8:
                raise Unhandled(f"an element header is cut short at byte {pos}")
            group, number = struct.unpack_from(endian + "HH", buf, pos)
            tag = group << 16 | number
            if tag == _ITEM_DELIM and item:
                return elements, pos + 8
            if group == 0xFFFE:
                raise Unhandled(f"an item tag outside a sequence at byte {pos}")
            if tag <= previous:
                raise Unhandled(f"element {tag:08X} is out of order or repeated")
            previous = tag
            self.count += 1
            if self.count > self.limits.max_elements:
                if not self.limits.exact:
                    self.limits.load()
                if self.count > self.limits.max_elements:
                    raise Unhandled("more elements than [limits] max_elements")
            if implicit:
                (length,) = struct.unpack_from(endian + "L", buf, pos + 4)
                vr = self.implicit_vr(tag, length, creators, pixel_rep)
                vpos = pos + 8
            else:
                raw_vr = bytes(buf[pos + 4 : pos + 6])
                vr = raw_vr.decode("latin-1")
                if vr not in _KNOWN_VRS:
                    raise Unhandled(f"element {tag:08X} has VR bytes {raw_vr!r}")
                if vr in _LONG_VRS:
                    if end - pos < 12:
                        raise Unhandled(f"an element header is cut short at byte {pos}")
                    (length,) = struct.unpack_from(endian + "L", buf, pos + 8)
                    vpos = pos + 12
                else:
                    (length,) = struct.unpack_from(endian + "H", buf, pos + 6)
                    vpos = pos + 8
                if vr == "UN":
                    self.check_un(tag, length, creators)
            element, pos = self.element(tag, vr, length, vpos, end, implicit, little, depth)
            element.label = self.label(tag, creators)
            if group % 2 and 0x10 <= number <= 0xFF:
                if vr != "LO":
                    raise Unhandled(f"private creator {tag:08X} has VR {vr}")
                creators[tag] = element_creator(buf, vpos, length)
            if tag == 0x00080005:
                self.check_charset(buf, vpos, length)
            if tag == 0x00280103 and vr == "US" and length == 2:
                (pixel_rep,) = struct.unpack_from(endian + "H", buf, vpos)
            elements.append(element)
        if item:
            raise Unhandled("an item of undefined length has no delimiter")
        return elements, pos

    def element(
        self,
        tag: int,
        vr: str,
        length: int,
        vpos: int,
        end: int,
        implicit: bool,
        little: bool,
        depth: int,
    ) -> tuple[_Element, int]:
        if vr == "SQ":
            return self.sequence(tag, length, vpos, end, implicit, little, depth + 1)
        if length == _UNDEFINED:
            if tag in PIXEL_TAGS and depth == 0 and little and vr in ("OB", "OW"):
                return self.encapsulated(tag, vr, vpos, end)
            raise Unhandled(f"element {tag:08X} ({vr}) has undefined length")
        if length > end - vpos:
            raise Unhandled(f"element {tag:08X} runs past the end of its data set")
        text, size, vm, values = _value(self.buf, vpos, length, vr, little, self.tables)
        return _Element(tag, vr, text, size, vm, values=values), vpos + length

    def sequence(
        self,
        tag: int,
        length: int,
        vpos: int,
        end: int,
        implicit: bool,
        little: bool,
        depth: int,
    ) -> tuple[_Element, int]:
        if depth > self.limits.max_depth:
            if not self.limits.exact:
                self.limits.load()
            if depth > self.limits.max_depth:
                raise Unhandled("sequences nested deeper than [limits] max_depth")
        undefined = length == _UNDEFINED
        if not undefined:
            if length > end - vpos:
                raise Unhandled(f"sequence {tag:08X} runs past the end of its data set")
            end = vpos + length
        endian = "<" if little else ">"
        items: list[_Item] = []
        pos = vpos
        while True:
            if pos >= end and not undefined:
                break
            if end - pos < 8:
                raise Unhandled(f"sequence {tag:08X} is cut short")
            group, number, item_length = struct.unpack_from(endian + "HHL", self.buf, pos)
            item_tag = group << 16 | number
            if item_tag == _SEQ_DELIM and undefined:
                pos += 8
                break
            if item_tag != _ITEM:
                raise Unhandled(f"sequence {tag:08X} holds {item_tag:08X} where an item belongs")
            start = pos + 8
            first = self.buf[start : start + 4] if item_length else b""
            if not implicit and end - start >= 6 and first not in _ITEM_ENDS:
                two = self.buf[start + 4 : start + 6]
                if not (0x40 < two[0] < 0x5B and 0x40 < two[1] < 0x5B):
                    raise Unhandled(f"an item of {tag:08X} switches to implicit VR")
            entry = _Item(item_length == _UNDEFINED)
            if entry.undefined:
                entry.elements, pos = self.dataset(start, end, implicit, little, depth, item=True)
            else:
                if item_length > end - start:
                    raise Unhandled(f"an item of {tag:08X} runs past its sequence")
                entry.elements, after = self.dataset(
                    start, start + item_length, implicit, little, depth
                )
                pos = start + item_length
                if after != pos:
                    raise Unhandled(f"an item of {tag:08X} does not end where it says")
            items.append(entry)
        element = _Element(tag, "SQ", "", 0, 1, items=items, undefined=undefined)
        return element, pos

    def encapsulated(self, tag: int, vr: str, vpos: int, end: int) -> tuple[_Element, int]:
        fragments: list[tuple[str, int]] = []
        pos = vpos
        while True:
            if end - pos < 8:
                raise Unhandled("encapsulated Pixel Data has no sequence delimiter")
            group, number, length = struct.unpack_from("<HHL", self.buf, pos)
            item_tag = group << 16 | number
            if item_tag == _SEQ_DELIM:
                if length != 0:
                    raise Unhandled("the Pixel Data delimiter has a length")
                break
            if item_tag != _ITEM or length > end - pos - 8:
                raise Unhandled("encapsulated Pixel Data is not a run of fragments")
            head = bytes(self.buf[pos + 8 : pos + 8 + min(length, 100)])
            fragments.append((shorten(hex_bytes(head)) if length else NO_VALUE, length))
            pos += 8 + length
        element = _Element(tag, vr, "", 0, 1, undefined=True, fragments=fragments)
        return element, pos + 8

    # -- VRs and names ----------------------------------------------------------------
    def implicit_vr(
        self, tag: int, length: int, creators: dict[int, str], pixel_rep: int | None
    ) -> str:
        """The VR pydicom gives an element of an implicit VR data set."""
        entry = self.tables.entry(tag)
        if entry is not None:
            vr = entry[0]
            # pydicom's correct_ambiguous_vr (PS3.5 A.1, 8.1.2), in the common cases:
            # Pixel Data and Overlay Data are OW in implicit VR (encapsulated Pixel Data is
            # OB); US or SS follows the Pixel Representation of the same data set (LUT
            # descriptors are left to pydicom).
            if vr == "OB or OW" and tag == 0x7FE00010:
                vr = "OB" if length == _UNDEFINED else "OW"
            elif vr == "OB or OW" and tag & 0xFFE1FFFF == 0x60003000:
                vr = "OW"  # Overlay Data (60xx,3000), x even
            elif vr == "US or SS" and pixel_rep is not None and tag not in _LUT_DESCRIPTORS:
                vr = "US" if pixel_rep == 0 else "SS"
        elif tag >> 16 & 1:
            vr = self._private_vr(tag, creators)
        elif tag & 0xFFFF == 0:
            vr = "UL"
        else:
            raise Unhandled(f"implicit VR element {tag:08X} is in no dictionary")
        if vr not in _KNOWN_VRS:
            raise Unhandled(f"element {tag:08X} has the ambiguous VR {vr!r}")
        return vr

    def _private_vr(self, tag: int, creators: dict[int, str]) -> str:
        number = tag & 0xFFFF
        if 0x10 <= number <= 0xFF:
            return "LO"
        if number & 0xFF00:
            creator = creators.get((tag & 0xFFFF0000) | number >> 8)
            if creator:
                found = self.tables.private_entry(tag, creator)
                if found is not None:
                    return found[0]
        return "UN"

    def check_un(self, tag: int, length: int, creators: dict[int, str]) -> None:
        """pydicom replaces UN by a VR it knows (config.replace_un_with_known_vr)."""
        if tag >> 16 & 1:
            if self._private_vr(tag, creators) != "UN":
                raise Unhandled(f"UN element {tag:08X} has a VR in the private dictionary")
        elif length == _UNDEFINED or length < 0xFFFF:
            if self.tables.entry(tag) is not None:
                raise Unhandled(f"UN element {tag:08X} has a VR in the dictionary")
        if length == _UNDEFINED:
            raise Unhandled(f"UN element {tag:08X} has undefined length")

    def label(self, tag: int, creators: dict[int, str]) -> str:
        """The keyword column, as the pydicom listing names the element."""
        number = tag & 0xFFFF
        private = bool(tag >> 16 & 1)
        keyword = ""
        creator: str | None = None
        if number == 0 or not private:
            entry = self.tables.entry(tag)
            keyword = entry[1] if entry is not None else ""
        elif not 0x10 <= number <= 0xFF and number >> 8 >= 0x10:
            creator = creators.get((tag & 0xFFFF0000) | number >> 8) or None
            if creator:
                found = self.tables.private_entry(tag, creator)
                keyword = found[1] if found is not None else ""
        if keyword:
            return keyword.replace(" ", "")
        return fallback_keyword(tag, private, creator is not None)

    def check_charset(self, buf: Any, vpos: int, length: int) -> None:
        names = bytes(buf[vpos : vpos + length]).decode("latin-1").rstrip(" \0").split("\\")
        if len(names) > 1 or names[0].strip() not in self.tables.charsets:
            raise Unhandled(f"Specific Character Set {names!r} is left to pydicom")


def element_creator(buf: Any, vpos: int, length: int) -> str:
    """A private creator's name, as pydicom matches it against its private dictionary."""
    return bytes(buf[vpos : vpos + length]).strip(b" \0").decode("latin-1")


# -- values ------------------------------------------------------------------------------


def _value(
    buf: Any, vpos: int, length: int, vr: str, little: bool, tables: Dictionaries
) -> tuple[str, int, int, list[str] | None]:
    """(value column, length as re-encoded, VM, text values) of one non-sequence value."""
    if vr in _BYTES_VRS:
        if length == 0:
            return NO_VALUE, 0, 0, None
        if vr == "OW" and length % 2 == 0:
            text = hex_bytes(bytes(buf[vpos : vpos + min(length, 200)]), "OW")
        else:
            text = hex_bytes(bytes(buf[vpos : vpos + min(length, 100)]))
        return shorten(text), length + length % 2, 1, None
    if vr == "AT":
        if length % 4:
            raise Unhandled("an AT value is not a whole number of tags")
        endian = "<" if little else ">"
        tags = struct.unpack_from(f"{endian}{length // 2}H", buf, vpos)
        pairs = [f"({tags[i]:04x},{tags[i + 1]:04x})" for i in range(0, len(tags), 2)]
        return (shorten("\\".join(pairs)) if pairs else NO_VALUE), length, len(pairs), None
    code = _NUMBER_FORMATS.get(vr)
    if code is not None:
        size = struct.calcsize("<" + code)
        if length % size:
            raise Unhandled(f"a {vr} value of {length} bytes")
        count = length // size
        if count == 0:
            return NO_VALUE, 0, 0, None
        endian = "<" if little else ">"
        numbers = struct.unpack_from(f"{endian}{count}{code}", buf, vpos)
        if vr == "FL":
            shown = "\\".join(f"{v:.9g}" for v in numbers[:65])
        else:
            shown = "\\".join(str(v) for v in numbers[:65])
        return shorten(shown), length, count, None
    if length > _TEXT_LIMIT:
        raise Unhandled(f"a {vr} value of {length} bytes")
    data = bytes(buf[vpos : vpos + length])
    if not data.isascii() or b"\x1b" in data:
        raise Unhandled("text that is not plain ASCII")
    items = _TEXT[vr](data.decode("ascii"), vr)
    joined = sum(len(v) for v in items) + len(items) - 1 if items else 0
    if vr not in _LONG_VRS and joined > 0xFFFF:
        raise Unhandled(f"a {vr} value too long for its length field")
    if not items or (len(items) == 1 and not items[0]):
        return NO_VALUE, 0, 0, items
    known = tables.uid(items[0]) if vr == "UI" and len(items) == 1 else None
    if known is not None:
        text = "=" + (known[1] or known[0])
    else:
        text = bracketed(items)
    return text, joined + joined % 2, len(items), items


def _valid(vr: str, value: str) -> None:
    if not value:
        return
    limit = _MAX_LENGTH.get(vr)
    if limit is not None and len(value) > limit:
        raise Unhandled(f"a {vr} value longer than {limit} characters")
    quick = _QUICK.get(vr)
    if quick is not None and quick(value):
        return  # the common form, checked without compiling a pattern
    regex = _compiled.get(vr)
    if regex is None and vr in _PATTERNS:
        regex = _compiled[vr] = re.compile(_PATTERNS[vr], re.ASCII)
    if regex is not None and (regex.match(value) is None or value.endswith("\n")):
        raise Unhandled(f"a {vr} value that pydicom would warn about")


_CS_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _")


def _digits(text: str) -> bool:
    return text.isdigit() and text.isascii()


def _quick_date(value: str) -> bool:
    """YYYYMMDD with a month of 01-12 and a day of 01-31 (what the DA pattern takes)."""
    return (
        len(value) == 8
        and _digits(value)
        and "01" <= value[4:6] <= "12"
        and "01" <= value[6:8] <= "31"
    )


def _quick_time(value: str) -> bool:
    """HH, HHMM, HHMMSS or HHMMSS.F{1,6} (what the TM pattern takes, ranges aside)."""
    whole, dot, fraction = value.partition(".")
    if len(whole) not in (2, 4, 6) or not _digits(whole) or whole[:2] > "23":
        return False
    if len(whole) >= 4 and whole[2:4] > "59":
        return False
    if len(whole) == 6 and whole[4:6] > "60":
        return False
    if not dot:
        return True
    return len(whole) == 6 and 1 <= len(fraction) <= 6 and _digits(fraction)


def _quick_uid(value: str) -> bool:
    return all(_digits(part) and (part == "0" or part[0] != "0") for part in value.split("."))


def _quick_is(value: str) -> bool:
    number = value.strip(" ")
    if number[:1] in ("+", "-"):
        number = number[1:]
    return _digits(number) and " " not in value.strip(" ")


def _quick_ds(value: str) -> bool:
    number = value.strip(" ")
    if " " in number:
        return False
    if number[:1] in ("+", "-"):
        number = number[1:]
    mantissa, e, exponent = number.replace("E", "e").partition("e")
    if e:
        if exponent[:1] in ("+", "-"):
            exponent = exponent[1:]
        if not _digits(exponent):
            return False
    whole, dot, fraction = mantissa.partition(".")
    if not (whole or fraction):
        return False
    return (not whole or _digits(whole)) and (not fraction or _digits(fraction))


_QUICK: dict[str, Callable[[str], bool]] = {
    "AE": lambda value: value.isascii() and value.isprintable(),
    "AS": lambda value: len(value) == 4 and _digits(value[:3]) and value[3] in "DWMY",
    "CS": lambda value: _CS_CHARACTERS.issuperset(value),
    "DA": _quick_date,
    "TM": _quick_time,
    "UI": _quick_uid,
    "IS": _quick_is,
    "DS": _quick_ds,
}
"""Checks that accept only values the pattern of the same VR accepts; anything they refuse
is tried against the pattern."""


def _split(text: str) -> list[str]:
    return text.rstrip(" \0").split("\\")


def _strings(text: str, vr: str) -> list[str]:
    """AS CS DA DT TM UI: padding off the end, split on backslashes (each value checked)."""
    items = _split(text)
    for value in items:
        _valid(vr, value)
    return items


def _ae(text: str, vr: str) -> list[str]:
    items = [v.strip() for v in text.split("\\")]
    for value in items:
        _valid(vr, value)
    return items


def _texts(text: str, vr: str) -> list[str]:
    """SH LO UC: each value checked as it stands, then its trailing padding dropped."""
    items = text.split("\\")
    for value in items:
        _valid(vr, value)
    return [v.rstrip("\0 ") for v in items]


def _single(text: str, vr: str) -> list[str]:
    """ST LT UT: one value, checked before its padding is dropped."""
    _valid(vr, text)
    return [text.rstrip("\0 ")]


def _ur(text: str, vr: str) -> list[str]:
    value = text.rstrip()
    _valid(vr, value)
    return [value]


def _number_strings(text: str, vr: str) -> list[str]:
    """IS DS: each value checked, then shown without its spaces (pydicom's original_string)."""
    if text.strip(" \0") == "":
        return []  # pydicom: no value (None)
    result = []
    for value in _split(text):
        if value.strip() == "":
            raise Unhandled(f"a blank {vr} value")
        _valid(vr, value)
        result.append(value.strip())
    return result


def _pn(text: str, vr: str) -> list[str]:
    items = text.rstrip("\0 ").split("\\")
    for value in items:
        if "=" in value or value.count("^") > 4 or len(value) > 64:
            raise Unhandled("a person name pydicom would check by its groups")
    return items


_TEXT: dict[str, Callable[[str, str], list[str]]] = {
    "AE": _ae,
    "AS": _strings,
    "CS": _strings,
    "DA": _strings,
    "DT": _strings,
    "TM": _strings,
    "UI": _strings,
    "SH": _texts,
    "LO": _texts,
    "UC": _texts,
    "ST": _single,
    "LT": _single,
    "UT": _single,
    "UR": _ur,
    "IS": _number_strings,
    "DS": _number_strings,
    "PN": _pn,
}


# -- the listing -------------------------------------------------------------------------


def _encoded(element: _Element, implicit: bool) -> int:
    """Bytes pydicom writes for ``element`` (header included) in the file's encoding."""
    header = 8 if implicit or element.vr not in _LONG_VRS else 12
    if element.items is None:
        return header + element.length
    return header + _sequence_length(element, implicit) + (8 if element.undefined else 0)


def _sequence_length(element: _Element, implicit: bool) -> int:
    assert element.items is not None
    return sum(8 + _item_length(item, implicit) + (8 * item.undefined) for item in element.items)


def _item_length(item: _Item, implicit: bool) -> int:
    return sum(_encoded(element, implicit) for element in item.elements)


def _lines(out: list[str], elements: list[_Element], depth: int, implicit: bool) -> None:
    indent = "  " * depth
    for element in elements:
        tag = f"({element.tag >> 16:04x},{element.tag & 0xFFFF:04x})"
        if element.items is not None:
            kind = "undefined" if element.undefined else "explicit"
            length = "u/l" if element.undefined else str(_sequence_length(element, implicit))
            text = f"(Sequence with {kind} length #={len(element.items)})"
            out.append(line(indent, tag, "SQ", text, length, 1, element.label))
            for item in element.items:
                kind = "undefined" if item.undefined else "explicit"
                length = "u/l" if item.undefined else str(_item_length(item, implicit))
                text = f"(Item with {kind} length #={len(item.elements)})"
                out.append(line(indent + "  ", "(fffe,e000)", "na", text, length, 1, "Item"))
                _lines(out, item.elements, depth + 2, implicit)
                text = "(ItemDelimitationItem" + ("" if item.undefined else " for re-encoding")
                out.append(
                    line(
                        indent + "  ",
                        "(fffe,e00d)",
                        "na",
                        text + ")",
                        "0",
                        0,
                        "ItemDelimitationItem",
                    )
                )
            text = "(SequenceDelimitationItem" + ("" if element.undefined else " for re-encod.")
            out.append(
                line(indent, "(fffe,e0dd)", "na", text + ")", "0", 0, "SequenceDelimitationItem")
            )
            continue
        if element.fragments is not None:
            out.extend(pixel_sequence(indent, tag, element.vr, element.label, element.fragments))
            continue
        out.append(
            line(
                indent,
                tag,
                element.vr,
                element.text,
                str(element.length),
                element.vm,
                element.label,
            )
        )


def _syntax_name(uid: str, tables: Dictionaries) -> str:
    entry = tables.uid(uid)
    return entry[0] if entry is not None else uid


def listing(path: str, *, before_pydicom: Callable[[], None] | None = None) -> str:
    """The text ``tuiviewer dump`` prints for ``path`` (one file, no ``# File:`` line).

    ``before_pydicom`` is called before pydicom is imported to (re)make the dictionary cache.

    Raises:
        Unhandled: the pydicom listing must do this file (nothing has been printed).
    """
    try:
        with open(path, "rb") as fh:
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                return _listing(buf, before_pydicom)
    except (OSError, ValueError) as exc:
        raise Unhandled(f"cannot map the file ({exc})") from exc


def _listing(buf: Any, before_pydicom: Callable[[], None] | None) -> str:
    size = len(buf)
    if size >= 132 and buf[128:132] == b"DICM":
        pos = 132
    elif size >= 6 and buf[0:2] == b"\x02\x00":
        pos = 0
    else:
        raise Unhandled("no 'DICM' prefix and no meta group at the start")
    tables = dictionaries(before_pydicom)
    reader = _Reader(buf, tables)
    meta_start = pos
    meta, pos = reader.dataset(pos, size, False, True, 0, meta=True)
    by_tag = {element.tag: element for element in meta}
    group_length = by_tag.get(0x00020000)
    if group_length is not None and group_length.vr == "UL" and group_length.vm == 1:
        if int(group_length.text) + 12 != pos - meta_start:
            raise Unhandled("the meta group length does not match its elements")
    syntax_element = by_tag.get(0x00020010)
    if syntax_element is None or syntax_element.vm != 1 or pos >= size:
        raise Unhandled("no transfer syntax, or no data set after the meta group")
    syntax = (syntax_element.values or [""])[0].strip("\0 ")
    if syntax in _DEFLATED:
        raise Unhandled("a deflated data set")
    encoding = _NATIVE.get(syntax)
    if encoding is None:
        entry = tables.uid(syntax)
        if entry is None or entry[2] != "Transfer Syntax":
            raise Unhandled(f"an unknown transfer syntax {syntax!r}")
        encoding = (False, True)
    implicit, little = encoding
    if not implicit and size - pos >= 6:
        two = buf[pos + 4 : pos + 6]
        if not (0x40 < two[0] < 0x5B and 0x40 < two[1] < 0x5B):
            raise Unhandled("an explicit VR syntax over an implicit VR data set")
    elements, _ = reader.dataset(pos, size, implicit, little, 0)
    if not elements:
        raise Unhandled("no data element after the meta group")
    out = list(META_HEAD)
    _lines(out, meta, 0, False)
    out.extend(data_head(_syntax_name(syntax, tables)))
    _lines(out, elements, 0, implicit)
    return "\n".join(out) + "\n"
