"""The line layout of ``tuiviewer dump``, shared by the pydicom listing and the raw one.

Both :mod:`tuiviewer.dicom.dump` (from a pydicom data set) and :mod:`tuiviewer.dicom.rawdump`
(straight from the bytes, without importing pydicom) print the same dcmdump-like lines; the
columns, the shortening of long values and the hex forms of binary values live here once. No
pydicom import: the raw listing must stay cheap to start.
"""

from __future__ import annotations

from tuiviewer.safetext import clean

VALUE_WIDTH = 40
"""dcmdump pads the value column to this width before the ``#`` comment."""
PRINT_LIMIT = 64
"""dcmdump shortens values longer than this ("print long values shortened")."""
PIXEL_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})
NO_VALUE = "(no value available)"


def line(indent: str, tag: str, vr: str, text: str, length: str, vm: int, label: str) -> str:
    """One listing line: tag, VR, value padded to the comment with length, VM and keyword."""
    body = f"{indent}{tag} {vr} {text}"
    width = len(indent) + 12 + 3 + VALUE_WIDTH
    return f"{body:<{width}} # {length:>3}, {vm} {label}"


def pixel_sequence(
    indent: str, tag: str, vr: str, label: str, fragments: list[tuple[str, int]]
) -> list[str]:
    """The lines of encapsulated Pixel Data: the element, one per (value column, length)
    fragment, the delimiter."""
    lines = [line(indent, tag, vr, f"(PixelSequence #={len(fragments)})", "u/l", 1, label)]
    for value, size in fragments:
        lines.append(line(indent + "  ", "(fffe,e000)", "pi", value, str(size), 1, "Item"))
    end = "SequenceDelimitationItem"
    lines.append(line(indent, "(fffe,e0dd)", "na", f"({end})", "0", 0, end))
    return lines


def fallback_keyword(tag: int, is_private: bool, has_creator: bool) -> str:
    """The label of an element without a dictionary keyword, as dcmdump names it."""
    if tag & 0xFFFF == 0:
        return "GenericGroupLength"
    if is_private and not has_creator and 0x10 <= tag & 0xFFFF <= 0xFF:
        return "PrivateCreator"
    return "Unknown Tag & Data"


def hex_bytes(data: bytes, vr: str = "OB") -> str:
    """The start of a binary value in hex: 16-bit words for OW, bytes otherwise."""
    if vr == "OW" and len(data) % 2 == 0:
        words = (data[i + 1] << 8 | data[i] for i in range(0, min(len(data), 200), 2))
        return "\\".join(f"{w:04x}" for w in words)
    return "\\".join(f"{b:02x}" for b in data[:100])


def shorten(text: str) -> str:
    """``text`` cleaned for the terminal and cut to :data:`PRINT_LIMIT` characters."""
    # Control characters (CR, LF, ESC, C1...) escaped as \r, \n, \x1b; each escape is at
    # least one character, so the first PRINT_LIMIT + 1 characters decide the line.
    text = clean(text[: PRINT_LIMIT + 1])
    if len(text) > PRINT_LIMIT:
        return text[:PRINT_LIMIT] + "..."
    return text


def bracketed(items: list[str]) -> str:
    """Text values as dcmdump shows them: ``[a\\b]``, shortened."""
    head = "[" + "\\".join(v[: PRINT_LIMIT + 1] for v in items[: PRINT_LIMIT + 1])
    return shorten(head + "]" if len(head) <= PRINT_LIMIT + 1 else head)


META_HEAD = (
    "",
    "# Dicom-File-Format",
    "",
    "# Dicom-Meta-Information-Header",
    "# Used TransferSyntax: Little Endian Explicit",
)
"""The lines before the meta elements (always explicit VR little endian, PS3.10 7.1)."""


def data_head(syntax_name: str) -> list[str]:
    """The lines between the meta elements and the data set's."""
    return ["", "# Dicom-Data-Set", f"# Used TransferSyntax: {syntax_name}"]
