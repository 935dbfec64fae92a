"""Edit one element's value, or add an element, with the VR checked before anything changes."""

from __future__ import annotations

from collections.abc import Callable

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, Label

from tuiviewer.safetext import clean
from tuiviewer.screens.dialogs.common import FormDialog
from tuiviewer.widgets.safe import shown

Apply = Callable[[str], str | None]
"""Applies the typed text; returns None when done, else the sentence saying why not (nothing
changed)."""


class EditValueDialog(FormDialog[str]):
    """Type a new value; invalid input shows the reason inline and nothing is returned."""

    def __init__(self, heading: str, current: str, apply: Apply) -> None:
        super().__init__()
        self.heading = heading
        self.current = current
        self.apply = apply

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(shown(self.heading), classes="dialog-title")
            # Shown as the reader sees it: control characters from the file are escaped.
            yield Input(clean(self.current), id="value")
            yield Label("", id="value-error", classes="error")
            yield Label(
                "Multiple values: separate with \\ · Enter saves · Esc cancels",
                classes="dialog-hint",
            )

    def on_mount(self) -> None:
        self.query_one("#value", Input).focus()

    @on(Input.Submitted, "#value")
    def _submitted(self, event: Input.Submitted) -> None:
        problem = self.apply(event.value)
        if problem:
            self.query_one("#value-error", Label).update(shown(problem))
            return
        self.dismiss(event.value)


class AddElementDialog(FormDialog[tuple[str, str, str]]):
    """Ask for tag (number or keyword), VR (blank: from the dictionary) and value."""

    def __init__(self, where: str, apply: Callable[[str, str, str], str | None]) -> None:
        super().__init__()
        self.where = where
        self.apply = apply

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Add an element {self.where}", classes="dialog-title")
            yield Input(placeholder="Tag: (0010,1010), 00101010 or PatientAge", id="tag")
            yield Input(placeholder="VR (blank: from the data dictionary)", id="vr")
            yield Input(placeholder="Value", id="value")
            yield Label("", id="add-error", classes="error")
            yield Label("Enter on the value adds · Esc cancels", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one("#tag", Input).focus()

    @on(Input.Submitted, "#tag")
    def _tag_done(self) -> None:
        self.query_one("#vr", Input).focus()

    @on(Input.Submitted, "#vr")
    def _vr_done(self) -> None:
        self.query_one("#value", Input).focus()

    @on(Input.Submitted, "#value")
    def _submitted(self) -> None:
        tag = self.query_one("#tag", Input).value.strip()
        vr = self.query_one("#vr", Input).value.strip().upper()
        value = self.query_one("#value", Input).value
        problem = self.apply(tag, vr, value)
        if problem:
            self.query_one("#add-error", Label).update(problem)
            return
        self.dismiss((tag, vr, value))
