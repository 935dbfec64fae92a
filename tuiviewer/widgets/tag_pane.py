"""The browser's right pane: one instance's tags, its banner, the tag search and the edits.

It owns the file on show, the edited copies not saved yet and the search hits, reads files in a
worker (a large file shows its first elements at once, then the whole file) and opens the
dialogs that edit, add, delete and save elements. The screen tells it which file to show and
forwards its keys to it.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, Static
from textual.worker import get_current_worker

from tuiviewer.dicom.editing import (
    add_element,
    delete_element,
    edited_copy_name,
    save_as,
    set_value,
)
from tuiviewer.dicom.elements import TagPath, full_value, search
from tuiviewer.dicom.loading import PREVIEW_ELEMENTS, LoadedFile, load_file
from tuiviewer.exceptions import TuiviewerError
from tuiviewer.messages import FileLoaded, FileLoadFailed
from tuiviewer.screens.dialogs.common import ConfirmDialog, PathDialog, ValueDialog
from tuiviewer.screens.dialogs.edit import AddElementDialog, EditValueDialog
from tuiviewer.widgets.safe import shown
from tuiviewer.widgets.tag_tree import META_KEY, TagTree

BINARY_VRS = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "UN"})


class TagPane(Vertical):
    """The tags of the instance on show, searched and edited in place."""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self.loaded: LoadedFile | None = None
        self.edited: dict[Path, LoadedFile] = {}
        """Files with edits not yet saved, kept when the selection moves on."""
        self.hits: list[TagPath] = []
        self.hit_index = -1
        self.requested: Path | None = None
        """The file asked for last (a file read late for an earlier selection is not shown)."""

    def compose(self) -> ComposeResult:
        yield Static("", id="banner")
        yield TagTree(id="tags")
        yield Input(placeholder="Search keyword, tag (0018,5100) or value", id="search")
        yield Static("", id="tag-status")

    def on_mount(self) -> None:
        self.query_one("#banner").display = False
        self.query_one("#search").display = False

    @property
    def tags(self) -> TagTree:
        return self.query_one(TagTree)

    # ---- showing a file ---------------------------------------------------------------------
    def show_instance(self, path: Path) -> None:
        """Show ``path``'s tags: edited copy at once, otherwise read in a worker."""
        self.requested = path
        if path in self.edited:
            self._show(self.edited[path])
            return
        self.load_instance(path)

    @work(thread=True, exclusive=True, exit_on_error=False, group="load", description="Read")
    def load_instance(self, path: Path) -> None:
        cancel = get_current_worker().cancelled_event
        try:
            # A large file shows its first elements at once, then the whole file.
            loaded = load_file(path, head=PREVIEW_ELEMENTS, cancel=cancel)
            if loaded.partial and not cancel.is_set():
                self.post_message(FileLoaded(loaded))
                loaded = load_file(path, cancel=cancel)
        except TuiviewerError as exc:
            self.post_message(FileLoadFailed(path, exc.message))
            return
        if not cancel.is_set():
            self.post_message(FileLoaded(loaded))

    @on(FileLoaded)
    def _file_loaded(self, message: FileLoaded) -> None:
        if message.loaded.path == self.requested:  # else the user has already moved on
            self._show(message.loaded)

    @on(FileLoadFailed)
    def _file_load_failed(self, message: FileLoadFailed) -> None:
        if message.path != self.requested:
            return
        self.loaded = None
        banner = self.query_one("#banner", Static)
        banner.update(shown(f"⚠ {message.reason}", style="bold"))
        banner.display = True
        banner.set_class(True, "error")
        self.tags.clear()

    def _show(self, loaded: LoadedFile, keep_path: TagPath | None = None) -> None:
        self.loaded = loaded
        self.tags.show(loaded, keep_path=keep_path)
        self.update_banner()
        self.hits = []
        self.hit_index = -1
        self._set_status("")

    def update_banner(self) -> None:
        banner = self.query_one("#banner", Static)
        loaded = self.loaded
        parts: list[Text] = []
        if loaded is not None and loaded.partial:
            parts.append(
                Text(
                    f"Showing the first {len(loaded.dataset._dict):,} elements while the rest of "
                    "the file is read…"
                )
            )
        elif loaded is not None and loaded.banner:
            parts.append(shown(f"⚠ {loaded.banner}", style="bold"))
        if loaded is not None and loaded.path in self.edited:
            parts.append(Text("✎ modified, not saved: s saves as a new file, R reverts"))
        banner.update(Text("\n").join(parts))
        banner.display = bool(parts)
        banner.set_class(loaded is not None and bool(loaded.problems), "error")

    def _set_status(self, text: str) -> None:
        self.query_one("#tag-status", Static).update(shown(text))

    # ---- search -----------------------------------------------------------------------------
    def open_search(self) -> None:
        search_input = self.query_one("#search", Input)
        if search_input.has_focus:
            search_input.insert_text_at_cursor("/")  # a "/" inside the query itself
            return
        search_input.display = True
        # Focus now, not after a refresh: keys typed right behind "/" belong to the search box.
        self.screen.set_focus(search_input)

    def close_search(self) -> None:
        search_input = self.query_one("#search", Input)
        if search_input.display:
            search_input.display = False
            self.tags.focus()

    @on(Input.Changed, "#search")
    def _search_changed(self, event: Input.Changed) -> None:
        """Search as the user types: the cursor follows the first hit."""
        query = event.value.strip()
        rows, left_out = self.tags.searchable()
        self.hits = search(rows, query) if query else []
        self.hit_index = -1
        if self.hits:
            self.jump(1)
        else:
            beyond = f" in the first {len(rows):,} elements" if left_out else ""
            self._set_status(f"No element matches {query!r}{beyond}" if query else "")

    @on(Input.Submitted, "#search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        # Hits were computed while typing (keys that arrive in one packet with the Enter may
        # still be on their way to the input; their Changed event updates the hits then).
        event.input.display = False
        self.tags.focus()

    def jump(self, step: int) -> None:
        """The next (``1``) or previous (``-1``) search hit."""
        if not self.hits:
            self._set_status("No search: press / to search")
            return
        self.hit_index = (self.hit_index + step) % len(self.hits)
        self.tags.reveal(self.hits[self.hit_index])
        self._set_status(f"Hit {self.hit_index + 1}/{len(self.hits)} (n next, N previous)")

    # ---- values and editing ------------------------------------------------------------------
    def expand_value(self) -> None:
        row = self.tags.row_at_cursor()
        if row is None or self.loaded is None:
            return
        text = full_value(self.loaded.dataset, row.path)
        self.app.push_screen(ValueDialog(f"{row.tag_text} {row.keyword or row.name}", text))

    def _editable(self) -> LoadedFile | None:
        if self.loaded is None:
            self.notify("Select an instance first.", severity="warning")
            return None
        if self.loaded.partial:
            # Editing a preview and saving it would drop every element not read yet.
            self.notify("The file is still being read: edit it once all its tags are shown.")
            return None
        return self.loaded

    def _mark_edited(self, loaded: LoadedFile, keep: TagPath | None) -> None:
        self.edited[loaded.path] = loaded
        self._show(loaded, keep_path=keep)

    def edit(self) -> None:
        loaded = self._editable()
        row = self.tags.row_at_cursor()
        if loaded is None or row is None:
            return
        if row.vr == "SQ":
            self.notify("A sequence has no value of its own: open it and edit its items' elements.")
            return
        if row.path[0] >> 16 == 0x0002:
            self.notify("The file meta group is written by the save; it is not edited by hand.")
            return
        current = full_value(loaded.dataset, row.path) if not row.summarised else row.value
        if row.vr in BINARY_VRS and row.summarised:
            current = ""

        def apply(text: str) -> str | None:
            try:
                set_value(loaded.dataset, row.path, text)
            except TuiviewerError as exc:
                return exc.message
            return None

        def done(result: str | None) -> None:
            if result is not None:
                self._mark_edited(loaded, row.path)
                self.notify(f"{row.keyword or row.tag_text} set to {result!r} (not saved yet)")

        heading = f"Edit {row.tag_text} {row.keyword or row.name} ({row.vr})"
        self.app.push_screen(EditValueDialog(heading, current, apply), done)

    def add(self) -> None:
        loaded = self._editable()
        if loaded is None:
            return
        path = self.tags.cursor_path
        # Add beside the element under the cursor: in its item, or at the top level.
        parent: TagPath = ()
        if path and path != META_KEY:
            parent = path if len(path) % 2 == 0 else path[:-1]
        where = "at the top level" if not parent else "in the selected item"
        added: list[TagPath] = []

        def apply(tag: str, vr: str, value: str) -> str | None:
            try:
                added.append(add_element(loaded.dataset, parent, tag, value, vr=vr or None))
            except TuiviewerError as exc:
                return exc.message
            return None

        def done(result: tuple[str, str, str] | None) -> None:
            if result is not None and added:
                self._mark_edited(loaded, added[0])
                self.notify(f"Added {result[0]} (not saved yet)")

        self.app.push_screen(AddElementDialog(where, apply), done)

    def delete(self) -> None:
        loaded = self._editable()
        path = self.tags.cursor_path
        if loaded is None or not path or path == META_KEY:
            return
        # An element, or an item of a sequence (a path of even length).
        try:
            delete_element(loaded.dataset, path)
        except TuiviewerError as exc:
            self.notify(exc.message, severity="error")
            return
        self._mark_edited(loaded, None)
        self.notify("Deleted (not saved yet; R reverts).")

    def revert(self) -> None:
        if self.loaded is None or self.loaded.path not in self.edited:
            return
        path = self.loaded.path

        def confirmed(yes: bool | None) -> None:
            if yes and path in self.edited:
                del self.edited[path]
                self.show_instance(path)
                self.notify(f"Edits to {path.name} discarded.")

        self.app.push_screen(
            ConfirmDialog(f"Discard the unsaved edits to {path.name}?", yes="Discard", no="Keep"),
            confirmed,
        )

    def save(self) -> None:
        loaded = self._editable()
        if loaded is None:
            return

        def chosen(result: tuple[Path, bool] | None) -> None:
            if result is None:
                return
            dest, overwrite = result
            if overwrite and dest.exists():
                what = "the original file" if dest.resolve() == loaded.path.resolve() else dest.name

                def confirmed(yes: bool | None) -> None:
                    if yes:
                        self.save_file(loaded, dest, True)

                self.app.push_screen(
                    ConfirmDialog(f"Overwrite {what}? This cannot be undone.", yes="Overwrite"),
                    confirmed,
                )
                return
            self.save_file(loaded, dest, overwrite)

        self.app.push_screen(
            PathDialog("Save as a new file", edited_copy_name(loaded.path)), chosen
        )

    @work(thread=True, exclusive=False, exit_on_error=False, group="save", description="Save")
    def save_file(self, loaded: LoadedFile, dest: Path, overwrite: bool) -> None:
        try:
            written = save_as(loaded.dataset, dest, source=loaded.path, overwrite=overwrite)
        except TuiviewerError as exc:
            self.app.call_from_thread(self.notify, exc.message, severity="error", timeout=10)
            return
        self.app.call_from_thread(self._saved, loaded, written)

    def _saved(self, loaded: LoadedFile, written: Path) -> None:
        self.edited.pop(loaded.path, None)
        if self.loaded is loaded:
            self.update_banner()
        self.notify(f"Saved {written}")
