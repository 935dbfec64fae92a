"""The Inbox (F6): the worklist of studies senders pushed to us, with who sent each one and
whether its report went back.

It is the worklist screen on the Inbox node (:mod:`tuiviewer.services.inbox`): the same report
states, priors, opening and reporting, plus two columns, "From" (the sender's AE title) and
"Sent back" (the latest attempt to send the report to the sender). It looks at the listener's
journal every two seconds (a file's modification time), so studies appear while they arrive,
whether the listener runs in this app (F7) or as a ``tuiviewer listen`` service.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.message import Message
from textual.widgets import Input

from tuiviewer.config.nodes import Node
from tuiviewer.net.listen import Received
from tuiviewer.screens.base import StudyInView, workstation
from tuiviewer.screens.worklist import WorklistScreen
from tuiviewer.services.inbox import (
    Reply,
    inbox_changed_since,
    inbox_node,
    replies,
    reply_node,
    senders,
)
from tuiviewer.services.worklist import images_on_disk
from tuiviewer.widgets.inbox_table import InboxTable
from tuiviewer.widgets.study_table import StudyTable


class InboxScreen(WorklistScreen):
    """Studies received from senders, their report state and the report sent back."""

    POLL_S: ClassVar[float] = 2.0
    REMEMBERS_VIEW: ClassVar[bool] = False
    """The worklist's remembered date window is not the Inbox's (it has none)."""

    @dataclass
    class Polled(Message):
        """What the journal and the replies say now."""

        stamp: tuple[float, float]
        senders: dict[str, Received]
        replies: dict[str, Reply]

    def __init__(self, refresh_s: float | None = None) -> None:
        super().__init__(refresh_s)
        self._stamp: tuple[float, float] | None = None

    def study_table(self) -> StudyTable:
        return InboxTable(self.rows, self.states, id="worklist")

    @property
    def inbox(self) -> InboxTable:
        table = self.table
        assert isinstance(table, InboxTable)
        return table

    def on_mount(self) -> None:
        # Textual runs the worklist's on_mount as well (after this one): it sets the title
        # and starts the first refresh; the Inbox's own set-up follows it.
        self.call_later(self._set_up)

    def _set_up(self) -> None:
        # Pushed studies are read whenever they were acquired: no date range here.
        for selector in ("#wl-from", "#wl-to"):
            self.query_one(selector, Input).display = False
        self.sub_title = "Inbox · studies received"
        self.set_interval(self.POLL_S, self.poll)
        self.poll()

    def current_node(self) -> Node | None:
        return inbox_node(workstation(self).store)

    def nothing_found(self, node: Node) -> Text | None:
        modality = self.query_one("#wl-modality", Input).value.strip()
        return Text.assemble(
            (f"No study{f' with modality {modality}' if modality else ''} received yet.\n", "bold"),
            "Studies sent to this workstation appear here as they arrive: F7 starts the "
            "listener ([listen] in config.toml), or run tuiviewer listen.\n"
            "Report drafts of any date: d (or ctrl+p, Unfinished drafts).",
        )

    @work(thread=True, exclusive=True, exit_on_error=False, group="inbox", description="Inbox")
    def poll(self) -> None:
        store = workstation(self).store
        stamp = inbox_changed_since(store, (0.0, 0.0))
        if stamp == self._stamp:
            return
        self.post_message(self.Polled(stamp, senders(store), replies(store)))

    @on(Polled)
    def _polled(self, message: Polled) -> None:
        # A study arrived, or a report went back (so a new SR is in the store): ask again.
        journal_changed = self._stamp is None or message.stamp != self._stamp
        self._stamp = message.stamp
        self.inbox.show_inbox(message.senders, message.replies)
        if journal_changed and not self.refreshing:
            self.start_refresh()
        elif journal_changed:
            # The running refresh may have missed the study that just arrived.
            self.set_timer(self.POLL_S, self.start_refresh)

    def study_in_view(self) -> StudyInView | None:
        """The study under the cursor; its node is the sender the report goes back to."""
        study = self.selected_study()
        if study is None:
            return None
        station = workstation(self)
        store = station.store
        folder: Path | None = None
        if images_on_disk(store, study.uid):
            folder = store.study_dir(study.uid)
        node = reply_node(store, study.uid, station.config.listen, station.nodes)
        return StudyInView(study.uid, folder, node)

    def action_report(self) -> None:
        """The report editor; signing offers to send the report back to the sender."""
        study = self.study_in_view()
        if study is not None:
            workstation(self).open_report(study.study_uid, study.path, study.node)
