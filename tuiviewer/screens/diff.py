"""Side-by-side differences between two instances: added, removed and changed elements."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from tuiviewer.dicom.diff import DiffRow
from tuiviewer.dicom.elements import TagPath
from tuiviewer.dicom.loading import tag_text
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


class DiffScreen(Screen[None]):
    """A table of differences; the left file is the one marked first."""

    CSS_PATH = "diff.tcss"
    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back")]

    def __init__(self, left_name: str, right_name: str, rows: list[DiffRow]) -> None:
        super().__init__()
        self.left_name = left_name
        self.right_name = right_name
        self.rows = rows

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
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "Diff"
        table = self.query_one(DataTable)
        table.add_columns(
            "Element", "Keyword", "Change", cell(self.left_name), cell(self.right_name)
        )
        for row in self.rows:
            style = KIND_STYLE[row.kind]
            table.add_row(
                path_text(row.path, row.tag_text),
                row.keyword,
                Text(row.kind, style=style),
                cell(
                    row.left if row.left is not None else "—",
                    style="red" if row.kind == "removed" else "",
                ),
                cell(
                    row.right if row.right is not None else "—",
                    style="green" if row.kind == "added" else "",
                ),
            )
        table.focus()
