"""Graphics mode and colour system decisions from the environment, and the line explaining them."""

from __future__ import annotations

from tuiviewer.widgets.image.probe import (
    GraphicsMode,
    decide_graphics,
    may_probe,
    plan_colors,
)

LOCAL_KITTY = {"TERM": "xterm-kitty", "COLORTERM": "truecolor"}
SSH = {"TERM": "xterm-256color", "SSH_TTY": "/dev/pts/3"}
TMUX = {"TERM": "tmux-256color", "TMUX": "/tmp/tmux-1000/default,123,0", "COLORTERM": "truecolor"}


def test_local_terminal_uses_what_the_probe_found() -> None:
    decision = decide_graphics(
        GraphicsMode.AUTO, LOCAL_KITTY, is_tty=True, detected=GraphicsMode.KITTY, cell_size=(9, 18)
    )
    assert decision.mode is GraphicsMode.KITTY
    assert "xterm-kitty answered the Kitty graphics query" in decision.explanation()
    assert "cell 9×18 px" in decision.explanation()
    sixel = decide_graphics(
        GraphicsMode.AUTO, {"TERM": "foot"}, is_tty=True, detected=GraphicsMode.SIXEL
    )
    assert sixel.mode is GraphicsMode.SIXEL and "Sixel" in sixel.reason


def test_ssh_defaults_to_half_blocks_without_probing() -> None:
    assert not may_probe(GraphicsMode.AUTO, SSH, is_tty=True)
    decision = decide_graphics(GraphicsMode.AUTO, SSH, is_tty=True, detected=None)
    assert decision.mode is GraphicsMode.HALFCELL
    assert "SSH_TTY" in decision.reason


def test_tmux_uses_half_blocks_and_says_why() -> None:
    assert not may_probe(GraphicsMode.AUTO, TMUX, is_tty=True)
    decision = decide_graphics(GraphicsMode.AUTO, TMUX, is_tty=True, detected=None)
    assert decision.mode is GraphicsMode.HALFCELL and "tmux" in decision.reason


def test_the_override_wins_even_over_ssh() -> None:
    decision = decide_graphics(GraphicsMode.KITTY, SSH, is_tty=True, detected=None)
    assert decision.mode is GraphicsMode.KITTY
    assert decision.reason == "--graphics kitty"
    assert not may_probe(GraphicsMode.HALFCELL, LOCAL_KITTY, is_tty=True)
    assert may_probe(GraphicsMode.SIXEL, LOCAL_KITTY, is_tty=True)


def test_not_a_terminal_falls_back_to_shade_characters() -> None:
    decision = decide_graphics(GraphicsMode.AUTO, LOCAL_KITTY, is_tty=False, detected=None)
    assert decision.mode is GraphicsMode.SHADE
    assert not may_probe(GraphicsMode.AUTO, LOCAL_KITTY, is_tty=False)


def test_no_answer_to_either_query_means_half_blocks() -> None:
    decision = decide_graphics(
        GraphicsMode.AUTO, {"TERM": "xterm"}, is_tty=True, detected=GraphicsMode.HALFCELL
    )
    assert decision.mode is GraphicsMode.HALFCELL and "neither" in decision.reason


def test_colour_system_over_ssh_without_colorterm_is_256_and_said() -> None:
    plan = plan_colors(SSH)
    assert plan.system == "256" and plan.quantised and not plan.env
    assert "COLORTERM not set (SSH does not forward it)" in plan.reason
    decision = decide_graphics(GraphicsMode.AUTO, SSH, is_tty=True, detected=None)
    assert "colour 256" in decision.explanation()


def test_known_truecolor_terminal_is_forced_to_truecolor_over_ssh() -> None:
    # Rich would give xterm-kitty 16 colours without COLORTERM.
    plan = plan_colors({"TERM": "xterm-kitty", "SSH_TTY": "/dev/pts/1"})
    assert plan.system == "truecolor" and not plan.quantised
    assert plan.env == {"TEXTUAL_COLOR_SYSTEM": "truecolor"}


def test_colorterm_and_explicit_setting_are_respected() -> None:
    assert plan_colors({"TERM": "xterm-256color", "COLORTERM": "24bit"}).system == "truecolor"
    explicit = plan_colors({"TERM": "xterm-kitty", "TEXTUAL_COLOR_SYSTEM": "256"})
    assert explicit.system == "256" and explicit.reason == "TEXTUAL_COLOR_SYSTEM=256"
    assert plan_colors({"TERM": "xterm"}).system == "standard"
