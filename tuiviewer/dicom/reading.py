"""The one bounded way to read DICOM with pydicom: streamed, capped inflation and a structure check.

``pydicom.dcmread`` trusts the file. A Deflated Explicit VR Little Endian data set is inflated
in one ``zlib.decompress`` call, so 4 MB can become 4 GiB in memory before a single element is
parsed; a million tiny elements cost half a gigabyte; sequences nested ten thousand deep end in
a ``RecursionError`` wherever the data set is first walked. Every part of tuiviewer that reads
a file with pydicom (scanning, rendering, the worklist's and the report screen's SR reads,
sending, de-identification) reads it through :func:`read_dicom` instead, which

1. inflates a deflated data set as a stream (:class:`InflatingReader`) with a cap from
   :class:`~tuiviewer.config.limits.ReadLimits` (a few hundred MiB, plus the pixel data the header
   declares), never holding more than the values pydicom keeps;
2. walks the element structure first (:func:`check_structure`, iterative, headers only) and
   stops at the element-count and nesting-depth limits before pydicom builds anything;
3. then hands the same bytes to pydicom's ``read_dataset``, so the result is the ordinary
   ``FileDataset`` the callers know, and pydicom's own errors keep their types.

A limit reached raises :class:`ReadLimitError`, whose message names the file, the limit and the
``[limits]`` key that raises it. :mod:`tuiviewer.dicom.loading` (the tag tree and ``dump``)
uses the same inflater and limits with its own parser. Nothing here imports Textual.
"""

from __future__ import annotations

import io
import mmap
import struct
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol, cast

from pydicom import config as pydicom_config
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.filereader import (
    _read_command_set_elements,
    _read_file_meta_info,
    read_dataset,
    read_preamble,
)
from pydicom.tag import BaseTag
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    PrivateTransferSyntaxes,
)
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32

from tuiviewer.config import limits as _limits
from tuiviewer.config.limits import ReadLimits
from tuiviewer.exceptions import DicomReadError

__all__ = [
    "InflatingReader",
    "ReadLimitError",
    "Structure",
    "check_structure",
    "declared_pixel_bytes",
    "inflate_bytes",
    "read_dicom",
]

StopWhen = Callable[[BaseTag, str | None, int], bool]
_CHARSET = 0x00080005  # pydicom's specific_tags reads always include Specific Character Set


Buffer = bytes | bytearray | memoryview | mmap.mmap


class Source(Protocol):
    """Bytes the structure walk reads: ``window(pos, need)`` returns ``(buffer, base, end)``
    with ``buffer[pos - base :]`` valid up to position ``end`` (at least ``need`` bytes unless
    the data ends first)."""

    def window(self, pos: int, need: int) -> tuple[Buffer, int, int]: ...


_ITEM = 0xFFFEE000
_ITEM_DELIM = 0xFFFEE00D
_SEQ_DELIM = 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
_PIXEL_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})
_LONG_VR_BYTES = frozenset(str(vr).encode("ascii") for vr in EXPLICIT_VR_LENGTH_32)
#: Top-level elements whose values size the pixel data (PS3.3 C.7.6.3).
_PIXEL_ATTRS = frozenset({0x00280002, 0x00280008, 0x00280010, 0x00280011, 0x00280100})
_MIB = 1 << 20
_IN_CHUNK = 1 << 16
_OUT_CHUNK = 1 << 20
_HOW_TO_RAISE = "raise [limits] {key} (now {value}) in config.toml"


class ReadLimitError(DicomReadError):
    """A file (or received data set) goes beyond one of the configured reading limits."""

    title = "Reading limit reached"

    def __init__(self, message: str, *, limit: str, position: int | None = None) -> None:
        super().__init__(message)
        self.limit = limit
        """The ``[limits]`` key concerned: ``max_inflated_mb``, ``max_elements``, ``max_depth``."""
        self.position = position
        """Byte offset (in the inflated data set when deflated) where reading stopped."""


def how_to_raise(key: str, limits: ReadLimits) -> str:
    """``raise [limits] KEY (now N) in config.toml``, the end of every limit message."""
    return _HOW_TO_RAISE.format(key=key, value=getattr(limits, key))


def inflation_error(name: str, cap: int, limits: ReadLimits, declared: int = 0) -> ReadLimitError:
    """The error for a deflated data set of ``name`` that inflates beyond ``cap`` bytes."""
    pixels = (
        f" ({limits.max_inflated_mb} MiB plus the {declared / _MIB:.0f} MiB of pixel data its "
        "header declares)"
        if declared
        else ""
    )
    return ReadLimitError(
        f"The deflated data set of {name!r} inflates to more than {cap / _MIB:.0f} MiB"
        f"{pixels}; it was not read further. If the file is genuine, "
        f"{how_to_raise('max_inflated_mb', limits)}.",
        limit="max_inflated_mb",
        position=cap,
    )


def elements_error(name: str, pos: int, limits: ReadLimits) -> ReadLimitError:
    """The error for a file of ``name`` holding more than ``max_elements`` elements."""
    return ReadLimitError(
        f"File {name!r} has more than {limits.max_elements:,} data elements; it was not read "
        f"further. If the file is genuine, {how_to_raise('max_elements', limits)}.",
        limit="max_elements",
        position=pos,
    )


def depth_error(name: str, pos: int, limits: ReadLimits, *, inflated: bool) -> ReadLimitError:
    """The error for sequences nested deeper than ``max_depth`` at byte ``pos``."""
    where = f"byte {pos}" + (" of the inflated data set" if inflated else "")
    return ReadLimitError(
        f"File {name!r} has sequences nested more than {limits.max_depth} levels deep (at "
        f"{where}); it was not read further. If the file is genuine, "
        f"{how_to_raise('max_depth', limits)}.",
        limit="max_depth",
        position=pos,
    )


# --------------------------------------------------------------------------------------------
# Streamed inflation


class InflatingReader(io.RawIOBase):
    """A raw-deflate stream (PS3.5 A.5) read as the file-like pydicom expects, with a cap.

    Inflates on demand, keeps only a window behind the read position (pydicom seeks back a
    few bytes now and then), and raises :class:`ReadLimitError` as soon as the inflated size
    would exceed ``cap``. A corrupt stream ends where it breaks (``corrupt`` says why), like a
    file cut short.
    """

    WINDOW = 1 << 20
    """Bytes kept behind the read position for backward seeks."""

    def __init__(
        self,
        source: BinaryIO,
        *,
        cap: int,
        name: str,
        limits: ReadLimits | None = None,
    ) -> None:
        super().__init__()
        self._source = source
        self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        self._buf = bytearray()
        self._start = 0
        self._pos = 0
        self._done = False
        self.cap = cap
        """Bytes it may inflate to; may be raised while reading (see ``declared``)."""
        self.declared = 0
        """Pixel data bytes the header declares, for the message when the cap is reached."""
        self.name = name
        self.limits = limits or _limits.current()
        self.corrupt: str | None = None
        """The zlib error that ended the stream early, if any."""
        self.complete = False
        """The stream's end marker was reached."""

    @property
    def produced(self) -> int:
        """Bytes inflated so far."""
        return self._start + len(self._buf)

    def _fill(self, until: int) -> None:
        while self.produced < until and not self._done:
            data = self._inflater.unconsumed_tail
            if not data:
                data = self._source.read(_IN_CHUNK)
                if not data:
                    self._buf += self._inflater.flush()
                    self._done = True
                    break
            room = self.cap + 1 - self.produced
            try:
                out = self._inflater.decompress(data, max(1, min(_OUT_CHUNK, room)))
            except zlib.error as exc:
                self.corrupt = str(exc)
                self._done = True
                break
            self._buf += out
            if self.produced > self.cap:
                del self._buf[self.cap - self._start :]
                self._done = True
                raise inflation_error(self.name, self.cap, self.limits, self.declared)
            if self._inflater.eof:
                self._done = True
                self.complete = True
            self._trim()

    def _trim(self) -> None:
        keep_from = self._pos - self.WINDOW
        if keep_from - self._start > self.WINDOW:
            del self._buf[: keep_from - self._start]
            self._start = keep_from

    def window(self, pos: int, need: int) -> tuple[Buffer, int, int]:
        """The inflated bytes around ``pos`` for the structure walk (see :class:`Source`)."""
        if pos < self._start:
            raise OSError(
                f"Cannot go back to byte {pos} of the inflated data set of {self.name!r}."
            )
        self._pos = max(self._pos, min(pos, self.produced))
        while self.produced < pos + need and not self._done:
            self._pos = max(self._pos, min(pos, self.produced))
            self._fill(min(pos + need, self.produced + _OUT_CHUNK))
        self._pos = pos
        return self._buf, self._start, self.produced

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = self.cap + 1 - self._pos
        self._fill(self._pos + size)
        offset = self._pos - self._start
        with memoryview(self._buf) as view:
            out = bytes(view[offset : offset + size]) if offset >= 0 else b""
        self._pos += len(out)
        self._trim()
        return out

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            target = offset
        elif whence == io.SEEK_CUR:
            target = self._pos + offset
        else:
            while not self._done:  # to the end, keeping only the window
                self._pos = self.produced
                self._fill(self.produced + _OUT_CHUNK)
            target = self.produced + offset
        if target < self._start:
            raise OSError(
                f"Cannot seek back to byte {target} of the inflated data set of {self.name!r}; "
                f"only bytes from {self._start} on are kept."
            )
        if target > self.produced:
            # Skipping forward inflates (and drops) what lies between, within the cap.
            self._pos = min(target, self.produced)
            while self.produced < target and not self._done:
                self._pos = self.produced
                self._fill(min(target, self.produced + _OUT_CHUNK))
        self._pos = target
        self._trim()
        return self._pos

    def tell(self) -> int:
        return self._pos


def inflate_bytes(
    data: bytes | memoryview, *, name: str, limits: ReadLimits | None = None
) -> tuple[bytearray, bool, str | None, ReadLimitError | None]:
    """Inflate a whole deflated data set into memory, within the limits.

    For :mod:`tuiviewer.dicom.loading`, which parses from a buffer and shows what it can:
    going over the cap is returned, not raised, with the bytes inflated up to it.

    Returns:
        ``(inflated, complete, corrupt, over)``: the bytes (a bytearray, not copied again),
        whether the end marker was reached, the zlib error that stopped it early, and the
        :class:`ReadLimitError` when it inflates beyond :meth:`ReadLimits.inflation_cap` for
        the pixel data its header declares.
    """
    limits = limits or _limits.current()
    reader = InflatingReader(io.BytesIO(data), cap=limits.inflation_cap(), name=name, limits=limits)
    reader.WINDOW = 1 << 62  # keep everything: the caller wants the bytes
    over: ReadLimitError | None = None
    try:
        # The header comes first: what pixel data it declares sets the cap for the rest.
        reader._fill(4 * _MIB)
        reader.declared = declared_pixel_bytes(reader._buf)
        reader.cap = max(reader.cap, limits.inflation_cap(reader.declared))
        reader._fill(reader.cap + 1)
    except ReadLimitError as exc:
        over = exc
    return reader._buf, reader.complete and over is None, reader.corrupt, over


def declared_pixel_bytes(data: bytes | bytearray | memoryview, *, little: bool = True) -> int:
    """Pixel data size the top-level header in ``data`` declares (explicit VR), 0 if none.

    Rows × Columns × Samples per Pixel × Bits Allocated / 8 × Number of Frames, read from the
    first elements of an inflated (explicit VR little endian) data set.
    """
    try:
        structure = check_structure(
            MappedSource(memoryview(data)[: 4 * _MIB]),
            0,
            implicit=False,
            little=little,
            limits=ReadLimits(max_elements=1 << 40, max_depth=_limits.MAX_DEPTH_CEILING),
            name="",
            stop_when=lambda tag, vr, length: int(tag) in _PIXEL_TAGS,
        )
    except ReadLimitError:
        return 0
    return structure.pixel_bytes


# --------------------------------------------------------------------------------------------
# The structure walk


@dataclass
class Structure:
    """What :func:`check_structure` found."""

    elements: int = 0
    """Data elements seen, nested ones included."""
    depth: int = 0
    """Deepest sequence nesting seen."""
    end: int = 0
    """Position where the walk stopped."""
    attrs: dict[int, bytes] = field(default_factory=dict)
    """Values of the top-level attributes that size the pixel data."""
    little: bool = True
    spans: dict[int, tuple[int, int]] = field(default_factory=dict)
    """Where each top-level element named in ``collect`` starts and ends."""
    whole: bool = False
    """The walk ended where pydicom's read would: at ``stop_when``, or at the end of the data
    with every sequence closed (not at bytes that made no sense)."""

    @property
    def pixel_bytes(self) -> int:
        """The pixel data size the top-level attributes declare (0 without Rows/Columns)."""

        def number(tag: int, default: int) -> int:
            raw = self.attrs.get(tag)
            if not raw:
                return default
            if tag == 0x00280008:  # Number of Frames is IS: text
                try:
                    return max(int(float(raw.decode("ascii", "replace").strip(" \0"))), 1)
                except ValueError:
                    return default
            if len(raw) < 2:
                return default
            return int(struct.unpack("<H" if self.little else ">H", raw[:2])[0])

        rows, columns = number(0x00280010, 0), number(0x00280011, 0)
        samples, bits = number(0x00280002, 1), number(0x00280100, 16)
        frames = number(0x00280008, 1)
        return rows * columns * max(samples, 1) * max(bits, 1) * frames // 8


@dataclass
class _Frame:
    kind: str
    """"seq" or "item"."""
    end: int | None
    """Where it ends (defined length, clamped by its parents), None when undefined."""


def _looks_like_sequence(tag: int, vr: str | None, length: int, peek: bytes) -> bool:
    if vr == "SQ":
        return True
    if vr not in (None, "UN"):
        return False
    if length == _UNDEFINED:
        if vr == "UN":
            return True  # PS3.5 6.2.2: UN of undefined length is an implicit VR sequence
        try:
            if dictionary_VR(tag) == "SQ":
                return True
        except KeyError:
            pass
        return len(peek) == 4 and peek in (b"\xfe\xff\x00\xe0", b"\xff\xfe\xe0\x00")
    if tag >> 16 & 1 == 0:
        try:
            if dictionary_VR(tag) == "SQ":
                return True
        except KeyError:
            pass
    # A private or unknown element whose value starts with an item is read as a sequence
    # by pydicom when a dictionary knows it; count it as one here.
    return length >= 8 and peek in (b"\xfe\xff\x00\xe0", b"\xff\xfe\xe0\x00")


class MappedSource:
    """A whole buffer (a memory-mapped file, bytes) as a :class:`Source` for the walk."""

    def __init__(self, data: bytes | bytearray | memoryview | mmap.mmap) -> None:
        self.data = data

    def window(self, pos: int, need: int) -> tuple[Buffer, int, int]:
        return self.data, 0, len(self.data)


def check_structure(
    source: Source,
    start: int,
    *,
    implicit: bool,
    little: bool,
    limits: ReadLimits | None = None,
    name: str,
    stop_when: StopWhen | None = None,
    meta: bool = False,
    inflated: bool = False,
    on_pixel_size: Callable[[int], None] | None = None,
    collect: frozenset[int] = frozenset(),
) -> Structure:
    """Walk the element headers from ``start``, enforcing the element and depth limits.

    Values are skipped, not read (except the few attributes that size the pixel data), and the
    walk is a loop over an explicit stack, so neither memory nor Python's stack grows with
    the file. It follows pydicom's reading (explicit/implicit VR switches, undefined-length
    UN and private sequences, encapsulated fragments) closely enough to count what pydicom
    would build; where the bytes stop making sense it just stops, leaving the diagnosis to
    the reader that follows.

    Parameters:
        source: the bytes (:class:`MappedSource` for a file, :class:`InflatingReader` for a
            deflated data set).
        start: position of the first element.
        implicit, little: the encoding of the data set.
        limits: default :func:`tuiviewer.config.limits.current`.
        name: the file's name, for messages.
        stop_when: pydicom-style ``(tag, vr, length) -> bool`` for top-level elements; the
            walk ends before the first one it accepts (as ``read_dataset`` does).
        meta: walk only the group 0002 elements at the start.
        inflated: positions are in an inflated data set (for messages).
        on_pixel_size: called with :attr:`Structure.pixel_bytes` each time a top-level
            attribute that sizes the pixel data is read (to raise an inflation cap).
        collect: top-level tags whose positions are kept in :attr:`Structure.spans`.

    Raises:
        ReadLimitError: more elements than ``max_elements``, or sequences nested deeper
            than ``max_depth``.
    """
    limits = limits or _limits.current()
    endian = "<" if little else ">"
    tag_length = struct.Struct(endian + "HHL").unpack_from
    explicit_head = struct.Struct(endian + "HH2sH").unpack_from
    long_len = struct.Struct(endian + "L").unpack_from
    max_elements, max_depth = limits.max_elements, limits.max_depth
    pixel_attrs = _PIXEL_ATTRS
    found = Structure(little=little)
    stack: list[_Frame] = []
    depth = 0
    elements = 0
    pos = start
    buf, base, avail = source.window(pos, 16)
    collecting: int | None = None  # the collected top-level element being walked

    while True:
        top: _Frame | None = None
        if stack:
            # Close the frames whose defined length is used up.
            while stack:
                frame_end = stack[-1].end
                if frame_end is None or pos < frame_end:
                    break
                if stack.pop().kind == "seq":
                    depth -= 1
                pos = min(pos, frame_end)
            if stack:
                top = stack[-1]
        if pos + 16 > avail:
            buf, base, avail = source.window(pos, 16)
            if pos + 8 > avail:
                break
        at = pos - base
        if top is not None and top.kind == "seq":
            group, elem, length = tag_length(buf, at)
            tag = group << 16 | elem
            if tag == _SEQ_DELIM:
                stack.pop()
                depth -= 1
                pos += 8
                continue
            if tag != _ITEM:
                break  # not an item: the reader will say what is wrong
            stack.append(_Frame("item", _clamp(pos + 8, length, top.end)))
            pos += 8
            continue
        raw_vr: bytes | None
        if implicit:
            group, elem, length = tag_length(buf, at)
            raw_vr = None
            value_at = pos + 8
        else:
            group, elem, raw_vr, length = explicit_head(buf, at)
            if raw_vr in _LONG_VR_BYTES:
                if pos + 12 > avail:
                    break
                (length,) = long_len(buf, at + 8)
                value_at = pos + 12
            elif group == 0xFFFE or not (b"AA" <= raw_vr <= b"ZZ"):
                raw_vr = None  # pydicom's implicit VR switch
                (length,) = long_len(buf, at + 4)
                value_at = pos + 8
            else:
                value_at = pos + 8
        tag = group << 16 | elem
        if tag == _ITEM_DELIM:
            pos += 8
            if top is not None:
                stack.pop()
                continue
            break  # pydicom ends the data set at a stray item delimiter
        if meta and group != 0x0002:
            break
        if top is None and collecting is not None:
            found.spans[collecting] = (found.spans[collecting][0], pos)
            collecting = None
        if top is None and stop_when is not None:
            vr_text = raw_vr.decode("latin-1") if raw_vr is not None else None
            if stop_when(BaseTag(tag), vr_text, length):
                found.whole = True
                break
        if top is None and tag in collect:
            collecting = tag
            found.spans[tag] = (pos, pos)
        elements += 1
        if elements > max_elements:
            found.elements = elements
            raise elements_error(name, pos, limits)
        if raw_vr is None or raw_vr == b"SQ" or raw_vr == b"UN" or length == _UNDEFINED:
            peek = b""
            if raw_vr != b"SQ" and length >= 4 and value_at + 4 <= avail:
                peek = bytes(buf[value_at - base : value_at - base + 4])
            vr = raw_vr.decode("latin-1") if raw_vr is not None else None
            if _looks_like_sequence(tag, vr, length, peek):
                depth += 1
                if depth > found.depth:
                    found.depth = depth
                if depth > max_depth:
                    raise depth_error(name, pos, limits, inflated=inflated)
                stack.append(_Frame("seq", _clamp(value_at, length, top.end if top else None)))
                pos = value_at
                continue
            if length == _UNDEFINED:
                after = _skip_fragments(source, value_at, tag_length)
                if after is None:
                    break
                pos = after
                buf, base, avail = source.window(pos, 16)
                continue
        if top is None and tag in pixel_attrs and length <= 16:
            if value_at + length > avail:
                buf, base, avail = source.window(value_at, length)
            found.attrs[tag] = bytes(buf[value_at - base : value_at - base + length])
            if on_pixel_size is not None:
                on_pixel_size(found.pixel_bytes)
        pos = value_at + length
        if top is not None and top.end is not None and pos > top.end:
            pos = top.end
    if collecting is not None:
        found.spans[collecting] = (found.spans[collecting][0], pos)
    found.elements = elements
    found.end = pos
    if not found.whole and not stack:
        found.whole = pos == source.window(pos, 0)[2]
    return found


def _clamp(start: int, length: int, parent_end: int | None) -> int | None:
    if length == _UNDEFINED:
        return parent_end
    end = start + length
    return end if parent_end is None else min(end, parent_end)


def _skip_fragments(
    source: Source, pos: int, tag_length: Callable[..., tuple[int, ...]]
) -> int | None:
    """Skip encapsulated fragments to their sequence delimiter; None if they make no sense."""
    while True:
        buf, base, avail = source.window(pos, 8)
        if pos + 8 > avail:
            return None
        group, elem, length = tag_length(buf, pos - base)
        tag = group << 16 | elem
        if tag == _SEQ_DELIM:
            return pos + 8
        if tag != _ITEM or length == _UNDEFINED:
            return None
        pos += 8 + length


# --------------------------------------------------------------------------------------------
# Reading


def syntax_encoding(uid: str) -> tuple[bool, bool, bool] | None:
    """(implicit, little endian, deflated) of the native transfer syntaxes (PS3.5 A.1-A.5,
    explicit little endian included); None for any other (encapsulated ones are explicit VR
    little endian, PS3.5 A.4)."""
    return _NATIVE.get(str(uid))


_NATIVE = {
    str(ImplicitVRLittleEndian): (True, True, False),
    str(ExplicitVRLittleEndian): (False, True, False),
    str(ExplicitVRBigEndian): (False, False, False),
    str(DeflatedExplicitVRLittleEndian): (False, True, True),
}


def _encoding(file_meta: FileMetaDataset, fp: BinaryIO) -> tuple[bool, bool, bool]:
    """(implicit, little endian, deflated) as pydicom's ``read_partial`` decides them."""
    syntax = file_meta.get("TransferSyntaxUID")
    start = fp.tell()
    peek = fp.read(6)
    fp.seek(start)
    if not peek:
        return True, True, False
    if syntax is None:
        if len(peek) < 6:
            return True, True, False
        group, _, raw_vr = struct.unpack("<HH2s", peek)
        from pydicom.values import converters

        if raw_vr.decode("latin-1") in converters:
            return False, group < 1024, False
        return True, True, False
    syntax = UID(str(syntax))
    known = syntax_encoding(syntax)
    if known is not None:
        return known
    if syntax in PrivateTransferSyntaxes:
        known = PrivateTransferSyntaxes[PrivateTransferSyntaxes.index(syntax)]
        return known.is_implicit_VR, known.is_little_endian, known.is_deflated
    return False, True, False


def _stop(stop_when: StopWhen | None, stop_before_pixels: bool) -> StopWhen | None:
    if not stop_before_pixels:
        return stop_when
    if stop_when is None:
        return lambda tag, vr, length: int(tag) in _PIXEL_TAGS
    outer = stop_when
    return lambda tag, vr, length: int(tag) in _PIXEL_TAGS or outer(tag, vr, length)


def read_dicom(
    source: Path | str | BinaryIO,
    *,
    stop_before_pixels: bool = False,
    stop_when: StopWhen | None = None,
    specific_tags: list[BaseTag | int] | list[int] | list[str] | None = None,
    force: bool = False,
    limits: ReadLimits | None = None,
) -> FileDataset:
    """``pydicom.dcmread`` within the reading limits.

    Parameters:
        source: a path, or a binary file positioned at its start (left open, positioned
            after what was read, as pydicom leaves it).
        stop_before_pixels, specific_tags, force: as for ``dcmread``.
        stop_when: pydicom's ``(tag, vr, length) -> bool`` for top-level elements: reading
            ends before the first one it accepts.
        limits: default :func:`tuiviewer.config.limits.current`.

    Returns:
        The ``FileDataset`` pydicom would return; for a deflated file its elements come from
        the inflated stream (``file_meta`` keeps the Deflated transfer syntax).

    Raises:
        ReadLimitError: the data set inflates beyond the cap, holds more elements than
            ``max_elements`` or nests deeper than ``max_depth``.
        pydicom's errors otherwise, as ``dcmread`` raises them (``InvalidDicomError`` for a
        missing prefix without ``force``, ``OSError``, ...).
    """
    limits = limits or _limits.current()
    if isinstance(source, str | Path):
        path = Path(source)
        with open(path, "rb", buffering=1 << 16) as fh:
            return _read(fh, str(path), stop_before_pixels, stop_when, specific_tags, force, limits)
    name = str(getattr(source, "name", "") or "") or "(data set)"
    return _read(source, name, stop_before_pixels, stop_when, specific_tags, force, limits)


@contextmanager
def _mapped(fh: BinaryIO) -> Iterator[MappedSource]:
    """The whole file behind ``fh`` as a buffer: memory-mapped (no copy), or read if it
    cannot be mapped (an in-memory stream, an empty file)."""
    try:
        mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError, io.UnsupportedOperation, AttributeError):
        here = fh.tell()
        fh.seek(0)
        data = fh.read()
        fh.seek(here)
        yield MappedSource(data)
        return
    try:
        yield MappedSource(mapped)
    finally:
        mapped.close()


def _read(
    fh: BinaryIO,
    name: str,
    stop_before_pixels: bool,
    stop_when: StopWhen | None,
    specific_tags: list[BaseTag | int] | list[int] | list[str] | None,
    force: bool,
    limits: ReadLimits,
) -> FileDataset:
    preamble = read_preamble(fh, force)
    with _mapped(fh) as whole:
        meta_start = fh.tell()
        check_structure(
            whole, meta_start, implicit=False, little=True, limits=limits, name=name, meta=True
        )
        file_meta = _read_file_meta_info(fh)
        command_start = fh.tell()
        check_structure(
            whole,
            command_start,
            implicit=True,
            little=True,
            limits=limits,
            name=name,
            stop_when=lambda tag, vr, length: int(tag) >> 16 != 0,
        )
        command_set = _read_command_set_elements(fh)
        start = fh.tell()
        implicit, little, deflated = _encoding(file_meta, fh)
        stop = _stop(stop_when, stop_before_pixels)
        tags = _tag_list(specific_tags)
        if not deflated:
            walked = check_structure(
                whole,
                start,
                implicit=implicit,
                little=little,
                limits=limits,
                name=name,
                stop_when=stop,
                collect=frozenset() if tags is None else frozenset({*tags, _CHARSET}),
            )
            if tags is not None and walked.whole:
                # The walk has found the few elements asked for: pydicom reads just those,
                # not every header of a file with a million elements before them.
                dataset = _read_spans(whole, walked, implicit, little)
                fh.seek(walked.end)
                return _file_dataset(
                    fh, dataset, command_set, preamble, file_meta, implicit, little
                )
    stream: BinaryIO = fh
    try:
        if deflated:
            probe = InflatingReader(fh, cap=limits.inflation_cap(), name=name, limits=limits)

            def pixel_size(declared: int) -> None:
                probe.declared = declared
                probe.cap = max(probe.produced, limits.inflation_cap(declared))

            check_structure(
                probe,
                0,
                implicit=False,
                little=True,
                limits=limits,
                name=name,
                stop_when=stop,
                inflated=True,
                on_pixel_size=pixel_size,
            )
            fh.seek(start)
            stream = cast(BinaryIO, InflatingReader(fh, cap=probe.cap, name=name, limits=limits))
            implicit, little = False, True
        try:
            dataset = read_dataset(stream, implicit, little, stop_when=stop, specific_tags=tags)
        except EOFError:
            if pydicom_config.settings.reading_validation_mode == pydicom_config.RAISE:
                raise
            dataset = Dataset()
    except RecursionError as exc:
        # The walk bounds the nesting pydicom sees; this guards the walk's blind spots.
        raise ReadLimitError(
            f"File {name!r} nests its elements too deeply to be read; it was not read "
            f"further. If the file is genuine, {how_to_raise('max_depth', limits)}.",
            limit="max_depth",
        ) from exc
    return _file_dataset(fh, dataset, command_set, preamble, file_meta, implicit, little)


def _read_spans(whole: MappedSource, walked: Structure, implicit: bool, little: bool) -> Dataset:
    """The collected elements of ``walked``, read by pydicom from their bytes (in file order,
    so as one data set; their value positions are within those bytes, not the file)."""
    data = whole.data
    parts = b"".join(bytes(data[begin:end]) for begin, end in sorted(walked.spans.values()))
    return read_dataset(io.BytesIO(parts), implicit, little)


def _file_dataset(
    fh: BinaryIO,
    dataset: Dataset,
    command_set: Dataset,
    preamble: bytes | None,
    file_meta: FileMetaDataset,
    implicit: bool,
    little: bool,
) -> FileDataset:
    if command_set:
        dataset.update(command_set)
    ds = FileDataset(fh, dataset, preamble, file_meta, implicit, little)
    ds.set_original_encoding(implicit, little, dataset._character_set)
    return ds


def _tag_list(
    specific_tags: list[BaseTag | int] | list[int] | list[str] | None,
) -> list[BaseTag | int] | None:
    if specific_tags is None:
        return None
    from pydicom.tag import Tag

    return [Tag(tag) for tag in specific_tags]
