"""What the report editor makes of a report: the SR saved and signed, sent to the PACS, written
as text and Markdown, copied; and the study's images beside it.

:class:`ReportOutputs` is the report screen's half that writes: the screen
(:class:`~tuiviewer.screens.report.ReportScreen`) holds the report being typed and its draft,
this half turns it into documents. Signing and sending first show whose study it is and the
final reports the PACS already holds (:func:`~tuiviewer.services.report_desk.confirmation_text`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

from textual import work
from textual.screen import Screen

from tuiviewer.config.nodes import Node
from tuiviewer.exceptions import SaveError, TuiviewerError
from tuiviewer.reports.drafts import Autosaver, DraftStore
from tuiviewer.reports.measurements import Measurement
from tuiviewer.reports.model import (
    DocumentRef,
    Report,
    ReportStatus,
    SectionKind,
    make_addendum,
    sign,
)
from tuiviewer.reports.sr.context import StudyContext
from tuiviewer.reports.text import to_text
from tuiviewer.screens.base import workstation
from tuiviewer.screens.dialogs.common import ConfirmDialog, PathDialog
from tuiviewer.screens.dialogs.edit import EditValueDialog
from tuiviewer.screens.keyorder import Opening
from tuiviewer.services.report_desk import (
    ReportSource,
    confirmation_text,
    export_report,
    send_report,
    write_report_documents,
)


class ReportOutputs(Screen[None]):
    """Save, sign, send, export and copy the report of :attr:`source` (mixed into the editor)."""

    source: ReportSource
    drafts: DraftStore
    autosaver: Autosaver
    context: StudyContext | None
    report: Report | None
    last_sr: Path | None
    """The SR file written last (what "send" sends)."""
    last_companions: list[Path]
    """Its measurement and key image documents (sent with it)."""
    last_document: DocumentRef | None
    send_when_written: bool
    """Send (ctrl+t) was asked while the SR was being written: send it once it is."""
    sr_writes: int
    """SR writes asked for whose result (written or not) has not come back yet."""
    sent: bool
    offer_send_back: bool
    """Signing a study pushed to us: once the SR is written, offer to send it back."""
    original: Report | None
    """The final report an addendum is written to (read from its SR)."""

    def _touch(self) -> None:
        """The report changed: the draft is to be written (the editor does it)."""
        raise NotImplementedError

    def _update_status(self) -> None:
        """Show where the report and its draft are (the editor does it)."""
        raise NotImplementedError

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
            self._write_sr(*ready)

    def _write_sr(self, report: Report, ctx: StudyContext) -> None:
        self.sr_writes += 1
        self.write_sr(report, ctx)

    @work(thread=True, exclusive=True, exit_on_error=False, group="sr", description="Save SR")
    def write_sr(self, report: Report, ctx: StudyContext) -> None:
        desk = workstation(self)
        try:
            measurements = desk.measurements.load(ctx.study_uid)
        except TuiviewerError as exc:  # a damaged list never keeps the report from being saved
            measurements = []
            warning = f"{exc.message} The report is saved without them."
            self.app.call_from_thread(self.notify, warning, severity="warning", timeout=10)
        try:
            ds, path, companions = write_report_documents(desk.store, report, ctx, measurements)
        except TuiviewerError as exc:
            self.app.call_from_thread(self._not_written, exc.message)
            return
        document = DocumentRef(
            str(ds.StudyInstanceUID),
            str(ds.SeriesInstanceUID),
            str(ds.SOPInstanceUID),
            str(ds.SOPClassUID),
        )
        self.app.call_from_thread(self._written, path, document, companions)

    def _written(self, path: Path, document: DocumentRef, companions: list[Path]) -> None:
        self.sr_writes = max(0, self.sr_writes - 1)
        previous, self.last_sr = self.last_sr, path
        earlier, self.last_companions = self.last_companions, companions
        if previous is not None and not self.sent and previous != path:
            # An earlier version nobody else has seen: replaced, not kept beside the new one.
            for old in (previous, *earlier):
                old.unlink(missing_ok=True)
        self.last_document = document
        self.sent = False
        self._update_status()
        extra = (
            f" (with {len(companions)} companion document{'s' if len(companions) != 1 else ''}:"
            " measurements, key images)"
            if companions
            else ""
        )
        self.notify(f"Report saved as DICOM SR: {path}{extra}")
        # Send asked for while it was written, or a study pushed to us (signing offers to
        # send the report back to its sender): one offer. Its worker is still finishing, so
        # not through action_send, which would wait for it again.
        if self.send_when_written or self.offer_send_back:
            self.send_when_written = self.offer_send_back = False
            self._send_written()

    def _not_written(self, reason: str) -> None:
        self.sr_writes = max(0, self.sr_writes - 1)
        if self.send_when_written:
            self.send_when_written = False
            reason += " Nothing was sent."
        self.notify(reason, severity="error", timeout=10)

    def _writing(self) -> bool:
        """An SR of this report is being written (a save or a signature just asked for).

        Its result must still be to come: the worker is not finished for a moment after it
        delivered it, and a send asked in that moment would wait for a result already in."""
        return self.sr_writes > 0 and any(
            w.node is self and w.group == "sr" and not w.is_finished for w in self.app.workers
        )

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
            configured = workstation(self).config.ui.organization or report.organization
            if configured or ctx.institution_name:
                self._confirm_sign(report, ctx, reader.strip(), configured or None)
                return
            # Verifying Organization is Type 1 (PS3.3 C.17.2): asked, never made up.
            self.app.push_screen(
                EditValueDialog(
                    "Your organization (the Verifying Organization of the signed report; "
                    "[ui] organization in config.toml sets it for good)",
                    "",
                    lambda text: None if text.strip() else "Type your organization's name.",
                ),
                lambda org: (
                    self._confirm_sign(report, ctx, reader.strip(), org.strip())
                    if org and org.strip()
                    else None
                ),
            )

        self.app.push_screen(
            EditValueDialog("Sign as (reader's name, Family^Given)", default_reader, apply), named
        )

    def _confirm_sign(
        self, report: Report, ctx: StudyContext, reader: str, organization: str | None
    ) -> None:
        self._confirm(
            f"Sign the report as {reader}?",
            lambda: self._sign(report, ctx, reader, organization),
        )

    def _sign(
        self, report: Report, ctx: StudyContext, reader: str, organization: str | None
    ) -> None:
        try:
            if self.original is not None:
                report = make_addendum(self.original, report.text_of(SectionKind.ADDENDUM))
            self.report = sign(report, reader, organization=organization)
        except TuiviewerError as exc:
            self.notify(exc.message, severity="error")
            return
        self._touch()
        self.offer_send_back = self.source.node is not None and self.source.node.kind == "inbox"
        self._write_sr(self.report, ctx)

    def _confirm(self, question: str, then: Callable[[], None]) -> None:
        """Before signing or sending: whose study is this, and is there a final report already?

        The PACS is asked in a worker; the confirmation shows when the answer is in.
        """
        ctx = self.context
        if ctx is None:
            return
        # The keys typed while the PACS is asked are the question's (an Esc typed first takes
        # the command back); they never reach the report's text or leave the editor.
        opening = workstation(self).key_order.opening("the question", over=self)
        self.check_before(question, ctx, then, opening)

    @work(thread=True, exclusive=True, exit_on_error=False, group="check", description="Check")
    def check_before(
        self, question: str, ctx: StudyContext, then: Callable[[], None], opening: Opening
    ) -> None:
        def answer(yes: bool | None) -> None:
            if yes:
                then()

        try:
            text = confirmation_text(question, ctx, self.source.node)
            if not opening.cancelled:
                dialog = ConfirmDialog(text, yes="Yes")
                self.app.call_from_thread(opening.push, dialog, answer)
        finally:
            self.app.call_from_thread(opening.worker_done)

    def action_send(self) -> None:
        if self._writing():
            # Signed a moment ago: what is sent is the SR being written, not the one before.
            self.send_when_written = True
            self.notify("The report is being written; it is sent once it is on disk.")
            return
        self._send_written()

    def _send_written(self) -> None:
        """Ask where and send the SR written last (with its measurement and key images)."""
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
        path, companions = self.last_sr, list(self.last_companions)
        self._confirm(
            f"Send the report to {node.name} ({node.address})?",
            lambda: self._send(node, path, companions),
        )

    def _send(self, node: Node, path: Path, companions: list[Path]) -> None:
        self.send_sr(node, path, companions)

    @work(thread=True, exclusive=True, exit_on_error=False, group="send", description="Send SR")
    def send_sr(self, node: Node, path: Path, companions: Sequence[Path] = ()) -> None:
        if node.kind == "inbox":
            # Back to the sender through the queue (F4), which shows it and retries it.
            label = self.context.patient_name if self.context is not None else ""
            queue = workstation(self).queue_send_back
            for document in (path, *companions):
                self.app.call_from_thread(queue, node, document, self.source.study_uid, label)
            self.app.call_from_thread(self._sent, node, True)
            return
        try:
            send_report(node, path, companions)
        except TuiviewerError as exc:
            self.app.call_from_thread(self.notify, exc.message, severity="error", timeout=10)
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
            try:
                base = export_report(result[0], report, self._measurements())
            except SaveError as exc:
                self.notify(f"{exc.message} Choose another place.", severity="error", timeout=10)
                return
            self.notify(f"Wrote {base}.txt and {base}.md")
            if then is not None:
                then()

        title = "Export as text and Markdown (name without suffix)"
        self.app.push_screen(PathDialog(title, suggestion, allow_overwrite=False), chosen)

    def action_copy(self) -> None:
        if self.report is not None:
            # OSC 52: the terminal puts it on the local clipboard, over SSH too.
            self.app.copy_to_clipboard(to_text(self.report, self._measurements()))
            self.notify("Report text copied to the clipboard (OSC 52).")

    def _measurements(self) -> list[Measurement]:
        """The study's measurements (made in the viewer's volume screen), for the text."""
        try:
            return workstation(self).measurements.load(self.source.study_uid)
        except TuiviewerError as exc:
            self.notify(f"{exc.message} The text has no measurements.", severity="warning")
            return []

    def action_images(self) -> None:
        if self.source.path is not None:
            workstation(self).view_study(self.source.study_uid, self.source.path)
        else:
            self.notify("The images of this study are not on disk: retrieve them first.")
