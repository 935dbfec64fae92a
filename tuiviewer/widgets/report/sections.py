"""One text box per section of a report, with ``;keyword`` snippets expanded as they are typed.

The editor owns the boxes and the snippets; what is typed travels up as
:class:`SectionsEditor.Edited`, and the screen keeps the report and its draft.
"""

from __future__ import annotations

from collections.abc import Mapping

from textual import events, on
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widget import AwaitMount
from textual.widgets import Label, TextArea

from tuiviewer.reports.model import Report, SectionKind
from tuiviewer.reports.templates import expand_before_cursor
from tuiviewer.safetext import clean


class SectionArea(TextArea):
    """The text of one section. The first time it takes the focus, the cursor goes to the end
    of what it holds, so typing follows a template's starting text instead of preceding it."""

    def __init__(self, kind: SectionKind, text: str) -> None:
        super().__init__(
            # Text from an SR on the PACS may hold control characters: shown escaped.
            clean(text, lines=True),
            id=f"section-{kind.value}",
            tab_behavior="focus",
            show_line_numbers=False,
        )
        self.kind = kind
        self._placed = False

    def on_focus(self, _event: events.Focus) -> None:
        if not self._placed:
            self._placed = True
            self.move_cursor(self.document.end)


class SectionsEditor(VerticalScroll):
    """The sections of a report, each under its title, in the order of :class:`SectionKind`."""

    class Edited(Message):
        """The text of a section changed (typed, pasted or a snippet expanded)."""

        def __init__(self, kind: SectionKind, text: str) -> None:
            super().__init__()
            self.kind = kind
            self.text = text

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self.snippets: Mapping[str, str] = {}
        """``;keyword`` → text, expanded when a space or punctuation follows the keyword."""

    def show(self, report: Report) -> AwaitMount:
        """Mount the boxes of ``report`` and focus the first; await the result to wait for them."""
        mounted = self.mount_all(self._boxes(report))
        self.focus_first()
        return mounted

    async def replace(self, report: Report) -> None:
        """Show ``report`` in place of the sections on show."""
        await self.remove_children()
        await self.show(report)

    def bring_into_view(self, area: SectionArea) -> None:
        """Scroll only as far as needed to show ``area`` under its title. (Textual scrolls a
        newly focused widget to the centre: at 80×24, Tab into the second section moved the
        first, just typed in, out of view, and the reader could not see their words.)"""
        siblings = list(self.children)
        at = siblings.index(area) if area in siblings else -1
        if at > 0:
            self.scroll_to_widget(siblings[at - 1], animate=False)
        self.scroll_to_widget(area, animate=False)

    def focus_first(self) -> None:
        areas = self.query(SectionArea)
        if areas:
            areas.first().focus()

    @staticmethod
    def _boxes(report: Report) -> list[Label | TextArea]:
        widgets: list[Label | TextArea] = []
        kinds = [section.kind for section in report.sections]
        for kind in SectionKind:
            if kind in kinds:
                widgets.append(Label(kind.title, classes="section-title"))
                widgets.append(SectionArea(kind, report.text_of(kind)))
        return widgets

    @on(TextArea.Changed)
    def _changed(self, event: TextArea.Changed) -> None:
        area = event.text_area
        if not isinstance(area, SectionArea):
            return
        event.stop()
        if self._expand(area):
            return  # the replacement triggers another Changed event
        self.post_message(self.Edited(area.kind, area.text))

    def _expand(self, area: TextArea) -> bool:
        """Expand a ``;keyword`` snippet right before the cursor when a space was just typed."""
        if not self.snippets:
            return False
        row, col = area.cursor_location
        lines = area.text.split("\n")
        if row >= len(lines) or col == 0 or lines[row][col - 1] not in " .,;:\n":
            return False
        offset = sum(len(line) + 1 for line in lines[:row]) + col
        # The keyword ends before the space or punctuation just typed.
        result = expand_before_cursor(area.text, offset - 1, self.snippets)
        if result is None:
            return False
        text, cursor = result
        cursor += 1
        area.text = text
        before = text[:cursor].split("\n")
        area.move_cursor((len(before) - 1, len(before[-1])))
        return True
