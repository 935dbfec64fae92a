"""A screen's keys in a dialog, taken from the screen's own bindings (so it cannot go stale)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

_KEY_NAMES = {
    "question_mark": "?",
    "plus": "+",
    "minus": "-",
    "space": "Space",
    "escape": "Esc",
    "pageup": "PgUp",
    "pagedown": "PgDn",
    "full_stop": ".",
}


def declared_by_tuiviewer(node: object, binding: Binding) -> bool:
    """Whether ``binding`` on ``node`` was written by tuiviewer (a screen's or widget's own
    keys) rather than inherited from a Textual widget (a table's cursor keys), so help can
    list a screen's own keys first."""
    for cls in type(node).__mro__:
        for declared in cls.__dict__.get("BINDINGS", ()):
            action = declared.action if isinstance(declared, Binding) else declared[1]
            if action == binding.action:
                return cls.__module__.startswith("tuiviewer")
    return False


def keys_of(binding: Binding) -> str:
    """The keys of ``binding`` as a user types them (``PgUp``, ``?``)."""
    return " ".join(_KEY_NAMES.get(k, k) for k in binding.key.split(","))


class HelpScreen(ModalScreen[None]):
    """Every key of a screen, from its own bindings (the viewer's, or any screen's: ``?``);
    Esc or ? closes."""

    BINDINGS = [Binding("escape,question_mark,q", "app.pop_screen", "Close")]

    def __init__(self, text: str, title: str = "Viewer keys") -> None:
        super().__init__()
        self.text = text
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Static(self.title_text, classes="dialog-title", markup=False)
            with VerticalScroll():
                yield Static(self.text, id="help-text", markup=False)
            yield Static("Esc or ? closes.", classes="dialog-hint")
