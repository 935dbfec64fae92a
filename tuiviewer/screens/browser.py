"""The local browser: study tree on the left, the selected instance's tags on the right.

Everything slow (scanning folders, reading files, saving, exporting) runs in thread workers; their
results come back as messages, so the tree answers keys while thousands of files are scanned.
"""

from __future__ import annotations

import threading
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Header, Static, Tree
from textual.widgets.tree import TreeNode
from textual.worker import Worker, WorkerState, get_current_worker

from tuiviewer.dicom.deid.export import export_deidentified
from tuiviewer.dicom.diff import diff_datasets
from tuiviewer.dicom.index import StudyIndex
from tuiviewer.dicom.loading import LoadedFile, load_file
from tuiviewer.dicom.scanning import ScanProgress, scan
from tuiviewer.exceptions import TuiviewerError
from tuiviewer.messages import (
    ExportFinished,
    InstancesFound,
    ScanProgressed,
)
from tuiviewer.safetext import clean
from tuiviewer.screens.base import StudyInView, workstation
from tuiviewer.screens.dialogs.common import PathDialog, ValueDialog
from tuiviewer.screens.diff import DiffScreen
from tuiviewer.screens.keyorder import Opening
from tuiviewer.screens.viewer import ViewerScreen
from tuiviewer.widgets.key_footer import KeyFooter
from tuiviewer.widgets.study_tree import StudyRef, StudyTree
from tuiviewer.widgets.tag_pane import TagPane
from tuiviewer.widgets.wording import plural


def progress_text(progress: ScanProgress) -> str:
    state = "Scanned" if progress.done else "Scanning…"
    text = f"{state} {plural(progress.files_seen, 'file')}: {progress.instances} DICOM"
    if progress.skipped_not_dicom:
        text += f", {progress.skipped_not_dicom} not DICOM (skipped)"
    if progress.unreadable:
        text += f", {progress.unreadable} unreadable (u: why)"
    return text


class BrowserScreen(Screen[None]):
    """Browse local files: patient → study → series → stack → instance, and every tag."""

    CSS_PATH = "browser.tcss"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]
    """Under 100 columns the tags go below the studies and keep the whole width."""
    BINDINGS = [  # in the order the footer keeps them when the width runs short
        Binding("v", "view", "View"),
        # priority: handled as the key arrives, so the keys typed right behind it (often in the
        # same SSH packet) are delivered to the search box rather than queued for the tree.
        Binding("slash", "search", "Search tags", priority=True),
        Binding("n", "next_hit", "Next hit", show=False),
        Binding("N", "previous_hit", "Prev hit", show=False),
        Binding("e", "edit", "Edit"),
        Binding("a", "add", "Add"),
        Binding("delete", "delete", "Delete"),
        Binding("s", "save", "Save as"),
        Binding("R", "revert", "Revert", show=False),
        Binding("W", "report", "Report"),
        Binding("o", "open_path", "Open"),
        Binding("x", "expand_value", "Expand value"),
        Binding("m", "mark", "Mark for diff"),
        Binding("d", "diff", "Diff"),
        Binding("E", "export", "De-identify"),
        Binding("u", "unreadable", "Unreadable files", show=False),
        Binding("escape", "close_search", "Close search", show=False),
    ]

    def __init__(self, paths: list[Path]) -> None:
        super().__init__()
        self.paths = list(paths)
        self.index = StudyIndex()
        self.marked: Path | None = None
        self.progress: ScanProgress | None = None
        self._auto_selected = False
        self.unreadable: list[str] = []
        """Why each file the scan could not read was refused (appended by the scan worker)."""

    # ---- layout -----------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="panes"):
            with Vertical(id="left"):
                yield StudyTree(id="studies")
                yield Static("Scanning…", id="scan-status")
            yield TagPane(id="right")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.sub_title = clean(", ".join(str(p) for p in self.paths))
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
        # last_line lays the tree's lines out if they are stale (node.line is -1 until then);
        # a node still not on a line was replaced when a later batch rebuilt its stack.
        if tree.last_line >= 0 and node.line < 0:
            node = tree.first_instance_node() or node
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
        title = f"{plural(len(reasons), 'unreadable file')}"
        self.app.push_screen(ValueDialog(title, "\n".join(reasons)))

    # ---- following the selection -------------------------------------------------------------
    @property
    def pane(self) -> TagPane:
        return self.query_one(TagPane)

    @property
    def loaded(self) -> LoadedFile | None:
        """The file whose tags are on show."""
        return self.pane.loaded

    @loaded.setter
    def loaded(self, value: LoadedFile | None) -> None:
        self.pane.loaded = value

    @property
    def edited(self) -> dict[Path, LoadedFile]:
        """Files with edits not yet saved."""
        return self.pane.edited

    @property
    def _requested(self) -> Path | None:
        return self.pane.requested

    @on(Tree.NodeHighlighted, "#studies")
    def _study_node_highlighted(self, event: Tree.NodeHighlighted[StudyRef]) -> None:
        data = event.node.data
        if data is None or data.record is None:
            return
        self.show_instance(data.record.path)

    def show_instance(self, path: Path) -> None:
        """Show ``path``'s tags: edited copy at once, otherwise read in a worker."""
        self.pane.show_instance(path)

    # ---- the tag pane's keys ----------------------------------------------------------------
    def action_search(self) -> None:
        self.pane.open_search()

    def action_close_search(self) -> None:
        self.pane.close_search()

    def action_next_hit(self) -> None:
        self.pane.jump(1)

    def action_previous_hit(self) -> None:
        self.pane.jump(-1)

    def action_expand_value(self) -> None:
        self.pane.expand_value()

    def action_edit(self) -> None:
        self.pane.edit()

    def action_add(self) -> None:
        self.pane.add()

    def action_delete(self) -> None:
        self.pane.delete()

    def action_revert(self) -> None:
        self.pane.revert()

    def action_save(self) -> None:
        self.pane.save()

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
        opening = workstation(self).key_order.opening("the comparison")
        self.compute_diff(self.marked, self.loaded, opening)

    @work(thread=True, exclusive=True, exit_on_error=False, group="diff", description="Diff")
    def compute_diff(self, left_path: Path, right: LoadedFile, opening: Opening) -> None:
        try:
            left = self.edited.get(left_path) or load_file(left_path)
            rows = diff_datasets(left.dataset, right.dataset)
            if not opening.cancelled:
                screen = DiffScreen(left.path.name, right.path.name, rows)
                self.app.call_from_thread(opening.push, screen)
        except TuiviewerError as exc:
            self.app.call_from_thread(self.notify, exc.message, severity="error")
        finally:
            self.app.call_from_thread(opening.worker_done)

    # ---- de-identified export ---------------------------------------------------------------
    def action_view(self) -> None:
        """Open the viewer on the stack under the cursor (a study or series: its first)."""
        request = self.query_one(StudyTree).stack_to_view()
        if request is None:
            self.notify("Select a study, series or instance to view.", severity="warning")
            return
        self.app.push_screen(
            ViewerScreen(
                request.records, request.start, stacks=request.stacks, priors=request.priors
            )
        )

    def study_in_view(self) -> StudyInView | None:
        """The study under the tree's cursor (the first one right after a scan)."""
        record = self.query_one(StudyTree).study_record()
        return None if record is None else StudyInView(record.study_uid, record.path, None)

    def action_report(self) -> None:
        """Write the report of the study under the cursor."""
        study = self.study_in_view()
        if study is None:
            self.notify("Select a study (or anything in it) to report.", severity="warning")
            return
        workstation(self).open_report(study.study_uid, study.path)

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
        what = plural(len(sources), f"{node.data.kind} file")
        title = f"De-identify {what} (PS3.15 Basic Profile) into"

        def chosen(result: tuple[Path, bool] | None) -> None:
            if result is not None:
                self.notify(f"Exporting {plural(len(sources), 'file')}…")
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
        text = f"De-identified {plural(len(summary.written), 'file')} into {message.dest}"
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
