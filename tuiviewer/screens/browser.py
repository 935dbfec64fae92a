"""The local browser: study tree on the left, the selected instance's tags on the right.

Everything slow (scanning folders, reading files, saving, exporting) runs in thread workers; their
results come back as messages, so the tree answers keys while thousands of files are scanned.
"""

from __future__ import annotations

import threading
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Static, Tree
from textual.widgets.tree import TreeNode
from textual.worker import Worker, WorkerState, get_current_worker

from tuiviewer.dicom.deid.export import export_deidentified
from tuiviewer.dicom.diff import diff_datasets
from tuiviewer.dicom.editing import (
    add_element,
    delete_element,
    edited_copy_name,
    save_as,
    set_value,
)
from tuiviewer.dicom.elements import TagPath, full_value, search
from tuiviewer.dicom.index import StudyIndex
from tuiviewer.dicom.loading import PREVIEW_ELEMENTS, LoadedFile, load_file
from tuiviewer.dicom.scanning import ScanProgress, scan
from tuiviewer.exceptions import TuiviewerError
from tuiviewer.messages import (
    ExportFinished,
    FileLoaded,
    FileLoadFailed,
    InstancesFound,
    ScanProgressed,
)
from tuiviewer.safetext import clean
from tuiviewer.screens.base import workstation
from tuiviewer.screens.dialogs.common import ConfirmDialog, PathDialog, ValueDialog
from tuiviewer.screens.dialogs.edit import AddElementDialog, EditValueDialog
from tuiviewer.screens.diff import DiffScreen
from tuiviewer.screens.viewer import ViewerScreen
from tuiviewer.widgets.safe import shown
from tuiviewer.widgets.study_tree import StudyRef, StudyTree
from tuiviewer.widgets.tag_tree import META_KEY, TagTree


def progress_text(progress: ScanProgress) -> str:
    state = "Scanned" if progress.done else "Scanning…"
    text = f"{state} {progress.files_seen} files: {progress.instances} DICOM"
    if progress.skipped_not_dicom:
        text += f", {progress.skipped_not_dicom} not DICOM (skipped)"
    if progress.unreadable:
        text += f", {progress.unreadable} unreadable (u: why)"
    return text


class BrowserScreen(Screen[None]):
    """Browse local files: patient → study → series → stack → instance, and every tag."""

    CSS_PATH = "browser.tcss"
    BINDINGS = [
        # priority: handled as the key arrives, so the keys typed right behind it (often in the
        # same SSH packet) are delivered to the search box rather than queued for the tree.
        Binding("slash", "search", "Search tags", priority=True),
        Binding("n", "next_hit", "Next hit", show=False),
        Binding("N", "previous_hit", "Prev hit", show=False),
        Binding("x", "expand_value", "Expand value"),
        Binding("e", "edit", "Edit"),
        Binding("a", "add", "Add"),
        Binding("delete", "delete", "Delete"),
        Binding("s", "save", "Save as"),
        Binding("R", "revert", "Revert", show=False),
        Binding("m", "mark", "Mark for diff"),
        Binding("d", "diff", "Diff"),
        Binding("E", "export", "De-identify"),
        Binding("o", "open_path", "Open"),
        Binding("W", "report", "Report"),
        Binding("v", "view", "View"),
        Binding("u", "unreadable", "Unreadable files", show=False),
        Binding("escape", "close_search", "Close search", show=False),
    ]

    def __init__(self, paths: list[Path]) -> None:
        super().__init__()
        self.paths = list(paths)
        self.index = StudyIndex()
        self.loaded: LoadedFile | None = None
        self.edited: dict[Path, LoadedFile] = {}
        """Files with edits not yet saved, kept when the selection moves on."""
        self.marked: Path | None = None
        self.hits: list[TagPath] = []
        self.hit_index = -1
        self.progress: ScanProgress | None = None
        self._auto_selected = False
        self._requested: Path | None = None
        self.unreadable: list[str] = []
        """Why each file the scan could not read was refused (appended by the scan worker)."""

    # ---- layout -----------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="panes"):
            with Vertical(id="left"):
                yield StudyTree(id="studies")
                yield Static("Scanning…", id="scan-status")
            with Vertical(id="right"):
                yield Static("", id="banner")
                yield TagTree(id="tags")
                yield Input(placeholder="Search keyword, tag (0018,5100) or value", id="search")
                yield Static("", id="tag-status")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = clean(", ".join(str(p) for p in self.paths))
        self.query_one("#banner").display = False
        self.query_one("#search").display = False
        self.query_one(StudyTree).focus()
        if self.paths:
            self.scan_files(list(self.paths))
        else:
            self.query_one("#scan-status", Static).update("Nothing opened: o opens a folder")

    # ---- scanning ---------------------------------------------------------------------------
    def add_paths(self, paths: list[Path]) -> None:
        """Scan more files or folders into the same tree (a retrieved study, a folder)."""
        new = [p for p in paths if p not in self.paths]
        self.paths.extend(new)
        self.sub_title = clean(", ".join(str(p) for p in self.paths))
        if new:
            self._auto_selected = False
            self.scan_files(new)

    def action_open_path(self) -> None:
        def chosen(result: tuple[Path, bool] | None) -> None:
            if result is None:
                return
            if not result[0].exists():
                self.notify(f"{result[0]} does not exist.", severity="error")
                return
            self.add_paths([result[0]])

        self.app.push_screen(
            PathDialog("Open a file, folder or DICOMDIR", Path.cwd(), allow_overwrite=False),
            chosen,
        )

    @work(thread=True, exclusive=False, exit_on_error=False, group="scan", description="Scan")
    def scan_files(self, paths: list[Path]) -> None:
        worker = get_current_worker()

        def report(progress: ScanProgress) -> None:
            self.post_message(ScanProgressed(progress))

        def refused(error: TuiviewerError) -> None:
            self.unreadable.append(error.message)  # list.append is atomic; the UI only reads

        batches = scan(paths, cancel=worker.cancelled_event, progress=report, on_error=refused)
        for batch in batches:
            if worker.is_cancelled:
                return
            self.post_message(InstancesFound(batch))

    @on(InstancesFound)
    def _instances_found(self, message: InstancesFound) -> None:
        changed = self.index.add(message.records)
        tree = self.query_one(StudyTree)
        tree.update_from(self.index, changed)
        if not self._auto_selected:
            node = tree.first_instance_node()
            if node is not None:
                self._auto_selected = True
                self.call_after_refresh(self._select_first, node, 40)

    def _select_first(self, node: TreeNode[StudyRef], tries: int) -> None:
        """Put the cursor on the first instance once the tree has laid it out (a node just
        added has no line yet; after a long scan the first refresh can come too early)."""
        tree = self.query_one(StudyTree)
        if node.line >= 0:
            tree.move_cursor(node)
        elif tries:
            self.set_timer(0.05, lambda: self._select_first(node, tries - 1))

    @on(ScanProgressed)
    def _scan_progressed(self, message: ScanProgressed) -> None:
        self.progress = message.progress
        self.query_one("#scan-status", Static).update(progress_text(message.progress))
        if message.progress.done and not len(self.index):
            self.query_one("#scan-status", Static).update(
                progress_text(message.progress) + " — no DICOM instance found"
            )

    def action_unreadable(self) -> None:
        """List the files the scan found but could not read, each with its reason."""
        reasons = list(self.unreadable)
        if not reasons:
            self.notify("No unreadable file so far.")
            return
        title = f"{len(reasons)} unreadable file{'s' if len(reasons) != 1 else ''}"
        self.app.push_screen(ValueDialog(title, "\n".join(reasons)))

    # ---- following the selection -------------------------------------------------------------
    @on(Tree.NodeHighlighted, "#studies")
    def _study_node_highlighted(self, event: Tree.NodeHighlighted[StudyRef]) -> None:
        data = event.node.data
        if data is None or data.record is None:
            return
        self.show_instance(data.record.path)

    def show_instance(self, path: Path) -> None:
        """Show ``path``'s tags: edited copy at once, otherwise read in a worker."""
        self._requested = path
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
        if message.loaded.path != self._requested:
            return  # the user has already moved on
        self._show(message.loaded)

    @on(FileLoadFailed)
    def _file_load_failed(self, message: FileLoadFailed) -> None:
        if message.path != self._requested:
            return
        self.loaded = None
        banner = self.query_one("#banner", Static)
        banner.update(shown(f"⚠ {message.reason}", style="bold"))
        banner.display = True
        banner.set_class(True, "error")
        self.query_one(TagTree).clear()

    def _show(self, loaded: LoadedFile, keep_path: TagPath | None = None) -> None:
        self.loaded = loaded
        self.query_one(TagTree).show(loaded, keep_path=keep_path)
        self._update_banner()
        self.hits = []
        self.hit_index = -1
        self._set_tag_status("")

    def _update_banner(self) -> None:
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

    def _set_tag_status(self, text: str) -> None:
        self.query_one("#tag-status", Static).update(shown(text))

    # ---- search -----------------------------------------------------------------------------
    def action_search(self) -> None:
        search_input = self.query_one("#search", Input)
        if search_input.has_focus:
            search_input.insert_text_at_cursor("/")  # a "/" inside the query itself
            return
        search_input.display = True
        # Focus now, not after a refresh, for the same reason the binding has priority.
        self.set_focus(search_input)

    def action_close_search(self) -> None:
        search_input = self.query_one("#search", Input)
        if search_input.display:
            search_input.display = False
            self.query_one(TagTree).focus()

    @on(Input.Changed, "#search")
    def _search_changed(self, event: Input.Changed) -> None:
        """Search as the user types: the cursor follows the first hit."""
        tags = self.query_one(TagTree)
        query = event.value.strip()
        rows, left_out = tags.searchable()
        self.hits = search(rows, query) if query else []
        self.hit_index = -1
        if self.hits:
            self.action_next_hit()
        else:
            beyond = f" in the first {len(rows):,} elements" if left_out else ""
            self._set_tag_status(f"No element matches {query!r}{beyond}" if query else "")

    @on(Input.Submitted, "#search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        # Hits were computed while typing (keys that arrive in one packet with the Enter may
        # still be on their way to the input; their Changed event updates the hits then).
        event.input.display = False
        self.query_one(TagTree).focus()

    def _jump(self, step: int) -> None:
        if not self.hits:
            self._set_tag_status("No search: press / to search")
            return
        self.hit_index = (self.hit_index + step) % len(self.hits)
        path = self.hits[self.hit_index]
        self.query_one(TagTree).reveal(path)
        self._set_tag_status(f"Hit {self.hit_index + 1}/{len(self.hits)} (n next, N previous)")

    def action_next_hit(self) -> None:
        self._jump(1)

    def action_previous_hit(self) -> None:
        self._jump(-1)

    # ---- values and editing ------------------------------------------------------------------
    def _current_element(self) -> TagPath | None:
        path = self.query_one(TagTree).cursor_path
        if path is None or path == META_KEY or len(path) % 2 == 0:
            return None
        return path

    def action_expand_value(self) -> None:
        tags = self.query_one(TagTree)
        row = tags.row_at_cursor()
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

    def action_edit(self) -> None:
        loaded = self._editable()
        row = self.query_one(TagTree).row_at_cursor()
        if loaded is None or row is None:
            return
        if row.vr == "SQ":
            self.notify("A sequence has no value of its own: open it and edit its items' elements.")
            return
        if row.path[0] >> 16 == 0x0002:
            self.notify("The file meta group is written by the save; it is not edited by hand.")
            return
        current = full_value(loaded.dataset, row.path) if not row.summarised else row.value
        if row.vr in {"OB", "OW", "OF", "OD", "OL", "OV", "UN"} and row.summarised:
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

    def action_add(self) -> None:
        loaded = self._editable()
        if loaded is None:
            return
        path = self.query_one(TagTree).cursor_path
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

    def action_delete(self) -> None:
        loaded = self._editable()
        path = self._current_element()
        tags = self.query_one(TagTree)
        if loaded is None or path is None:
            item = tags.cursor_path
            if loaded is not None and item and item != META_KEY and len(item) % 2 == 0:
                path = item  # an item of a sequence
            else:
                return
        try:
            delete_element(loaded.dataset, path)
        except TuiviewerError as exc:
            self.notify(exc.message, severity="error")
            return
        self._mark_edited(loaded, None)
        self.notify("Deleted (not saved yet; R reverts).")

    def action_revert(self) -> None:
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

    def action_save(self) -> None:
        loaded = self._editable()
        if loaded is None:
            return
        suggestion = edited_copy_name(loaded.path)

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

        self.app.push_screen(PathDialog("Save as a new file", suggestion), chosen)

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
            self._update_banner()
        self.notify(f"Saved {written}")

    # ---- diff -------------------------------------------------------------------------------
    def action_mark(self) -> None:
        if self.loaded is None:
            self.notify("Select an instance first.", severity="warning")
            return
        self.marked = self.loaded.path
        self.notify(f"Marked {self.marked.name}: select another instance and press d to compare.")

    def action_diff(self) -> None:
        if self.marked is None or self.loaded is None:
            self.notify("Press m on one instance, then d on another.", severity="warning")
            return
        self.compute_diff(self.marked, self.loaded)

    @work(thread=True, exclusive=True, exit_on_error=False, group="diff", description="Diff")
    def compute_diff(self, left_path: Path, right: LoadedFile) -> None:
        try:
            left = self.edited.get(left_path) or load_file(left_path)
        except TuiviewerError as exc:
            self.app.call_from_thread(self.notify, exc.message, severity="error")
            return
        rows = diff_datasets(left.dataset, right.dataset)
        screen = DiffScreen(left.path.name, right.path.name, rows)
        self.app.call_from_thread(self.app.push_screen, screen)

    # ---- de-identified export ---------------------------------------------------------------
    def action_view(self) -> None:
        """Open the viewer on the stack under the cursor (a study or series: its first)."""
        tree = self.query_one(StudyTree)
        # As for W: a v typed before the cursor is placed is for the first study on show.
        node: TreeNode[StudyRef] | None = tree.cursor_node or tree.first_instance_node()
        leaves = ("stack", "instance")
        while node is not None and node.data is not None and node.data.kind not in leaves:
            node = node.children[0] if node.children else None
        if node is None or node.data is None:
            self.notify("Select a study, series or instance to view.", severity="warning")
            return
        record = node.data.record if node.data.kind == "instance" else None
        stack = node.parent if record is not None else node
        if stack is None:
            return
        records = tree.stack_records(stack)
        start = next((i for i, r in enumerate(records) if r is record), 0)
        study: TreeNode[StudyRef] | None = stack
        while study is not None and study.data is not None and study.data.kind != "study":
            study = study.parent
        stacks = []
        priors = []
        if study is not None:
            stacks = [tree.stack_records(s) for series in study.children for s in series.children]
            patient = study.parent
            for other in patient.children if patient is not None else []:
                if other is not study:
                    priors += [tree.stack_records(s) for se in other.children for s in se.children]
        self.app.push_screen(ViewerScreen(records, start, stacks=stacks, priors=priors))

    def action_report(self) -> None:
        """Write the report of the study under the cursor."""
        tree = self.query_one(StudyTree)
        # Right after a scan the cursor is placed on the next refresh: a W typed before that
        # is for the study on show, the first one.
        node: TreeNode[StudyRef] | None = tree.cursor_node or tree.first_instance_node()
        records = tree.stack_records(node) if node is not None else []
        if not records:
            self.notify("Select a study (or anything in it) to report.", severity="warning")
            return
        record = records[0]
        workstation(self).open_report(record.study_uid, record.path)

    def action_export(self) -> None:
        tree = self.query_one(StudyTree)
        node: TreeNode[StudyRef] | None = tree.cursor_node
        if node is None or node.data is None:
            self.notify("Select a study, series or instance to export.", severity="warning")
            return
        sources = tree.paths_below(node)
        if not sources:
            return
        default = workstation(self).export_dir
        title = f"De-identify {len(sources)} {node.data.kind} file(s) (PS3.15 Basic Profile) into"

        def chosen(result: tuple[Path, bool] | None) -> None:
            if result is not None:
                self.notify(f"Exporting {len(sources)} files…")
                self.export_files(sources, result[0])

        self.app.push_screen(PathDialog(title, default, allow_overwrite=False), chosen)

    @work(thread=True, exclusive=False, exit_on_error=False, group="export", description="Export")
    def export_files(self, sources: list[Path], dest: Path) -> None:
        cancel: threading.Event = get_current_worker().cancelled_event
        summary = export_deidentified(sources, dest, cancel=cancel)
        self.post_message(ExportFinished(summary, dest))

    @on(ExportFinished)
    def _export_finished(self, message: ExportFinished) -> None:
        summary = message.summary
        text = f"De-identified {len(summary.written)} files into {message.dest}"
        if summary.failed:
            text += f"; {len(summary.failed)} failed ({summary.failed[0][1]})"
        for warning in summary.warnings[:3]:
            text += f"\n⚠ {warning}"
        self.notify(text, severity="warning" if summary.failed else "information", timeout=10)

    # ---- workers that fail unexpectedly ------------------------------------------------------
    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            error = event.worker.error
            message = error.message if isinstance(error, TuiviewerError) else repr(error)
            self.notify(f"{event.worker.description} failed: {message}", severity="error")
