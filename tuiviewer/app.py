"""The Textual application: theme, global bindings, the six modes, the listener toggle,
telling how jobs end, the keys of a burst in order (:mod:`tuiviewer.screens.keyorder`), every
screen's keys (?), the unfinished drafts (d), and quitting without losing work.

Modes keep each screen's state while the user moves between them: the worklist (F1), the PACS
query (F2), the local browser (F3), the job queue (F4), the node manager (F5) and the Inbox of
pushed studies (F6); F7 runs the listener for them while the app runs. The services every
screen uses are in :class:`~tuiviewer.workstation.Workstation`.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from textual import events, work
from textual.app import App
from textual.binding import Binding
from textual.notifications import SeverityLevel

from tuiviewer.config.nodes import Node
from tuiviewer.config.settings import Config
from tuiviewer.exceptions import TuiviewerError
from tuiviewer.graphics.probe import ColorPlan, GraphicsMode, TerminalProbe, prepare_graphics
from tuiviewer.messages import JobFinished
from tuiviewer.net.transport import release_warm
from tuiviewer.reports.drafts import DraftInfo
from tuiviewer.safetext import clean
from tuiviewer.screens.base import ShowsStudy
from tuiviewer.screens.browser import BrowserScreen
from tuiviewer.screens.commands import TuiviewerCommands
from tuiviewer.screens.dialogs.choose import ChooseDialog
from tuiviewer.screens.dialogs.common import ConfirmDialog
from tuiviewer.screens.dialogs.help import HelpScreen, declared_by_tuiviewer
from tuiviewer.screens.inbox import InboxScreen
from tuiviewer.screens.jobs import JobsScreen
from tuiviewer.screens.nodes import NodesScreen
from tuiviewer.screens.query import QueryScreen
from tuiviewer.screens.report import ReportScreen
from tuiviewer.screens.worklist import WorklistScreen
from tuiviewer.store import LocalStore
from tuiviewer.widgets.image.driver import driver_for
from tuiviewer.workstation import Workstation


class TuiviewerApp(Workstation):
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
        Binding("f6", "mode('inbox')", "Inbox"),
        Binding("f7", "toggle_listener", "Listener"),
        Binding("f9", "report", "Report"),
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help", show=False),
        Binding("ctrl+c", "quit", "Quit", show=False),
    ]

    async def on_event(self, event: events.Event) -> None:
        if await self.key_order.take(event):
            return
        await super().on_event(event)

    def on_mount(self) -> None:
        self.theme = self.config.ui.theme
        self.add_mode("local", lambda: BrowserScreen(self.paths))
        self.add_mode("pacs", QueryScreen)
        self.add_mode("jobs", JobsScreen)
        self.add_mode("nodes", NodesScreen)
        self.add_mode("worklist", WorklistScreen)
        self.add_mode("inbox", InboxScreen)
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
        drafts = self.drafts.list()
        if drafts:
            names = ", ".join(
                f"{d.patient_name.replace('^', ' ') or d.study_uid} ({d.accession or 'no acc.'})"
                for d in drafts[:3]
            )
            more = f" and {len(drafts) - 3} more" if len(drafts) > 3 else ""
            self.call_from_thread(
                self.notify,
                f"Unfinished report drafts: {names}{more}. d on the worklist (or ctrl+p, "
                "Unfinished drafts) lists them and opens one, whatever its date.",
                timeout=15,
            )

    # ---- drafts and help --------------------------------------------------------------------
    def action_drafts(self) -> None:
        """List the unfinished report drafts; the one chosen opens in the report editor."""
        self.list_drafts()

    @work(thread=True, exclusive=True, exit_on_error=False, group="drafts", description="Drafts")
    def list_drafts(self) -> None:
        self.call_from_thread(self._choose_draft, self.drafts.list())

    def _choose_draft(self, drafts: list[DraftInfo]) -> None:
        if not drafts:
            self.notify("No unfinished report drafts.")
            return
        labels = [
            f"{d.saved_at:%Y-%m-%d %H:%M}  {d.patient_name.replace('^', ' ') or '(no name)'}  "
            f"ID {d.patient_id or '—'}  acc. {d.accession or '—'}"
            for d in drafts
        ]

        def chosen(index: int | None) -> None:
            if index is not None:
                self._open_draft(drafts[index].study_uid)

        self.push_screen(ChooseDialog("Unfinished report drafts (newest first)", labels), chosen)

    def _open_draft(self, study_uid: str) -> None:
        """The report editor of a draft's study: from its images if retrieved, else the PACS."""
        try:
            folder: Path | None = self.store.study_dir(study_uid)
        except TuiviewerError:
            folder = None
        if folder is not None and not any(folder.rglob("*.dcm")):
            folder = None
        node = self.current_node()
        if folder is None and node is None:
            self.notify(
                "This draft's study is neither on disk nor on a configured PACS.", severity="error"
            )
            return
        self.open_report(study_uid, folder, node)

    def action_report(self) -> None:
        """F9 on every screen: the report of the study the screen is about."""
        screen = self.screen
        if isinstance(screen, ReportScreen):
            focused = screen.focused
            if focused is None or screen.editor not in focused.ancestors_with_self:
                screen.editor.focus_first()  # already in it: back to the text
            return
        study = screen.study_in_view() if isinstance(screen, ShowsStudy) else None
        if study is None:
            self.notify("No study here to report on: open one from the worklist (F1) or F3.")
            return
        self.open_report(study.study_uid, study.path, study.node)

    def action_help(self) -> None:
        """The keys of the screen on show (each screen's own bindings, then the app's)."""
        screen = self.screen
        own: list[str] = []
        widget: list[str] = []
        seen: set[str] = set()
        for active in screen.active_bindings.values():
            binding = active.binding
            if not binding.description or binding.system or binding.action in seen:
                continue
            seen.add(binding.action)
            line = f"{self.get_key_display(binding):>14}  {binding.description}"
            # The screen's and the app's keys first; Textual's cursor keys of the focus after.
            mine = declared_by_tuiviewer(active.node, binding)
            (own if mine else widget).append(line)
        own.append(f"{'ctrl+p':>14}  Command palette: every action by name")
        lines = own + (["", "In the focused list or box:", *widget] if widget else [])
        title = f"{screen.sub_title or type(screen).__name__} keys"
        self.push_screen(HelpScreen("\n".join(lines), title=title))

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Every notification, from every screen: its text cleaned and shown literally.

        Messages quote names, UIDs and error comments from files and PACS answers, so they
        are cleaned (:func:`tuiviewer.safetext.clean`) and not read as markup.
        """
        super().notify(
            clean(message, lines=True),
            title=clean(title),
            severity=severity,
            timeout=timeout,
            markup=markup,
        )

    def action_mode(self, mode: str) -> None:
        if self.current_mode != mode:
            self.switch_mode(mode)

    def on_job_finished(self, message: JobFinished) -> None:
        job = message.job
        severity = {"done": "information", "cancelled": "warning"}.get(job.state, "error")
        text = f"{job.what} {job.id} {job.state}: {job.outcome()}"
        if job.error and job.state != "done":
            text += f"\n{job.error}"
        self.notify(text, severity=severity, timeout=8)  # type: ignore[arg-type]
        if message.evicted:
            self.notify(f"Local store over its cap: removed {len(message.evicted)} old studies.")

    # ---- studies pushed to us ---------------------------------------------------------------
    def action_toggle_listener(self) -> None:
        """Start or stop the storage SCP of ``[listen]`` while the app runs."""
        if self.listener is not None:
            where = self.listener.where
            self.stop_listener()
            self.notify(f"Stopped listening as {where}.")
            return
        try:
            listener = self.start_listener()
        except TuiviewerError as exc:
            self.notify(exc.message, severity="error", timeout=10)
            return
        if listener is None:
            self.notify(
                "The listener is not configured: add [listen] with ae_title, port and allow "
                "to config.toml.",
                severity="warning",
                timeout=10,
            )
            return
        self.notify(f"Listening for studies as {listener.where} (F6: Inbox).")

    # ---- quitting ---------------------------------------------------------------------------
    def unsaved(self) -> list[Path]:
        """Files edited in any browser screen and not saved."""
        paths: list[Path] = []
        for stack in self._screen_stacks.values():
            for screen in stack:
                if isinstance(screen, BrowserScreen):
                    paths.extend(screen.edited)
        return paths

    def unsaved_reports(self) -> list[ReportScreen]:
        """Report editors whose text is not on disk and cannot be written now."""
        return [
            screen
            for stack in self._screen_stacks.values()
            for screen in stack
            if isinstance(screen, ReportScreen) and screen.unsaved_text()
        ]

    async def action_quit(self) -> None:
        unsaved = self.unsaved()
        running = self.queue.running()
        reports = self.unsaved_reports()
        if not unsaved and not running and not reports:
            await self._leave()
            return
        parts = []
        if reports:
            parts.append(
                f"lose the text of {len(reports)} report(s) that could not be saved "
                "(Esc, then ctrl+r in the editor saves it elsewhere)"
            )
        if unsaved:
            names = ", ".join(p.name for p in unsaved[:3]) + (" …" if len(unsaved) > 3 else "")
            parts.append(f"lose the unsaved edits to {names}")
        if running:
            parts.append(f"stop {len(running)} running job(s) (what arrived stays)")

        def answer(yes: bool | None) -> None:
            if yes:
                for job in running:
                    job.cancel.set()
                self.call_later(self._leave)

        self.push_screen(ConfirmDialog(f"Quit and {' and '.join(parts)}?", yes="Quit"), answer)

    async def _leave(self) -> None:
        """Stop the listener, release warm associations (the PACS frees them at once instead
        of at its idle timeout), and exit."""
        self.stop_listener()
        await asyncio.to_thread(release_warm)
        self.exit()


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
    if config.graphics.exact:
        decision = dataclasses.replace(decision, exact=True)
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
