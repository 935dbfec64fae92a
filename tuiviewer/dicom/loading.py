"""Read any file that claims to be DICOM without crashing, and say exactly what went wrong.

pydicom's ``dcmread(force=True)`` either raises part way (losing everything it read) or, worse,
silently shortens a truncated value. A viewer must show what *could* be read and point at the
byte where the file went wrong, so this module walks the byte stream itself, following the same
heuristics as pydicom (implicit/explicit VR switches, UN sequences, private sequences, guessed
transfer syntax), and builds an ordinary pydicom :class:`~pydicom.dataset.FileDataset` from the
raw elements. Every value is then converted once, so conversion errors and pydicom warnings
become :class:`LoadProblem` records now rather than surprises in the UI later.

The whole file is memory-mapped, so a declared length of 4 GiB in a 2 KiB file costs nothing:
lengths are always checked against the bytes that remain before anything is sliced.
"""

from __future__ import annotations

import mmap
import re
import struct
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydicom.charset import convert_encodings
from pydicom.datadict import (
    dictionary_has_tag,
    dictionary_VR,
    keyword_for_tag,
    private_dictionary_VR,
)
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import (
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    UID_dictionary,
)
from pydicom.util.hexutil import bytes2hex
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32
from pydicom.values import convert_string, empty_value_for_VR

from tuiviewer.config import limits as _limits
from tuiviewer.config.limits import ReadLimits
from tuiviewer.dicom.reading import elements_error, how_to_raise, inflate_bytes, syntax_encoding
from tuiviewer.dicom.warned import recording
from tuiviewer.exceptions import DicomReadError, NotDicomError

__all__ = ["PREVIEW_ELEMENTS", "LoadProblem", "LoadedFile", "TagPath", "load_file", "tag_text"]

PREVIEW_ELEMENTS = 2000
"""Top-level elements of a first screen (``load_file(head=...)``) while a large file loads."""

TagPath = tuple[int, ...]
"""Alternating tag, item index, tag ...: ``(0x300A0180, 0, 0x00185100)``."""

_ITEM = 0xFFFEE000
_ITEM_DELIM = 0xFFFEE00D
_SEQ_DELIM = 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
_PIXEL_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})
_LONG_VRS = frozenset(str(vr) for vr in EXPLICIT_VR_LENGTH_32)
# Nesting depth, element count and inflated size are bounded by [limits] (tuiviewer.config.limits):
# deeper nesting only happens in hostile or corrupt files, and a deflated data set may expand
# 1000:1, so reading stops there with a problem that says which limit and how to raise it.
# pydicom appends a link to PS3.5 to every validation warning; it drowns the banner.
_PLEASE_SEE = re.compile(r"\s*Please see <[^>]*>[^.]*\.")
_QUOTED = re.compile(r"'[^']*'")


def withhold_values(text: str) -> str:
    """pydicom quotes the offending value in its warnings; a value can be a patient's name
    read with the wrong VR, so messages (shown and logged) name the element, not the value."""
    return _QUOTED.sub("(value not shown)", text)


class ElementSink(Protocol):
    """Receives a file's top-level elements one at a time: ``load_file(path, sink=...)``
    streams a file (``dump`` of a million elements) without holding its data set."""

    def begin(self, header: LoadedFile) -> None:
        """Called once before the first element: the file meta, transfer syntax and the
        problems found so far (``header.dataset`` has no elements)."""

    def element(self, ds: Dataset, tag: BaseTag) -> None:
        """One top-level element, converted (``ds[tag]``), in a data set that also holds
        the Specific Character Set and the private creators seen so far."""


@dataclass(frozen=True)
class LoadProblem:
    """Something wrong found while reading a file; the file is still shown as far as it goes."""

    message: str
    """A full sentence naming the element and the byte offset."""
    offset: int | None
    """Byte offset in the file where it went wrong, when known."""
    tag: int | None = None
    """The element concerned, when known."""
    path: TagPath | None = None
    """Where the element sits in the dataset (see :data:`TagPath`), when known."""
    short: str = ""
    """A terse form for the one-line banner; empty means use ``message``."""


@dataclass
class LoadedFile:
    """Everything that could be read from one file, and what went wrong."""

    path: Path
    dataset: Dataset
    """Everything that could be read; ``dataset.file_meta`` is always set (may be empty)."""
    problems: list[LoadProblem]
    """Empty when the file is clean."""
    has_preamble: bool
    """The 128-byte preamble and the 'DICM' prefix are present."""
    transfer_syntax: str | None
    """The declared Transfer Syntax UID, or the one guessed when the meta header lacks it."""
    element_count: int = field(default=0)
    """Data elements read, file meta and nested ones included (items and delimiters not)."""
    partial: bool = False
    """Only the first top-level elements were read (``load_file(head=N)``): a preview of a
    large file, shown while the whole file is read; never to be edited or saved."""

    @property
    def ok(self) -> bool:
        """True when nothing was wrong with the file."""
        return not self.problems

    @property
    def banner(self) -> str | None:
        """One line for the UI, or None when the file is clean."""
        if not self.problems:
            return None
        first = self.problems[0]
        text = (first.short or first.message).rstrip(".")
        text = text[:1].lower() + text[1:]
        if len(text) > 120:
            text = text[:119] + "…"
        more = len(self.problems) - 1
        tail = f" (+{more} more problem{'s' if more != 1 else ''})" if more else ""
        noun = "element" if self.element_count == 1 else "elements"
        return f"Read {self.element_count} {noun}; {text}{tail}"


def tag_text(tag: int) -> str:
    """Return ``(GGGG,EEEE)`` in upper-case hex, the form used in messages and rows."""
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _describe(tag: int) -> str:
    keyword = keyword_for_tag(tag) if dictionary_has_tag(tag) else ""
    return f"{tag_text(tag)} {keyword}" if keyword else tag_text(tag)


def _is_vr_bytes(two: bytes) -> bool:
    return len(two) == 2 and 0x40 < two[0] < 0x5B and 0x40 < two[1] < 0x5B


class _Parser:
    """Walks one byte stream (the file, or the inflated data set) and records problems."""

    def __init__(
        self,
        buf: Any,
        problems: list[LoadProblem],
        *,
        inflated: bool,
        name: str = "",
        limits: ReadLimits | None = None,
    ) -> None:
        self.buf = buf
        # Slicing a bytearray copies, and bytes() copies again: values are cut from a view.
        self.view: Any = memoryview(buf) if isinstance(buf, bytearray) else buf
        self.size = len(buf)
        self.problems = problems
        self.inflated = inflated
        self.name = name
        self.limits = limits or _limits.current()
        self.stopped = False
        self.complete = 0
        self.elements = 0
        self.cancel: threading.Event | None = None
        self.sink: (
            Callable[[BaseTag, RawDataElement | DataElement, str | list[str]], None] | None
        ) = None
        """Receives the top-level elements one by one instead of the data set (streaming)."""
        self.head: int | None = None
        """Stop after this many top-level elements (a preview); ``partial`` says it did."""
        self.partial = False

    def copy(self, start: int, end: int) -> bytes:
        """The bytes from ``start`` to ``end``, copied once."""
        return bytes(self.view[start:end])

    def release(self) -> None:
        """Drop the buffer (an inflated data set) once its elements are read."""
        if isinstance(self.view, memoryview):
            self.view.release()
        self.view = self.buf = b""

    # -- problems -----------------------------------------------------------------------
    def where(self, pos: int) -> str:
        if self.inflated:
            return f"byte {pos} of the inflated data set"
        return f"byte {pos}"

    def problem(
        self, message: str, pos: int | None, tag: int | None = None, short: str = ""
    ) -> None:
        offset = None if (self.inflated or pos is None) else pos
        self.problems.append(LoadProblem(message, offset, tag, None, short))

    def ends_where(self, end: int) -> str:
        if end >= self.size:
            return f"file truncated at {self.where(self.size)}"
        return f"its enclosing item ends at {self.where(end)}"

    # -- headers --------------------------------------------------------------------------
    def header(
        self, pos: int, end: int, implicit: bool, little: bool
    ) -> tuple[int, str | None, int, int] | None:
        """Return (tag, vr, length, value position), or None when too few bytes remain."""
        if end - pos < 8:
            return None
        endian = "<" if little else ">"
        group, elem = struct.unpack_from(endian + "HH", self.buf, pos)
        tag = group << 16 | elem
        if implicit or group == 0xFFFE:
            (length,) = struct.unpack_from(endian + "L", self.buf, pos + 4)
            return tag, None, length, pos + 8
        raw_vr = bytes(self.buf[pos + 4 : pos + 6])
        if not _is_vr_bytes(raw_vr):
            # pydicom's assume_implicit_vr_switch: a writer switched to implicit VR here.
            (length,) = struct.unpack_from(endian + "L", self.buf, pos + 4)
            self.problem(
                f"Element {_describe(tag)} at {self.where(pos)} has no valid VR "
                f"(found bytes {bytes2hex(raw_vr)}) although the transfer syntax is explicit VR; "
                "it was read as implicit VR.",
                pos,
                tag,
            )
            return tag, None, length, pos + 8
        vr = raw_vr.decode("ascii")
        if vr in _LONG_VRS:
            if end - pos < 12:
                return None
            (length,) = struct.unpack_from(endian + "L", self.buf, pos + 8)
            return tag, vr, length, pos + 12
        (length,) = struct.unpack_from(endian + "H", self.buf, pos + 6)
        if vr not in _KNOWN_VRS:
            self.problem(
                f"Element {_describe(tag)} at {self.where(pos)} has unknown VR {vr!r}; "
                "its value is shown as raw bytes.",
                pos,
                tag,
            )
        return tag, vr, length, pos + 8

    def item_is_implicit(self, pos: int, end: int, implicit: bool) -> bool:
        # Mirrors pydicom's _is_implicit_vr for sequences: items may switch to implicit VR
        # (PS3.5 6.2.2) but never back to explicit.
        if implicit or end - pos < 6:
            return implicit
        return not _is_vr_bytes(bytes(self.buf[pos + 4 : pos + 6]))

    # -- sequence detection ---------------------------------------------------------------
    def is_sequence(
        self,
        tag: int,
        vr: str | None,
        length: int,
        vpos: int,
        end: int,
        creators: dict[int, str],
        little: bool,
    ) -> bool:
        if vr == "SQ":
            return True
        if length == _UNDEFINED:
            if vr == "UN":
                return True  # PS3.5 6.2.2: UN of undefined length is an implicit VR SQ
            if vr is None:
                try:
                    return dictionary_VR(tag) == "SQ"
                except KeyError:
                    if end - vpos < 4:
                        return False
                    endian = "<" if little else ">"
                    group, elem = struct.unpack_from(endian + "HH", self.buf, vpos)
                    return bool((group << 16 | elem) == _ITEM)
            return False
        if vr not in (None, "UN"):
            return False
        group, elem = tag >> 16, tag & 0xFFFF
        if group % 2:
            creator = creators.get(group << 16 | elem >> 8) if elem >> 8 else None
            if not creator:
                return False
            try:
                return private_dictionary_VR(tag, creator) == "SQ"
            except KeyError:
                return False
        if vr == "UN" and length >= 0xFFFF:
            return False
        try:
            return dictionary_VR(tag) == "SQ"
        except KeyError:
            return False

    # -- datasets -------------------------------------------------------------------------
    def dataset(
        self,
        pos: int,
        end: int,
        implicit: bool,
        little: bool,
        encoding: str | list[str],
        *,
        depth: int,
        undefined_item: bool = False,
        meta: bool = False,
        stop_before_pixels: bool = False,
    ) -> tuple[dict[BaseTag, RawDataElement | DataElement], int, bool, str | list[str]]:
        """Parse elements from ``pos`` up to ``end``.

        Returns the elements, the position after them, whether an item delimiter ended them
        and the character encoding in force at the end.
        """
        elems: dict[BaseTag, RawDataElement | DataElement] = {}
        creators: dict[int, str] = {}
        previous = -1
        sink = self.sink if depth == 0 and not meta else None
        seen: set[int] = set()
        top = 0
        while pos < end and not self.stopped:
            if meta:
                if end - pos < 2 or struct.unpack_from("<H", self.buf, pos)[0] != 2:
                    break
            head = self.header(pos, end, implicit, little)
            if head is None:
                self.problem(
                    f"Only {end - pos} bytes remain at {self.where(pos)}, too few for an "
                    f"element header: {self.ends_where(end)}.",
                    pos,
                    short=f"{self.ends_where(end)} in an element header",
                )
                return elems, end, False, encoding
            tag, vr, length, vpos = head
            if tag == _ITEM_DELIM:
                if undefined_item:
                    return elems, vpos, True, encoding
                self.problem(
                    f"Unexpected item delimiter (FFFE,E00D) at {self.where(pos)}; skipped.", pos
                )
                pos = vpos
                continue
            if tag in (_ITEM, _SEQ_DELIM):
                self.problem(
                    f"Unexpected {tag_text(tag)} at {self.where(pos)} outside a sequence; "
                    "reading stopped there.",
                    pos,
                    tag,
                )
                self.stopped = True
                break
            if stop_before_pixels and depth == 0 and tag in _PIXEL_TAGS:
                return elems, pos, False, encoding
            if depth == 0 and not meta and self.head is not None and top >= self.head:
                self.partial = True
                return elems, pos, False, encoding
            self.elements += 1
            if not self.elements & 0xFFF and self.cancel is not None and self.cancel.is_set():
                self.stopped = True
                break
            if self.elements > self.limits.max_elements:
                error = elements_error(self.name, pos, self.limits)
                self.problem(
                    error.message, pos, short=f"more than {self.limits.max_elements:,} elements"
                )
                self.stopped = True
                break
            elem, pos = self.element(
                tag, vr, length, pos, vpos, end, implicit, little, encoding, creators, depth
            )
            if elem is None:
                break
            btag = BaseTag(tag)
            if btag in elems or (sink is not None and tag in seen):
                self.problem(
                    f"Element {_describe(tag)} appears twice in the same data set (again at "
                    f"{self.where(head[3])}); the first one is shown.",
                    vpos,
                    tag,
                )
                continue
            if tag < previous:
                self.problem(
                    f"Element {_describe(tag)} at {self.where(vpos)} is out of ascending tag "
                    f"order (it follows {tag_text(previous)}).",
                    vpos,
                    tag,
                )
            previous = max(previous, tag)
            top += 1
            if isinstance(elem, RawDataElement) and elem.value is not None:
                group, number = tag >> 16, tag & 0xFFFF
                if group % 2 and 0x10 <= number <= 0xFF:
                    creators[tag] = elem.value.strip(b" \0").decode("latin-1")
                if tag == 0x00080005:
                    encoding = self.charset(elem, little, encoding)
            if sink is not None:
                seen.add(tag)
                sink(btag, elem, encoding)
            else:
                elems[btag] = elem
        return elems, pos, False, encoding

    def charset(
        self, elem: RawDataElement, little: bool, current: str | list[str]
    ) -> str | list[str]:
        with recording() as caught:
            try:
                names = convert_string(elem.value or b"", little)
                result: str | list[str] = convert_encodings(names)
            except Exception as exc:  # noqa: BLE001 - any failure keeps the parent's charset
                self.problem(
                    f"Specific Character Set at {self.where(elem.value_tell)} cannot be used "
                    f"({exc}); text is decoded with the enclosing character set.",
                    elem.value_tell,
                    elem.tag,
                )
                return current
        for w in caught:
            self.problem(
                f"Specific Character Set (0008,0005): {w.message}", elem.value_tell, elem.tag
            )
        return result

    def element(
        self,
        tag: int,
        vr: str | None,
        length: int,
        pos: int,
        vpos: int,
        end: int,
        implicit: bool,
        little: bool,
        encoding: str | list[str],
        creators: dict[int, str],
        depth: int,
    ) -> tuple[RawDataElement | DataElement | None, int]:
        is_sq = self.is_sequence(tag, vr, length, vpos, end, creators, little)
        if length == _UNDEFINED:
            if is_sq:
                items, after = self.sequence(
                    tag, vpos, end, implicit, little, encoding, depth + 1, undefined=True
                )
                elem = DataElement(tag, "SQ", Sequence(items), vpos, is_undefined_length=True)
                self.complete += 1
                return elem, after
            fragments, after = self.undefined_value(tag, vpos, end, little)
            self.complete += 1
            raw = RawDataElement(BaseTag(tag), vr, length, fragments, vpos, implicit, little)
            return raw, after
        value_end = vpos + length
        if length > end - vpos:
            remain = end - vpos
            self.problem(
                f"Element {_describe(tag)} declares {length} bytes but only {remain} remain: "
                f"{self.ends_where(end)}.",
                vpos,
                tag,
                short=f"{self.ends_where(end)} in {_describe(tag)}",
            )
            value_end = end
        else:
            self.complete += 1
        if is_sq:
            items, _ = self.sequence(
                tag, vpos, value_end, implicit, little, encoding, depth + 1, undefined=False
            )
            seq = Sequence(items)
            seq.is_undefined_length = False
            return DataElement(tag, "SQ", seq, vpos), value_end
        value: bytes | None
        if length == 0:
            # pydicom's own reader stores b"" (None for SQ) for empty values.
            empty = empty_value_for_VR(vr, raw=True)
            value = empty if isinstance(empty, bytes) else None
        else:
            value = self.copy(vpos, value_end)
        return RawDataElement(BaseTag(tag), vr, length, value, vpos, implicit, little), value_end

    def sequence(
        self,
        seq_tag: int,
        pos: int,
        end: int,
        implicit: bool,
        little: bool,
        encoding: str | list[str],
        depth: int,
        *,
        undefined: bool,
    ) -> tuple[list[Dataset], int]:
        items: list[Dataset] = []
        if depth > self.limits.max_depth:
            self.problem(
                f"Sequence {_describe(seq_tag)} at {self.where(pos)} is nested more than "
                f"{self.limits.max_depth} levels deep; reading stopped there. If the file is "
                f"genuine, {how_to_raise('max_depth', self.limits)}.",
                pos,
                seq_tag,
                short=f"sequences nested more than {self.limits.max_depth} levels deep",
            )
            self.stopped = True
            return items, end
        endian = "<" if little else ">"
        while pos < end and not self.stopped:
            if end - pos < 8:
                self.problem(
                    f"Sequence {_describe(seq_tag)} has {end - pos} bytes left at "
                    f"{self.where(pos)}, too few for an item header: {self.ends_where(end)}.",
                    pos,
                    seq_tag,
                    short=f"{self.ends_where(end)} in {_describe(seq_tag)}",
                )
                return items, end
            group, elem, length = struct.unpack_from(endian + "HHL", self.buf, pos)
            tag = group << 16 | elem
            if tag == _SEQ_DELIM:
                if undefined:
                    return items, pos + 8
                self.problem(
                    f"Sequence {_describe(seq_tag)} has explicit length but contains a "
                    f"sequence delimiter at {self.where(pos)}.",
                    pos,
                    seq_tag,
                )
                return items, end
            if tag != _ITEM:
                self.problem(
                    f"Sequence {_describe(seq_tag)} expects an item at {self.where(pos)} but "
                    f"found {tag_text(tag)}; "
                    + ("reading stopped there." if undefined else "the rest of it was skipped."),
                    pos,
                    seq_tag,
                )
                if undefined:
                    self.stopped = True
                return items, end
            vpos = pos + 8
            item_implicit = self.item_is_implicit(vpos, end, implicit)
            if length == _UNDEFINED:
                elems, pos, ended, _ = self.dataset(
                    vpos, end, item_implicit, little, encoding, depth=depth, undefined_item=True
                )
                if not ended and not self.stopped:
                    self.problem(
                        f"Item {len(items) + 1} of {_describe(seq_tag)} (at "
                        f"{self.where(vpos - 8)}) has no item delimiter: {self.ends_where(end)}.",
                        vpos - 8,
                        seq_tag,
                        short=f"{self.ends_where(end)} in {_describe(seq_tag)}",
                    )
            else:
                item_end = vpos + length
                if length > end - vpos:
                    self.problem(
                        f"Item {len(items) + 1} of {_describe(seq_tag)} declares {length} bytes "
                        f"but only {end - vpos} remain: {self.ends_where(end)}.",
                        vpos,
                        seq_tag,
                        short=f"{self.ends_where(end)} in {_describe(seq_tag)}",
                    )
                    item_end = end
                elems, _, _, _ = self.dataset(
                    vpos, item_end, item_implicit, little, encoding, depth=depth
                )
                pos = item_end
            item = Dataset(elems, parent_encoding=encoding)
            item_encoding = encoding
            if 0x00080005 in elems:
                raw = elems[BaseTag(0x00080005)]
                if isinstance(raw, RawDataElement):
                    item_encoding = self.charset(raw, little, encoding)
            item.set_original_encoding(item_implicit, little, item_encoding)
            item.is_undefined_length_sequence_item = length == _UNDEFINED
            item.seq_item_tell = vpos - 8
            items.append(item)
        if undefined and not self.stopped:
            self.problem(
                f"Sequence {_describe(seq_tag)} of undefined length has no sequence delimiter: "
                f"{self.ends_where(end)}.",
                end,
                seq_tag,
                short=f"{self.ends_where(end)} in {_describe(seq_tag)}",
            )
        return items, end

    def undefined_value(self, tag: int, vpos: int, end: int, little: bool) -> tuple[bytes, int]:
        """Read an undefined-length non-sequence value (encapsulated pixel data)."""
        endian = "<" if little else ">"
        pos = vpos
        while True:
            if end - pos < 8:
                self.problem(
                    f"Element {_describe(tag)} of undefined length has no sequence delimiter: "
                    f"{self.ends_where(end)}.",
                    pos,
                    tag,
                    short=f"{self.ends_where(end)} in {_describe(tag)}",
                )
                return self.copy(vpos, end), end
            group, elem, length = struct.unpack_from(endian + "HHL", self.buf, pos)
            item = group << 16 | elem
            if item == _SEQ_DELIM:
                return self.copy(vpos, pos), pos + 8
            if item != _ITEM:
                # Not fragments: fall back to pydicom's search for the delimiter bytes.
                delim = struct.pack(endian + "HHL", 0xFFFE, 0xE0DD, 0)
                found = self.buf.find(delim, pos, end)
                if found < 0:
                    self.problem(
                        f"Element {_describe(tag)} of undefined length has no sequence "
                        f"delimiter after {self.where(vpos)}: {self.ends_where(end)}.",
                        vpos,
                        tag,
                        short=f"{self.ends_where(end)} in {_describe(tag)}",
                    )
                    return self.copy(vpos, end), end
                return self.copy(vpos, found), found + 8
            if length > end - pos - 8:
                self.problem(
                    f"A fragment of {_describe(tag)} at {self.where(pos)} declares {length} bytes "
                    f"but only {end - pos - 8} remain: {self.ends_where(end)}.",
                    pos,
                    tag,
                    short=f"{self.ends_where(end)} in {_describe(tag)}",
                )
                return self.copy(vpos, end), end
            pos += 8 + length


_KNOWN_VRS = frozenset(
    "AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL "
    "UN UR US UT UV".split()
)


def _guess_encoding(buf: Any, pos: int) -> tuple[bool, bool, str]:
    """Guess (implicit, little endian, UID) from the first element, as pydicom does."""
    if len(buf) - pos < 6:
        return True, True, ImplicitVRLittleEndian
    group, _, vr = struct.unpack_from("<HH2s", buf, pos)
    if vr.decode("latin-1") in _KNOWN_VRS:
        # Big endian group 0x0008 read as little endian is 0x0800, which is above 1024.
        if group >= 1024:
            return False, False, ExplicitVRBigEndian
        return False, True, ExplicitVRLittleEndian
    return True, True, ImplicitVRLittleEndian


def _plausible_start(buf: Any, pos: int, implicit: bool, little: bool) -> tuple[str | None, int]:
    """Check that a real data element starts at ``pos``.

    Returns (None, position after it) if so, else (what was found there, 0).
    """
    if len(buf) - pos < 8:
        return f"only {len(buf) - pos} bytes remain", 0
    endian = "<" if little else ">"
    group, elem = struct.unpack_from(endian + "HH", buf, pos)
    tag = group << 16 | elem
    if implicit or not _is_vr_bytes(bytes(buf[pos + 4 : pos + 6])):
        (length,) = struct.unpack_from(endian + "L", buf, pos + 4)
        vpos = pos + 8
    elif bytes(buf[pos + 4 : pos + 6]).decode("ascii") in _LONG_VRS:
        if len(buf) - pos < 12:
            return f"only {len(buf) - pos} bytes remain", 0
        (length,) = struct.unpack_from(endian + "L", buf, pos + 8)
        vpos = pos + 12
    else:
        (length,) = struct.unpack_from(endian + "H", buf, pos + 6)
        vpos = pos + 8
    group_length = elem == 0 and group % 2 == 0 and group != 0
    known = tag != 0 and (dictionary_has_tag(tag) or group_length)
    fits = length == _UNDEFINED or length <= len(buf) - vpos
    if known and fits:
        return None, (vpos + length if length != _UNDEFINED else len(buf))
    found = f"tag {tag_text(tag)} with length {length}"
    if not known:
        return f"the bytes there read as {found}, which is not a known element", 0
    return f"the bytes there read as {found}, longer than the file", 0


def _find_start(buf: Any, limit: int = 256) -> int | None:
    """Find a data set that starts a few stray bytes into the file.

    Two consecutive known, fitting elements are required so that text or binary junk is not
    mistaken for DICOM.
    """
    for pos in range(1, min(limit, len(buf) - 8)):
        implicit, little, _ = _guess_encoding(buf, pos)
        found, after = _plausible_start(buf, pos, implicit, little)
        if found is None and (
            after >= len(buf) or _plausible_start(buf, after, implicit, little)[0] is None
        ):
            return pos
    return None


def _inflate(buf: Any, pos: int, problems: list[LoadProblem], name: str) -> tuple[bytearray, bool]:
    """Inflate the deflated data set within the limits; returns (bytes, complete)."""
    # A copy of the compressed bytes (the file's size): a view into the map would keep it
    # from closing if inflating fails.
    inflated, complete, corrupt, over = inflate_bytes(bytes(buf[pos:]), name=name)
    if over is not None:
        problems.append(
            LoadProblem(
                over.message + " Only what was inflated before is shown.",
                None,
                short=f"the deflated data set inflates beyond {over.limit}",
            )
        )
        return inflated, False
    if corrupt is not None:
        problems.append(
            LoadProblem(
                f"The deflated data set of {name!r} is corrupt after {len(inflated)} inflated "
                f"bytes ({corrupt}); only what was inflated before is shown.",
                None,
                short=f"deflated data corrupt after {len(inflated)} inflated bytes",
            )
        )
        return inflated, False
    if not complete:
        size = len(buf)
        problems.append(
            LoadProblem(
                f"The deflated data set of {name!r} ends before its end marker: file truncated "
                f"at byte {size}.",
                size,
                short=f"file truncated at byte {size} in the deflated data set",
            )
        )
        return inflated, False
    return inflated, True


def _uid_name(uid: str | None) -> str:
    if not uid:
        return "(none)"
    return str(UID_dictionary[uid][0]) if uid in UID_dictionary else repr(uid)


def _encoding_for(uid: str, problems: list[LoadProblem]) -> tuple[bool, bool, bool]:
    """Return (implicit, little endian, deflated) for a declared transfer syntax."""
    known = syntax_encoding(uid)
    if known is not None:
        return known
    # UID() itself warns on malformed values, so look the dictionary up directly.
    if UID_dictionary.get(uid, ("", ""))[1] != "Transfer Syntax":
        problems.append(
            LoadProblem(
                f"Transfer Syntax UID {uid!r} is not a known transfer syntax; the data set was "
                "read as explicit VR little endian.",
                None,
                0x00020010,
            )
        )
    # PS3.5 A.4: every other (encapsulated) syntax is explicit VR little endian.
    return False, True, False


def _check_meta_length(meta: Dataset, start: int, actual: int, problems: list[LoadProblem]) -> None:
    """Compare (0002,0000) with the bytes the meta elements really took (PS3.10 7.1)."""
    elem = meta.get(0x00020000)
    if elem is None or not isinstance(elem.value, int) or elem.VR != "UL":
        return
    expected = elem.value + 12  # the group length counts from the end of its own element
    if expected != actual:
        problems.append(
            LoadProblem(
                f"File Meta Information Group Length (0002,0000) says the meta elements take "
                f"{elem.value} bytes after it, but {actual - 12} were found (the meta "
                f"elements end at byte {start + actual}).",
                start + actual,
                0x00020000,
            )
        )


def _count(ds: Dataset) -> int:
    total = 0
    for elem in ds:
        total += 1
        if elem.VR == "SQ" and isinstance(elem.value, Sequence):
            total += sum(_count(item) for item in elem.value)
    return total


def _convert_all(
    ds: Dataset, path: TagPath, problems: list[LoadProblem], offsets_known: bool
) -> None:
    """Convert every raw value now so that conversion trouble is reported at load time."""
    # One warnings context for the whole data set: entering one per element cost a third of
    # the time of a million-element file.
    with recording() as caught:
        _convert(ds, path, problems, offsets_known, caught)


def _convert(
    ds: Dataset,
    path: TagPath,
    problems: list[LoadProblem],
    offsets_known: bool,
    caught: list[warnings.WarningMessage],
    tags: list[BaseTag] | None = None,
) -> None:
    for tag in sorted(ds._dict) if tags is None else tags:
        raw = ds._dict[tag]
        before = len(caught)
        try:
            elem = ds[tag]
            if elem.VR != "SQ":
                # Rendering the value is what the UI does; make it fail now, not there.
                str(elem.value)
        except Exception as exc:  # noqa: BLE001 - any converter failure keeps the raw bytes
            elem = _keep_raw(ds, tag, raw)
            problems.append(
                LoadProblem(
                    f"Element {_describe(tag)} could not be converted "
                    f"(VR {getattr(raw, 'VR', None) or 'unknown'}): {exc}; it is shown as "
                    "raw bytes (UN).",
                    _offset(raw, offsets_known),
                    int(tag),
                    (*path, int(tag)),
                )
            )
        if len(caught) > before:
            offset, here = _offset(raw, offsets_known), (*path, int(tag))
            for w in caught[before:]:
                text = withhold_values(_PLEASE_SEE.sub("", str(w.message)).strip())
                problems.append(
                    LoadProblem(f"Element {_describe(tag)}: {text}", offset, int(tag), here)
                )
            del caught[before:]
        if elem.VR == "SQ" and isinstance(elem.value, Sequence):
            here = (*path, int(tag))
            for index, item in enumerate(elem.value):
                _convert(item, (*here, index), problems, offsets_known, caught)


#: What later elements need of earlier ones: the character set, and what pydicom resolves
#: ambiguous VRs (US or SS, OB or OW) with (PS3.5 Annex A, pydicom's correct_ambiguous_vr).
_CONTEXT_TAGS = frozenset(
    {0x00080005, 0x00280100, 0x00280103, 0x00283002, 0x54001004, 0x00280002, 0x00280004}
)


def _streamer(
    sink: ElementSink,
    implicit: bool,
    little: bool,
    problems: list[LoadProblem],
    offsets_known: bool,
    counted: list[int],
    caught: list[warnings.WarningMessage],
) -> Callable[[BaseTag, RawDataElement | DataElement, str | list[str]], None]:
    """The parser's per-element callback for ``load_file(sink=...)``: convert, count, hand on,
    keeping only what later elements need (character set, private creators)."""
    context: set[BaseTag] = set()
    # One data set reused for every element (making a Dataset costs more than converting):
    # it holds the context elements and, in turn, each element handed on.
    one = Dataset()
    one.set_original_encoding(implicit, little, "iso8859")
    current: list[Any] = [None, "iso8859"]

    def element(
        tag: BaseTag, elem: RawDataElement | DataElement, encoding: str | list[str]
    ) -> None:
        previous = current[0]
        if previous is not None and previous not in context:
            del one._dict[previous]
        if encoding != current[1]:
            one.set_original_encoding(implicit, little, encoding)
            current[1] = encoding
        one._dict[tag] = elem
        current[0] = tag
        del caught[:]
        _convert(one, (), problems, offsets_known, caught, [tag])
        converted = one._dict[tag]
        counted[0] += 1 + (
            sum(_count(item) for item in converted.value)
            if converted.VR == "SQ" and isinstance(converted.value, Sequence)
            else 0
        )
        sink.element(one, tag)
        number = int(tag)
        if number in _CONTEXT_TAGS or (number >> 16 & 1 and 0x10 <= number & 0xFFFF <= 0xFF):
            context.add(tag)

    return element


def _offset(raw: RawDataElement | DataElement, offsets_known: bool) -> int | None:
    return raw.value_tell if offsets_known and isinstance(raw, RawDataElement) else None


def _keep_raw(ds: Dataset, tag: BaseTag, raw: RawDataElement | DataElement) -> DataElement:
    value = raw.value if isinstance(raw, RawDataElement) else None
    data = value if isinstance(value, bytes) else b""
    tell = raw.value_tell if isinstance(raw, RawDataElement) else None
    elem = DataElement(tag, "UN", data, tell, already_converted=True)
    # DataElement replaces UN by the dictionary VR for public tags; force it back.
    elem.VR = "UN"
    ds._dict[tag] = elem
    return elem


def _attach_paths(problems: list[LoadProblem], ds: Dataset, meta: Dataset) -> list[LoadProblem]:
    """Give parser problems a path when their tag occurs exactly once in the file."""
    wanted = {p.tag for p in problems if p.path is None and p.tag is not None}
    if not wanted:
        return problems
    where: dict[int, list[TagPath]] = {}
    for source in (meta, ds):
        for tag, path in _paths(source, ()):
            if tag in wanted:
                where.setdefault(tag, []).append(path)
    result = []
    for p in problems:
        if p.path is None and p.tag is not None and len(where.get(p.tag, ())) == 1:
            p = LoadProblem(p.message, p.offset, p.tag, where[p.tag][0], p.short)
        result.append(p)
    return result


def _innermost_first(problems: list[LoadProblem]) -> list[LoadProblem]:
    """Put the truncation nearest the end of the file first.

    A file cut short truncates every sequence and item around the last element too; the
    innermost element is what dcmdump names and what the user needs to see in the banner.
    """
    cut = [p for p in problems if p.short.startswith("file truncated") and p.offset is not None]
    if not cut:
        return problems
    first = max(cut, key=lambda p: p.offset or 0)
    return [first, *(p for p in problems if p is not first)]


def _paths(ds: Dataset, base: TagPath) -> Iterator[tuple[int, TagPath]]:
    for elem in ds:
        here = (*base, int(elem.tag))
        yield int(elem.tag), here
        if elem.VR == "SQ" and isinstance(elem.value, Sequence):
            for index, item in enumerate(elem.value):
                yield from _paths(item, (*here, index))


def load_file(
    path: Path | str,
    *,
    stop_before_pixels: bool = False,
    head: int | None = None,
    cancel: threading.Event | None = None,
    sink: ElementSink | None = None,
) -> LoadedFile:
    """Read ``path`` as DICOM, keeping everything that can be read.

    Parameters:
        path: the file to read.
        stop_before_pixels: stop at the top-level Pixel Data (or Float/Double Float Pixel Data).
        head: read only the first ``head`` top-level elements (with everything nested in them),
            for a first screen of a large file; the result says ``partial`` if more remain.
        cancel: once set, reading stops soon (the result is then incomplete: discard it).
        sink: stream the top-level elements to it instead of keeping them; the result then
            has an empty data set but every problem (conversion problems included).

    Returns:
        A :class:`LoadedFile`; its ``problems`` list every defect found (truncation, bad
        lengths, unconvertible values, pydicom warnings) with byte offsets where known.

    Raises:
        NotDicomError: not one DICOM data element could be parsed from the file.
        DicomReadError: the file cannot be opened or read (missing, permission, directory).
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            size = path.stat().st_size
            if size == 0:
                raise NotDicomError(f"File {path.name!r} is not DICOM: it is empty (0 bytes).")
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                return _load(path, buf, stop_before_pixels, head, cancel, sink)
    except IsADirectoryError as exc:
        raise DicomReadError(f"Cannot read {str(path)!r}: it is a directory.") from exc
    except FileNotFoundError as exc:
        raise DicomReadError(f"Cannot read {str(path)!r}: no such file.") from exc
    except PermissionError as exc:
        raise DicomReadError(f"Cannot read {str(path)!r}: permission denied.") from exc
    except (OSError, ValueError) as exc:
        raise DicomReadError(f"Cannot read {str(path)!r}: {exc}.") from exc


def _load(
    path: Path,
    buf: Any,
    stop_before_pixels: bool,
    head: int | None = None,
    cancel: threading.Event | None = None,
    sink: ElementSink | None = None,
) -> LoadedFile:
    name = path.name
    size = len(buf)
    problems: list[LoadProblem] = []
    has_preamble = size >= 132 and bytes(buf[128:132]) == b"DICM"
    pos = 132 if has_preamble else 0
    parser = _Parser(buf, problems, inflated=False, name=name)

    if not has_preamble:
        # A bare data set (pydicom force=True) is accepted only if it starts like one.
        starts_meta = size >= 6 and bytes(buf[0:2]) == b"\x02\x00" and _is_vr_bytes(buf[4:6])
        if not starts_meta:
            implicit, little, _ = _guess_encoding(buf, 0)
            found, _ = _plausible_start(buf, 0, implicit, little)
            skipped = _find_start(buf) if found is not None else None
            if skipped is not None:
                problems.append(
                    LoadProblem(
                        f"File {name!r} has {skipped} unexpected byte"
                        f"{'s' if skipped != 1 else ''} ({bytes2hex(bytes(buf[:skipped]))}) "
                        f"before its first data element; reading started at byte {skipped}.",
                        0,
                        short=f"skipped {skipped} stray byte(s) at the start of the file",
                    )
                )
                pos = skipped
            elif found is not None:
                prefix = (
                    "no 'DICM' prefix at offset 128"
                    if size >= 132
                    else (
                        f"it has only {size} bytes, too short for the 'DICM' prefix at offset 128"
                    )
                )
                raise NotDicomError(
                    f"File {name!r} is not DICOM: {prefix} and no data element could be "
                    f"parsed at offset 0 ({found})."
                )

    meta_start = pos
    meta_elems, pos, _, _ = parser.dataset(pos, size, False, True, "iso8859", depth=0, meta=True)
    meta = FileMetaDataset(meta_elems)
    meta.set_original_encoding(False, True, "iso8859")
    _convert_all(meta, (), problems, True)

    _check_meta_length(meta, meta_start, pos - meta_start, problems)
    if meta_elems and pos >= size:
        problems.append(
            LoadProblem(
                f"File {name!r} ends right after its File Meta Information (byte {size}): "
                "it has no data set.",
                size,
                short=f"file truncated at byte {size}: no data set after the meta header",
            )
        )

    declared: str | None = None
    if BaseTag(0x00020010) in meta:
        value = meta[0x00020010].value
        declared = str(value).strip("\0 ") if value else None
    deflated = False
    if pos >= size:
        implicit, little = True, True
        used = declared
    elif declared:
        implicit, little, deflated = _encoding_for(declared, problems)
        used = declared
    else:
        implicit, little, used = _guess_encoding(buf, pos)
        what = "has no File Meta Information" if not meta_elems else "declares no Transfer Syntax"
        problems.append(
            LoadProblem(
                f"File {name!r} {what}"
                + ("" if has_preamble else " (no 'DICM' prefix at offset 128)")
                + f"; the encoding was guessed from the first element: {_uid_name(used)}.",
                None,
                None if not meta_elems else 0x00020010,
            )
        )

    data_parser = parser
    data_buf: Any = buf
    start = pos
    if deflated and pos < size:
        data_buf, _ = _inflate(buf, pos, problems, name)
        data_parser = _Parser(data_buf, problems, inflated=True, name=name, limits=parser.limits)
        data_parser.elements = parser.elements
        start = 0
    elif pos < size and not implicit:
        if len(data_buf) - start >= 6 and not _is_vr_bytes(bytes(data_buf[start + 4 : start + 6])):
            problems.append(
                LoadProblem(
                    f"The transfer syntax {_uid_name(used)} is explicit VR but the "
                    f"data set at byte {start} is implicit VR; it was read as implicit VR.",
                    start,
                )
            )
            implicit = True
    data_parser.head = head
    data_parser.cancel = cancel
    streamed = [0]
    if sink is not None:
        empty = FileDataset(
            str(path), Dataset(), bytes(buf[:128]) if has_preamble else None, meta, implicit, little
        )
        sink.begin(LoadedFile(path, empty, problems, has_preamble, used))
    with recording() as caught:
        # One context for a streamed file, whose elements are converted as they are read.
        if sink is not None:
            data_parser.sink = _streamer(
                sink, implicit, little, problems, not deflated, streamed, caught
            )
        elems, _, _, encoding = data_parser.dataset(
            start,
            len(data_buf),
            implicit,
            little,
            "iso8859",
            depth=0,
            stop_before_pixels=stop_before_pixels,
        )
    complete = parser.complete + (data_parser.complete if data_parser is not parser else 0)
    if data_parser is not parser:
        # The inflated data set: every value is copied out, so it goes before conversion
        # (which makes text of the values) doubles what is held.
        data_parser.release()
        data_buf = None
    if complete == 0:
        detail = "; ".join(p.message for p in problems[:1])
        raise NotDicomError(
            f"File {name!r} is not DICOM: "
            + ("it has the 'DICM' prefix but " if has_preamble else "")
            + f"no data element could be parsed after offset {132 if has_preamble else 0}"
            + (f" ({detail.rstrip('.')})" if detail else "")
            + "."
        )

    dataset = Dataset(elems)
    dataset.set_original_encoding(implicit, little, encoding)
    preamble = bytes(buf[:128]) if has_preamble else None
    fds = FileDataset(str(path), dataset, preamble, meta, implicit, little)
    fds.set_original_encoding(implicit, little, encoding)
    if cancel is not None and cancel.is_set():
        return LoadedFile(path, fds, problems, has_preamble, used, partial=True)
    if sink is not None:
        return LoadedFile(
            path,
            fds,
            _innermost_first(problems),
            has_preamble,
            used,
            element_count=_count(meta) + streamed[0],
        )
    _convert_all(fds, (), problems, not deflated)
    problems = _attach_paths(_innermost_first(problems), fds, meta)
    return LoadedFile(
        path=path,
        dataset=fds,
        problems=problems,
        has_preamble=has_preamble,
        transfer_syntax=used,
        element_count=_count(meta) + _count(fds),
        partial=data_parser.partial,
    )
