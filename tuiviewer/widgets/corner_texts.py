"""The texts beside the image (never over it, so no graphics protocol shares cells with text):
one column left of the image, one right of it, each with a top and a bottom block.

The bottom block is docked to the column's foot rather than pushed there by a spacer widget:
Textual repaints every widget near what a slice step changes, and the fewer there are, the
cheaper each step."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from tuiviewer.widgets.safe import shown


class CornerTexts(Vertical):
    """A column of corner texts; ``side`` "left" holds tl/bl, "right" tr/br."""

    def __init__(self, side: str, *, id: str | None = None, classes: str = "") -> None:  # noqa: A002
        super().__init__(id=id, classes=classes)
        corners = {"left": ("tl", "bl"), "right": ("tr", "br")}
        if side not in corners:
            raise ValueError(f"Corner texts sit left or right of the image, not {side!r}.")
        self.top_id, self.bottom_id = (f"overlay-{corner}" for corner in corners[side])

    def compose(self) -> ComposeResult:
        yield Static("", id=self.top_id)
        yield Static("", id=self.bottom_id, classes="corner-bottom")

    def set_top(self, content: str | Text) -> None:
        self._set(self.top_id, content)

    def set_bottom(self, content: str | Text) -> None:
        self._set(self.bottom_id, content)

    def _set(self, widget_id: str, content: str | Text) -> None:
        """Update a text only when it changed, without a layout pass (their sizes are fixed,
        so a slice step stays cheap). Plain strings hold names and descriptions from the file:
        shown literally, cleaned."""
        widget = self.query_one(f"#{widget_id}", Static)
        if isinstance(content, str):
            content = shown(content, lines=True)
        if widget.content != content:
            widget.update(content, layout=False)
