"""The retrieve queue: one row per job with its progress; cancel, retry (resume) and open."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from tuiviewer.jobs import RetrieveJob
from tuiviewer.screens.dialogs.common import ValueDialog
from tuiviewer.widgets.safe import cell, shown

STATE_STYLE = {
    "queued": "dim",
    "running": "cyan",
    "done": "green",
    "partial": "yellow",
    "failed": "bold red",
    "cancelled": "yellow",
}


def bar(fraction: float | None, width: int = 12) -> str:
    """A text progress bar (DataTable cells cannot hold widgets)."""
    if fraction is None:
        return "░" * width
    filled = int(round(fraction * width))
    return "█" * filled + "░" * (width - filled)


class JobsScreen(Screen[None]):
    """Every retrieve of this session; refreshed a few times a second while shown."""

    CSS_PATH = "jobs.tcss"
    BINDINGS = [
        Binding("c", "cancel", "Cancel"),
        Binding("r", "retry", "Retry/resume"),
        Binding("o", "open", "Open"),
        Binding("t", "trace", "Trace"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="jobs-summary")
        yield DataTable(id="jobs", cursor_type="row", zebra_stripes=True)
        yield Static("", id="job-detail")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "Retrieve queue"
        table = self.query_one(DataTable)
        table.add_column("#", key="id")
        table.add_column("PACS", key="node")
        table.add_column("Study", key="study")
        table.add_column("State", key="state")
        table.add_column("Progress", key="bar")
        table.add_column("Instances · MB · speed · ETA", key="summary")
        self.refresh_rows()
        self.set_interval(0.25, self.refresh_rows)

    def jobs(self) -> list[RetrieveJob]:
        return list(getattr(self.app, "jobs", []))

    def refresh_rows(self) -> None:
        if not self.is_current:
            return
        table = self.query_one(DataTable)
        jobs = self.jobs()
        for job in jobs:
            cells = (
                str(job.id),
                cell(job.node.name),
                cell(job.label),
                Text(job.state, style=STATE_STYLE[job.state]),
                bar(job.fraction()),
                job.summary(),
            )
            key = str(job.id)
            if key in table.rows:
                for column, value in zip(
                    ("id", "node", "study", "state", "bar", "summary"), cells, strict=True
                ):
                    table.update_cell(key, column, value)
            else:
                table.add_row(*cells, key=key)
        running = sum(1 for job in jobs if job.state == "running")
        self.query_one("#jobs-summary", Static).update(
            f"{len(jobs)} jobs, {running} running" if jobs else "No retrieve yet: g on a study."
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
        retry = getattr(self.app, "retry_retrieve", None)
        if job is None or retry is None:
            return
        if not job.finished or job.state == "done":
            self.notify("Only a failed, partial or cancelled job can be retried.")
            return
        retry(job)

    def action_open(self) -> None:
        job = self.current_job()
        opener = getattr(self.app, "open_study", None)
        if job is not None and opener is not None:
            opener(job.study_uid)

    def action_trace(self) -> None:
        job = self.current_job()
        if job is None or job.trace is None:
            return
        self.app.push_screen(ValueDialog(f"Job {job.id}: association trace", job.trace.format()))
