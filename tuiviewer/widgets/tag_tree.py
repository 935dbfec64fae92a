"""The tag tree: every element of one instance, sequences as nested items, the file meta apart.

Sequence items are added to the tree only when opened, so a structure set with thousands of
contour items opens as fast as a CT slice.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from tuiviewer.dicom.elements import ElementRow, ItemRow, TagPath, dataset_rows, meta_rows
from tuiviewer.dicom.loading import LoadedFile
from tuiviewer.safetext import clean

META_KEY: TagPath = (-1,)
"""Node data of the "File Meta Information" heading (not an element)."""


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


class TagTree(Tree[TagPath]):
    """Elements of one dataset; ``data`` of each node is its TagPath."""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__("No instance selected", id=id)
        self.guide_depth = 2
        self.rows: tuple[ElementRow, ...] = ()
        self.meta: tuple[ElementRow, ...] = ()
        self._by_path: dict[TagPath, ElementRow | ItemRow] = {}
        self._tag_nodes: dict[TagPath, TreeNode[TagPath]] = {}

    def show(self, loaded: LoadedFile, *, keep_path: TagPath | None = None) -> None:
        """Replace the tree with ``loaded``'s elements; put the cursor back on ``keep_path``."""
        self.clear()
        self._tag_nodes.clear()
        self._by_path.clear()
        self.meta = meta_rows(loaded.dataset)
        self.rows = dataset_rows(loaded.dataset, loaded.problems)
        self.root.set_label(Text(clean(loaded.path.name), style="bold"))
        self._index(self.meta)
        self._index(self.rows)
        if self.meta:
            meta_node = self.root.add(
                Text("File Meta Information (group 0002)", style="bold underline"),
                data=META_KEY,
                expand=False,
            )
            self._tag_nodes[META_KEY] = meta_node
            self._add_rows(meta_node, self.meta)
        self._add_rows(self.root, self.rows)
        self.root.expand()
        if keep_path is not None:
            self.reveal(keep_path)

    def _index(self, rows: Sequence[ElementRow]) -> None:
        for row in rows:
            self._by_path[row.path] = row
            for item in row.items:
                self._by_path[item.path] = item
                self._index(item.rows)

    def _add_rows(self, parent: TreeNode[TagPath], rows: Sequence[ElementRow]) -> None:
        for row in rows:
            if row.vr == "SQ":
                node = parent.add(element_label(row), data=row.path, allow_expand=bool(row.items))
            else:
                node = parent.add_leaf(element_label(row), data=row.path)
            self._tag_nodes[row.path] = node

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
            self._add_rows(node, entry.rows)

    def _on_tree_node_expanded(self, event: Tree.NodeExpanded[TagPath]) -> None:
        self._fill(event.node)

    def row_at_cursor(self) -> ElementRow | None:
        node = self.cursor_node
        if node is None or node.data is None:
            return None
        entry = self._by_path.get(node.data)
        return entry if isinstance(entry, ElementRow) else None

    @property
    def cursor_path(self) -> TagPath | None:
        node = self.cursor_node
        return None if node is None else node.data

    def reveal(self, path: TagPath) -> bool:
        """Open every ancestor of ``path`` and move the cursor to it."""
        meta_node = self._tag_nodes.get(META_KEY)
        if path and path[0] >> 16 == 0x0002 and meta_node is not None:
            meta_node.expand()
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
        node = self._tag_nodes.get(path)
        if node is None:
            return False
        # Line numbers are only known once the tree has laid out the nodes just opened.
        self.call_after_refresh(self.move_cursor, node)
        return True
