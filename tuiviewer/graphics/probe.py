"""Which terminal graphics protocol the viewer uses, found by asking the terminal, and why.

Before the app starts, :func:`probe_terminal` asks the terminal who it is and what it can do
(XTVERSION, a Kitty graphics query, the cell size with ``CSI 16 t``, primary device attributes,
and the Sixel colour registers with XTSMGRAPHICS once DA1 has listed Sixel) and reads the
answers from the terminal itself, locally, over SSH and through tmux. Every terminal answers
DA1, and answers in order, so the DA1 reply ends the wait: a fast link costs one round trip, a
slow one gets a longer timeout (:data:`SSH_TIMEOUT`). Keys typed meanwhile are kept and handed
to the app (:attr:`TerminalProbe.typeahead`); replies that arrive after the timeout are
filtered out of the app's input (:class:`ReplyScanner`, used by
:mod:`tuiviewer.widgets.image.driver`), never read as keys.

:func:`decide_graphics` turns the answers into a protocol with rules for features that came
late (Kitty's Unicode placeholders: kitty 0.28), a cell size (``CSI 16 t``, else TIOCGWINSZ,
else assumed), what tmux needs (passthrough, asked of tmux itself), and one line that says what
was asked and what came back. ``--graphics`` always wins; a terminal that answers nothing or
garbage gets half-blocks and a line saying so. Queries are ECMA-48 strings that terminals ignore
when they do not know them; nothing else is written before the terminal has said it
understands it.

SSH does not forward ``COLORTERM``, so Rich (and Textual) would fall back to 256 colours (about
30 grey levels) or 16: :func:`plan_colors` picks truecolor for terminals known to have it, by
``TERM`` or by the name the terminal gave. Nothing here imports Textual.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import shutil
import struct
import subprocess
import termios
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum


class GraphicsMode(Enum):
    """How pixels reach the terminal (``--graphics``)."""

    AUTO = "auto"
    """Decide from the terminal's answers."""
    KITTY = "kitty"
    """Kitty terminal graphics protocol (Unicode placeholders where supported, else placed)."""
    ITERM2 = "iterm2"
    """iTerm2 inline images (OSC 1337 File=), also WezTerm, mintty and mlterm."""
    SIXEL = "sixel"
    """DEC Sixel bitmaps."""
    HALFCELL = "halfcell"
    """Two pixels per character cell (``▀`` with foreground and background colours)."""
    SHADE = "shade"
    """Shade characters (``█▓▒░``): only when output is not a terminal."""


PIXEL_MODES = frozenset({GraphicsMode.KITTY, GraphicsMode.ITERM2, GraphicsMode.SIXEL})
"""Protocols that draw terminal pixels (the others draw characters)."""

#: TERM values of terminals that render 24-bit colour (their own terminfo names). Over SSH
#: COLORTERM is lost but TERM is forwarded, so these still get truecolor.
TRUECOLOR_TERMS = frozenset(
    {
        "xterm-kitty",
        "xterm-ghostty",
        "wezterm",
        "alacritty",
        "foot",
        "foot-extra",
        "contour",
        "xterm-direct",
        "tmux-direct",
        "iterm2",
        "mlterm",
    }
)
#: Terminal names (XTVERSION, lower case) that render 24-bit colour.
TRUECOLOR_TERMINALS = frozenset(
    {"kitty", "ghostty", "wezterm", "foot", "contour", "iterm2", "konsole", "mintty", "mlterm"}
)

LOCAL_TIMEOUT = 0.5
"""Seconds to wait for a local terminal's answers (they take about a millisecond)."""
SSH_TIMEOUT = 2.0
"""Seconds to wait over SSH: two round trips of a slow link, with room to spare."""
LATE_REPLY_GRACE = 30.0
"""After a timed-out probe, replies are filtered from the input for this long."""
DEFAULT_CELL = (10, 20)
"""Pixels per cell assumed when the terminal says nothing (a VT340's, and xterm's default)."""
KITTY_PLACEHOLDERS_SINCE = (0, 28, 0)
"""kitty version that added Unicode placeholders (its docs: "versionadded 0.28.0")."""
TMUX_PASSTHROUGH_OPTION_SINCE = (3, 3)
"""tmux version with the ``allow-passthrough`` option (before it, passthrough always worked)."""

XTVERSION = "\x1b[>0q"
"""XTVERSION: reply ``DCS > | name(version) ST``."""
KITTY_QUERY = "\x1b_Gi=31,s=1,v=1,a=q,t=d,f=24;AAAA\x1b\\"
"""A 1×1 Kitty query image (``a=q``: load and answer, store nothing): ``APC G i=31;OK ST``."""
CELL_SIZE = "\x1b[16t"
"""Window operation 16: reply ``CSI 6 ; height ; width t`` (pixels of one cell)."""
DA1 = "\x1b[c"
"""Primary device attributes: reply ``CSI ? 6x ; attributes c`` (4: Sixel)."""
COLOR_REGISTERS = "\x1b[?1;1;0S"
"""XTSMGRAPHICS, read the number of colour registers: reply ``CSI ? 1 ; 0 ; n S``."""
QUERY_NAMES = {
    XTVERSION: "XTVERSION",
    KITTY_QUERY: "Kitty a=q",
    CELL_SIZE: "CSI 16 t",
    DA1: "DA1",
    COLOR_REGISTERS: "XTSMGRAPHICS",
}
NO_APC_TERMS = frozenset({"linux", "dumb", "vt100", "vt220", "cons25"})
"""Terminals that print an APC string instead of ignoring it: no Kitty query for them."""


def tmux_wrap(sequence: str) -> str:
    """``sequence`` wrapped for tmux passthrough (``DCS tmux; … ST``, every ESC doubled)."""
    return "\x1bPtmux;" + sequence.replace("\x1b", "\x1b\x1b") + "\x1b\\"


# --------------------------------------------------------------------------------------------
# Reading replies


_REPLIES: list[tuple[str, re.Pattern[bytes]]] = [
    ("xtversion", re.compile(rb"\x1bP>\|([^\x1b]*)\x1b\\")),
    ("kitty", re.compile(rb"\x1b_G([^;\x1b]*);([^\x1b]*)\x1b\\")),
    ("da1", re.compile(rb"\x1b\[\?([0-9;]*)c")),
    ("da2", re.compile(rb"\x1b\[>([0-9;]*)c")),
    ("cell", re.compile(rb"\x1b\[6;(\d+);(\d+)t")),
    ("registers", re.compile(rb"\x1b\[\?1;(\d+);(\d+)S")),
    ("graphics", re.compile(rb"\x1b\[\?2;(\d+);([0-9;]*)S")),
]
"""The replies to our queries. Nothing a key sends looks like any of them."""
# What a reply can look like before its last byte: held back until it is complete.
_PREFIXES = [
    re.compile(rb"\x1b(P(>(\|[^\x1b]*(\x1b)?)?)?)?"),
    re.compile(rb"\x1b(_(G[^\x1b]*(\x1b)?)?)?"),
    re.compile(rb"\x1b(\[([?>][0-9;]*)?)?"),
    re.compile(rb"\x1b(\[(6(;[0-9]*(;[0-9]*)?)?)?)?"),
]
_MAX_REPLY = 512
"""A longer run without an end is not a reply."""


@dataclass(frozen=True)
class Reply:
    """One answer the terminal sent."""

    kind: str
    """``xtversion``, ``kitty``, ``da1``, ``da2``, ``cell``, ``registers`` or ``graphics``."""
    groups: tuple[str, ...]
    raw: bytes


def _could_be_reply(tail: bytes) -> bool:
    if len(tail) > _MAX_REPLY:
        return False
    return any(pattern.fullmatch(tail) for pattern in _PREFIXES)


class ReplyScanner:
    """Splits what the terminal sends into replies to our queries and everything else (keys).

    Feed it bytes as they arrive; it returns the replies found and the bytes that are not
    replies, in order. A tail that may still become a reply is held until more bytes come or
    :meth:`flush` gives it back (a lone ESC is the Escape key, ``ESC P`` is Alt+Shift+P).
    """

    def __init__(self) -> None:
        self._held = b""

    @property
    def holding(self) -> bool:
        return bool(self._held)

    def feed(self, data: bytes) -> tuple[list[Reply], bytes]:
        data = self._held + data
        self._held = b""
        replies: list[Reply] = []
        passed = bytearray()
        position = 0
        while position < len(data):
            escape = data.find(b"\x1b", position)
            if escape < 0:
                passed += data[position:]
                break
            passed += data[position:escape]
            for kind, pattern in _REPLIES:
                found = pattern.match(data, escape)
                if found:
                    groups = tuple(g.decode("latin-1") for g in found.groups())
                    replies.append(Reply(kind, groups, found.group()))
                    position = found.end()
                    break
            else:
                if _could_be_reply(data[escape:]):
                    self._held = data[escape:]
                    break
                passed += data[escape : escape + 1]
                position = escape + 1
        return replies, bytes(passed)

    def flush(self) -> bytes:
        """Give back what is held (it was not a reply after all)."""
        held, self._held = self._held, b""
        return held


@dataclass(frozen=True)
class Answers:
    """What the terminal said about itself."""

    xtversion: str | None = None
    """``kitty(0.26.5)``, ``XTerm(379)``, ``WezTerm 20240203-…``, ``tmux 3.3a``…"""
    kitty: str | None = None
    """``OK`` or the error of the Kitty graphics query; None: no answer."""
    da1: tuple[int, ...] | None = None
    """Attributes of the DA1 reply (the class, 6x, first)."""
    cell: tuple[int, int] | None = None
    """Pixels of one cell (width, height) from ``CSI 16 t``."""
    registers: int | None = None
    """Sixel colour registers (XTSMGRAPHICS)."""

    def with_reply(self, reply: Reply) -> Answers:
        """These answers updated by one reply (a malformed one changes nothing)."""
        try:
            if reply.kind == "xtversion":
                return replace(self, xtversion=reply.groups[0].strip())
            if reply.kind == "kitty" and "i=31" in reply.groups[0].split(","):
                return replace(self, kitty=reply.groups[1].strip())
            if reply.kind == "da1":
                values = tuple(int(v) for v in reply.groups[0].split(";") if v)
                return replace(self, da1=values)
            if reply.kind == "cell":
                height, width = int(reply.groups[0]), int(reply.groups[1])
                if width > 0 and height > 0:
                    return replace(self, cell=(width, height))
            if reply.kind == "registers" and reply.groups[0] == "0":
                return replace(self, registers=int(reply.groups[1]))
        except ValueError:
            pass
        return self

    @property
    def sixel(self) -> bool:
        """DA1 lists attribute 4 (Sixel graphics)."""
        return self.da1 is not None and 4 in self.da1[1:]


@dataclass(frozen=True)
class TmuxState:
    """What tmux says about passing graphics through to the terminal it runs in."""

    version: str
    passthrough: bool | None
    """``allow-passthrough`` is on (or tmux is older than the option); None: tmux did not
    say."""
    terminal_type: str = ""
    """``#{client_termtype}``: the outer terminal's XTVERSION as tmux saw it."""


@dataclass(frozen=True)
class TerminalProbe:
    """The answers to :func:`probe_terminal`, and what else came in meanwhile."""

    answers: Answers = field(default_factory=Answers)
    asked: tuple[str, ...] = ()
    """Names of the queries sent (:data:`QUERY_NAMES`), in order."""
    completed: bool = False
    """The last DA1 reply came: every earlier query has been answered or ignored."""
    timeout: float = 0.0
    elapsed: float = 0.0
    typeahead: bytes = b""
    """Bytes that were not replies (keys typed during the probe): the app reads them first."""
    garbage: bytes = b""
    """Escape sequences among them that are neither keys we know nor replies."""
    winsize: tuple[int, int, int, int] | None = None
    """TIOCGWINSZ: (rows, columns, width px, height px)."""
    tmux: TmuxState | None = None
    via_ssh: bool = False
    skipped: str = ""
    """Why nothing was asked (not a terminal, forced half-blocks...), empty if asked."""


def _ssh(env: Mapping[str, str]) -> bool:
    return bool(env.get("SSH_TTY") or env.get("SSH_CONNECTION"))


def read_winsize(fd: int) -> tuple[int, int, int, int] | None:
    """TIOCGWINSZ of ``fd``: (rows, columns, width px, height px); None if not a terminal."""
    try:
        packed = fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
    except OSError:
        return None
    rows, cols, width, height = struct.unpack("HHHH", packed)
    return rows, cols, width, height


def cell_from_winsize(winsize: tuple[int, int, int, int] | None) -> tuple[int, int] | None:
    """Pixels per cell from TIOCGWINSZ (xterm counts its 2-px border: floor division)."""
    if winsize is None:
        return None
    rows, cols, width, height = winsize
    if rows < 1 or cols < 1 or width < cols or height < rows:
        return None
    return width // cols, height // rows


def _version(text: str) -> tuple[int, ...]:
    numbers = re.findall(r"\d+", text)
    return tuple(int(n) for n in numbers[:3])


def tmux_state(env: Mapping[str, str], *, timeout: float = 3.0) -> TmuxState | None:
    """Ask the tmux we run in (``$TMUX``) whether it passes graphics through; None outside
    tmux or when tmux cannot be asked."""
    if not env.get("TMUX") or shutil.which("tmux") is None:
        return None
    child_env = dict(env)

    def ask(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["tmux", *args],
                capture_output=True,
                text=True,
                timeout=timeout,
                env=child_env,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    version = ask("-V") or ""
    pane = env.get("TMUX_PANE", "")
    target = ["-t", pane] if pane else []
    passthrough: bool | None = True
    if not (_version(version) and _version(version) < TMUX_PASSTHROUGH_OPTION_SINCE):
        value = ask("show-options", "-Apv", *target, "allow-passthrough")
        passthrough = None if value is None else value in ("on", "all")
    termtype = ask("display-message", "-p", *target, "#{client_termtype}") or ""
    return TmuxState(
        version=version.removeprefix("tmux ").strip(),
        passthrough=passthrough,
        terminal_type=termtype,
    )


def probe_terminal(
    fd_in: int,
    fd_out: int,
    env: Mapping[str, str],
    *,
    timeout: float | None = None,
    tmux: TmuxState | None = None,
) -> TerminalProbe:
    """Ask the terminal on ``fd_out`` and read its answers from ``fd_in`` (both a tty).

    Round one asks XTVERSION, the Kitty query (not on TERMs that print APC strings), the cell
    size and DA1; round two, only when DA1 lists Sixel, the Sixel colour registers and DA1
    again. Inside tmux with passthrough on, every query is wrapped so that the terminal tmux
    runs in answers; with passthrough off nothing is asked (tmux would answer for itself).

    The terminal is put in raw mode (no echo) and restored without discarding input: keys
    typed meanwhile come back in :attr:`TerminalProbe.typeahead`.
    """
    via_ssh = _ssh(env)
    if timeout is None:
        timeout = SSH_TIMEOUT if via_ssh else LOCAL_TIMEOUT
    winsize = read_winsize(fd_out)
    base = TerminalProbe(timeout=timeout, winsize=winsize, tmux=tmux, via_ssh=via_ssh)
    if tmux is not None and not tmux.passthrough:
        why = "is off" if tmux.passthrough is False else "could not be read"
        return replace(base, skipped=f"inside tmux, whose allow-passthrough {why}")
    wrap = tmux_wrap if tmux is not None else (lambda sequence: sequence)
    term = env.get("TERM", "").lower()
    first = [XTVERSION, *([] if term in NO_APC_TERMS else [KITTY_QUERY]), CELL_SIZE, DA1]
    try:
        saved = termios.tcgetattr(fd_in)
    except termios.error:
        return replace(base, skipped="input is not a terminal")
    scanner = ReplyScanner()
    answers = Answers()
    asked: list[str] = []
    typeahead = bytearray()
    started = time.monotonic()
    deadline = started + timeout
    completed = False
    try:
        raw = termios.tcgetattr(fd_in)
        raw[3] &= ~(termios.ECHO | termios.ICANON)  # lflag: no echo, byte by byte
        raw[6][termios.VMIN] = 0
        raw[6][termios.VTIME] = 0
        termios.tcsetattr(fd_in, termios.TCSANOW, raw)
        rounds = [first]
        while rounds:
            queries = rounds.pop(0)
            asked.extend(QUERY_NAMES[q] for q in queries)
            os.write(fd_out, "".join(wrap(q) for q in queries).encode("ascii"))
            seen_da1 = False
            while not seen_da1:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                ready, _, _ = select.select([fd_in], [], [], left)
                if not ready:
                    break
                chunk = os.read(fd_in, 4096)
                if not chunk:
                    break
                replies, other = scanner.feed(chunk)
                typeahead += other
                for reply in replies:
                    answers = answers.with_reply(reply)
                    seen_da1 = seen_da1 or reply.kind == "da1"
            if not seen_da1:
                break
            if queries is first and answers.sixel:
                rounds.append([COLOR_REGISTERS, DA1])
            elif not rounds:
                completed = True
    finally:
        typeahead += scanner.flush()
        termios.tcsetattr(fd_in, termios.TCSANOW, saved)
    return replace(
        base,
        answers=answers,
        asked=tuple(asked),
        completed=completed,
        elapsed=time.monotonic() - started,
        typeahead=bytes(typeahead),
        garbage=_garbage(bytes(typeahead)),
    )


_STRING = re.compile(rb"\x1b[P_\]X^][^\x07\x1b]*(?:\x07|\x1b\\)?")
_CSI = re.compile(rb"\x1b\[[0-9;:<=>?]*[ -/]*([@-~])")
_KEY_FINALS = frozenset(b"ABCDEFHPQRSZIOMmu~")
"""Final bytes of the CSI sequences keys, the mouse and focus send."""


def _garbage(typeahead: bytes) -> bytes:
    """What in ``typeahead`` is neither a key nor a reply we know: escape strings (DCS, APC,
    OSC…) and CSI sequences that no key sends."""
    odd = bytearray()
    position = typeahead.find(b"\x1b")
    while position >= 0:
        end = position + 1
        found = _STRING.match(typeahead, position)
        if found:
            odd += found.group()
            end = found.end()
        else:
            csi = _CSI.match(typeahead, position)
            if csi:
                end = csi.end()
                if csi.group(1)[0] not in _KEY_FINALS:
                    odd += csi.group()
        position = typeahead.find(b"\x1b", end)
    return bytes(odd)


# --------------------------------------------------------------------------------------------
# Who the terminal is


@dataclass(frozen=True)
class Terminal:
    """The terminal emulator, as far as it said."""

    name: str
    """Lower case: ``kitty``, ``ghostty``, ``wezterm``, ``xterm``, ``mlterm``, ``iterm2``…;
    empty when unknown."""
    version: tuple[int, ...] = ()
    source: str = ""
    """How we know: ``XTVERSION 'kitty(0.26.5)'``, ``TERM=mlterm``…"""

    def at_least(self, version: tuple[int, ...]) -> bool:
        return bool(self.version) and self.version >= version


_XTVERSION_NAMES = {
    "kitty": "kitty",
    "xterm": "xterm",
    "ghostty": "ghostty",
    "wezterm": "wezterm",
    "foot": "foot",
    "contour": "contour",
    "iterm2": "iterm2",
    "mintty": "mintty",
    "konsole": "konsole",
    "mlterm": "mlterm",
    "tmux": "tmux",
}
_TERM_NAMES = {
    "xterm-kitty": "kitty",
    "xterm-ghostty": "ghostty",
    "wezterm": "wezterm",
    "foot": "foot",
    "foot-extra": "foot",
    "mlterm": "mlterm",
    "contour": "contour",
    "iterm2": "iterm2",
    "konsole": "konsole",
    "konsole-256color": "konsole",
    "mintty": "mintty",
}
_TERM_PROGRAMS = {
    "iTerm.app": "iterm2",
    "WezTerm": "wezterm",
    "mintty": "mintty",
    "ghostty": "ghostty",
}


def identify(answers: Answers, env: Mapping[str, str]) -> Terminal:
    """The terminal from its XTVERSION answer, else from what the environment says."""
    if answers.xtversion:
        match = re.match(r"\s*([A-Za-z][\w.-]*)", answers.xtversion)
        if match:
            name = _XTVERSION_NAMES.get(match.group(1).lower(), match.group(1).lower())
            rest = answers.xtversion[match.end() :]
            return Terminal(name, _version(rest), f"XTVERSION {answers.xtversion!r}")
    program = env.get("TERM_PROGRAM", "")
    if program in _TERM_PROGRAMS:
        version = env.get("TERM_PROGRAM_VERSION", "")
        return Terminal(_TERM_PROGRAMS[program], _version(version), f"TERM_PROGRAM={program}")
    if env.get("LC_TERMINAL") == "iTerm2":  # iTerm2 sets it so that it crosses SSH
        version = env.get("LC_TERMINAL_VERSION", "")
        return Terminal("iterm2", _version(version), "LC_TERMINAL=iTerm2")
    if env.get("MLTERM"):
        return Terminal("mlterm", _version(env["MLTERM"]), "MLTERM is set")
    term = env.get("TERM", "").lower()
    if term in _TERM_NAMES:
        return Terminal(_TERM_NAMES[term], (), f"TERM={term}")
    return Terminal("", (), f"TERM={term or '(unset)'}")


# --------------------------------------------------------------------------------------------
# Colours


@dataclass(frozen=True)
class ColorPlan:
    """The colour system Textual should use and why."""

    system: str
    """``"truecolor"``, ``"256"``, ``"standard"`` (16 colours) or what TEXTUAL_COLOR_SYSTEM says."""
    reason: str
    env: dict[str, str] = field(default_factory=dict)
    """Variables to set before Textual is imported (empty when nothing must be forced)."""

    @property
    def quantised(self) -> bool:
        """Grey levels are reduced: fewer than 256 shades reach the screen."""
        return self.system not in ("truecolor", "auto")

    @property
    def grey_levels(self) -> int:
        """Distinct greys this colour system can show (256-colour: 24 greys of the ramp, the
        cube's 6 and black and white of the first 16; 16 colours: black, two greys, white)."""
        return {"256": 32, "standard": 4}.get(self.system, 256)


def plan_colors(env: Mapping[str, str], terminal: Terminal | None = None) -> ColorPlan:
    """Pick the colour system the way Rich would, but force truecolor for known terminals.

    Rich reads ``COLORTERM`` (truecolor/24bit), then the suffix of ``TERM`` (``-256color``),
    else 16 colours; ``TEXTUAL_COLOR_SYSTEM`` overrides both. ``xterm-kitty`` without
    ``COLORTERM`` (the usual case over SSH) would give 16 colours; so would a terminal that
    named itself (``terminal``) in its XTVERSION answer under tmux's TERM.
    """
    explicit = env.get("TEXTUAL_COLOR_SYSTEM", "").strip().lower()
    if explicit and explicit != "auto":
        return ColorPlan(explicit, f"TEXTUAL_COLOR_SYSTEM={explicit}")
    colorterm = env.get("COLORTERM", "").strip().lower()
    if colorterm in ("truecolor", "24bit"):
        return ColorPlan("truecolor", f"COLORTERM={colorterm}")
    term = env.get("TERM", "").strip().lower()
    forced = {"TEXTUAL_COLOR_SYSTEM": "truecolor"}
    if term in TRUECOLOR_TERMS:
        why = f"forced (TERM={term} renders 24-bit colour; COLORTERM is not set)"
        return ColorPlan("truecolor", why, forced)
    if terminal is not None and terminal.name in TRUECOLOR_TERMINALS:
        why = f"forced ({terminal.source} renders 24-bit colour; COLORTERM is not set)"
        return ColorPlan("truecolor", why, forced)
    lost = " (SSH does not forward it)" if _ssh(env) else ""
    hint = "; set COLORTERM=truecolor if your terminal has 24-bit colour"
    if term.rpartition("-")[2] in ("256color", "256"):
        return ColorPlan("256", f"COLORTERM not set{lost}, TERM={term}: ~30 greys{hint}")
    return ColorPlan("standard", f"TERM={term or '(unset)'}: 16 colours{hint}")


# --------------------------------------------------------------------------------------------
# The decision


@dataclass(frozen=True)
class GraphicsDecision:
    """The protocol in use and the facts behind it."""

    mode: GraphicsMode
    reason: str
    color_system: str = "truecolor"
    color_reason: str = ""
    cell_size: tuple[int, int] | None = None
    """Pixels per cell (width, height)."""
    cell_source: str = ""
    """``CSI 16 t``, ``TIOCGWINSZ`` or ``assumed``."""
    kitty_placeholders: bool = False
    """Kitty images are shown by Unicode placeholders (else placed at the cursor)."""
    tmux: bool = False
    """Graphics sequences are wrapped for tmux passthrough."""
    registers: int = 256
    """Sixel colour registers."""
    terminal: Terminal = field(default_factory=lambda: Terminal(""))
    asked: str = ""
    """What was asked and what came back, for the line under the image."""
    warning: str = ""
    """Something the user must know (images tmux will swallow, a forced mode the terminal did
    not claim); empty when all is well."""
    probe: TerminalProbe | None = None
    exact: bool = False
    """Send every frame exact (``[graphics] exact``); else pixel frames are sent within one
    level at the protocol's depth (:data:`~tuiviewer.graphics.pixels.NEAR_LOSSLESS`), which
    the badge says, and exact in the 1:1 "actual pixels" view."""

    @property
    def cell(self) -> tuple[int, int]:
        """Pixels per cell, the assumed ones when unknown."""
        return self.cell_size or DEFAULT_CELL

    @property
    def grey_levels(self) -> int:
        """Greys the colour system shows (what half-blocks can do)."""
        return ColorPlan(self.color_system, "").grey_levels

    def explanation(self) -> str:
        """One line: mode and why, a warning, cell size, what came back and what was asked,
        colour system (most important first: a narrow screen cuts the end)."""
        parts = [f"{self.mode.value}: {self.reason}"]
        if self.warning:
            parts.append(f"⚠ {self.warning}")
        if self.cell_size is not None or self.mode in PIXEL_MODES | {GraphicsMode.HALFCELL}:
            parts.append(f"cell {self.cell[0]}×{self.cell[1]} px ({self.cell_source or 'assumed'})")
        if self.asked:
            parts.append(self.asked)
        colour = f"colour {self.color_system}"
        if self.color_reason:
            colour += f" ({self.color_reason})"
        parts.append(colour)
        return " · ".join(parts)


def may_probe(requested: GraphicsMode, *, is_tty: bool) -> bool:
    """Whether the terminal may be asked anything: it is a terminal and the protocol is not
    forced to characters (half-blocks learn the cell aspect from TIOCGWINSZ alone)."""
    return is_tty and requested not in (GraphicsMode.HALFCELL, GraphicsMode.SHADE)


def _asked_line(probe: TerminalProbe) -> str:
    """``answered kitty(0.26.5), Kitty OK, no Sixel, cell 10×19 · asked XTVERSION, Kitty a=q,
    CSI 16 t, DA1 over SSH in 41 ms``: what came back first, as the line may be cut."""
    if probe.skipped:
        return f"asked nothing: {probe.skipped}"
    answers = probe.answers
    got = [answers.xtversion] if answers.xtversion else []
    got.append(f"Kitty {answers.kitty.split(':')[0]}" if answers.kitty else "no Kitty answer")
    if answers.da1 is not None:
        got.append("Sixel" if answers.sixel else "no Sixel")
    if answers.cell:
        got.append(f"cell {answers.cell[0]}×{answers.cell[1]}")
    if answers.registers:
        got.append(f"{answers.registers} registers")
    where = " through tmux" if probe.tmux else ""
    where += " over SSH" if probe.via_ssh else ""
    asked = f"asked {', '.join(dict.fromkeys(probe.asked))}{where}"
    if not probe.completed:
        return f"no DA1 answer within {probe.timeout:g} s · got {', '.join(got)} · {asked}"
    return f"answered {', '.join(got)} · {asked} in {probe.elapsed * 1000:.0f} ms"


def _cell(decision_probe: TerminalProbe | None) -> tuple[tuple[int, int] | None, str]:
    if decision_probe is None:
        return None, ""
    if decision_probe.answers.cell is not None:
        return decision_probe.answers.cell, "CSI 16 t"
    from_winsize = cell_from_winsize(decision_probe.winsize)
    if from_winsize is not None:
        return from_winsize, "TIOCGWINSZ"
    return None, ""


def _auto(probe: TerminalProbe, terminal: Terminal) -> tuple[GraphicsMode, str, bool]:
    """(mode, reason, placeholders) for AUTO from the answers."""
    answers = probe.answers
    tmux = probe.tmux
    named = terminal.source
    placeholders = terminal.name == "ghostty" or (
        terminal.name == "kitty" and terminal.at_least(KITTY_PLACEHOLDERS_SINCE)
    )
    kitty_ok = answers.kitty == "OK"
    iterm = terminal.name in ("iterm2", "wezterm", "mintty")
    if kitty_ok and terminal.name != "wezterm":
        if placeholders:
            return GraphicsMode.KITTY, f"Kitty graphics with Unicode placeholders ({named})", True
        if tmux is None:
            version = ".".join(map(str, terminal.version)) or "?"
            why = "placed at the cursor"
            if terminal.name == "kitty":
                why += f": kitty {version} has no Unicode placeholders (0.28+)"
            return GraphicsMode.KITTY, f"Kitty graphics {why}", False
    if iterm:
        return GraphicsMode.ITERM2, f"iTerm2 inline images ({named})", False
    if kitty_ok and tmux is None:
        return GraphicsMode.KITTY, f"Kitty graphics placed at the cursor ({named})", False
    if answers.sixel:
        return GraphicsMode.SIXEL, "DA1 lists Sixel", False
    if kitty_ok and tmux is not None:
        version = ".".join(map(str, terminal.version)) or "?"
        return (
            GraphicsMode.HALFCELL,
            f"inside tmux, Kitty images need Unicode placeholders, which "
            f"{terminal.name or 'the terminal'} {version} lacks (kitty 0.28+)",
            False,
        )
    return GraphicsMode.HALFCELL, "the terminal claims neither Kitty, iTerm2 nor Sixel", False


def decide_graphics(
    requested: GraphicsMode,
    env: Mapping[str, str],
    *,
    is_tty: bool,
    probe: TerminalProbe | None = None,
    color: ColorPlan | None = None,
) -> GraphicsDecision:
    """Choose the graphics protocol.

    Parameters:
        requested: ``--graphics``; anything but AUTO wins.
        env: the process environment (TERM, TMUX, SSH_TTY, COLORTERM, TERM_PROGRAM...).
        is_tty: whether standard output is a terminal.
        probe: what :func:`probe_terminal` found (None: nothing was asked).
        color: the colour plan (default: :func:`plan_colors` of ``env`` and the terminal).
    """
    answers = probe.answers if probe is not None else Answers()
    terminal = identify(answers, env)
    color = color or plan_colors(env, terminal)
    cell, cell_source = _cell(probe)
    tmux = probe.tmux if probe is not None else None
    wrap = tmux is not None and tmux.passthrough is True
    base = GraphicsDecision(
        GraphicsMode.HALFCELL,
        "",
        color.system,
        color.reason,
        cell,
        cell_source or ("assumed" if cell is None else ""),
        tmux=wrap,
        registers=answers.registers or 256,
        terminal=terminal,
        asked=_asked_line(probe) if probe is not None else "",
        probe=probe,
    )
    if requested is not GraphicsMode.AUTO:
        return _forced(base, requested, probe, terminal)
    if not is_tty:
        return replace(base, mode=GraphicsMode.SHADE, reason="output is not a terminal")
    if probe is None:
        return replace(base, reason="the terminal was not asked")
    if tmux is not None and not tmux.passthrough:
        return replace(
            base,
            reason="inside tmux with allow-passthrough off: add 'set -g allow-passthrough on' "
            "to ~/.tmux.conf for Kitty, iTerm2 or Sixel images",
        )
    if not probe.completed:
        reason = (
            f"the terminal did not answer the device-attributes query within {probe.timeout:g} s"
        )
        if probe.garbage:
            reason = "the terminal answered something that is not a reply: " + repr(
                probe.garbage[:40]
            ).removeprefix("b")
        return replace(base, reason=reason)
    mode, reason, placeholders = _auto(probe, terminal)
    decision = replace(base, mode=mode, reason=reason, kitty_placeholders=placeholders)
    return replace(decision, warning=_tmux_warning(decision, tmux))


def _tmux_warning(decision: GraphicsDecision, tmux: TmuxState | None) -> str:
    """Placeholders are text, which tmux redraws; other images vanish when tmux repaints."""
    if tmux is None or decision.mode not in PIXEL_MODES:
        return ""
    if decision.mode is GraphicsMode.KITTY and decision.kitty_placeholders:
        return ""
    return "tmux repaints erase it: Ctrl+L redraws"


def _forced(
    base: GraphicsDecision,
    requested: GraphicsMode,
    probe: TerminalProbe | None,
    terminal: Terminal,
) -> GraphicsDecision:
    """``--graphics`` wins; say so when the terminal did not claim the protocol."""
    decision = replace(base, mode=requested, reason=f"--graphics {requested.value}")
    tmux = probe.tmux if probe is not None else None
    if requested is GraphicsMode.KITTY:
        placeholders = terminal.name == "ghostty" or (
            terminal.name == "kitty" and terminal.at_least(KITTY_PLACEHOLDERS_SINCE)
        )
        # Inside tmux only placeholders survive its redraws; outside, unknown means placed.
        decision = replace(decision, kitty_placeholders=placeholders or tmux is not None)
    if requested not in PIXEL_MODES:
        return decision
    if tmux is not None and not tmux.passthrough:
        return replace(
            decision,
            warning="tmux swallows these images: allow-passthrough is off; add "
            "'set -g allow-passthrough on' to ~/.tmux.conf",
        )
    if probe is not None and probe.completed:
        answers = probe.answers
        claimed = {
            GraphicsMode.KITTY: answers.kitty == "OK",
            GraphicsMode.SIXEL: answers.sixel,
            GraphicsMode.ITERM2: terminal.name in ("iterm2", "wezterm", "mintty", "mlterm"),
        }[requested]
        if not claimed:
            return replace(
                decision,
                warning=f"the terminal did not claim {requested.value}: the image may not show",
            )
    return replace(decision, warning=_tmux_warning(decision, tmux))


# --------------------------------------------------------------------------------------------
# Before the app starts


def _terminal_fds() -> tuple[int, int] | None:
    """(input, output) file descriptors when both are the terminal, else None."""
    import sys

    stdin, stdout = sys.__stdin__, sys.__stdout__
    if stdin is None or stdout is None:
        return None
    try:
        fds = stdin.fileno(), stdout.fileno()
    except (OSError, ValueError):
        return None
    return fds if os.isatty(fds[0]) and os.isatty(fds[1]) else None


def prepare_probe(requested: GraphicsMode, env: Mapping[str, str]) -> TerminalProbe | None:
    """Ask the terminal (see :func:`probe_terminal`) if it is one and the mode needs it.

    Call before Textual reads the keyboard. Forced half-blocks ask nothing but still read the
    cell size (TIOCGWINSZ) for the half-block aspect. None when output is not a terminal.
    """
    fds = _terminal_fds()
    if fds is None:
        return None
    if not may_probe(requested, is_tty=True):
        return TerminalProbe(
            winsize=read_winsize(fds[1]),
            via_ssh=_ssh(env),
            skipped=f"--graphics {requested.value} needs no answer",
        )
    tmux = tmux_state(env)
    return probe_terminal(fds[0], fds[1], env, tmux=tmux)


def probe_and_plan(
    requested: GraphicsMode, env: Mapping[str, str]
) -> tuple[TerminalProbe | None, ColorPlan]:
    """The probe and the colour plan its answers allow (a terminal that named itself gets
    truecolor even where TERM and COLORTERM say nothing)."""
    probe = prepare_probe(requested, env)
    answers = probe.answers if probe is not None else Answers()
    return probe, plan_colors(env, identify(answers, env))


def prepare_graphics(
    requested: GraphicsMode = GraphicsMode.AUTO,
    env: Mapping[str, str] | None = None,
    color: ColorPlan | None = None,
    probe: TerminalProbe | None = None,
) -> GraphicsDecision:
    """Decide the graphics protocol, probing the terminal first unless ``probe`` is given."""
    env = os.environ if env is None else env
    if probe is None:
        probe = prepare_probe(requested, env)
    is_tty = _terminal_fds() is not None or probe is not None
    return decide_graphics(requested, env, is_tty=is_tty, probe=probe, color=color)
