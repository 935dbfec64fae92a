"""The Textual application: configuration, global bindings, the four modes and the job runner.

Modes keep each screen's state while the user moves between them: the local browser (F3), the
PACS query (F2), the retrieve queue (F4) and the node manager (F5).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from textual import work
from textual.app import App
from textual.binding import Binding

from tuiviewer.config import Config
from tuiviewer.dicom.index import StudyIndex
from tuiviewer.dicom.scanning import InstanceRecord, scan
from tuiviewer.exceptions import TuiviewerError
from tuiviewer.jobs import RetrieveJob
from tuiviewer.messages import JobFinished
from tuiviewer.net.nodes import Node, save_nodes
from tuiviewer.reports.drafts import Draft, DraftStore
from tuiviewer.reports.model import KeyImage, Report
from tuiviewer.screens.browser import BrowserScreen
from tuiviewer.screens.commands import TuiviewerCommands
from tuiviewer.screens.dialogs.common import ConfirmDialog
from tuiviewer.screens.jobs import JobsScreen
from tuiviewer.screens.nodes import NodesScreen
from tuiviewer.screens.query import QueryScreen
from tuiviewer.screens.report import ReportScreen, ReportSource
from tuiviewer.screens.viewer import ViewerScreen
from tuiviewer.screens.worklist import WorklistScreen
from tuiviewer.store import LocalStore
from tuiviewer.widgets.image.driver import driver_for
from tuiviewer.widgets.image.probe import (
    ColorPlan,
    GraphicsDecision,
    GraphicsMode,
    TerminalProbe,
    prepare_graphics,
)


class TuiviewerApp(App[None]):
    """The workstation."""

    TITLE = "tuiviewer"
    CSS_PATH = "app.tcss"
    COMMANDS = App.COMMANDS | {TuiviewerCommands}
    BINDINGS = [
        Binding("f1", "mode('worklist')", "Worklist"),
        Binding("f2", "mode('pacs')", "PACS"),
        Binding("f3", "mode('local')", "Local"),
        Binding("f4", "mode('jobs')", "Jobs"),
        Binding("f5", "mode('nodes')", "Nodes"),
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "quit", "Quit", show=False),
    ]

    def __init__(
        self,
        config: Config,
        paths: list[Path],
        *,
        nodes: dict[str, Node] | None = None,
        default_node: str | None = None,
        nodes_file: Path | None = None,
        store: LocalStore | None = None,
        graphics: GraphicsDecision | None = None,
        low_bandwidth: bool = False,
    ) -> None:
        super().__init__()
        self.config = config
        self.low_bandwidth = low_bandwidth or config.ui.low_bandwidth
        """The viewer sends less (see ``--low-bandwidth``); Textual animates nothing."""
        if self.low_bandwidth:
            self.animation_level = "none"
        self.paths = paths
        self.graphics = graphics or GraphicsDecision(GraphicsMode.HALFCELL, "default")
        """How the viewer draws images, and why (the viewer shows it)."""
        self.nodes: dict[str, Node] = dict(nodes or {})
        self.default_node = default_node if default_node in self.nodes else None
        self.nodes_file = nodes_file
        """Where node edits are saved (None: nodes of this session only, as in the demo)."""
        self.store = store or LocalStore(cap_bytes=config.store.cap_bytes)
        self.jobs: list[RetrieveJob] = []
        self.export_dir = Path(config.ui.export_dir or Path.home() / "tuiviewer-export")
        self.export_dir = self.export_dir.expanduser()

    def on_mount(self) -> None:
        self.theme = self.config.ui.theme
        self.add_mode("local", lambda: BrowserScreen(self.paths))
        self.add_mode("pacs", QueryScreen)
        self.add_mode("jobs", JobsScreen)
        self.add_mode("nodes", NodesScreen)
        self.add_mode("worklist", WorklistScreen)
        if self.paths or not self.nodes:
            first = "local" if self.paths else "nodes"
        else:
            # The reading worklist is home once a PACS is chosen (the CLI always chooses one).
            first = "worklist" if self.default_node else "pacs"
        self.switch_mode(first)
        self.remind_drafts()

    @work(thread=True, exclusive=True, exit_on_error=False, group="drafts", description="Drafts")
    def remind_drafts(self) -> None:
        """Unfinished reports from an earlier session (a dropped SSH link, a crash)."""
        drafts = DraftStore().list()
        if drafts:
            names = ", ".join(
                f"{d.patient_name.replace('^', ' ') or d.study_uid} ({d.accession or 'no acc.'})"
                for d in drafts[:3]
            )
            more = f" and {len(drafts) - 3} more" if len(drafts) > 3 else ""
            self.call_from_thread(
                self.notify,
                f"Unfinished report drafts: {names}{more}. Open the study's report (W) to resume.",
                timeout=15,
            )

    def action_mode(self, mode: str) -> None:
        if self.current_mode != mode:
            self.switch_mode(mode)

    # ---- nodes ------------------------------------------------------------------------------
    def save_node(self, node: Node, old_name: str | None = None) -> None:
        """Add or replace a node and save nodes.toml (raises ConfigError on failure)."""
        nodes = {k: v for k, v in self.nodes.items() if k != old_name}
        nodes[node.name] = node
        if self.nodes_file is not None:
            save_nodes(nodes, self.nodes_file)
        self.nodes = nodes
        self._nodes_changed()

    def delete_node(self, name: str) -> None:
        nodes = {k: v for k, v in self.nodes.items() if k != name}
        if self.nodes_file is not None:
            save_nodes(nodes, self.nodes_file)
        self.nodes = nodes
        self._nodes_changed()

    def _nodes_changed(self) -> None:
        for screen in self._screen_stacks.get("pacs", []):
            if isinstance(screen, QueryScreen):
                screen.refresh_nodes()

    def query_node(self, name: str) -> None:
        """Show the PACS query on ``name``."""
        self.default_node = name
        self.switch_mode("pacs")
        self._nodes_changed()

    # ---- retrieves --------------------------------------------------------------------------
    def queue_retrieve(self, job: RetrieveJob) -> None:
        self.jobs.append(job)
        self.run_job(job)

    def retry_retrieve(self, job: RetrieveJob) -> None:
        job.state = "queued"
        self.run_job(job)

    @work(thread=True, exclusive=False, exit_on_error=False, group="retrieve", description="Get")
    def run_job(self, job: RetrieveJob) -> None:
        job.run(self.store)
        self.post_message(JobFinished(job))

    def on_job_finished(self, message: JobFinished) -> None:
        job = message.job
        severity = {"done": "information", "cancelled": "warning"}.get(job.state, "error")
        text = f"Retrieve {job.id} {job.state}: {job.outcome()}"
        if job.error and job.state != "done":
            text += f"\n{job.error}"
        self.notify(text, severity=severity, timeout=8)  # type: ignore[arg-type]
        # Never evict a study being retrieved or one whose report is being written.
        protected = {j.study_uid for j in self.jobs if not j.finished}
        protected |= {draft.study_uid for draft in DraftStore().list()}
        evicted = self.store.evict(protected=protected)
        if evicted:
            self.notify(f"Local store over its cap: removed {len(evicted)} old studies.")

    def open_study(self, study_uid: str) -> None:
        """Open what is on disk of a retrieved study in the local browser."""
        try:
            folder = self.store.study_dir(study_uid)
        except Exception as exc:  # noqa: BLE001 - an invalid UID from a PACS
            self.notify(str(exc), severity="error")
            return
        if not folder.is_dir():
            self.notify("Nothing of this study is on disk yet: g retrieves it.", severity="warning")
            return
        self.store.touch(study_uid)
        self.switch_mode("local")
        screen = self.screen
        if isinstance(screen, BrowserScreen):
            screen.add_paths([folder])

    # ---- reports ----------------------------------------------------------------------------
    def open_report(self, study_uid: str, path: Path | None, node: Node | None = None) -> None:
        """The report editor for a study (on disk at ``path`` and/or on ``node``)."""
        self.push_screen(ReportScreen(ReportSource(study_uid, path, node)))

    def mark_key_image(self, record: InstanceRecord, frame: int | None) -> None:
        """Add an image to the report of its study: the open editor, else the saved draft."""
        image = KeyImage(
            record.sop_class_uid,
            record.sop_instance_uid,
            record.study_uid,
            record.series_uid,
            frame,
        )
        for screen in self.screen_stack:
            if isinstance(screen, ReportScreen) and screen.source.study_uid == record.study_uid:
                screen.add_key_image(image)
                count = len(screen.report.key_images) if screen.report else 0
                self.notify(f"Key image marked ({count} in the report).")
                return
        drafts = DraftStore()
        try:
            draft = drafts.load(record.study_uid) or Draft(
                record.study_uid,
                Report(sections=()),
                patient_name=record.patient_name,
                patient_id=record.patient_id,
                accession=record.accession_number,
            )
            if image not in draft.report.key_images:
                report = replace(draft.report, key_images=(*draft.report.key_images, image))
                draft = drafts.save(replace(draft, report=report))
        except TuiviewerError as exc:
            self.notify(exc.message, severity="error")
            return
        count = len(draft.report.key_images)
        self.notify(f"Key image marked ({count} in the draft report; W opens it).")

    def view_study(self, study_uid: str, path: Path) -> None:
        """The images of a study on disk, over the report (Esc comes back to it)."""
        self.scan_for_viewer(study_uid, path)

    @work(thread=True, exclusive=True, exit_on_error=False, group="view", description="Scan")
    def scan_for_viewer(self, study_uid: str, path: Path) -> None:
        folder = path if path.is_dir() else path.parent
        index = StudyIndex()
        for batch in scan([folder]):
            index.add(r for r in batch if r.study_uid == study_uid)
        try:
            study = index.study(study_uid)
        except KeyError:
            self.call_from_thread(self.notify, "No image of this study on disk.", severity="error")
            return
        stacks = [list(stack.instances) for series in study.series for stack in series.stacks]
        images = [stack for stack in stacks if any(r.rows for r in stack)]
        if not images:
            self.call_from_thread(self.notify, "This study has no images on disk.")
            return
        self.call_from_thread(self.push_screen, ViewerScreen(images[0], 0, stacks=images))

    # ---- quitting ---------------------------------------------------------------------------
    def unsaved(self) -> list[Path]:
        """Files edited in any browser screen and not saved."""
        paths: list[Path] = []
        for stack in self._screen_stacks.values():
            for screen in stack:
                if isinstance(screen, BrowserScreen):
                    paths.extend(screen.edited)
        return paths

    async def action_quit(self) -> None:
        unsaved = self.unsaved()
        running = [job for job in self.jobs if job.state == "running"]
        if not unsaved and not running:
            self.exit()
            return
        parts = []
        if unsaved:
            names = ", ".join(p.name for p in unsaved[:3]) + (" …" if len(unsaved) > 3 else "")
            parts.append(f"lose the unsaved edits to {names}")
        if running:
            parts.append(f"stop {len(running)} running retrieve(s) (what arrived stays)")

        def answer(yes: bool | None) -> None:
            if yes:
                for job in running:
                    job.cancel.set()
                self.exit()

        self.push_screen(ConfirmDialog(f"Quit and {' and '.join(parts)}?", yes="Quit"), answer)


def make_app(
    config: Config,
    paths: list[Path],
    *,
    nodes: dict[str, Node] | None = None,
    default_node: str | None = None,
    nodes_file: Path | None = None,
    store: LocalStore | None = None,
    graphics: GraphicsMode = GraphicsMode.AUTO,
    color: ColorPlan | None = None,
    low_bandwidth: bool = False,
    probe: TerminalProbe | None = None,
) -> TuiviewerApp:
    """The one factory the CLI and the tests use.

    The viewer's graphics protocol is decided here, before the app runs: the terminal is asked
    (``probe``, or now) while nobody else reads the keyboard, and the app's driver replays the
    keys typed meanwhile and drops answers that come late (see
    :mod:`tuiviewer.widgets.image.driver`). ``low_bandwidth`` (or ``[ui] low_bandwidth`` in
    the config) makes the viewer send less.
    """
    decision = prepare_graphics(graphics, color=color, probe=probe)
    app = TuiviewerApp(
        config,
        paths,
        nodes=nodes,
        default_node=default_node,
        nodes_file=nodes_file,
        store=store,
        graphics=decision,
        low_bandwidth=low_bandwidth,
    )
    driver = driver_for(decision.probe)
    if driver is not None:
        app.driver_class = driver
    return app
