"""The footer of every screen: the keys that matter first, whatever the terminal's width.

Textual's footer lays the keys out in binding order and cuts whatever passes the right edge,
so at 80 columns the app's F-keys and a screen's last keys were simply not there, with no hint
that they exist. This footer ranks the keys instead: Esc (Back or Cancel), the screen's own keys
in the order the screen declares them, ``?`` Help (which lists every key), the app's F9 Report,
then the F-keys that move between screens, then Quit. When they do not all fit it goes compact,
then writes each screen key in its first word ("Read" for "Read report"), then leaves out the
lowest-ranked keys (the screen's last ones never before the F-keys), never Esc or Help.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from textual import events
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

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


class KeyFooter(Footer):
    """Textual's footer, ranked and fitted to the width (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__(show_command_palette=False)  # ctrl+p is in ? Help
        self._width = 0
        self.shown: list[str] = []
        """The keys on show, as the footer writes them ("o Open"), for tests and help."""
        self._composed: tuple[object, ...] | None = None
        """What the keys on show were made from (see :meth:`recompose`)."""

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

    def _fitted(self) -> tuple[list[FooterEntry], bool, bool]:
        return fit(self.entries(), self.size.width or self.app.size.width)

    @staticmethod
    def _plan(kept: list[FooterEntry], compact: bool, short: bool) -> tuple[object, ...]:
        keys = tuple(
            (e.binding.key, e.binding.action, e.key_display, e.words(short), e.enabled, e.tooltip)
            for e in kept
        )
        return (compact, keys)

    async def recompose(self) -> None:
        """Remount the keys only when they change. Textual's footer remounts them whenever the
        bindings may have changed (a focus move, a screen shown, a resize): opening the viewer
        did it four times, each restyling and laying out twenty keys, in the event loop's time
        between Enter and the first image."""
        if self._bindings_ready and self.is_attached and self._composed is not None:
            if self._plan(*self._fitted()) == self._composed:
                return
        await super().recompose()

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        kept, compact, short = self._fitted()
        self._composed = self._plan(kept, compact, short)
        self.set_reactive(Footer.compact, compact)
        self.set_class(compact, "-compact")
        self.shown = []
        for entry in kept:
            words = entry.words(short)
            self.shown.append(f"{entry.key_display} {words}")
            yield FooterKey(
                entry.binding.key,
                entry.key_display,
                words,
                entry.binding.action,
                disabled=not entry.enabled,
                tooltip=entry.tooltip or entry.binding.description,
            ).data_bind(compact=Footer.compact)

    def on_resize(self, event: events.Resize) -> None:
        if event.size.width != self._width:
            self._width = event.size.width
            self.call_after_refresh(self.recompose)
