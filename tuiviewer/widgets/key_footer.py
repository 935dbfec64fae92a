"""The footer of every screen: the keys that matter first, whatever the terminal's width.

Textual's footer lays the keys out in binding order and cuts whatever passes the right edge,
so at 80 columns the app's F-keys and a screen's last keys were simply not there, with no hint
that they exist. This footer ranks the keys instead: Esc (Back or Cancel), the screen's own keys
in the order the screen declares them, ``?`` Help (which lists every key), the app's F9 Report,
then the F-keys that move between screens, then Quit. When they do not all fit it goes compact,
then writes each screen key in its first word ("Read" for "Read report"), then leaves out the
lowest-ranked keys (the screen's last ones never before the F-keys), never Esc or Help.

It writes the keys itself, one widget for the line (Textual's footer mounts a widget per key:
13 of the viewer's 41 widgets, each styled, laid out and painted while the viewer opens), and
writes them again only when they change (Textual's footer remounted them on every bindings
signal: a focus move, a screen shown, a resize). A click on a key presses it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rich.text import Text
from textual import events
from textual.app import App
from textual.binding import Binding
from textual.screen import Screen
from textual.widget import Widget

#: Under this many columns the footer starts compact (no padding around the keys).
ROOMY = 110
#: Keys always in the footer: leaving a screen and the list of every key.
ALWAYS = ("escape", "question_mark")
#: The app's report key ranks just after the screen's own keys.
APP_FIRST = ("f9",)


@dataclass(frozen=True)
class FooterEntry:
    """One key the footer may show, with its rank (lower is kept first)."""

    binding: Binding
    key_display: str
    enabled: bool
    tooltip: str
    rank: int
    order: int

    def width(self, compact: bool, short: bool) -> int:
        """Columns this key takes in the footer (its key, its words, the gap after it)."""
        words = self.words(short)
        if compact:
            return len(self.key_display) + (1 + len(words) if words else 0) + 1
        return len(self.key_display) + 2 + (len(words) + 1 if words else 0)

    def words(self, short: bool) -> str:
        description = self.binding.description
        if not short or self.rank != 1:
            return description
        return re.split(r"[ /]", description, maxsplit=1)[0]


def rank_of(binding: Binding, on_app: bool) -> int:
    """Esc 0, the screen's own keys 1, Help 2, F9 3, the other F-keys 4, the rest of the
    app's (Quit) 5."""
    if binding.key == "escape":
        return 0
    if binding.key == "question_mark":
        return 2
    if not on_app:
        return 1
    if binding.key in APP_FIRST:
        return 3
    return 4 if re.fullmatch(r"f\d+", binding.key) else 5


def fit(entries: list[FooterEntry], width: int) -> tuple[list[FooterEntry], bool, bool]:
    """The entries that fit in ``width`` columns, and whether compact and short words are on.

    Keys are kept in rank order; a key that does not fit is left out and the next, narrower,
    one still tried (so "f4 Jobs" can follow a left-out "f3 Local")."""
    ranked = sorted(entries, key=lambda e: (e.rank, e.order))
    for compact, short in ((False, False), (True, False), (True, True)):
        if sum(e.width(compact, short) for e in ranked) <= width:
            return ranked, compact, short
    # Esc, the screen's keys and Help: in full words if they fit, else in short ones.
    needed = [e for e in ranked if e.rank <= 2]
    short = sum(e.width(True, False) for e in needed) > width
    kept: list[FooterEntry] = []
    used = 0
    for entry in ranked:
        cost = entry.width(True, short)
        if entry.binding.key in ALWAYS or used + cost <= width - reserve(ranked, kept, short):
            kept.append(entry)
            used += cost
    return kept, True, short


def reserve(ranked: list[FooterEntry], kept: list[FooterEntry], short: bool) -> int:
    """Columns still owed to the keys that are always shown and not placed yet."""
    return sum(e.width(True, short) for e in ranked if e.binding.key in ALWAYS and e not in kept)


class KeyFooter(Widget):
    """The footer line, ranked and fitted to the width (see the module docstring)."""

    ALLOW_SELECT = False
    COMPONENT_CLASSES = {"key-footer--key", "key-footer--description"}
    DEFAULT_CSS = """
    KeyFooter {
        dock: bottom;
        width: 1fr;
        height: 1;
        text-wrap: nowrap;
        color: $footer-foreground;
        background: $footer-background;
        .key-footer--key {
            color: $footer-key-foreground;
            background: $footer-key-background;
            text-style: bold;
        }
        .key-footer--description {
            color: $footer-description-foreground;
            background: $footer-description-background;
        }
    }
    """

    def __init__(self) -> None:
        super().__init__()
        self.shown: list[str] = []
        """The keys on show, as the footer writes them ("o Open"), for tests and help."""
        self._ready = False
        """The screen has said its bindings once (before that they are not all known)."""
        self._plan: tuple[bool, tuple[tuple[str, str, str, bool], ...]] | None = None
        """What is written: compact or not, and per key (key, display, words, enabled)."""
        self._spans: list[tuple[int, int, str, bool]] = []
        """Where each key is on the line: first cell, cell after, key, enabled."""

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen[object]) -> None:
        self._ready = True
        if self.is_attached and screen is self.screen:
            self.call_after_refresh(self._update)

    def on_resize(self, event: events.Resize) -> None:
        self._update()

    def entries(self) -> list[FooterEntry]:
        """Every key the footer could show: one per action, the first key bound to it."""
        app = self.app
        seen: set[str] = set()
        found: list[FooterEntry] = []
        for order, (node, binding, enabled, tooltip) in enumerate(
            self.screen.active_bindings.values()
        ):
            if not binding.show and binding.key != "question_mark":
                continue
            if not binding.description or binding.action in seen:
                continue
            seen.add(binding.action)
            rank = rank_of(binding, isinstance(node, App))
            found.append(
                FooterEntry(binding, app.get_key_display(binding), enabled, tooltip, rank, order)
            )
        return found

    def _update(self) -> None:
        """Fit the keys to the width; repaint only when what is written changes."""
        if not self._ready or not self.is_attached:
            return
        kept, compact, short = fit(self.entries(), self.size.width or self.app.size.width)
        keys = tuple((e.binding.key, e.key_display, e.words(short), e.enabled) for e in kept)
        if (compact, keys) == self._plan:
            return
        self._plan = (compact, keys)
        self.shown = [f"{display} {words}" for _key, display, words, _on in keys]
        self.refresh()

    def render(self) -> Text:
        line = Text(no_wrap=True, overflow="crop")
        self._spans = []
        if self._plan is None:
            return line
        compact, keys = self._plan
        key_style = self.get_component_rich_style("key-footer--key")
        words_style = self.get_component_rich_style("key-footer--description")
        for key, display, words, enabled in keys:
            start, begin = line.cell_len, len(line.plain)
            # As Textual's footer keys: " key words " roomy, "key words" and a gap compact.
            line.append(display if compact else f" {display} ", key_style)
            if words:
                line.append(f" {words}" if compact else f"{words} ", words_style)
            if not enabled:
                line.stylize("dim", begin)
            self._spans.append((start, line.cell_len, key, enabled))
            if compact:
                line.append(" ")
        return line

    def on_click(self, event: events.Click) -> None:
        for start, end, key, enabled in self._spans:
            if start <= event.x < end:
                if enabled:
                    self.app.simulate_key(key)
                else:
                    self.app.bell()
                return
