"""The retrieve queue: one row per job with its progress; cancel, retry (resume) and open.

Rows change when the queue says a job moved on (:meth:`JobQueue.on_change`), not on a timer.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static

from tuiviewer.screens.base import workstation
from tuiviewer.screens.dialogs.common import ValueDialog
from tuiviewer.services.jobs import RetrieveJob
from tuiviewer.widgets.key_footer import KeyFooter
from tuiviewer.widgets.safe import cell, shown
from tuiviewer.widgets.wording import plural

STATE_STYLE = {
    "queued": "dim",
    "running": "cyan",
    "done": "green",
    "partial": "yellow",
    "failed": "bold red",
    "cancelled": "yellow",
}


COLUMNS = ("id", "node", "study", "state", "bar", "summary")
LABELS = {
    "id": "#",
    "node": "PACS",
    "study": "Study",
    "state": "State",
    "bar": "Progress",
    "summary": "Instances · MB · speed · ETA",
}
WIDE = 110
"""Terminals at least this wide show every column."""
NARROW_OTHERS = 60
"""Below :data:`WIDE`, the cells the other columns take (# · state · counts, MB, speed, ETA);
the study's label has the rest."""
WIDE_OTHERS = NARROW_OTHERS + 28
"""The same with the PACS and the progress bar."""


def bar(fraction: float | None, width: int = 12) -> str:
    """A text progress bar (DataTable cells cannot hold widgets)."""
    if fraction is None:
        return "░" * width
    filled = int(round(fraction * width))
    return "█" * filled + "░" * (width - filled)


class JobsScreen(Screen[None]):
    """Every retrieve of this session; a row changes as its job moves on."""

    class JobsChanged(Message):
        """A job progressed, finished a series or ended; a flood collapses to one."""

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, JobsScreen.JobsChanged)

    CSS_PATH = "jobs.tcss"
    columns: tuple[str, ...] = ()
    """The columns shown (they follow the terminal's width)."""
    _study_width = 0
    BINDINGS = [
        Binding("c", "cancel", "Cancel"),
        Binding("r", "retry", "Retry/resume"),
        Binding("o", "open", "Open"),
        Binding("T", "trace", "Trace"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="jobs-summary")
        yield DataTable(id="jobs", cursor_type="row", zebra_stripes=True)
        yield Static("", id="job-detail")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.sub_title = "Retrieve queue"
        self._lay_out(self.app.size.width)
        self._unsubscribe: Callable[[], None] = workstation(self).queue.on_change(
            lambda _job: self.post_message(self.JobsChanged())
        )
        self.refresh_rows()

    def on_resize(self, event: events.Resize) -> None:
        self._lay_out(event.size.width)

    def _lay_out(self, width: int) -> None:
        """The columns for ``width``: at 80 columns the PACS and the bar give way to the state,
        the counts, the megabytes and the ETA; the study's label has the room left."""
        wide = width >= WIDE
        columns = COLUMNS if wide else tuple(k for k in COLUMNS if k not in ("node", "bar"))
        study_width = max(10, width - (WIDE_OTHERS if wide else NARROW_OTHERS))
        if (columns, study_width) == (self.columns, self._study_width):
            return
        self.columns, self._study_width = columns, study_width
        table = self.query_one(DataTable)
        table.clear(columns=True)
        for key in columns:
            table.add_column(LABELS[key], key=key, width=study_width if key == "study" else None)
        self.refresh_rows()

    def on_unmount(self) -> None:
        self._unsubscribe()

    def on_screen_resume(self) -> None:
        self.refresh_rows()

    @on(JobsChanged)
    def _jobs_changed(self) -> None:
        self.refresh_rows()

    @on(DataTable.RowHighlighted)
    def _job_highlighted(self) -> None:
        self.refresh_rows()

    def jobs(self) -> list[RetrieveJob]:
        return workstation(self).jobs

    def refresh_rows(self) -> None:
        if not self.is_current:
            return
        table = self.query_one(DataTable)
        jobs = self.jobs()
        for job in jobs:
            cells = {
                "id": str(job.id),
                "node": cell(job.node.name),
                "study": cell(job.label),
                "state": Text(job.state, style=STATE_STYLE[job.state]),
                "bar": bar(job.fraction()),
                "summary": job.summary(),
            }
            key = str(job.id)
            if key in table.rows:
                for column in self.columns:
                    table.update_cell(
                        key,
                        column,
                        cells[column],
                        update_width=column != "study",
                    )
            else:
                table.add_row(*(cells[column] for column in self.columns), key=key)
        running = sum(1 for job in jobs if job.state == "running")
        self.query_one("#jobs-summary", Static).update(
            f"{plural(len(jobs), 'job')}, {running} running"
            if jobs
            else "No retrieve yet: g on a study."
        )
        current = self.current_job()
        detail = ""
        if current is not None:
            detail = current.outcome() or current.error or ""
            if current.error and current.error not in detail:
                detail = f"{detail}  ⚠ {current.error}".strip()
            if current.result is not None and current.result.failed_sops:
                detail += f"\nFailed instances: {', '.join(current.result.failed_sops[:5])}"
            if current.result is not None:
                for _sop, reason in current.result.refused[:5]:
                    detail += f"\n{reason}"
                for call in current.result.rejected_calls[:3]:
                    detail += f"\nOur storage SCP {call}."
        self.query_one("#job-detail", Static).update(shown(detail, lines=True))

    def current_job(self) -> RetrieveJob | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((job for job in self.jobs() if str(job.id) == key), None)

    def action_cancel(self) -> None:
        job = self.current_job()
        if job is not None and job.state == "running":
            job.cancel.set()
            self.notify(f"Cancelling job {job.id}: what arrived stays on disk.")

    def action_retry(self) -> None:
        job = self.current_job()
        if job is None:
            return
        if not job.finished or job.state == "done":
            self.notify("Only a failed, partial or cancelled job can be retried.")
            return
        workstation(self).retry_retrieve(job)

    def action_open(self) -> None:
        job = self.current_job()
        if job is not None:
            workstation(self).open_study(job.study_uid)

    def action_trace(self) -> None:
        job = self.current_job()
        if job is None or job.trace is None:
            return
        self.app.push_screen(ValueDialog(f"Job {job.id}: association trace", job.trace.format()))
