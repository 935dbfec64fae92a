"""Side-by-side differences between two instances: added, removed and changed elements."""

from __future__ import annotations

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static

from tuiviewer.dicom.diff import DiffRow
from tuiviewer.dicom.elements import TagPath
from tuiviewer.dicom.loading import tag_text
from tuiviewer.widgets.key_footer import KeyFooter
from tuiviewer.widgets.safe import cell, shown

KIND_STYLE = {"added": "green", "removed": "red", "changed": "yellow"}


def path_text(path: TagPath, last: str) -> str:
    """Show a nested element as ``(300A,0180)[1] > (0018,5100)``; ``last`` names the row's own
    tag (``(FFFE,E000)`` for a whole item)."""
    parts: list[str] = []
    for index, value in enumerate(path[:-1]):
        if index % 2 == 0:
            parts.append(tag_text(value))
        else:
            parts[-1] += f"[{value + 1}]"
    parts.append(last)
    return " > ".join(parts)


WIDE = 110
"""Terminals at least this wide show the change column; narrower ones say it by colour."""


class DiffScreen(Screen[None]):
    """A table of differences; the left file is the one marked first. The values of the row
    under the cursor are shown in full below it (a value longer than its column is cut)."""

    CSS_PATH = "diff.tcss"
    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back")]

    def __init__(self, left_name: str, right_name: str, rows: list[DiffRow]) -> None:
        super().__init__()
        self.left_name = left_name
        self.right_name = right_name
        self.rows = rows
        self._width = 0

    def compose(self) -> ComposeResult:
        yield Header()
        counts = {kind: sum(1 for row in self.rows if row.kind == kind) for kind in KIND_STYLE}
        summary = shown(f"{self.left_name}  ⟷  {self.right_name}   ", style="bold")
        if not self.rows:
            summary.append("identical", style="green")
        for kind, count in counts.items():
            summary.append(f" {count} {kind}", style=KIND_STYLE[kind])
        yield Static(summary, id="diff-summary")
        table: DataTable[Text | str] = DataTable(id="diff-table", zebra_stripes=True)
        table.cursor_type = "row"
        yield table
        yield Static("", id="diff-detail")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.sub_title = "Diff"
        self._lay_out(self.app.size.width)
        self.query_one(DataTable).focus()

    def on_resize(self, event: events.Resize) -> None:
        self._lay_out(event.size.width)

    def _lay_out(self, width: int) -> None:
        """Columns for ``width``: the element and keyword as wide as they need (the keyword up
        to a third of the width), the two values sharing the rest."""
        if width == self._width:
            return
        self._width = width
        wide = width >= WIDE
        element = max([7, *(len(path_text(r.path, r.tag_text)) for r in self.rows)])
        keyword = min(max([7, *(len(r.keyword) for r in self.rows)]), width // 4)
        used = element + keyword + (7 + 2 if wide else 0) + 2 * 4 + 2
        value = max(8, (width - used) // 2)
        table = self.query_one(DataTable)
        table.clear(columns=True)
        table.add_column("Element", width=element)
        table.add_column("Keyword", width=keyword)
        if wide:
            table.add_column("Change", width=7)
        table.add_column(cell(self.left_name), width=value)
        table.add_column(cell(self.right_name), width=value)
        for row in self.rows:
            style = KIND_STYLE[row.kind]
            change = (Text(row.kind, style=style),) if wide else ()
            table.add_row(
                path_text(row.path, row.tag_text),
                row.keyword,
                *change,
                cell(
                    row.left if row.left is not None else "—",
                    style="red" if row.kind == "removed" else "yellow" if not wide else "",
                ),
                cell(
                    row.right if row.right is not None else "—",
                    style="green" if row.kind == "added" else "yellow" if not wide else "",
                ),
            )

    @on(DataTable.RowHighlighted)
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        row = self.rows[event.cursor_row] if 0 <= event.cursor_row < len(self.rows) else None
        detail = self.query_one("#diff-detail", Static)
        if row is None:
            detail.update("")
            return
        left = "—" if row.left is None else row.left
        right = "—" if row.right is None else row.right
        lines = [
            shown(f"{row.keyword or row.tag_text} ({row.kind})", style=KIND_STYLE[row.kind]),
            shown(f"{self.left_name}: {left}"),
            shown(f"{self.right_name}: {right}"),
        ]
        text = Text("\n").join(lines)
        detail.update(text)
