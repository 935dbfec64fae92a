"""The report editor: the study header and prior reports beside one text box per section.

Every keystroke reaches the draft store within a second or two (a background autosaver writes
atomically), so a dropped SSH session or a killed process loses at most that. Saving writes a
preliminary SR into the local store; signing makes it final; sending C-STOREs it to the PACS the
study came from, after a confirmation that shows whose study it is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Label, Static, TextArea

from tuiviewer.config.nodes import Node
from tuiviewer.dicom.display import display_date
from tuiviewer.dicom.reading import read_dicom
from tuiviewer.exceptions import SaveError, TuiviewerError
from tuiviewer.files import write_private
from tuiviewer.locations import private_dirs
from tuiviewer.net.transport import retrieve_study, send_files
from tuiviewer.reports.drafts import Autosaver, Draft, DraftStore
from tuiviewer.reports.model import (
    DocumentRef,
    DraftError,
    KeyImage,
    Report,
    ReportStatus,
    Section,
    SectionKind,
    make_addendum,
    sign,
)
from tuiviewer.reports.sr.build import build_sr
from tuiviewer.reports.sr.context import StudyContext, study_context_from_paths
from tuiviewer.reports.sr.read import is_report, read_sr, report_status
from tuiviewer.reports.templates import (
    choose_template,
    expand_before_cursor,
    load_snippets,
    load_templates,
)
from tuiviewer.reports.text import sr_to_text, to_markdown, to_text
from tuiviewer.safetext import clean
from tuiviewer.screens.base import workstation
from tuiviewer.screens.dialogs.common import ConfirmDialog, Option, PathDialog, QuestionDialog
from tuiviewer.screens.dialogs.edit import EditValueDialog
from tuiviewer.screens.keyorder import HoldsKeys
from tuiviewer.services.reporting import RemoteReport, find_reports_on_pacs, study_context_from_pacs
from tuiviewer.services.worklist import patient_studies
from tuiviewer.widgets.safe import shown


class DraftChoice(Enum):
    """The answers to "a draft of this report exists: resume it?" (Esc resumes)."""

    RESUME = "resume"
    START_OVER = "start over"


class FinalChoice(Enum):
    """The answers to "this study has a final report: write an addendum?" (Esc goes back)."""

    ADDENDUM = "addendum"
    NEW_REPORT = "new report"
    BACK = "back"


class LeaveChoice(Enum):
    """Leaving an editor whose draft cannot be saved (Esc stays)."""

    STAY = "stay"
    SAVE_ELSEWHERE = "save elsewhere"
    LOSE = "lose"


@dataclass(frozen=True)
class ReportSource:
    """Where the study of a report is: a local folder or file, and/or the PACS it came from."""

    study_uid: str
    path: Path | None = None
    node: Node | None = None


def study_header(ctx: StudyContext) -> Text:
    """Patient, ID, birth date, sex, accession, date, description, modality."""
    text = shown(ctx.patient_name.replace("^", " ").strip() or "(no name)", style="bold")
    rows = (
        ("ID", ctx.patient_id),
        ("Born", display_date(ctx.patient_birth_date)),
        ("Sex", ctx.patient_sex),
        ("Accession", ctx.accession_number),
        ("Date", display_date(ctx.study_date)),
        ("Study", ctx.study_description),
        ("Modality", ctx.modality),
        ("Images", str(len(ctx.instances))),
    )
    for label, value in rows:
        text.append(f"\n{label:<10}", style="dim")
        text.append(clean(value) or "—")
    return text


class ReportScreen(HoldsKeys, Screen[None]):
    """Write, save, sign and send the report of one study."""

    CSS_PATH = "report.tcss"
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

        def __init__(
            self,
            context: StudyContext,
            priors: list[str],
            remote: list[str],
            finals: list[Path],
        ) -> None:
            super().__init__()
            self.context = context
            self.priors = priors
            self.remote = remote
            self.finals = finals

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
        self.save_problem: str | None = None
        """Why drafts are not being saved right now (shown on a line of its own), or None."""
        self.context: StudyContext | None = None
        self.report: Report | None = None
        self.snippets: dict[str, str] = {}
        self.last_sr: Path | None = None
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
            with Vertical(id="report-side"):
                yield Static("Reading the study…", id="study-header")
                yield Label("Prior reports", classes="side-title")
                with VerticalScroll(id="priors-scroll"):
                    yield Static("", id="priors")
            with Vertical(id="report-main"):
                yield Static("", id="report-status")
                yield Static("", id="draft-warning", markup=False)
                yield Static("", id="draft-notice", markup=False)
                yield VerticalScroll(id="sections")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "Report"
        try:
            self.snippets = load_snippets()
        except TuiviewerError as exc:
            self.notify(exc.message, severity="error")
        self.load_context()
        # The autosaver writes in its own thread: show when the draft reached the disk.
        self.set_interval(0.5, self._update_status)

    def on_unmount(self) -> None:
        # Never raises: leaving with text that could not be saved was asked about before.
        self.autosaver.close()

    # ---- drafts that cannot be saved --------------------------------------------------------
    def _draft_failed(self, error: DraftError) -> None:
        """From the autosaver's thread: post_message is thread-safe."""
        self.post_message(self.DraftNotSaved(error.message))

    @on(DraftNotSaved)
    def _not_saved(self, message: DraftNotSaved) -> None:
        self.save_problem = message.reason
        self._update_status()

    def _show_save_problem(self) -> None:
        saver = self.autosaver
        if saver.last_error is not None:
            self.save_problem = saver.last_error.message
        elif saver.last_saved is not None and not saver.pending:
            self.save_problem = None  # the disk took it again
        warning = self.query_one("#draft-warning", Static)
        if self.save_problem is None:
            warning.display = False
            return
        warning.update(
            f"⚠ The draft is NOT being saved: {self.save_problem} What you type stays in this "
            "editor and saving is retried every few seconds; ctrl+r saves a copy elsewhere."
        )
        warning.display = True

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
        source = self.source
        try:
            if source.path is not None:
                context = study_context_from_paths(source.path)
            elif source.node is not None:
                context = study_context_from_pacs(source.node, source.study_uid)
            else:
                raise TuiviewerError("The study is neither on disk nor on a known PACS.")
        except TuiviewerError as exc:
            self.post_message(self.ContextFailed(exc.message))
            return
        priors: list[str] = []
        finals: list[Path] = []
        if source.path is not None:
            folder = source.path if source.path.is_dir() else source.path.parent
            for path, ds in local_reports(folder):
                priors.append(sr_to_text(ds))
                same_study = str(ds.get("StudyInstanceUID", "")) == source.study_uid
                if same_study and report_status(ds) is ReportStatus.FINAL:
                    finals.append(path)
        remote: list[str] = []
        if source.node is not None:
            remote = self._pacs_priors(source.node, context)
        try:
            self.drafts.check_writable()
        except DraftError as exc:
            self.post_message(self.DraftNotSaved(exc.message))  # said before anything is typed
        self.post_message(self.ContextReady(context, priors, remote, finals))

    def _pacs_priors(self, node: Node, context: StudyContext) -> list[str]:
        """Reports on the PACS of this study and of the patient's other studies, as text.

        They are retrieved (C-GET of the SR instances only) into the local store to be read.
        """
        store = workstation(self).store
        try:
            others = patient_studies(node, context.patient_id, exclude=context.study_uid)
        except TuiviewerError:
            others = []
        studies = [context.study_uid] + [row.uid for row in others[:5]]
        texts: list[str] = []
        for study_uid in studies:
            try:
                found = find_reports_on_pacs(node, study_uid)
            except TuiviewerError as exc:
                texts.append(f"⚠ {exc.message}")
                continue
            if not found:
                texts.extend(describe_remote(r) for r in found)
                continue
            series = sorted({r.series_uid for r in found})
            try:
                result = retrieve_study(node, study_uid, store=store, series_uids=series)
            except TuiviewerError as exc:
                texts.append(f"⚠ {len(found)} report(s) on the PACS not retrieved: {exc.message}")
                continue
            for path in result.received:
                try:
                    ds = read_dicom(path)
                except (InvalidDicomError, OSError, TuiviewerError):
                    continue
                if is_report(ds):
                    texts.append(sr_to_text(ds))
        return texts

    @on(ContextFailed)
    def _context_failed(self, message: ContextFailed) -> None:
        self.query_one("#study-header", Static).update(shown(f"⚠ {message.reason}", style="red"))
        self.keys_ready_now()

    @on(ContextReady)
    def _context_ready(self, message: ContextReady) -> None:
        ctx = message.context
        self.context = ctx
        self.query_one("#study-header", Static).update(study_header(ctx))
        priors = message.priors or ["No report of this study on disk."]
        if message.remote:
            priors += ["On the PACS:", *message.remote]
        self.query_one("#priors", Static).update(shown("\n\n".join(priors), lines=True))
        try:
            draft, damaged = self.drafts.load_or_set_aside(ctx.study_uid)
        except TuiviewerError as exc:
            draft, damaged = None, None
            self._notice(f"⚠ {exc.message} A fresh report is open.")
        if damaged is not None:
            self._notice(
                f"⚠ The saved draft of this report was damaged and could not be read; it is "
                f"kept as {damaged} and a fresh report is open."
            )
        fresh = self._new_report(ctx)
        if draft is None and message.finals:
            self._ask_addendum(message.finals[0], fresh)
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

        QuestionDialog(
            "This study already has a final report (shown on the left). A signed report "
            "is never changed: write an addendum to it?",
            [
                Option(FinalChoice.ADDENDUM, "Addendum", key="y", id="yes"),
                Option(FinalChoice.NEW_REPORT, "New report", key="n", id="new-report"),
                Option(FinalChoice.BACK, "Back", key="b", id="back"),
            ],
            escape=FinalChoice.BACK,
        ).ask(self.app, answer)

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

        QuestionDialog(
            f"A draft of this report was saved {saved}. Resume it?",
            [
                Option(DraftChoice.RESUME, "Resume", key="y", id="resume"),
                Option(
                    DraftChoice.START_OVER,
                    "Start over (keep the draft as a backup)",
                    key="n",
                    destructive=True,
                    id="start-over",
                ),
            ],
            escape=DraftChoice.RESUME,
        ).ask(self.app, answer)

    def _notice(self, text: str) -> None:
        """A line that stays above the sections (not a toast that goes away)."""
        notice = self.query_one("#draft-notice", Static)
        notice.update(text)
        notice.display = True

    def _new_report(self, ctx: StudyContext) -> Report:
        try:
            template = choose_template(load_templates(), ctx.modality, ctx.body_part)
        except TuiviewerError as exc:
            self.notify(exc.message, severity="error")
            return Report(sections=())
        return template.new_report()

    def _start(self, report: Report) -> None:
        self.report = report
        container = self.query_one("#sections", VerticalScroll)
        container.mount_all(self._section_widgets(report))
        self._update_status()
        first = container.query(TextArea)
        if first:
            first.first().focus()
        self.keys_ready_now()

    @staticmethod
    def _section_widgets(report: Report) -> list[Label | TextArea]:
        widgets: list[Label | TextArea] = []
        kinds = [section.kind for section in report.sections]
        for kind in SectionKind:
            if kind in kinds:
                widgets.append(Label(kind.title, classes="section-title"))
                widgets.append(
                    # Text from an SR on the PACS may hold control characters: shown escaped.
                    TextArea(
                        clean(report.text_of(kind), lines=True),
                        id=f"section-{kind.value}",
                        tab_behavior="focus",
                        show_line_numbers=False,
                    )
                )
        return widgets

    # ---- editing ----------------------------------------------------------------------------
    @on(TextArea.Changed)
    def _changed(self, event: TextArea.Changed) -> None:
        area = event.text_area
        if self.report is None or not area.id or not area.id.startswith("section-"):
            return
        kind = SectionKind(area.id.removeprefix("section-"))
        text = area.text
        expanded = self._expand(area)
        if expanded is not None:
            return  # the replacement triggers another Changed event
        self.report = self.report.with_text(kind, text)
        self._touch()

    def _expand(self, area: TextArea) -> str | None:
        """Expand a ``;keyword`` snippet right before the cursor when a space was just typed."""
        if not self.snippets:
            return None
        row, col = area.cursor_location
        lines = area.text.split("\n")
        if row >= len(lines) or col == 0 or lines[row][col - 1] not in " .,;:\n":
            return None
        offset = sum(len(line) + 1 for line in lines[:row]) + col
        # The keyword ends before the space or punctuation just typed.
        result = expand_before_cursor(area.text, offset - 1, self.snippets)
        if result is None:
            return None
        text, cursor = result
        cursor += 1
        area.text = text
        before = text[:cursor].split("\n")
        area.move_cursor((len(before) - 1, len(before[-1])))
        return text

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
        report = self.report
        if report is None:
            return
        state = "FINAL" if report.status is ReportStatus.FINAL else "preliminary"
        text = Text(f"{report.title.meaning} · {state}", style="bold")
        if report.key_images:
            text.append(f" · {len(report.key_images)} key images")
        if self.last_sr is not None:
            text.append(f" · saved {self.last_sr.name}", style="green")
        if self.sent:
            text.append(" · sent", style="green")
        if self.autosaver.pending and self.autosaver.last_error is not None:
            text.append(" · draft NOT saved", style="bold red")
        else:
            pending = " · draft saving…" if self.autosaver.pending else " · draft saved"
            text.append(pending, style="dim")
        if self.context is not None and self.drafts.has_previous(self.context.study_uid):
            text.append(" · F8: earlier draft", style="dim")
        self.query_one("#report-status", Static).update(text)
        self._show_save_problem()

    # ---- outputs ----------------------------------------------------------------------------
    def _ready(self) -> tuple[Report, StudyContext] | None:
        if self.report is None or self.context is None:
            self.notify("The study is still being read.", severity="warning")
            return None
        if not self.report.written_sections():
            self.notify("The report is empty: write the findings first.", severity="warning")
            return None
        return self.report, self.context

    def action_save(self) -> None:
        ready = self._ready()
        if ready is not None:
            self.write_sr(*ready)

    @work(thread=True, exclusive=True, exit_on_error=False, group="sr", description="Save SR")
    def write_sr(self, report: Report, ctx: StudyContext) -> None:
        try:
            ds = build_sr(report, ctx)
            path = workstation(self).store.write_dataset(ds)
        except TuiviewerError as exc:
            self.app.call_from_thread(self.notify, exc.message, severity="error", timeout=10)
            return
        document = DocumentRef(
            str(ds.StudyInstanceUID),
            str(ds.SeriesInstanceUID),
            str(ds.SOPInstanceUID),
            str(ds.SOPClassUID),
        )
        self.app.call_from_thread(self._written, path, document)

    def _written(self, path: Path, document: DocumentRef) -> None:
        previous, self.last_sr = self.last_sr, path
        if previous is not None and not self.sent and previous != path:
            # An earlier version nobody else has seen: replaced, not kept beside the new one.
            previous.unlink(missing_ok=True)
        self.last_document = document
        self.sent = False
        self._update_status()
        self.notify(f"Report saved as DICOM SR: {path}")
        if self.offer_send_back:
            # A study pushed to us: signing offers to send the report back to its sender.
            self.offer_send_back = False
            self.action_send()

    def action_sign(self) -> None:
        ready = self._ready()
        if ready is None:
            return
        report, ctx = ready
        default_reader = workstation(self).config.ui.reader_name or report.reader or ""

        def apply(text: str) -> str | None:
            return None if text.strip() else "Type the reader's name (Family^Given)."

        def named(reader: str | None) -> None:
            if not reader:
                return
            self._confirm(
                f"Sign the report as {reader.strip()}?",
                lambda: self._sign(report, ctx, reader.strip()),
            )

        self.app.push_screen(
            EditValueDialog("Sign as (reader's name, Family^Given)", default_reader, apply), named
        )

    def _sign(self, report: Report, ctx: StudyContext, reader: str) -> None:
        organization = workstation(self).config.ui.organization or None
        try:
            if self.original is not None:
                report = make_addendum(self.original, report.text_of(SectionKind.ADDENDUM))
            self.report = sign(report, reader, organization=organization)
        except TuiviewerError as exc:
            self.notify(exc.message, severity="error")
            return
        self._touch()
        self.offer_send_back = self.source.node is not None and self.source.node.kind == "inbox"
        self.write_sr(self.report, ctx)

    def _confirm(self, question: str, then: Callable[[], None]) -> None:
        """Before signing or sending: whose study is this, and is there a final report already?

        The PACS is asked in a worker; the confirmation shows when the answer is in.
        """
        ctx = self.context
        if ctx is None:
            return
        self.check_before(question, ctx, then)

    @work(thread=True, exclusive=True, exit_on_error=False, group="check", description="Check")
    def check_before(self, question: str, ctx: StudyContext, then: Callable[[], None]) -> None:
        lines = [
            question,
            "",
            f"Patient:   {ctx.patient_name.replace('^', ' ')}",
            f"ID:        {ctx.patient_id}",
            f"Accession: {ctx.accession_number or '—'}",
        ]
        node = self.source.node
        if node is not None:
            try:
                finals = [
                    r
                    for r in find_reports_on_pacs(node, ctx.study_uid)
                    if r.verification_flag.upper() == "VERIFIED"
                ]
            except TuiviewerError as exc:
                finals = []
                lines.append(f"⚠ Could not ask the PACS for existing reports: {exc.message}")
            if finals:
                dates = ", ".join(display_date(r.content_date) or "no date" for r in finals)
                lines.append(
                    f"⚠ The PACS already holds {len(finals)} final report(s) of this study "
                    f"({dates}), possibly by someone else."
                )

        def answer(yes: bool | None) -> None:
            if yes:
                then()

        dialog = ConfirmDialog("\n".join(lines), yes="Yes")
        self.app.call_from_thread(self.app.push_screen, dialog, answer)

    def action_send(self) -> None:
        if self.last_sr is None:
            self.notify("Save (ctrl+s) or sign (ctrl+g) the report first.", severity="warning")
            return
        nodes = workstation(self).nodes
        node = self.source.node or nodes.get(workstation(self).default_node or "")
        if node is None and len(nodes) == 1:
            node = next(iter(nodes.values()))
        if node is None:
            self.notify(
                "Which PACS? This study was opened from disk: set [pacs] default_node.",
                severity="error",
            )
            return
        path = self.last_sr
        self._confirm(
            f"Send the report to {node.name} ({node.address})?",
            lambda: self._send(node, path),
        )

    def _send(self, node: Node, path: Path) -> None:
        self.send_sr(node, path)

    @work(thread=True, exclusive=True, exit_on_error=False, group="send", description="Send SR")
    def send_sr(self, node: Node, path: Path) -> None:
        if node.kind == "inbox":
            # Back to the sender through the queue (F4), which shows it and retries it.
            label = self.context.patient_name if self.context is not None else ""
            queue = workstation(self).queue_send_back
            self.app.call_from_thread(queue, node, path, self.source.study_uid, label)
            self.app.call_from_thread(self._sent, node, True)
            return
        try:
            result = send_files(node, [path])
        except TuiviewerError as exc:
            self.app.call_from_thread(self.notify, exc.message, severity="error", timeout=10)
            return
        if result.failed:
            reason = result.failed[0][1]
            self.app.call_from_thread(self.notify, f"Not sent: {reason}", severity="error")
            return
        self.app.call_from_thread(self._sent, node)

    def _sent(self, node: Node, queued: bool = False) -> None:
        self.sent = True
        if self.report is not None and self.report.status is ReportStatus.PRELIMINARY:
            # Sent documents are never changed in place: signing now makes a new SR that
            # names this one in its Predecessor Documents Sequence.
            self.report = dataclasses.replace(self.report, document=self.last_document)
            self._touch()
        if self.report is not None and self.report.status is ReportStatus.FINAL:
            self.autosaver.forget(self.source.study_uid)
            self.drafts.discard(self.source.study_uid)
        self._update_status()
        self.notify(
            f"Report queued for {node.name} (F4)." if queued else f"Report sent to {node.name}."
        )

    def action_export(self) -> None:
        self._export()

    def _export(self, then: Callable[[], None] | None = None) -> None:
        """Ask where, then write the report as text and Markdown; ``then`` runs once written."""
        if self.report is None or self.context is None:
            return
        export_dir = workstation(self).export_dir
        suggestion = export_dir / "reports" / f"report-{self.context.accession_number or 'study'}"
        report = self.report

        def chosen(result: tuple[Path, bool] | None) -> None:
            if result is None:
                return
            base = result[0].with_suffix("")
            try:
                private_dirs(base.parent)  # the export folder too: 0700, like the rest
                for suffix, text in ((".txt", to_text(report)), (".md", to_markdown(report))):
                    write_private(base.with_suffix(suffix), text)
            except SaveError as exc:
                self.notify(f"{exc.message} Choose another place.", severity="error", timeout=10)
                return
            except OSError as exc:
                self.notify(
                    f"Could not write {base}: {exc.strerror or exc}. Choose another place.",
                    severity="error",
                    timeout=10,
                )
                return
            self.notify(f"Wrote {base}.txt and {base}.md")
            if then is not None:
                then()

        title = "Export as text and Markdown (name without suffix)"
        self.app.push_screen(PathDialog(title, suggestion, allow_overwrite=False), chosen)

    def action_copy(self) -> None:
        if self.report is not None:
            # OSC 52: the terminal puts it on the local clipboard, over SSH too.
            self.app.copy_to_clipboard(to_text(self.report))
            self.notify("Report text copied to the clipboard (OSC 52).")

    def action_images(self) -> None:
        if self.source.path is not None:
            workstation(self).view_study(self.source.study_uid, self.source.path)
        else:
            self.notify("The images of this study are not on disk: retrieve them first.")

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
        container = self.query_one("#sections", VerticalScroll)
        await container.remove_children()
        self.report = report
        await container.mount_all(self._section_widgets(report))
        areas = container.query(TextArea)
        if areas:
            areas.first().focus()
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

        QuestionDialog(
            f"The draft could not be saved: {error.message}\n"
            "What you typed is only in this editor.",
            [
                Option(LeaveChoice.STAY, "Stay in the editor", id="stay"),
                Option(LeaveChoice.SAVE_ELSEWHERE, "Save it elsewhere…", key="s", id="elsewhere"),
                Option(LeaveChoice.LOSE, "Leave and lose it", key="l", destructive=True, id="lose"),
            ],
            escape=LeaveChoice.STAY,
        ).ask(self.app, answer)


def local_reports(folder: Path, limit: int = 20) -> list[tuple[Path, Dataset]]:
    """Reports (SR documents with a report title) found in ``folder``, newest first."""
    found: list[tuple[Path, Dataset]] = []
    for path in sorted(folder.rglob("*")):
        if len(found) >= limit or not path.is_file():
            continue
        try:
            # Reports carry no pixel data: do not read the images' (a CT study is hundreds of MB).
            ds = read_dicom(path, force=True, stop_before_pixels=True)
        except (InvalidDicomError, OSError, ValueError, AttributeError, EOFError, TuiviewerError):
            continue
        if "ContentSequence" in ds and is_report(ds):
            found.append((path, ds))
    found.sort(
        key=lambda item: str(item[1].get("ContentDate", "")) + str(item[1].get("ContentTime", "")),
        reverse=True,
    )
    return found


def describe_remote(report: RemoteReport) -> str:
    flags = "/".join(f for f in (report.completion_flag, report.verification_flag) if f)
    return f"SR {display_date(report.content_date) or '(no date)'} {flags or ''}".rstrip()
