"""Small modal dialogs shared by the screens: a question, show a long value, ask for a path.

Esc in every dialog leaves things as they were: it never gives the destructive answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from textual import events, on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Static

from tuiviewer.widgets.safe import shown

T = TypeVar("T")


@dataclass(frozen=True)
class Option(Generic[T]):
    """One answer of a :class:`QuestionDialog`: the value it returns and how it is chosen."""

    value: T
    label: str
    key: str = ""
    """A single key that chooses it (besides its button), e.g. ``"y"``."""
    destructive: bool = False
    """It throws something away or cannot be undone: never the answer Esc gives."""
    id: str = ""
    """The button's id (default: ``answer-<n>``)."""


class QuestionDialog(ModalScreen[T]):
    """Ask a question with named answers; Esc gives ``escape``, which is never destructive.

    The safe answer is structural, not a convention each caller must remember: the dialog
    refuses (ValueError) to be built with Esc mapped to an answer marked ``destructive``, the
    safe answer's button has the focus (so a stray Enter or Space chooses it too), and callers
    get the answer's value, not a truthiness to misread.
    """

    BINDINGS = [Binding("escape", "escape", "Cancel")]

    def __init__(self, question: str, options: Sequence[Option[T]], *, escape: T) -> None:
        super().__init__()
        if not options:
            raise ValueError(f"A question needs answers: {question!r} has none.")
        safe = [option for option in options if option.value == escape]
        if not safe:
            raise ValueError(f"Esc answers {escape!r}, which is not an answer of {question!r}.")
        if safe[0].destructive:
            raise ValueError(
                f"Esc must leave things as they were; {safe[0].label!r} is destructive."
            )
        keys = [option.key for option in options if option.key]
        if len(keys) != len(set(keys)) or "escape" in keys:
            raise ValueError(f"The answers' keys {keys!r} must be distinct and not Esc.")
        self.question = question
        self.options = list(options)
        self.escape_value = escape
        self._ids = [option.id or f"answer-{index}" for index, option in enumerate(options)]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(shown(self.question, lines=True), classes="dialog-text")
            with Horizontal(classes="dialog-buttons"):
                for option, button_id in zip(self.options, self._ids, strict=True):
                    label = f"{option.label} ({option.key})" if option.key else option.label
                    yield Button(
                        label, variant="warning" if option.destructive else "default", id=button_id
                    )
            safe = next(o for o in self.options if o.value == self.escape_value)
            yield Label(f"Esc: {safe.label}", classes="dialog-hint")

    def ask(self, app: App[object], then: Callable[[T], None]) -> None:
        """Show the question; ``then`` gets the answer (the Esc answer if none was given)."""

        def answered(value: T | None) -> None:
            then(self.escape_value if value is None else value)

        app.push_screen(self, answered)

    def on_mount(self) -> None:
        index = next(i for i, o in enumerate(self.options) if o.value == self.escape_value)
        self.query_one(f"#{self._ids[index]}", Button).focus()

    def on_key(self, event: events.Key) -> None:
        for option in self.options:
            if option.key and event.key == option.key:
                event.stop()
                self.dismiss(option.value)
                return

    def action_escape(self) -> None:
        self.dismiss(self.escape_value)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        for option, button_id in zip(self.options, self._ids, strict=True):
            if event.button.id == button_id:
                self.dismiss(option.value)
                return


class ConfirmDialog(QuestionDialog[bool]):
    """Do something (``yes``, the key y) or leave things as they were (``no``, Esc)."""

    def __init__(self, question: str, yes: str = "Yes", no: str = "Cancel") -> None:
        super().__init__(
            question,
            [
                Option(True, yes, key="y", destructive=True, id="yes"),
                Option(False, no, id="no"),
            ],
            escape=False,
        )
        self.yes = yes
        self.no = no


class FormDialog(ModalScreen[T | None]):
    """A dialog with fields: Esc closes it at once when nothing was typed, else asks first.

    What was typed is only thrown away after an explicit "Discard"; Esc on that question (and
    its focused button) keeps editing.
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self) -> None:
        super().__init__()
        self._initial_values: dict[str, object] = {}

    def on_mount(self) -> None:
        self._initial_values = self._values()

    def _values(self) -> dict[str, object]:
        values: dict[str, object] = {}
        for index, widget in enumerate(self.query("Input, Checkbox, Select")):
            value = getattr(widget, "value", None)
            values[widget.id or f"field-{index}"] = value
        return values

    def typed(self) -> bool:
        """Something in the form differs from what it showed when it opened."""
        return self._values() != self._initial_values

    def action_cancel(self) -> None:
        if not self.typed():
            self.dismiss(None)
            return

        def answer(discard: bool) -> None:
            if discard:
                self.dismiss(None)

        QuestionDialog(
            "Discard what you typed in this form?",
            [
                Option(False, "Keep editing", id="keep"),
                Option(True, "Discard", key="d", destructive=True, id="discard"),
            ],
            escape=False,
        ).ask(self.app, answer)


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


class PathDialog(FormDialog[tuple[Path, bool]]):
    """Ask for a destination path; optionally allow an explicit overwrite."""

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
