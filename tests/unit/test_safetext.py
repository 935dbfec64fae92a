"""The one sanitiser: no control sequence from a file or a PACS answer reaches the terminal."""

from __future__ import annotations

import io
import json

import pytest

from tests.support.hostile import C1_CSI, CSI2J, MARKUP, OSC0, OSC52, RAW_SEQUENCES
from tuiviewer.safetext import TerminalStream, clean, clean_json, is_clean
from tuiviewer.widgets.safe import cell, shown

HOSTILE = [OSC52, OSC0, CSI2J, C1_CSI, "\x7f", "\x00", "\u202e", "\udc9b"]


@pytest.mark.parametrize(
    "trick", HOSTILE, ids=["osc52", "osc0", "csi2j", "c1", "del", "nul", "rlo", "surrogate"]
)
def test_every_trick_becomes_visible_text(trick: str) -> None:
    text = clean(f"Doe{trick}John")
    assert text.startswith("Doe") and text.endswith("John")
    assert all(ch.isprintable() for ch in text), repr(text)
    assert "\\x" in text or "\\u" in text, "the reader sees that something was there"
    assert is_clean(text)


def test_the_escape_shows_the_byte_that_was_there() -> None:
    assert clean(f"a{OSC52}b") == "a\\x1b]52;c;aGFja2Vk\\x07b"
    assert clean("\x9b31m") == "\\x9b31m"
    assert clean("right\u202eleft") == "right\\u202eleft"


def test_one_line_text_escapes_newlines_and_tabs_but_lines_keep_them() -> None:
    assert clean("a\nb\tc\r") == "a\\nb\\tc\\r"
    assert clean("a\nb\tc\r\nd\re", lines=True) == "a\nb\tc\nd\\re"


def test_clean_text_is_returned_as_it_is() -> None:
    name = "Müller^Zoë 患者 [not markup here]"
    assert clean(name) is name
    assert clean(None) == "" and clean(42) == "42"


def test_the_terminal_stream_lets_our_own_line_control_through_but_nothing_else() -> None:
    out = io.StringIO()
    stream = TerminalStream(out)
    stream.write("\r3/10 instances\n")
    stream.write(f"failed: 1.2.3{CSI2J}{OSC0}\n")
    text = out.getvalue()
    assert text.startswith("\r3/10 instances\n")
    assert "\x1b" not in text and "\\x1b[2J" in text


def test_json_stays_json_with_the_same_values() -> None:
    values = {"name": f"Evil{OSC52}{C1_CSI}\x7f\u202e"}
    encoded = json.dumps(values, ensure_ascii=False)
    assert "\x9b" in encoded and "\x7f" in encoded, "json.dumps lets C1 and DEL through"
    safe = clean_json(encoded)
    assert json.loads(safe) == values
    assert all(seq.decode("latin-1") not in safe for seq in RAW_SEQUENCES)
    out = io.StringIO()
    TerminalStream(out, json=True).write(encoded)
    assert json.loads(out.getvalue()) == values


def test_tui_text_is_cleaned_and_never_read_as_markup() -> None:
    text = shown(f"Patient {MARKUP}{OSC52}")
    assert text.plain.startswith("Patient [link=https://evil.example/]")
    assert not text.spans, "markup became a style or a link"
    assert "\x1b" not in text.plain
    assert cell(f"x{CSI2J}").plain == "x\\x1b[2J"
