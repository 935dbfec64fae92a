"""Seeded, damaged copies of real DICOM files, for the tests that prove nothing crashes on them.

Random bytes rarely get past a parser's first check; the damage that hurts is structural: a file
cut short inside an element, a length field that points past the end, a VR that lies, an item
header that is not one. So every mutation here aims at a place found by *pydicom's* reading of
the intact file (element headers, length fields, sequence items, encapsulated fragments), never
by the loader under test. Everything is seeded from the source name and the mutation kind, so a
failure names a mutant that the next run rebuilds byte for byte.

A deflated source is mutated in its inflated data set and deflated again, so the structural
damage reaches the parser behind the inflater instead of just breaking the zlib stream.
"""

from __future__ import annotations

import random
import struct
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pydicom
from pydicom.datadict import DicomDictionary
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.filereader import data_element_generator

__all__ = [
    "SOURCES",
    "Header",
    "Layout",
    "Mutant",
    "all_mutants",
    "cut_points",
    "layout",
    "random_byte_flips",
    "source_path",
    "top_level_boundaries",
]

#: The real files mutated: explicit and implicit VR, no preamble and no meta (rtstruct),
#: deflated, big endian, JPEG baseline, and an SR with deeply nested sequences.
SOURCES: tuple[str, ...] = (
    "CT_small.dcm",
    "MR_small.dcm",
    "rtplan.dcm",
    "rtstruct.dcm",
    "image_dfl.dcm",
    "MR_small_bigendian.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",
    "test-SR.dcm",
)

#: Explicit VRs whose length field is 4 bytes after 2 reserved bytes (PS3.5 Table 7.1-1).
LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})
SHORT_VRS = frozenset(
    {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO", "LT", "PN", "SH", "SL"}
    | {"SS", "ST", "TM", "UI", "UL", "US"}
)
UNDEFINED = 0xFFFFFFFF
#: Declared lengths no small file can satisfy; 0xFFFFFFFF is undefined length, tested apart.
HUGE_LENGTHS = (0xFFFFFFF0, 0xFFFFFFFE, 0x7FFFFFFF, 0x80000000, 0x10000000)
_ITEM = 0xFFFEE000
_ITEM_DELIM = 0xFFFEE00D
_SEQ_DELIM = 0xFFFEE0DD
_PIXEL_DATA = 0x7FE00010


def source_path(name: str) -> Path:
    """One of pydicom's bundled test files (never downloaded: there is no network)."""
    found = pydicom.data.get_testdata_file(name, download=False)
    if found is None:
        raise FileNotFoundError(f"pydicom test file {name!r} is not bundled")
    return Path(str(found))


@dataclass(frozen=True)
class Mutant:
    """One damaged file."""

    name: str
    """A file name that says where it came from: ``CT_small-huge-length-003.dcm``."""
    source: str
    kind: str
    detail: str
    """What was done, with the byte offset: for the failure message."""
    data: bytes
    must_fail: bool = False
    """The damage is one any reader must notice: a cut inside an element, a length past the
    end of the file. Other damage may go unnoticed (a flipped bit in the preamble)."""


@dataclass(frozen=True)
class Header:
    """Where one element header sits in the stream, as pydicom read it."""

    tag: int
    start: int
    """Offset of the tag."""
    vr: str | None
    """The explicit VR as written, None for implicit VR."""
    length_at: int
    length_size: int
    """2 or 4."""
    length: int
    depth: int
    """0 for the file meta and the top-level data set."""
    little: bool

    @property
    def value_at(self) -> int:
        return self.length_at + self.length_size


@dataclass(frozen=True)
class ItemHeader:
    """A sequence item's (FFFE,E000) header."""

    start: int
    length: int
    depth: int
    """Depth of the sequence that holds the item."""


@dataclass(frozen=True)
class Layout:
    """An intact file taken apart: the stream that offsets refer to and its headers."""

    prefix: bytes
    """Bytes before the stream: the preamble and file meta of a deflated file, else empty."""
    stream: bytes
    """The file itself, or the inflated data set of a deflated file."""
    deflated: bool
    has_preamble: bool
    meta_end: int
    """Offset in the stream where the data set starts (0 in an inflated stream)."""
    headers: tuple[Header, ...]
    items: tuple[ItemHeader, ...]
    fragments: tuple[int, ...]
    """Offsets of the encapsulated Pixel Data's item headers (offset table first)."""

    def rebuild(self, stream: bytes | bytearray) -> bytes:
        """A file from a mutated stream: deflated again when the source was deflated."""
        if not self.deflated:
            return bytes(stream)
        packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        return self.prefix + packer.compress(bytes(stream)) + packer.flush()


def _header(
    stream: bytes, elem: DataElement, depth: int, little: bool, implicit: bool, bases: list[int]
) -> Header:
    """Find ``elem``'s header from its value offset, checking the tag bytes really are there.

    pydicom 3.0 gives the elements and nested items of a sequence it converted lazily (a
    defined-length SQ) offsets relative to that sequence's value, so each enclosing sequence's
    value offset is tried as a base, nearest first.
    """
    if elem.file_tell is None:
        raise ValueError(f"{elem.tag} has no file position")
    endian = "<" if little else ">"
    tag_bytes = struct.pack(endian + "HH", elem.tag.group, elem.tag.element)
    for base in reversed(bases):
        value_at = elem.file_tell + base
        for back in (8,) if implicit else (12, 8):
            start = value_at - back
            if start < 0 or stream[start : start + 4] != tag_bytes:
                continue
            vr = stream[start + 4 : start + 6].decode("latin-1")
            if implicit:
                (length,) = struct.unpack_from(endian + "L", stream, start + 4)
                return Header(int(elem.tag), start, None, start + 4, 4, length, depth, little)
            if back == 12 and vr in LONG_VRS:
                (length,) = struct.unpack_from(endian + "L", stream, start + 8)
                return Header(int(elem.tag), start, vr, start + 8, 4, length, depth, little)
            if back == 8 and vr in SHORT_VRS:
                (length,) = struct.unpack_from(endian + "H", stream, start + 6)
                return Header(int(elem.tag), start, vr, start + 6, 2, length, depth, little)
    raise ValueError(f"no header found for {elem.tag} (value offset {elem.file_tell})")


def _walk(
    stream: bytes, ds: Dataset, depth: int, little: bool, implicit: bool, bases: list[int]
) -> Iterator[Header | ItemHeader]:
    endian = "<" if little else ">"
    for elem in ds:
        header = _header(stream, elem, depth, little, implicit, bases)
        yield header
        if elem.VR != "SQ":
            continue
        inner = [*bases, header.value_at]
        item_tag = struct.pack(endian + "HH", 0xFFFE, 0xE000)
        for item in elem.value:
            tell: int | None = getattr(item, "seq_item_tell", None)
            for base in reversed(inner) if tell is not None else ():
                at = int(tell or 0) + base
                if stream[at : at + 4] == item_tag:
                    (length,) = struct.unpack_from(endian + "L", stream, at + 4)
                    yield ItemHeader(at, length, depth)
                    break
            yield from _walk(stream, item, depth + 1, little, implicit, inner)


def _fragments(stream: bytes, pixel: Header) -> tuple[int, ...]:
    if pixel.length != UNDEFINED:
        return ()
    found = []
    pos = pixel.value_at
    while pos + 8 <= len(stream):
        group, element, length = struct.unpack_from("<HHL", stream, pos)
        if (group, element) != (0xFFFE, 0xE000):
            break
        found.append(pos)
        pos += 8 + length
    return tuple(found)


@cache
def layout(name: str) -> Layout:
    """Take the intact source ``name`` apart with pydicom (cached: sources never change)."""
    path = source_path(name)
    data = path.read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path, force=True)
        deflated = bool(ds.file_meta.get("TransferSyntaxUID", "") == "1.2.840.10008.1.2.1.99")
        implicit, little = ds.original_encoding
        little = bool(little)
        meta_headers = _parse_meta(data)
        meta_end = max((h.value_at + h.length for h in meta_headers), default=0)
        if deflated:
            prefix, stream = data[:meta_end], zlib.decompress(data[meta_end:], -zlib.MAX_WBITS)
            offset = 0
        else:
            prefix, stream, offset = b"", data, meta_end
        found = list(_walk(stream, ds, 0, little, bool(implicit), [0]))
    headers = [h for h in found if isinstance(h, Header)]
    pixel = next((h for h in headers if h.tag == _PIXEL_DATA and h.depth == 0), None)
    return Layout(
        prefix=prefix,
        stream=stream,
        deflated=deflated,
        has_preamble=data[128:132] == b"DICM",
        meta_end=offset,
        headers=tuple(([] if deflated else meta_headers) + headers),
        items=tuple(h for h in found if isinstance(h, ItemHeader)),
        fragments=_fragments(stream, pixel) if pixel is not None else (),
    )


def _parse_meta(data: bytes) -> list[Header]:
    """The file meta element headers (always explicit VR little endian, PS3.10 7.1)."""
    result = []
    pos = 132 if data[128:132] == b"DICM" else 0
    while pos + 8 <= len(data) and struct.unpack_from("<H", data, pos)[0] == 0x0002:
        (element,) = struct.unpack_from("<H", data, pos + 2)
        vr = data[pos + 4 : pos + 6].decode("latin-1")
        if vr in LONG_VRS:
            (length,) = struct.unpack_from("<L", data, pos + 8)
            result.append(Header(0x00020000 | element, pos, vr, pos + 8, 4, length, 0, True))
        else:
            (length,) = struct.unpack_from("<H", data, pos + 6)
            result.append(Header(0x00020000 | element, pos, vr, pos + 6, 2, length, 0, True))
        pos = result[-1].value_at + length
    return result


def _meta_end(data: bytes) -> int:
    """Where the data set starts: after the last meta element, or after the preamble."""
    headers = _parse_meta(data)
    if headers:
        return headers[-1].value_at + headers[-1].length
    return 132 if data[128:132] == b"DICM" else 0


# -- helpers shared with tests/unit/dicom/test_loading.py ---------------------------------------


def top_level_boundaries(path: Path) -> set[int]:
    """Byte offsets where a top-level element (or the file meta) ends, by pydicom's reader.

    A file cut exactly there is a valid, shorter file: nobody can tell it was truncated.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    data = path.read_bytes()
    meta_end = _meta_end(data)
    ends = {len(data), meta_end}
    if ds.file_meta.get("TransferSyntaxUID", "") == "1.2.840.10008.1.2.1.99":
        return ends
    implicit, little = ds.original_encoding
    with open(path, "rb") as fp:
        fp.seek(meta_end)
        for _ in data_element_generator(fp, bool(implicit), bool(little)):
            ends.add(fp.tell())
    return ends


def cut_points(path: Path, rng: random.Random, limit: int = 60) -> list[int]:
    """Offsets to cut ``path`` at: in the preamble, the meta, sequences, pixel data, at random.

    Offsets where a top-level element ends are left out (see :func:`top_level_boundaries`).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path, force=True)
    size = path.stat().st_size
    points = {64, 131, 140, 200}  # preamble, prefix, first meta element, later meta
    deflated = ds.file_meta.get("TransferSyntaxUID", "") == "1.2.840.10008.1.2.1.99"
    if not deflated:
        for elem in ds.iterall():
            if elem.VR == "SQ" and elem.file_tell:
                points.add(elem.file_tell + 10)  # inside a sequence
        if "PixelData" in ds:
            start = int(ds["PixelData"].file_tell or 0)
            points.update({start + 1, start + len(ds.PixelData) // 2})  # inside pixel data
    points.update(rng.randrange(1, size) for _ in range(40))
    boundaries = top_level_boundaries(path)
    return sorted(p for p in points if 0 < p < size and p not in boundaries)[:limit]


def random_byte_flips(
    rng: random.Random,
    names: tuple[str, ...] = (
        "rtplan.dcm",
        "CT_small.dcm",
        "image_dfl.dcm",
        "MR_small_bigendian.dcm",
    ),
    per_file: int = 25,
) -> list[Mutant]:
    """1, 2 or 4 flipped bits in the first 2500 bytes, where headers and lengths are."""
    result = []
    for name in names:
        data = source_path(name).read_bytes()
        for index in range(per_file):
            mutant = bytearray(data)
            spots = []
            for _ in range(rng.choice([1, 2, 4])):
                at = rng.randrange(min(len(data), 2500))
                mutant[at] ^= 1 << rng.randrange(8)
                spots.append(at)
            result.append(
                Mutant(
                    f"{Path(name).stem}-random-flips-{index:03d}.dcm",
                    name,
                    "random-flips",
                    f"bits flipped at bytes {sorted(spots)}",
                    bytes(mutant),
                )
            )
    return result


# -- structural mutations ------------------------------------------------------------------------

Mutation = tuple[str, bytearray, bool]
"""(detail, mutated stream, must_fail)."""


def _pack_length(header: Header, value: int) -> bytes:
    endian = "<" if header.little else ">"
    return struct.pack(endian + ("L" if header.length_size == 4 else "H"), value)


def _sample(rng: random.Random, seq: list[Header], count: int) -> list[Header]:
    return rng.sample(seq, min(count, len(seq)))


def _flip_meta(lay: Layout, rng: random.Random) -> Iterator[Mutation]:
    """A flipped bit in a file meta element header.

    A deflated file's meta header is in ``prefix``, outside the stream: the mutation is then
    made in the prefix and :func:`mutants_of` puts the deflated data set back behind it.
    """
    meta = _parse_meta(lay.prefix) if lay.deflated else [h for h in lay.headers if h.tag >> 16 == 2]
    for h in _sample(rng, meta, 4):
        at = h.start + rng.randrange(h.value_at - h.start)
        stream = bytearray(lay.prefix if lay.deflated else lay.stream)
        stream[at] ^= 1 << rng.randrange(8)
        yield f"meta header of {h.tag:08X}: bit flipped at byte {at}", stream, False


def _data_headers(lay: Layout) -> list[Header]:
    return [h for h in lay.headers if h.tag >> 16 != 0x0002]


def _flip_header(lay: Layout, rng: random.Random) -> Iterator[Mutation]:
    """A flipped bit in a tag or VR code."""
    for h in _sample(rng, _data_headers(lay), 12):
        at = h.start + rng.randrange(6 if h.vr else 4)
        stream = bytearray(lay.stream)
        stream[at] ^= 1 << rng.randrange(8)
        yield f"header of {h.tag:08X} (depth {h.depth}): bit flipped at byte {at}", stream, False


def _flip_length(lay: Layout, rng: random.Random) -> Iterator[Mutation]:
    for h in _sample(rng, _data_headers(lay), 10):
        at = h.length_at + rng.randrange(h.length_size)
        stream = bytearray(lay.stream)
        stream[at] ^= 1 << rng.randrange(8)
        (new,) = struct.unpack_from(
            ("<" if h.little else ">") + ("L" if h.length_size == 4 else "H"), stream, h.length_at
        )
        past_end = new != UNDEFINED and h.value_at + new > len(stream)
        detail = f"length of {h.tag:08X} (depth {h.depth}) {h.length} -> {new} at byte {at}"
        yield detail, stream, past_end


_SWAPS = {
    "short": sorted(SHORT_VRS),
    "long": sorted(LONG_VRS - {"SQ"}),
}


def _wrong_vr(
    lay: Layout, rng: random.Random, dictionary: list[tuple[int, str]]
) -> Iterator[Mutation]:
    """Explicit VR: another VR code. Implicit VR: another tag, whose dictionary VR differs."""
    for h in _sample(rng, _data_headers(lay), 8):
        stream = bytearray(lay.stream)
        if h.vr is not None:
            same_class = _SWAPS["long" if h.vr in LONG_VRS else "short"]
            # Mostly a VR of the same length class (the header still parses, the value lies),
            # sometimes one of the other class (the length field is misread).
            pool = (
                same_class
                if rng.random() < 0.7
                else _SWAPS["short" if h.vr in LONG_VRS else "long"]
            )
            new = rng.choice([vr for vr in pool if vr != h.vr])
            stream[h.start + 4 : h.start + 6] = new.encode("ascii")
            yield f"VR of {h.tag:08X} at byte {h.start} {h.vr} -> {new}", stream, False
        else:
            tag, vr = rng.choice(dictionary)
            endian = "<" if h.little else ">"
            stream[h.start : h.start + 4] = struct.pack(endian + "HH", tag >> 16, tag & 0xFFFF)
            yield f"tag {h.tag:08X} at byte {h.start} -> {tag:08X} ({vr})", stream, False


def _huge_length(lay: Layout, rng: random.Random) -> Iterator[Mutation]:
    for h in _sample(rng, _data_headers(lay), 8):
        stream = bytearray(lay.stream)
        value = rng.choice(HUGE_LENGTHS) if h.length_size == 4 else 0xFFFF
        stream[h.length_at : h.length_at + h.length_size] = _pack_length(h, value)
        past_end = h.value_at + value > len(stream)
        detail = f"length of {h.tag:08X} (depth {h.depth}) at byte {h.length_at} -> {value:#x}"
        yield detail, stream, past_end


def _undefined_length(lay: Layout, rng: random.Random) -> Iterator[Mutation]:
    """0xFFFFFFFF on elements that may not have it: anything but SQ, UN and Pixel Data."""
    allowed = [
        h
        for h in _data_headers(lay)
        if h.length_size == 4
        and h.vr not in ("SQ", "UN")
        and h.tag != _PIXEL_DATA
        and h.length != UNDEFINED
    ]
    for h in _sample(rng, allowed, 5):
        stream = bytearray(lay.stream)
        stream[h.length_at : h.length_at + 4] = _pack_length(h, UNDEFINED)
        yield (
            f"undefined length on {h.tag:08X} ({h.vr or 'implicit'}) at byte {h.length_at}",
            stream,
            False,
        )


def _sequences(lay: Layout, rng: random.Random) -> Iterator[Mutation]:
    """Items that are not items, lengths that disagree, delimiters in the wrong place."""
    little = next((h.little for h in _data_headers(lay)), True)
    endian = "<" if little else ">"
    items = list(lay.items)
    for item in rng.sample(items, min(3, len(items))):
        stream = bytearray(lay.stream)
        bogus = rng.choice([(0xFFFE, 0xE00D), (0xFFFE, 0xE0DD), (0xFFFF, 0xE000), (0x0008, 0x0016)])
        stream[item.start : item.start + 4] = struct.pack(endian + "HH", *bogus)
        yield f"item header at byte {item.start} -> ({bogus[0]:04X},{bogus[1]:04X})", stream, False
    defined = [i for i in items if i.length != UNDEFINED]
    for item in rng.sample(defined, min(3, len(defined))):
        stream = bytearray(lay.stream)
        new = rng.choice(
            [item.length + 2, item.length + 8, max(item.length - 4, 0), UNDEFINED, 0xFFFFFFF0]
        )
        stream[item.start + 4 : item.start + 8] = struct.pack(endian + "L", new)
        yield f"item length at byte {item.start + 4}: {item.length} -> {new:#x}", stream, False
    sequences = [h for h in _data_headers(lay) if h.vr in ("SQ", None) and _is_sequence(lay, h)]
    for h in rng.sample(sequences, min(3, len(sequences))):
        stream = bytearray(lay.stream)
        if h.length == UNDEFINED:
            end = _sequence_delimiter(lay, h, endian)
            if end is None:
                continue
            stream[end : end + 4] = struct.pack(endian + "HH", 0xFFFE, 0xE000)
            yield f"sequence delimiter of {h.tag:08X} at byte {end} -> item tag", stream, False
        else:
            new = rng.choice([h.length + 8, max(h.length - 6, 0), 1])
            stream[h.length_at : h.length_at + 4] = _pack_length(h, new)
            yield (
                f"sequence length of {h.tag:08X} at byte {h.length_at}: {h.length} -> {new}",
                stream,
                False,
            )
    # An item repeated in place: the enclosing lengths no longer add up.
    if defined:
        item = defined[0]
        body = lay.stream[item.start : item.start + 8 + item.length]
        stream = bytearray(lay.stream)
        stream[item.start : item.start + len(body)] = body * 40
        yield f"item at byte {item.start} repeated 40 times in place", stream, False


def _is_sequence(lay: Layout, h: Header) -> bool:
    return any(i.start == h.value_at for i in lay.items) or h.vr == "SQ"


def _sequence_delimiter(lay: Layout, h: Header, endian: str) -> int | None:
    """Offset of the delimiter that closes the undefined-length sequence ``h``, if found.

    It sits right before the next element at the same depth (or at the end of a top-level
    stream); a sequence that ends its item is skipped rather than searched for.
    """
    delim = struct.pack(endian + "HH", 0xFFFE, 0xE0DD)
    following = [x.start for x in lay.headers if x.depth == h.depth and x.start > h.start]
    end = min(following) if following else (len(lay.stream) if h.depth == 0 else None)
    if end is None or lay.stream[end - 8 : end - 4] != delim:
        return None
    return end - 8


def _pixels(lay: Layout, rng: random.Random) -> Iterator[Mutation]:
    """Encapsulated fragments with bad headers and bad codestreams; native sizes that lie."""
    for at in lay.fragments[:3]:
        stream = bytearray(lay.stream)
        stream[at + 4 : at + 8] = struct.pack("<L", rng.choice(HUGE_LENGTHS))
        yield f"fragment length at byte {at + 4} made huge", stream, True
    for at in lay.fragments[1:3]:
        stream = bytearray(lay.stream)
        (length,) = struct.unpack_from("<L", stream, at + 4)
        for _ in range(8):
            spot = at + 8 + rng.randrange(max(length, 1))
            stream[spot] ^= 0xFF
        yield f"codestream of the fragment at byte {at}: 8 bytes inverted", stream, False
        stream = bytearray(lay.stream)
        stream[at : at + 4] = struct.pack("<HH", 0xFFFE, 0xE0DD)
        yield f"fragment at byte {at} turned into a sequence delimiter", stream, False
    sizes = {0x00280010: "Rows", 0x00280011: "Columns", 0x00280100: "BitsAllocated"}
    for h in [h for h in lay.headers if h.tag in sizes and h.depth == 0]:
        for value in (0, 0xFFFF):
            stream = bytearray(lay.stream)
            endian = "<" if h.little else ">"
            stream[h.value_at : h.value_at + 2] = struct.pack(endian + "H", value)
            yield f"{sizes[h.tag]} at byte {h.value_at} set to {value}", stream, False


@cache
def _dictionary_sample() -> list[tuple[int, str]]:
    """Public tags with their VRs, for implicit VR elements that claim to be something else."""
    rng = random.Random("dictionary")
    entries = sorted(
        (tag, entry[0]) for tag, entry in DicomDictionary.items() if "x" not in str(entry[0])
    )
    return rng.sample(entries, 200)


def _truncations(name: str, rng: random.Random, count: int) -> Iterator[Mutant]:
    path = source_path(name)
    data = path.read_bytes()
    points = cut_points(path, rng, limit=10_000)
    for index, cut in enumerate(sorted(rng.sample(points, min(count, len(points))))):
        yield Mutant(
            f"{Path(name).stem}-truncated-{index:03d}.dcm",
            name,
            "truncated",
            f"cut at byte {cut} of {len(data)}",
            data[:cut],
            must_fail=True,
        )


def _preamble(name: str, rng: random.Random) -> Iterator[Mutant]:
    data = source_path(name).read_bytes()
    if data[128:132] != b"DICM":
        return
    for index, (low, high) in enumerate([(0, 128), (128, 132)]):
        at = rng.randrange(low, high)
        mutant = bytearray(data)
        mutant[at] ^= 1 << rng.randrange(8)
        where = "preamble" if high == 128 else "'DICM' prefix"
        yield Mutant(
            f"{Path(name).stem}-flip-preamble-{index:03d}.dcm",
            name,
            "flip-preamble",
            f"bit flipped in the {where} at byte {at}",
            bytes(mutant),
        )


def mutants_of(name: str) -> list[Mutant]:
    """Every structural mutant of one source, in a fixed order."""
    lay = layout(name)
    stem = Path(name).stem
    result = list(_truncations(name, random.Random(f"{name}:truncated"), 30))
    result += list(_preamble(name, random.Random(f"{name}:preamble")))
    kinds: list[tuple[str, Callable[[Layout, random.Random], Iterator[Mutation]]]] = [
        ("flip-meta", _flip_meta),
        ("flip-header", _flip_header),
        ("flip-length", _flip_length),
        ("wrong-vr", lambda lay, rng: _wrong_vr(lay, rng, _dictionary_sample())),
        ("huge-length", _huge_length),
        ("undefined-length", _undefined_length),
        ("sequence", _sequences),
        ("pixels", _pixels),
    ]
    for kind, make in kinds:
        rng = random.Random(f"{name}:{kind}")
        for index, (detail, stream, must_fail) in enumerate(make(lay, rng)):
            if kind == "flip-meta" and lay.deflated:
                data = bytes(stream) + source_path(name).read_bytes()[len(lay.prefix) :]
            else:
                data = lay.rebuild(stream)
            result.append(
                Mutant(f"{stem}-{kind}-{index:03d}.dcm", name, kind, detail, data, must_fail)
            )
    return result


@cache
def all_mutants() -> tuple[Mutant, ...]:
    """Every mutant: the structural ones of each source, then random bit flips."""
    result: list[Mutant] = []
    for name in SOURCES:
        result += mutants_of(name)
    result += random_byte_flips(random.Random(1234))
    names = [m.name for m in result]
    assert len(names) == len(set(names)), "mutant names must be unique"
    return tuple(result)
