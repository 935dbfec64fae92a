"""The report editor: the study header and prior reports beside one text box per section.

Every keystroke reaches the draft store within a second or two (a background autosaver writes
atomically), so a dropped SSH session or a killed process loses at most that. Saving writes a
preliminary SR into the local store; signing makes it final; sending C-STOREs it to the PACS the
study came from, after a confirmation that shows whose study it is.

The parts own their state: :class:`~tuiviewer.widgets.report.sections.SectionsEditor` the
text boxes and snippets, :class:`~tuiviewer.widgets.report.study_side.StudySide` the header
and priors, :class:`~tuiviewer.widgets.report.status.EditorStatus` the status and warnings;
the work below the screen is in :mod:`tuiviewer.services.report_desk`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Header

from tuiviewer.exceptions import TuiviewerError
from tuiviewer.reports.drafts import Autosaver, Draft, DraftStore
from tuiviewer.reports.model import (
    DocumentRef,
    DraftError,
    KeyImage,
    Report,
    Section,
    SectionKind,
)
from tuiviewer.reports.sr.context import StudyContext
from tuiviewer.reports.sr.read import read_sr
from tuiviewer.reports.templates import choose_template, load_snippets, load_templates
from tuiviewer.screens.base import StudyInView, workstation
from tuiviewer.screens.dialogs.report import (
    DraftChoice,
    FinalChoice,
    LeaveChoice,
    ask_addendum,
    ask_before_leaving,
    ask_resume,
)
from tuiviewer.screens.keyorder import HoldsKeys
from tuiviewer.screens.report_outputs import ReportOutputs
from tuiviewer.services.report_desk import (
    ReportContext,
    ReportSource,
    report_context,
)
from tuiviewer.widgets.key_footer import KeyFooter
from tuiviewer.widgets.report.sections import SectionArea, SectionsEditor
from tuiviewer.widgets.report.status import EditorStatus
from tuiviewer.widgets.report.study_side import StudySide

__all__ = ["ReportScreen", "ReportSource"]


class ReportScreen(HoldsKeys, ReportOutputs):
    """Write, save, sign and send the report of one study."""

    CSS_PATH = "report.tcss"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]
    """Under 100 columns the study side is narrower: the text being typed gets the width."""
    AUTO_FOCUS = ""
    # Keys the text boxes do not use themselves (they take ctrl+a/e/k/u/w/x/c/v/y/z).
    BINDINGS = [
        Binding("ctrl+s", "save", "Save prelim."),
        Binding("ctrl+g", "sign", "Sign"),
        Binding("ctrl+t", "send", "Send"),
        Binding("ctrl+r", "export", "Export text"),
        Binding("ctrl+b", "copy", "Copy"),
        Binding("ctrl+o", "images", "Images"),
        Binding("f8", "restore_previous", "Restore the previous draft", show=False),
        Binding("escape", "leave", "Back"),
    ]

    class ContextReady(Message):
        """The study's header and evidence are known."""

        def __init__(self, found: ReportContext) -> None:
            super().__init__()
            self.found = found

    class ContextFailed(Message):
        def __init__(self, reason: str) -> None:
            super().__init__()
            self.reason = reason

    class DraftNotSaved(Message):
        """A draft could not be written (posted from the autosaver's thread)."""

        def __init__(self, reason: str) -> None:
            super().__init__()
            self.reason = reason

    def __init__(self, source: ReportSource, *, drafts: DraftStore | None = None) -> None:
        super().__init__()
        self.source = source
        self.drafts = drafts or DraftStore()
        self.autosaver = Autosaver(self.drafts, delay=1.0, on_error=self._draft_failed)
        self.context: StudyContext | None = None
        self.report: Report | None = None
        self.last_sr: Path | None = None
        self.last_companions: list[Path] = []
        self.send_when_written = False
        self.sr_writes = 0
        """The SR file written last (what "send" sends)."""
        self.last_document: DocumentRef | None = None
        self.sent = False
        self.offer_send_back = False
        """Signing a study pushed to us: once the SR is written, offer to send it back."""
        self.original: Report | None = None
        """The final report an addendum is written to (read from its SR)."""

    # ---- layout -----------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="report-panes"):
            yield StudySide(id="report-side")
            with Vertical(id="report-main"):
                yield EditorStatus(id="editor-status")
                yield SectionsEditor(id="sections")
        yield KeyFooter()

    @property
    def editor(self) -> SectionsEditor:
        return self.query_one(SectionsEditor)

    @property
    def status_line(self) -> EditorStatus:
        return self.query_one(EditorStatus)

    @property
    def snippets(self) -> dict[str, str]:
        """The ``;keyword`` snippets the sections expand."""
        return dict(self.editor.snippets)

    def set_focus(
        self, widget: Widget | None, scroll_visible: bool = True, from_app_focus: bool = False
    ) -> None:
        """A section taking the focus is scrolled into view only as far as needed, so the
        one above it, just typed in, stays on screen where there is room."""
        if not (scroll_visible and isinstance(widget, SectionArea)):
            super().set_focus(widget, scroll_visible, from_app_focus)
            return
        super().set_focus(widget, scroll_visible=False, from_app_focus=from_app_focus)
        if self.focused is widget:
            self.call_later(self.editor.bring_into_view, widget)

    def on_mount(self) -> None:
        self.sub_title = "Report"
        try:
            self.editor.snippets = load_snippets()
        except TuiviewerError as exc:
            self.notify(exc.message, severity="error")
        self.load_context()
        # The autosaver writes in its own thread: show when the draft reached the disk.
        self.set_interval(0.5, self._update_status)

    def on_unmount(self) -> None:
        # Never raises: leaving with text that could not be saved was asked about before.
        self.autosaver.close()

    def study_in_view(self) -> StudyInView | None:
        """This report's study (F9 here stays in the editor)."""
        return StudyInView(self.source.study_uid, self.source.path, self.source.node)

    # ---- drafts that cannot be saved --------------------------------------------------------
    def _draft_failed(self, error: DraftError) -> None:
        """From the autosaver's thread: post_message is thread-safe."""
        self.post_message(self.DraftNotSaved(error.message))

    @on(DraftNotSaved)
    def _not_saved(self, message: DraftNotSaved) -> None:
        self.status_line.not_saved(message.reason)
        self._update_status()

    def unsaved_text(self) -> bool:
        """True when what is typed here is not on disk and cannot be written now."""
        try:
            self.autosaver.flush()
        except DraftError:
            return True
        return False

    # ---- study context ----------------------------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="report", description="Study")
    def load_context(self) -> None:
        try:
            found = report_context(self.source, workstation(self).store)
        except TuiviewerError as exc:
            self.post_message(self.ContextFailed(exc.message))
            return
        try:
            self.drafts.check_writable()
        except DraftError as exc:
            self.post_message(self.DraftNotSaved(exc.message))  # said before anything is typed
        self.post_message(self.ContextReady(found))

    @on(ContextFailed)
    def _context_failed(self, message: ContextFailed) -> None:
        self.query_one(StudySide).failed(message.reason)
        self.keys_ready_now()

    @on(ContextReady)
    def _context_ready(self, message: ContextReady) -> None:
        found = message.found
        ctx = found.context
        self.context = ctx
        self.query_one(StudySide).show(ctx, found.priors, found.remote)
        try:
            draft, damaged = self.drafts.load_or_set_aside(ctx.study_uid)
        except TuiviewerError as exc:
            draft, damaged = None, None
            self.status_line.notice(f"⚠ {exc.message} A fresh report is open.")
        if damaged is not None:
            self.status_line.notice(
                f"⚠ The saved draft of this report was damaged and could not be read; it is "
                f"kept as {damaged} and a fresh report is open."
            )
        fresh = self._new_report(ctx)
        if draft is None and found.finals:
            self._ask_addendum(found.finals[0], fresh)
        elif draft is None:
            self._start(fresh)
        elif not draft.report.written_sections():
            # Only key images marked in the viewer so far: the template, with those images.
            self._start(dataclasses.replace(fresh, key_images=draft.report.key_images))
        else:
            self._ask_resume(draft, fresh)

    def _ask_addendum(self, final: Path, fresh: Report) -> None:
        def answer(choice: FinalChoice) -> None:
            if choice is FinalChoice.BACK:
                self.app.pop_screen()
                return
            if choice is FinalChoice.NEW_REPORT:
                self._start(fresh)
                return
            try:
                self.original = read_sr(final)
            except TuiviewerError as exc:
                self.notify(exc.message, severity="error")
                self._start(fresh)
                return
            self._start(Report(sections=(Section(SectionKind.ADDENDUM, ""),)))

        ask_addendum(self.app, answer)

    def _ask_resume(self, draft: Draft, fresh: Report) -> None:
        """Resume the draft, or start over with the draft kept as the backup (F8 restores it)."""
        saved = draft.saved_at.strftime("%Y-%m-%d %H:%M") if draft.saved_at else "earlier"

        def answer(choice: DraftChoice) -> None:
            if choice is DraftChoice.RESUME:
                self._start(draft.report)
                return
            try:
                self.drafts.keep_previous(draft.study_uid)
            except TuiviewerError as exc:
                # Never replace a draft that could not be kept: resume it instead.
                self.notify(f"{exc.message} The draft is resumed.", severity="error", timeout=15)
                self._start(draft.report)
                return
            self._start(fresh)
            self.notify("Started over; the earlier draft is kept: F8 brings it back.", timeout=10)

        ask_resume(self.app, saved, answer)

    def _new_report(self, ctx: StudyContext) -> Report:
        try:
            template = choose_template(load_templates(), ctx.modality, ctx.body_part)
        except TuiviewerError as exc:
            self.notify(exc.message, severity="error")
            return Report(sections=())
        return template.new_report()

    def _start(self, report: Report) -> None:
        self.report = report
        self.editor.show(report)
        self._update_status()
        self.keys_ready_now()

    @on(StudySide.ReadPriors)
    def _read_priors(self) -> None:
        text = self.query_one(StudySide).priors_text
        if text:
            workstation(self).read_report(text, title="Prior reports")

    # ---- editing ----------------------------------------------------------------------------
    @on(SectionsEditor.Edited)
    def _edited(self, event: SectionsEditor.Edited) -> None:
        if self.report is None:
            return
        self.report = self.report.with_text(event.kind, event.text)
        self._touch()

    def _touch(self) -> None:
        if self.report is None or self.context is None:
            return
        ctx = self.context
        self.autosaver.touch(
            Draft(
                ctx.study_uid,
                self.report,
                patient_name=ctx.patient_name,
                patient_id=ctx.patient_id,
                accession=ctx.accession_number,
            )
        )
        self._update_status()

    def add_key_image(self, image: KeyImage) -> None:
        if self.report is None:
            return
        if image not in self.report.key_images:
            self.report = dataclasses.replace(
                self.report, key_images=(*self.report.key_images, image)
            )
            self._touch()

    def remove_key_image(self, image: KeyImage) -> None:
        if self.report is not None and image in self.report.key_images:
            kept = tuple(k for k in self.report.key_images if k != image)
            self.report = dataclasses.replace(self.report, key_images=kept)
            self._touch()

    def _update_status(self) -> None:
        if self.report is None:
            return
        has_previous = self.context is not None and self.drafts.has_previous(self.context.study_uid)
        self.status_line.show(
            self.report,
            self.autosaver,
            last_sr=self.last_sr,
            sent=self.sent,
            has_previous=has_previous,
        )

    # ---- drafts kept and leaving ----------------------------------------------------------
    def action_restore_previous(self) -> None:
        """Bring back the draft that "start over" replaced; what is shown becomes the backup."""
        ctx = self.context
        if ctx is None or self.report is None:
            return
        if not self.drafts.has_previous(ctx.study_uid):
            self.notify("No earlier draft of this report is kept.")
            return
        try:
            self.autosaver.flush()  # what is on screen must be on disk, to become the backup
            previous = self.drafts.restore_previous(ctx.study_uid)
        except TuiviewerError as exc:
            self.notify(exc.message, severity="error", timeout=10)
            return
        self.call_later(self._replace_report, previous.report)
        self.notify("The earlier draft is back; the text you had is now the backup (F8 swaps).")

    async def _replace_report(self, report: Report) -> None:
        """Show ``report`` in place of the one being edited."""
        self.report = report
        await self.editor.replace(report)
        self._update_status()

    def action_leave(self) -> None:
        try:
            self.autosaver.flush()
        except DraftError as exc:
            self._ask_before_leaving(exc)
            return
        self.app.pop_screen()

    def _ask_before_leaving(self, error: DraftError) -> None:
        """The text is only in memory: stay (Esc), save it elsewhere, or explicitly lose it."""

        def leave() -> None:
            self.autosaver.forget(self.source.study_uid)
            self.app.pop_screen()

        def answer(choice: LeaveChoice) -> None:
            if choice is LeaveChoice.SAVE_ELSEWHERE:
                self._export(then=leave)
            elif choice is LeaveChoice.LOSE:
                leave()

        ask_before_leaving(self.app, error.message, answer)
