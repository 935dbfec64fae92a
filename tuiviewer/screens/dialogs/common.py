"""Small modal dialogs shared by the screens: confirm, show a long value, ask for a path."""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Static

from tuiviewer.widgets.safe import shown


class ConfirmDialog(ModalScreen[bool]):
    """Ask a yes/no question; Escape answers no."""

    BINDINGS = [Binding("escape", "dismiss(False)", "Cancel"), Binding("y", "dismiss(True)", "Yes")]

    def __init__(self, question: str, yes: str = "Yes", no: str = "Cancel") -> None:
        super().__init__()
        self.question = question
        self.yes = yes
        self.no = no

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(shown(self.question, lines=True), classes="dialog-text")
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.yes, variant="warning", id="yes")
                yield Button(self.no, id="no")

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class ValueDialog(ModalScreen[None]):
    """Show an element's whole value (long text, hex dump of binary data)."""

    BINDINGS = [Binding("escape,q,x", "dismiss(None)", "Close")]

    def __init__(self, title: str, text: str) -> None:
        super().__init__()
        self.title_text = title
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(shown(self.title_text), classes="dialog-title")
            with VerticalScroll(id="value-scroll"):
                yield Static(shown(self.text, lines=True), markup=False, id="full-value")
            yield Label("Esc closes", classes="dialog-hint")


class PathDialog(ModalScreen[tuple[Path, bool] | None]):
    """Ask for a destination path; optionally allow an explicit overwrite."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, title: str, suggestion: Path, *, allow_overwrite: bool = True) -> None:
        super().__init__()
        self.title_text = title
        self.suggestion = suggestion
        self.allow_overwrite = allow_overwrite

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(shown(self.title_text), classes="dialog-title")
            yield Input(str(self.suggestion), id="path")
            if self.allow_overwrite:
                yield Checkbox("Overwrite if the file exists", id="overwrite")
            yield Label("", id="path-error", classes="error")
            yield Label("Enter confirms, Esc cancels", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one("#path", Input).focus()

    @on(Input.Submitted, "#path")
    def _submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            self.query_one("#path-error", Label).update("Type a path.")
            return
        overwrite = False
        if self.allow_overwrite:
            overwrite = self.query_one("#overwrite", Checkbox).value
        self.dismiss((Path(text).expanduser(), overwrite))
