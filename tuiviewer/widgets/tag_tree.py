"""The tag tree: every element of one instance, sequences as nested items, the file meta apart.

Sequence items are added to the tree only when opened, so a structure set with thousands of
contour items opens as fast as a CT slice; and a data set is added a page at a time (the
last node of a page says how many elements follow and opens the next page), so a file of a
million elements shows its first screen at once and never holds a million tree nodes.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from tuiviewer.dicom.elements import (
    ElementRow,
    ItemRow,
    RowSequence,
    TagPath,
    dataset_rows,
    meta_rows,
)
from tuiviewer.dicom.loading import LoadedFile
from tuiviewer.safetext import clean

META_KEY: TagPath = (-1,)
"""Node data of the "File Meta Information" heading (not an element)."""
MORE = -2
"""Marks the node data of a "more elements" node: ``(*parent path, MORE, next row)``."""
PAGE = 1000
"""Rows added to the tree at a time."""


def element_label(row: ElementRow) -> Text:
    """One line: tag, VR, VM, keyword (or private creator), value."""
    label = Text(row.tag_text, style="bold" if not row.is_private else "bold magenta")
    label.append(f" {row.vr or '??':2}", style="cyan")
    label.append(f" {row.vm:>2} ", style="dim")
    if row.is_private:
        name = row.keyword or row.name or "private"
        creator = f" [{clean(row.private_creator)}]" if row.private_creator else ""
        label.append(f"{name}{creator}", style="magenta")
    else:
        label.append(row.keyword or row.name or "(unknown)", style="green")
    if row.vr == "SQ":
        count = len(row.items)
        label.append(f"  {count} {'item' if count == 1 else 'items'}", style="dim")
    else:
        label.append("  ")
        label.append(clean(row.value))
        if row.summarised:
            label.append("  [x: expand]", style="dim italic")
    if row.problem:
        label.append(f"  ⚠ {clean(row.problem)}", style="bold yellow")
    return label


def _more_label(remaining: int) -> Text:
    label = Text(f"… {remaining:,} more element{'s' if remaining != 1 else ''}", style="bold")
    label.append(f"  Enter shows the next {min(remaining, PAGE):,}", style="dim italic")
    return label


class TagTree(Tree[TagPath]):
    """Elements of one dataset; ``data`` of each node is its TagPath."""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__("No instance selected", id=id)
        self.guide_depth = 2
        self.rows: Sequence[ElementRow] = ()
        """Top-level rows (made on demand for a large file: see ``RowSequence``)."""
        self.meta: Sequence[ElementRow] = ()
        self._by_path: dict[TagPath, ElementRow | ItemRow] = {}
        self._tag_nodes: dict[TagPath, TreeNode[TagPath]] = {}
        self._pages: dict[TagPath, tuple[Sequence[ElementRow], int]] = {}
        """Per parent path: its rows and how many of them are in the tree."""
        self._more: dict[TagPath, TreeNode[TagPath]] = {}

    def show(self, loaded: LoadedFile, *, keep_path: TagPath | None = None) -> None:
        """Replace the tree with ``loaded``'s elements; put the cursor back on ``keep_path``."""
        self.clear()
        self._tag_nodes.clear()
        self._by_path.clear()
        self._pages.clear()
        self._more.clear()
        self.meta = meta_rows(loaded.dataset)
        self.rows = dataset_rows(loaded.dataset, loaded.problems)
        self.root.set_label(Text(clean(loaded.path.name), style="bold"))
        if self.meta:
            meta_node = self.root.add(
                Text("File Meta Information (group 0002)", style="bold underline"),
                data=META_KEY,
                expand=False,
            )
            self._tag_nodes[META_KEY] = meta_node
            self._add_rows(meta_node, META_KEY, self.meta)
        self._add_rows(self.root, (), self.rows)
        self.root.expand()
        if keep_path is not None:
            self.reveal(keep_path)

    def _add_rows(
        self, parent: TreeNode[TagPath], key: TagPath, rows: Sequence[ElementRow]
    ) -> None:
        """Add the first page of ``rows`` under ``parent`` (``key`` names the parent)."""
        self._pages[key] = (rows, 0)
        self._add_page(parent, key)

    def _add_page(self, parent: TreeNode[TagPath], key: TagPath) -> None:
        rows, shown = self._pages[key]
        more = self._more.pop(key, None)
        if more is not None:
            more.remove()
        end = min(len(rows), shown + PAGE)
        for row in rows[shown:end]:
            self._by_path[row.path] = row
            for item in row.items:
                self._by_path[item.path] = item
            if row.vr == "SQ":
                node = parent.add(element_label(row), data=row.path, allow_expand=bool(row.items))
            else:
                node = parent.add_leaf(element_label(row), data=row.path)
            self._tag_nodes[row.path] = node
        self._pages[key] = (rows, end)
        if end < len(rows):
            self._more[key] = parent.add(
                _more_label(len(rows) - end), data=(*key, MORE, end), allow_expand=True
            )

    def _fill(self, node: TreeNode[TagPath]) -> None:
        """Add the children of a sequence or item node the first time it is opened."""
        if node.children or node.data is None:
            return
        entry = self._by_path.get(node.data)
        if isinstance(entry, ElementRow):
            for item in entry.items:
                label = Text(f"Item {item.index + 1}", style="italic")
                label.append(f"  {len(item.rows)} elements", style="dim")
                child = node.add(label, data=item.path, allow_expand=bool(item.rows))
                self._tag_nodes[item.path] = child
        elif isinstance(entry, ItemRow):
            self._add_rows(node, entry.path, entry.rows)

    def _on_tree_node_expanded(self, event: Tree.NodeExpanded[TagPath]) -> None:
        node = event.node
        data = node.data
        if data is not None and len(data) >= 2 and data[-2] == MORE:
            key = data[:-2]
            parent = node.parent
            if parent is not None and key in self._pages:
                self._add_page(parent, key)
            return
        self._fill(node)

    def row_at_cursor(self) -> ElementRow | None:
        node = self.cursor_node
        if node is None or node.data is None:
            return None
        entry = self._by_path.get(node.data)
        return entry if isinstance(entry, ElementRow) else None

    @property
    def cursor_path(self) -> TagPath | None:
        node = self.cursor_node
        if node is None or node.data is None or MORE in node.data:
            return None
        return node.data

    def searchable(self) -> tuple[list[ElementRow], int]:
        """The rows a search looks at, and how many top-level rows it leaves out.

        A large file is searched as far as its rows are in the tree: making a million rows
        would hold the screen for half a minute. "More" nodes widen the search.
        """
        rows, shown = self._pages.get((), (self.rows, len(self.rows)))
        if isinstance(rows, RowSequence):
            return [*self.meta, *rows[:shown]], len(rows) - shown
        return [*self.meta, *rows], 0

    def _show_row(self, parent: TreeNode[TagPath], key: TagPath, tag: int) -> None:
        """Add pages under ``parent`` until the row of ``tag`` is in the tree."""
        page = self._pages.get(key)
        if page is None:
            return
        rows, shown = page
        if isinstance(rows, RowSequence):
            index = rows.index_of(tag)
        else:
            index = next((i for i, row in enumerate(rows) if row.tag == tag), None)
        while index is not None and shown <= index < len(rows):
            self._add_page(parent, key)
            shown = self._pages[key][1]

    def reveal(self, path: TagPath) -> bool:
        """Open every ancestor of ``path`` and move the cursor to it."""
        meta_node = self._tag_nodes.get(META_KEY)
        if path and path[0] >> 16 == 0x0002 and meta_node is not None:
            meta_node.expand()
            self._show_row(meta_node, META_KEY, path[0])
        elif path:
            self._show_row(self.root, (), path[0])
        for end in range(1, len(path), 2):
            seq = self._tag_nodes.get(path[:end])
            if seq is None:
                return False
            self._fill(seq)
            seq.expand()
            item = self._tag_nodes.get(path[: end + 1])
            if item is None:
                return False
            self._fill(item)
            item.expand()
            if end + 1 < len(path):
                self._show_row(item, path[: end + 1], path[end + 1])
        node = self._tag_nodes.get(path)
        if node is None:
            return False
        # Line numbers are only known once the tree has laid out the nodes just opened.
        self.call_after_refresh(self.move_cursor, node)
        return True
