"""Text from DICOM files and PACS answers made safe to put on a terminal.

Every name, description, UID, error comment and report sentence tuiviewer shows comes from
someone else's bytes. A value holding ``ESC ] 52 ;`` sets the reader's clipboard, ``ESC ] 0 ;``
the window title, ``ESC [ 2 J`` clears the screen, and the single C1 byte U+009B is a CSI of
its own. This module is the one place that decides what may pass: printable characters and,
in multi-line text, newline and tab. Every other control character (C0, DEL, C1), the Unicode
bidirectional overrides that reorder what is shown, and lone surrogates (undecodable bytes)
become a visible escape such as ``\\x1b``, so the reader sees that something odd was there.

:func:`clean` is for the TUI and for values the CLI prints; :class:`TerminalStream` wraps
the CLI's ``stdout``/``stderr`` so nothing raw gets past it either, and its JSON mode keeps
``--json`` output valid JSON. No Textual here: screens call :func:`clean` at the boundary.
"""

from __future__ import annotations

import io
import re
from typing import TextIO

__all__ = ["TerminalStream", "clean", "clean_json", "is_clean"]

# C0 but tab, newline and carriage return (decided per mode below), DEL, C1, the bidi
# embeddings/overrides/isolates (U+202A-U+202E, U+2066-U+2069) and surrogates.
_ALWAYS = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_ONE_LINE = re.compile(f"[{_ALWAYS}\t\n\r]")
_LINES = re.compile(f"\r\n|[{_ALWAYS}\r]")
_STREAM = re.compile(f"[{_ALWAYS}]")
_JSON = re.compile(f"[{_ALWAYS}]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char == "\r\n":
        return "\n"
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean(value: object, *, lines: bool = False) -> str:
    """``value`` as text that cannot drive the terminal.

    Parameters:
        value: anything; non-strings are shown with ``str()``, ``None`` as ``""``.
        lines: keep newlines and tabs (report text, dialogs); CR LF becomes a newline.
            Otherwise the text is one line: ``\\n``, ``\\t`` and ``\\r`` are escaped too.

    Returns:
        The text with each unsafe character replaced by ``\\xNN`` (``\\uNNNN`` above U+00FF;
        ``\\n``, ``\\t``, ``\\r`` for those). Clean text is returned unchanged.
    """
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    pattern = _LINES if lines else _ONE_LINE
    if pattern.search(text) is None:
        return text
    return pattern.sub(_escape, text)


def is_clean(text: str, *, lines: bool = False) -> bool:
    """True when :func:`clean` would leave ``text`` as it is."""
    return (_LINES if lines else _ONE_LINE).search(text) is None


def clean_json(text: str) -> str:
    """JSON text with control characters, bidi controls and surrogates written as ``\\uNNNN``.

    ``json.dumps`` already escapes C0 characters but, with ``ensure_ascii=False``, passes
    U+007F-U+009F through, and U+009B alone is a CSI. Such characters can only occur inside
    JSON strings, where ``\\uNNNN`` means the same character, so the result parses to the same
    value.
    """
    return _JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class TerminalStream(io.TextIOBase):
    """A text stream that cleans everything written to it before it reaches ``target``.

    Newline, tab and carriage return pass (the CLI redraws progress lines with ``\\r``);
    values are cleaned to one line where they are formatted, so a CR inside a value never
    gets here. With ``json=True`` the JSON form (:func:`clean_json`) is used instead.
    """

    def __init__(self, target: TextIO, *, json: bool = False) -> None:
        super().__init__()
        self.target = target
        self.json = json

    def write(self, text: str) -> int:
        safe = clean_json(text) if self.json else _STREAM.sub(_escape, text)
        self.target.write(safe)
        return len(text)

    def flush(self) -> None:
        self.target.flush()

    def isatty(self) -> bool:
        isatty = getattr(self.target, "isatty", None)
        return bool(isatty and isatty())

    def fileno(self) -> int:
        return self.target.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return str(getattr(self.target, "encoding", None) or "utf-8")

    def writable(self) -> bool:
        return True
