"""Which terminal graphics mode the viewer uses, and the one line that says why.

The choice depends on facts that are easy to get wrong at 2 a.m. over SSH: textual-image probes
the terminal at import time and waits 0.1 s for each answer, so over a slow link the answer
arrives late and is read as keystrokes; textual-image 0.12 does not wrap its sequences for tmux,
so Kitty/Sixel output is swallowed there; SSH does not forward ``COLORTERM``, so Rich (and
Textual) fall back to 256 colours (about 30 grey levels) or even 16. Every rule lives here as a
pure function of the environment, so it is unit-tested and the viewer can show its reasoning.
Nothing here imports Textual or textual-image; the widget passes in what textual-image detected.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum


class GraphicsMode(Enum):
    """How pixels reach the terminal (``--graphics``)."""

    AUTO = "auto"
    """Decide from the environment and textual-image's probe."""
    KITTY = "kitty"
    """Kitty terminal graphics protocol (Unicode placeholders)."""
    SIXEL = "sixel"
    """DEC Sixel bitmaps."""
    HALFCELL = "halfcell"
    """Two pixels per character cell (``▀`` with foreground and background colours)."""
    SHADE = "shade"
    """Shade characters (``█▓▒░``): only when output is not a terminal."""


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
    }
)


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


def plan_colors(env: Mapping[str, str]) -> ColorPlan:
    """Pick the colour system the way Rich would, but force truecolor for known terminals.

    Rich reads ``COLORTERM`` (truecolor/24bit), then the suffix of ``TERM`` (``-256color``),
    else 16 colours; ``TEXTUAL_COLOR_SYSTEM`` overrides both. ``xterm-kitty`` without
    ``COLORTERM`` (the usual case over SSH) would give 16 colours.
    """
    explicit = env.get("TEXTUAL_COLOR_SYSTEM", "").strip().lower()
    if explicit and explicit != "auto":
        return ColorPlan(explicit, f"TEXTUAL_COLOR_SYSTEM={explicit}")
    colorterm = env.get("COLORTERM", "").strip().lower()
    if colorterm in ("truecolor", "24bit"):
        return ColorPlan("truecolor", f"COLORTERM={colorterm}")
    term = env.get("TERM", "").strip().lower()
    if term in TRUECOLOR_TERMS:
        return ColorPlan(
            "truecolor",
            f"forced (TERM={term} renders 24-bit colour; COLORTERM is not set)",
            {"TEXTUAL_COLOR_SYSTEM": "truecolor"},
        )
    lost = " (SSH does not forward it)" if _ssh(env) else ""
    hint = "; set COLORTERM=truecolor if your terminal has 24-bit colour"
    if term.rpartition("-")[2] in ("256color", "256"):
        return ColorPlan("256", f"COLORTERM not set{lost}, TERM={term}: ~30 greys{hint}")
    return ColorPlan("standard", f"TERM={term or '(unset)'}: 16 colours{hint}")


def _ssh(env: Mapping[str, str]) -> bool:
    return bool(env.get("SSH_TTY") or env.get("SSH_CONNECTION"))


def may_probe(requested: GraphicsMode, env: Mapping[str, str], *, is_tty: bool) -> bool:
    """Whether textual-image may query the terminal (protocol support, cell size).

    Never over SSH (a late answer becomes keystrokes) nor inside tmux (tmux answers for itself,
    not for the outer terminal), never when output is not a terminal, and not at all when the
    user forced half-blocks or shade characters (nothing to learn).
    """
    if requested in (GraphicsMode.HALFCELL, GraphicsMode.SHADE):
        return False
    return is_tty and not _ssh(env) and not env.get("TMUX")


@dataclass(frozen=True)
class GraphicsDecision:
    """The mode in use and the facts behind it."""

    mode: GraphicsMode
    reason: str
    color_system: str = "truecolor"
    color_reason: str = ""
    cell_size: tuple[int, int] | None = None
    """Pixels per cell (width, height) as textual-image measured or assumed."""

    def explanation(self) -> str:
        """One line for the status bar: mode, why, colour system, cell size."""
        parts = [f"{self.mode.value}: {self.reason}", f"colour {self.color_system}"]
        if self.color_reason:
            parts[-1] += f" ({self.color_reason})"
        if self.cell_size is not None and self.mode in (GraphicsMode.KITTY, GraphicsMode.SIXEL):
            parts.append(f"cell {self.cell_size[0]}×{self.cell_size[1]} px")
        return " · ".join(parts)


def decide_graphics(
    requested: GraphicsMode,
    env: Mapping[str, str],
    *,
    is_tty: bool,
    detected: GraphicsMode | None,
    cell_size: tuple[int, int] | None = None,
    color: ColorPlan | None = None,
) -> GraphicsDecision:
    """Choose the graphics mode.

    Parameters:
        requested: ``--graphics``; anything but AUTO wins.
        env: the process environment (TERM, TMUX, SSH_TTY, COLORTERM, TEXTUAL_COLOR_SYSTEM).
        is_tty: whether standard output is a terminal.
        detected: what textual-image's probe found (KITTY, SIXEL or HALFCELL), or None when
            it was not allowed to probe (see :func:`may_probe`).
        cell_size: pixels per cell reported by textual-image.
        color: the colour plan (default: :func:`plan_colors` of ``env``).
    """
    color = color or plan_colors(env)
    term = env.get("TERM", "") or "(unset)"

    def made(mode: GraphicsMode, reason: str) -> GraphicsDecision:
        return GraphicsDecision(mode, reason, color.system, color.reason, cell_size)

    if requested is not GraphicsMode.AUTO:
        return made(requested, f"--graphics {requested.value}")
    if not is_tty:
        return made(GraphicsMode.SHADE, "output is not a terminal")
    if _ssh(env):
        return made(
            GraphicsMode.HALFCELL,
            "SSH session (SSH_TTY set): probing the terminal could time out and leak "
            "keystrokes; use --graphics kitty or sixel if your terminal has them",
        )
    if env.get("TMUX"):
        return made(
            GraphicsMode.HALFCELL,
            "inside tmux: textual-image 0.12 does not wrap graphics for tmux",
        )
    if detected is GraphicsMode.KITTY:
        return made(GraphicsMode.KITTY, f"TERM={term} answered the Kitty graphics query")
    if detected is GraphicsMode.SIXEL:
        return made(GraphicsMode.SIXEL, f"TERM={term} reports Sixel (device attribute 4)")
    return made(
        GraphicsMode.HALFCELL, f"TERM={term} answered neither the Kitty nor the Sixel query"
    )
