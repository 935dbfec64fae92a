"""The workstation as every screen sees it: the typed services, and the moves between screens.

A screen reaches it as ``cast("Workstation", self.app)`` (importing this module only for type
checking), never through ``getattr(self.app, name, None)``: a renamed service is then a type
error, not a feature that silently does nothing. The services themselves live below
(:mod:`tuiviewer.services`, :mod:`tuiviewer.store`, :mod:`tuiviewer.config`); this holds one of
each for the session and the few moves that change what is on screen (open a study, its
report, its images). :class:`tuiviewer.app.TuiviewerApp` adds the bindings, modes and quitting.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from pathlib import Path

from textual import work
from textual.app import App

from tuiviewer.config.nodes import Node, save_nodes
from tuiviewer.config.settings import Config
from tuiviewer.dicom.scanning import InstanceRecord
from tuiviewer.exceptions import TuiviewerError
from tuiviewer.graphics.probe import GraphicsDecision, GraphicsMode
from tuiviewer.messages import JobFinished
from tuiviewer.net.listen import Listener, Received
from tuiviewer.reports.drafts import DraftStore
from tuiviewer.reports.measurements import MeasurementStore
from tuiviewer.reports.model import KeyImage
from tuiviewer.screens.browser import BrowserScreen
from tuiviewer.screens.keyorder import KeyOrder, Opening
from tuiviewer.screens.query import QueryScreen
from tuiviewer.screens.report import ReportScreen, ReportSource
from tuiviewer.screens.report_reader import ReportReaderScreen
from tuiviewer.screens.viewer import ViewerScreen
from tuiviewer.services.inbox import send_back_job
from tuiviewer.services.jobs import JobQueue, RetrieveJob
from tuiviewer.services.reporting import key_image_of, mark_in_draft
from tuiviewer.services.viewer.keyimages import marked_in_draft, unmark_in_draft
from tuiviewer.services.viewer.stack import study_stacks
from tuiviewer.store import LocalStore


class Workstation(App[None]):
    """The session's configuration, nodes, local store, job queue, drafts, graphics and the
    listener for pushed studies."""

    @cached_property
    def key_order(self) -> KeyOrder:
        """Keys of one burst go, one at a time, to the focus of their turn."""
        return KeyOrder(self, super().on_event)

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
        """What the local browser opens first."""
        self.graphics = graphics or GraphicsDecision(GraphicsMode.HALFCELL, "default")
        """How the viewer draws images, and why (the viewer shows it)."""
        self.nodes: dict[str, Node] = dict(nodes or {})
        self.default_node = default_node if default_node in self.nodes else None
        self.nodes_file = nodes_file
        """Where node edits are saved (None: nodes of this session only, as in the demo)."""
        self.store = store or LocalStore(cap_bytes=config.store.cap_bytes)
        self.drafts = DraftStore()
        self.measurements = MeasurementStore()
        """Measurements per study (the volume screen's), which the report carries."""
        self.queue = JobQueue(self.store, drafts=self.drafts, start=self._in_worker)
        self.queue.on_finished(lambda job, evicted: self.post_message(JobFinished(job, evicted)))
        self.listener: Listener | None = None
        """Our storage SCP for pushed studies while it runs in the app (F7)."""
        export_dir = Path(config.ui.export_dir or Path.home() / "tuiviewer-export")
        self.export_dir = export_dir.expanduser()
        """Where de-identified exports and report text go unless the user says otherwise."""

    @property
    def jobs(self) -> list[RetrieveJob]:
        """Every retrieve of this session, oldest first."""
        return self.queue.jobs()

    def current_node(self) -> Node | None:
        """The default node, else the first one configured."""
        if self.default_node in self.nodes:
            return self.nodes[self.default_node]
        return next(iter(self.nodes.values()), None)

    # ---- nodes ------------------------------------------------------------------------------
    def save_node(self, node: Node, old_name: str | None = None) -> None:
        """Add or replace a node and save nodes.toml (raises TuiviewerError on failure)."""
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
        self.queue.submit(job)

    def retry_retrieve(self, job: RetrieveJob) -> None:
        self.queue.retry(job)

    def queue_send_back(self, node: Node, path: Path, study_uid: str, label: str) -> None:
        """Send a report back to the sender of a received study through the queue (F4), which
        shows the attempt and retries a failed one."""
        self.queue.submit(send_back_job(node, path, study_uid, label))

    def _in_worker(self, run: Callable[[], None]) -> None:
        """How the queue runs a job: in a thread worker of the app (stopped when it exits)."""
        self.run_worker(
            run,
            thread=True,
            exclusive=False,
            exit_on_error=False,
            group="retrieve",
            description="Get",
        )

    # ---- studies pushed to us ---------------------------------------------------------------
    def start_listener(self) -> Listener | None:
        """Start the storage SCP of ``[listen]`` into the local store; None when the config has
        no ``[listen]``. The Inbox (F6) follows the journal it writes.

        Raises:
            TuiviewerError: nobody may send, the port cannot be bound, TLS cannot be set up.
        """
        if self.config.listen is None:
            return None
        listener = Listener(self.config.listen, self.store, on_study=self._study_received)
        listener.start()
        self.listener = listener
        return listener

    def stop_listener(self) -> None:
        """Stop the listener if it runs (associations in progress are aborted)."""
        listener, self.listener = self.listener, None
        if listener is not None:
            listener.stop()

    def _study_received(self, record: Received) -> None:
        # From pynetdicom's thread: the Inbox follows the journal; this tells the reader.
        self.call_from_thread(
            self.notify,
            f"Study received from {record.calling_aet} ({record.instances} instances, "
            f"{record.series} series); F6 shows the Inbox.",
        )

    # ---- studies, reports, images -----------------------------------------------------------
    def open_study(self, study_uid: str) -> None:
        """Open what is on disk of a retrieved study in the local browser."""
        try:
            folder = self.store.study_dir(study_uid)
        except TuiviewerError as exc:  # an invalid UID from a PACS
            self.notify(exc.message, severity="error")
            return
        if not folder.is_dir():
            self.notify("Nothing of this study is on disk yet: g retrieves it.", severity="warning")
            return
        self.store.touch(study_uid)
        self.switch_mode("local")
        screen = self.screen
        if isinstance(screen, BrowserScreen):
            screen.add_paths([folder])

    def open_report(self, study_uid: str, path: Path | None, node: Node | None = None) -> None:
        """The report editor for a study (on disk at ``path`` and/or on ``node``)."""
        self.push_screen(ReportScreen(ReportSource(study_uid, path, node)))

    def read_report(self, text: str, title: str = "Report") -> None:
        """A report's text (``sr_to_text``) full screen, read-only (Esc comes back)."""
        self.push_screen(ReportReaderScreen(text, title=title))

    def mark_key_image(self, record: InstanceRecord, frame: int | None) -> None:
        """Add an image to the report of its study: the open editor, else the saved draft."""
        for screen in self.screen_stack:
            if isinstance(screen, ReportScreen) and screen.source.study_uid == record.study_uid:
                screen.add_key_image(key_image_of(record, frame))
                count = len(screen.report.key_images) if screen.report else 0
                self.notify(f"Key image marked ({count} in the report).")
                return
        try:
            count, damaged = mark_in_draft(self.drafts, record, frame)
        except TuiviewerError as exc:
            self.notify(exc.message, severity="error")
            return
        if damaged is not None:
            self.notify(
                f"The draft of this study was damaged; it is kept as {damaged.name} and a "
                "new one holds the key image.",
                severity="warning",
                timeout=10,
            )
        self.notify(f"Key image marked ({count} in the draft report; F9 opens the report).")

    def key_images(self, study_uid: str) -> tuple[KeyImage, ...]:
        """The key images of a study: the open report editor's, else the saved draft's.

        Raises:
            DraftError: the draft cannot be read.
        """
        for screen in self.screen_stack:
            if isinstance(screen, ReportScreen) and screen.source.study_uid == study_uid:
                return screen.report.key_images if screen.report else ()
        return marked_in_draft(self.drafts, study_uid)

    def unmark_key_image(self, record: InstanceRecord, frame: int | None) -> None:
        """Take an image out of the report of its study: the open editor, else the draft."""
        image = key_image_of(record, frame)
        for screen in self.screen_stack:
            if isinstance(screen, ReportScreen) and screen.source.study_uid == record.study_uid:
                screen.remove_key_image(image)
                count = len(screen.report.key_images) if screen.report else 0
                self.notify(f"Key image unmarked ({count} left in the report).")
                return
        try:
            count = unmark_in_draft(self.drafts, image)
        except TuiviewerError as exc:
            self.notify(exc.message, severity="error")
            return
        self.notify(f"Key image unmarked ({count} left in the draft report).")

    def view_study(self, study_uid: str, path: Path) -> None:
        """The images of a study on disk, over the report (Esc comes back to it)."""
        self.scan_for_viewer(study_uid, path, self.key_order.opening("the images"))

    @work(thread=True, exclusive=True, exit_on_error=False, group="view", description="Scan")
    def scan_for_viewer(self, study_uid: str, path: Path, opening: Opening) -> None:
        try:
            stacks = study_stacks(study_uid, path)
            if opening.cancelled:
                return
            if stacks is None:
                self.call_from_thread(
                    self.notify, "No image of this study on disk.", severity="error"
                )
                return
            images = [stack for stack in stacks if any(r.rows for r in stack)]
            if not images:
                self.call_from_thread(self.notify, "This study has no images on disk.")
                return
            self.call_from_thread(opening.push, ViewerScreen(images[0], 0, stacks=images))
        finally:
            self.call_from_thread(opening.worker_done)
