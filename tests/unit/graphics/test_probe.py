"""Asking the terminal what it can show, and the protocol, cell size and line chosen from it.

The probe talks to a real pseudo-terminal: a thread on the master side plays a terminal,
answering each query the way the real one answered it under Xvfb (xterm 379 as a VT340,
mlterm 3.9, kitty 0.26.5; tests/realterm runs them for real).
"""

from __future__ import annotations

import os
import pty
import select
import shutil
import struct
import subprocess
import termios
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tuiviewer.graphics.probe import (
    COLOR_REGISTERS,
    DA1,
    KITTY_QUERY,
    XTVERSION,
    Answers,
    GraphicsMode,
    ReplyScanner,
    TerminalProbe,
    TmuxState,
    decide_graphics,
    identify,
    plan_colors,
    probe_terminal,
    tmux_state,
    tmux_wrap,
)

XTERM = {
    XTVERSION: b"\x1bP>|XTerm(379)\x1b\\",
    COLOR_REGISTERS: b"\x1b[?1;0;256S",
    DA1: b"\x1b[?63;1;2;4;6;9;15;16;22;28c",
}
"""xterm -ti vt340 with 256 registers: no CSI 16 t (window ops are off), no Kitty answer."""
KITTY_0_26 = {
    XTVERSION: b"\x1bP>|kitty(0.26.5)\x1b\\",
    KITTY_QUERY: b"\x1b_Gi=31;OK\x1b\\",
    "\x1b[16t": b"\x1b[6;19;10t",
    DA1: b"\x1b[?62;c",
}
MLTERM = {"\x1b[16t": b"\x1b[6;16;8t", COLOR_REGISTERS: b"\x1b[?1;0;1024S", DA1: XTERM[DA1]}


class FakeTerminal:
    """The master side of a pty that answers known queries after ``delay`` seconds."""

    def __init__(self, answers: dict[str, bytes], *, delay: float = 0.0, cols: int = 100,
                 rows: int = 30, pixels: tuple[int, int] = (0, 0)) -> None:  # fmt: skip
        self.answers = answers
        self.delay = delay
        self.master, self.slave = pty.openpty()
        winsize = struct.pack("HHHH", rows, cols, pixels[0], pixels[1])
        import fcntl

        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, winsize)
        self.received = b""
        self.before: bytes = b""
        """Sent to the program before any answer (keys typed ahead)."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        pending = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.02)
            if not ready:
                continue
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            self.received += data
            pending += data
            for query, answer in self.answers.items():
                raw = query.encode()
                while raw in pending:
                    pending = pending.replace(raw, b"", 1)
                    time.sleep(self.delay)
                    os.write(self.master, answer)

    def __enter__(self) -> FakeTerminal:
        if self.before:
            os.write(self.master, self.before)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        os.close(self.master)
        os.close(self.slave)


def probe(
    terminal: FakeTerminal, env: dict[str, str] | None = None, **kwargs: object
) -> TerminalProbe:
    with terminal:
        return probe_terminal(terminal.slave, terminal.slave, env or {"TERM": "xterm"}, **kwargs)  # type: ignore[arg-type]


# ---- reading replies -----------------------------------------------------------------------


def test_replies_are_taken_out_of_the_input_and_keys_stay_in_order() -> None:
    scanner = ReplyScanner()
    replies, rest = scanner.feed(b"ab\x1bP>|kitty(0.26.5)\x1b\\c\x1b[A\x1b[?62;cd")
    assert [r.kind for r in replies] == ["xtversion", "da1"]
    assert rest == b"abc\x1b[Ad"
    answers = Answers()
    for reply in replies:
        answers = answers.with_reply(reply)
    assert answers.xtversion == "kitty(0.26.5)" and answers.da1 == (62,)


def test_a_reply_split_across_reads_is_held_until_it_is_whole() -> None:
    scanner = ReplyScanner()
    replies, rest = scanner.feed(b"x\x1b_Gi=31;O")
    assert (replies, rest, scanner.holding) == ([], b"x", True)
    replies, rest = scanner.feed(b"K\x1b\\y")
    assert [r.groups for r in replies] == [("i=31", "OK")] and rest == b"y"


def test_what_only_looks_like_the_start_of_a_reply_is_given_back() -> None:
    scanner = ReplyScanner()
    # Alt+Shift+P is ESC P; a lone ESC is the Escape key: held, then flushed as keys.
    assert scanner.feed(b"\x1bP") == ([], b"")
    assert scanner.flush() == b"\x1bP"
    # Textual's own answers (DECRPM, in-band resize) and key sequences are not ours.
    data = b"\x1b[?2026;2$y\x1b[48;40;120;800;1200t\x1b[1;5A\x1b[200~x\x1b[201~\x1b[<0;3;4M"
    replies, rest = ReplyScanner().feed(data)
    assert replies == [] and rest == data


def test_a_malformed_reply_changes_nothing() -> None:
    scanner = ReplyScanner()
    replies, _ = scanner.feed(b"\x1b[6;0;0t\x1b_Gi=99;OK\x1b\\\x1b[?2;0;1000;600S")
    answers = Answers()
    for reply in replies:
        answers = answers.with_reply(reply)
    assert answers == Answers(), "a zero cell, another image id and the geometry reply"


# ---- asking a terminal ---------------------------------------------------------------------


def test_xterm_is_asked_twice_and_answers_sixel_with_its_registers() -> None:
    found = probe(FakeTerminal(XTERM, pixels=(1004, 604)))
    assert found.completed and found.answers.sixel and found.answers.registers == 256
    assert found.asked == ("XTVERSION", "Kitty a=q", "CSI 16 t", "DA1", "XTSMGRAPHICS", "DA1")
    decision = decide_graphics(GraphicsMode.AUTO, {"TERM": "xterm"}, is_tty=True, probe=found)
    assert decision.mode is GraphicsMode.SIXEL and decision.registers == 256
    # No CSI 16 t answer: the cell comes from TIOCGWINSZ (xterm counts its 2-px border).
    assert (decision.cell_size, decision.cell_source) == ((10, 20), "TIOCGWINSZ")
    line = decision.explanation()
    assert "asked XTVERSION, Kitty a=q, CSI 16 t, DA1, XTSMGRAPHICS" in line
    assert "answered XTerm(379), no Kitty answer, Sixel, 256 registers" in line
    assert "cell 10×20 px (TIOCGWINSZ)" in line


def test_kitty_0_26_gets_placed_images_not_the_placeholders_it_cannot_parse() -> None:
    terminal = FakeTerminal(KITTY_0_26)
    found = probe(terminal, {"TERM": "xterm-kitty"})
    # The Sixel register query is only sent to a terminal whose DA1 lists Sixel.
    assert COLOR_REGISTERS.encode() not in terminal.received
    decision = decide_graphics(GraphicsMode.AUTO, {"TERM": "xterm-kitty"}, is_tty=True, probe=found)
    assert decision.mode is GraphicsMode.KITTY and not decision.kitty_placeholders
    assert "kitty 0.26.5 has no Unicode placeholders (0.28+)" in decision.reason
    assert (decision.cell_size, decision.cell_source) == ((10, 19), "CSI 16 t")


def test_keys_typed_during_the_probe_are_kept_in_order() -> None:
    terminal = FakeTerminal(XTERM, delay=0.05)
    terminal.before = b"jj\x1b[B"
    found = probe(terminal)
    assert found.completed and found.typeahead == b"jj\x1b[B" and found.garbage == b""


def test_a_terminal_that_does_not_answer_gets_half_blocks_and_the_reason() -> None:
    terminal = FakeTerminal({XTVERSION: b"\x1bP>|Mute(1)\x1b\\"})  # and never DA1
    started = time.monotonic()
    found = probe(terminal, timeout=0.3)
    assert time.monotonic() - started < 1.5
    assert not found.completed
    decision = decide_graphics(GraphicsMode.AUTO, {"TERM": "xterm"}, is_tty=True, probe=found)
    assert decision.mode is GraphicsMode.HALFCELL
    assert "did not answer the device-attributes query within 0.3 s" in decision.reason
    assert "no DA1 answer within 0.3 s · got Mute(1), no Kitty answer" in decision.explanation()


def test_a_terminal_that_answers_garbage_gets_half_blocks_and_the_garbage_quoted() -> None:
    found = probe(
        FakeTerminal({XTVERSION: b"\x1bP$r0m\x1b\\", DA1: b"\x1b]777;junk\x07"}), timeout=0.3
    )
    decision = decide_graphics(GraphicsMode.AUTO, {"TERM": "xterm"}, is_tty=True, probe=found)
    assert decision.mode is GraphicsMode.HALFCELL
    assert "answered something that is not a reply" in decision.reason and "$r0m" in decision.reason


def test_a_console_that_prints_apc_strings_is_not_sent_the_kitty_query() -> None:
    terminal = FakeTerminal({DA1: b"\x1b[?6c"})
    found = probe(terminal, {"TERM": "linux"})
    assert KITTY_QUERY.encode() not in terminal.received and found.completed


def test_inside_tmux_with_passthrough_every_query_is_wrapped() -> None:
    wrapped = {tmux_wrap(query): answer for query, answer in KITTY_0_26.items()}
    terminal = FakeTerminal(wrapped)
    tmux = TmuxState("3.3a", passthrough=True)
    found = probe(terminal, {"TERM": "tmux-256color", "TMUX": "x"}, tmux=tmux)
    assert found.completed and found.answers.xtversion == "kitty(0.26.5)"
    assert b"\x1bPtmux;\x1b\x1b[c\x1b\\" in terminal.received
    env = {"TERM": "tmux-256color", "TMUX": "x"}
    decision = decide_graphics(GraphicsMode.AUTO, env, is_tty=True, probe=found)
    # Placed Kitty images do not survive tmux's redraws; kitty 0.26 has no placeholders.
    assert decision.mode is GraphicsMode.HALFCELL and "kitty 0.28+" in decision.reason


def test_inside_tmux_without_passthrough_nothing_is_asked_and_the_fix_is_said() -> None:
    terminal = FakeTerminal(XTERM)
    env = {"TERM": "tmux-256color", "TMUX": "x"}
    found = probe(terminal, env, tmux=TmuxState("3.3a", passthrough=False))
    assert terminal.received == b"" and not found.asked
    decision = decide_graphics(GraphicsMode.AUTO, env, is_tty=True, probe=found)
    assert decision.mode is GraphicsMode.HALFCELL
    assert "set -g allow-passthrough on" in decision.reason
    forced = decide_graphics(GraphicsMode.SIXEL, env, is_tty=True, probe=found)
    assert forced.mode is GraphicsMode.SIXEL, "the override always wins"
    assert "set -g allow-passthrough on" in forced.warning
    assert "⚠ tmux swallows these images" in forced.explanation()


# ---- choosing the protocol -----------------------------------------------------------------


def answered(**answers: object) -> TerminalProbe:
    return TerminalProbe(Answers(**answers), asked=("XTVERSION", "DA1"), completed=True)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("xtversion", "kitty", "mode", "placeholders"),
    [
        ("kitty(0.28.0)", "OK", GraphicsMode.KITTY, True),
        ("kitty(0.35.2)", "OK", GraphicsMode.KITTY, True),
        ("kitty(0.27.1)", "OK", GraphicsMode.KITTY, False),
        ("ghostty 1.1.3", "OK", GraphicsMode.KITTY, True),
        ("WezTerm 20240203-110809-5046fc22", "OK", GraphicsMode.ITERM2, False),
        ("Konsole 24.02.1", "OK", GraphicsMode.KITTY, False),
        ("iTerm2 3.5.4", None, GraphicsMode.ITERM2, False),
        ("foot(1.16.2)", None, GraphicsMode.SIXEL, False),
    ],
)
def test_version_rules(
    xtversion: str, kitty: str | None, mode: GraphicsMode, placeholders: bool
) -> None:
    found = answered(xtversion=xtversion, kitty=kitty, da1=(62, 4))
    decision = decide_graphics(
        GraphicsMode.AUTO, {"TERM": "xterm-256color"}, is_tty=True, probe=found
    )
    assert (decision.mode, decision.kitty_placeholders) == (mode, placeholders)


def test_iterm2_over_ssh_is_known_by_the_variable_it_sends_along() -> None:
    env = {"TERM": "xterm-256color", "LC_TERMINAL": "iTerm2", "SSH_TTY": "/dev/pts/1"}
    decision = decide_graphics(GraphicsMode.AUTO, env, is_tty=True, probe=answered(da1=(62,)))
    assert decision.mode is GraphicsMode.ITERM2 and "LC_TERMINAL=iTerm2" in decision.reason


def test_no_graphics_claimed_means_half_blocks() -> None:
    decision = decide_graphics(
        GraphicsMode.AUTO, {"TERM": "xterm"}, is_tty=True, probe=answered(da1=(62, 22))
    )
    assert (
        decision.mode is GraphicsMode.HALFCELL
        and "neither Kitty, iTerm2 nor Sixel" in decision.reason
    )


def test_the_override_wins_and_says_when_the_terminal_did_not_claim_it() -> None:
    found = answered(xtversion="XTerm(379)", da1=(63, 4))
    decision = decide_graphics(GraphicsMode.KITTY, {"TERM": "xterm"}, is_tty=True, probe=found)
    assert decision.mode is GraphicsMode.KITTY and decision.reason == "--graphics kitty"
    assert "did not claim kitty" in decision.warning
    ok = decide_graphics(GraphicsMode.SIXEL, {"TERM": "xterm"}, is_tty=True, probe=found)
    assert ok.mode is GraphicsMode.SIXEL and ok.warning == ""


def test_not_a_terminal_falls_back_to_shade_characters() -> None:
    decision = decide_graphics(GraphicsMode.AUTO, {"TERM": "xterm-kitty"}, is_tty=False)
    assert decision.mode is GraphicsMode.SHADE


def test_the_cell_size_is_assumed_only_when_nothing_tells_it() -> None:
    decision = decide_graphics(GraphicsMode.HALFCELL, {"TERM": "xterm"}, is_tty=True)
    assert decision.cell == (10, 20) and "cell 10×20 px (assumed)" in decision.explanation()


def test_terminal_identity_from_xtversion_and_from_the_environment() -> None:
    assert identify(Answers(xtversion="kitty(0.26.5)"), {}).version == (0, 26, 5)
    assert identify(Answers(), {"TERM": "mlterm"}).name == "mlterm"
    assert identify(Answers(), {"TERM_PROGRAM": "WezTerm"}).name == "wezterm"
    assert identify(Answers(), {"TERM": "xterm"}).name == ""


# ---- tmux itself ---------------------------------------------------------------------------


@contextmanager
def tmux_server(tmp_path: Path) -> Iterator[Callable[..., str]]:
    require_tool("tmux", shutil.which("tmux") is not None)
    socket = str(tmp_path / f"tmux-{uuid.uuid4().hex[:6]}")

    def run(*args: str) -> str:
        return subprocess.run(
            ["tmux", "-S", socket, *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    run("-f", "/dev/null", "new-session", "-d", "-s", "probe", "sleep 60")
    try:
        yield run
    finally:
        subprocess.run(["tmux", "-S", socket, "kill-server"], capture_output=True)


def test_tmux_is_asked_whether_it_passes_graphics_through(tmp_path: Path) -> None:
    with tmux_server(tmp_path) as run:
        socket = run("display-message", "-p", "#{socket_path}")
        pane = run("display-message", "-p", "#{pane_id}")
        env = {**os.environ, "TMUX": f"{socket},1,0", "TMUX_PANE": pane}
        run("set-option", "-g", "allow-passthrough", "off")
        state = tmux_state(env)
        assert state is not None and state.passthrough is False and state.version
        run("set-option", "-g", "allow-passthrough", "on")
        assert (tmux_state(env) or state).passthrough is True
        # A pane's own setting wins over the global one.
        run("set-option", "-p", "-t", pane, "allow-passthrough", "off")
        assert (tmux_state(env) or state).passthrough is False
    assert tmux_state({"TERM": "xterm"}) is None, "outside tmux nothing is asked"


# ---- colours -------------------------------------------------------------------------------

SSH = {"TERM": "xterm-256color", "SSH_TTY": "/dev/pts/3"}


def test_colour_system_over_ssh_without_colorterm_is_256_and_said() -> None:
    plan = plan_colors(SSH)
    assert plan.system == "256" and plan.quantised and not plan.env
    assert "COLORTERM not set (SSH does not forward it)" in plan.reason


def test_known_truecolor_terminal_is_forced_to_truecolor_over_ssh() -> None:
    # Rich would give xterm-kitty 16 colours without COLORTERM.
    plan = plan_colors({"TERM": "xterm-kitty", "SSH_TTY": "/dev/pts/1"})
    assert plan.system == "truecolor" and not plan.quantised
    assert plan.env == {"TEXTUAL_COLOR_SYSTEM": "truecolor"}
    # Inside tmux, TERM is tmux's: the name the terminal answered counts.
    named = identify(Answers(xtversion="WezTerm 20240203"), {"TERM": "tmux-256color"})
    assert plan_colors({"TERM": "tmux-256color"}, named).system == "truecolor"


def test_colorterm_and_explicit_setting_are_respected() -> None:
    assert plan_colors({"TERM": "xterm-256color", "COLORTERM": "24bit"}).system == "truecolor"
    explicit = plan_colors({"TERM": "xterm-kitty", "TEXTUAL_COLOR_SYSTEM": "256"})
    assert explicit.system == "256" and explicit.reason == "TEXTUAL_COLOR_SYSTEM=256"
    assert plan_colors({"TERM": "xterm"}).system == "standard"
