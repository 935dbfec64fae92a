"""The Inbox (F6): the worklist of studies senders pushed to us, with who sent each one and
whether its report went back.

It is the worklist screen on the Inbox node (:mod:`tuiviewer.inbox`): the same report states,
priors, opening and reporting, plus two columns, "From" (the sender's AE title and address)
and "Sent back" (the latest attempt to send the report to the sender). It polls the
listener's journal every two seconds, so studies appear while they arrive, whether the
listener runs in this app (F7) or as a ``tuiviewer listen`` service.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.message import Message
from textual.widgets import DataTable, Input

from tuiviewer.inbox import Reply, inbox_changed_since, inbox_node, replies, reply_node, senders
from tuiviewer.net.find import StudyRow
from tuiviewer.net.listen import Received
from tuiviewer.net.nodes import Node
from tuiviewer.screens.query import study_cells
from tuiviewer.screens.worklist import WorklistScreen, _state_cell
from tuiviewer.worklist import images_on_disk


def _sender_cell(record: Received | None) -> Text:
    if record is None:
        return Text("")
    text = Text(record.calling_aet)
    if not record.complete:
        text.append(" ⚠", style="yellow")
    return text


def _reply_cell(reply: Reply | None) -> Text:
    if reply is None:
        return Text("—", style="dim")
    if reply.state == "sent":
        return Text(f"✓ {reply.node}", style="green")
    return Text(f"⚠ failed ({reply.node})", style="bold red")


class InboxScreen(WorklistScreen):
    """Studies received from senders, their report state and the report sent back."""

    POLL_S: ClassVar[float] = 2.0

    @dataclass
    class Polled(Message):
        """What the journal and the replies say now."""

        stamp: tuple[float, float]
        senders: dict[str, Received]
        replies: dict[str, Reply]

    def __init__(self, refresh_s: float | None = None) -> None:
        super().__init__(refresh_s)
        self.senders: dict[str, Received] = {}
        self.replies: dict[str, Reply] = {}
        self._stamp: tuple[float, float] | None = None

    def on_mount(self) -> None:
        # Textual runs the worklist's on_mount as well (after this one): it lays out the
        # table and starts the first refresh; the Inbox's own columns follow it.
        self.call_later(self._set_up)

    def _set_up(self) -> None:
        self._columns()
        # Pushed studies are read whenever they were acquired: no date range here.
        for selector in ("#wl-from", "#wl-to"):
            self.query_one(selector, Input).display = False
        self.sub_title = "Inbox · studies received"
        self.set_interval(self.POLL_S, self.poll)
        self.poll()

    def _columns(self) -> None:
        table = self.query_one("#worklist", DataTable)
        if "sender" not in table.columns:
            table.add_column("From", key="sender")
            table.add_column("Sent back", key="reply")

    def current_node(self) -> Node | None:
        store = self._store()
        return inbox_node(store) if store is not None else None

    @work(thread=True, exclusive=True, exit_on_error=False, group="inbox", description="Inbox")
    def poll(self) -> None:
        store = self._store()
        if store is None:
            return
        stamp = inbox_changed_since(store, (0.0, 0.0))
        if stamp == self._stamp:
            return
        self.post_message(self.Polled(stamp, senders(store), replies(store)))

    @on(Polled)
    def _polled(self, message: Polled) -> None:
        # A study arrived, or a report went back (so a new SR is in the store): ask again.
        journal_changed = self._stamp is None or message.stamp != self._stamp
        self._stamp = message.stamp
        self.senders, self.replies = message.senders, message.replies
        table = self.query_one("#worklist", DataTable)
        for uid in self.rows:
            if uid in table.rows:
                table.update_cell(uid, "sender", _sender_cell(self.senders.get(uid)))
                table.update_cell(uid, "reply", _reply_cell(self.replies.get(uid)))
        if journal_changed and not self.refreshing:
            self.start_refresh()
        elif journal_changed:
            # The running refresh may have missed the study that just arrived.
            self.set_timer(self.POLL_S, self.start_refresh)

    def _add_row(self, row: StudyRow) -> None:
        self._columns()
        table = self.query_one("#worklist", DataTable)
        table.add_row(
            _state_cell(self.states.get(row.uid)),
            *study_cells(row),
            _sender_cell(self.senders.get(row.uid)),
            _reply_cell(self.replies.get(row.uid)),
            key=row.uid,
        )

    def action_report(self) -> None:
        """The report editor; signing offers to send the report back to the sender."""
        study = self.selected_study()
        opener = getattr(self.app, "open_report", None)
        store = self._store()
        if study is None or opener is None or store is None:
            return
        folder: Path | None = None
        if images_on_disk(store, study.uid):
            folder = store.study_dir(study.uid)
        config = getattr(self.app, "config", None)
        nodes: dict[str, Node] = getattr(self.app, "nodes", {})
        node = reply_node(store, study.uid, getattr(config, "listen", None), nodes)
        opener(study.uid, folder, node)
