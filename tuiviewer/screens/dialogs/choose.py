"""Pick one item of a short list (a series to show beside the current one, ...).

Dismisses with the index of the chosen item in the list it was given, or None on Escape.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList

from tuiviewer.widgets.safe import shown


class ChooseDialog(ModalScreen[int | None]):
    """A titled list; Enter or a click chooses, Escape cancels."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]
    DEFAULT_CSS = """
    ChooseDialog OptionList {
        height: auto;
        max-height: 16;
    }
    """

    def __init__(self, title: str, items: Sequence[str], *, hint: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.items = list(items)
        self.hint = hint or "↑ ↓ move, Enter chooses, Esc cancels."

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(shown(self.title_text), classes="dialog-title")
            yield OptionList(*(shown(item) for item in self.items), id="choices")
            yield Label(self.hint, classes="dialog-hint")

    def on_mount(self) -> None:
        options = self.query_one("#choices", OptionList)
        options.highlighted = 0 if self.items else None
        options.focus()

    @on(OptionList.OptionSelected, "#choices")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option_index)
