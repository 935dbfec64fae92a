"""The Inbox's table of studies: the worklist's columns plus who sent each study ("From") and
whether its report went back ("Sent back")."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import ClassVar

from rich.text import Text

from tuiviewer.dicom.rows import StudyRow
from tuiviewer.net.listen import Received
from tuiviewer.services.inbox import Reply
from tuiviewer.services.worklist import StudyStatus
from tuiviewer.widgets.safe import cell
from tuiviewer.widgets.study_table import OPTIONAL, PADDING, ColumnFit, StudyTable, fit_columns

NARROW = 100
"""Under this many columns the Inbox keeps From and Sent back and leaves out the modality."""


def sender_cell(record: Received | None) -> Text:
    """The sender's AE title, ``⚠`` when its association did not end cleanly."""
    if record is None:
        return Text("")
    text = cell(record.calling_aet)  # the sender's own words: cleaned, never markup
    if not record.complete:
        text.append(" ⚠", style="yellow")
    return text


def reply_cell(reply: Reply | None) -> Text:
    """The latest attempt to send the report back: ``✓ node``, ``⚠ failed (node)`` or ``—``."""
    if reply is None:
        return Text("—", style="dim")
    if reply.state == "sent":
        return Text(f"✓ {reply.node}", style="green")
    return Text(f"⚠ failed ({reply.node})", style="bold red")


class InboxTable(StudyTable):
    """Received studies with their report state, sender and report sent back."""

    EXTRA_COLUMNS: ClassVar[tuple[ColumnFit, ...]] = (
        ColumnFit("sender", 10),
        ColumnFit("reply", 12),
    )
    LABELS: ClassVar[dict[str, str]] = {"state": "Report", "sender": "From", "reply": "Sent back"}

    def __init__(
        self,
        studies: MutableMapping[str, StudyRow],
        states: Mapping[str, StudyStatus],
        *,
        id: str | None = None,  # noqa: A002
    ) -> None:
        super().__init__(studies, states, id=id)
        self.senders: Mapping[str, Received] = {}
        """The latest reception record per study (from the listener's journal)."""
        self.replies: Mapping[str, Reply] = {}
        """The latest send-back attempt per study."""

    def fit(self, width: int) -> dict[str, int]:
        """On a narrow terminal (80 columns) who sent a study and whether its report went back
        matter more to the Inbox than the modality: they stay, the modality goes first, the
        patient's name gives up what is needed for the rest to fit."""
        if width >= NARROW:
            return super().fit(width)
        room = width - 2
        others = [
            ColumnFit("state", 12),
            ColumnFit("date", 10),
            ColumnFit("desc", 12, grows=True),
            ColumnFit("sender", 8),
            ColumnFit("reply", 10),
        ]
        left = room - sum(c.width + PADDING for c in others) - PADDING
        patient = ColumnFit("patient", max(8, min(self.patient_width(), left)))
        return fit_columns(
            room, [others[0], patient, *others[1:]], [ColumnFit("mod", 5), *OPTIONAL]
        )

    def extra_cells(self, row: StudyRow) -> tuple[Text, ...]:
        return sender_cell(self.senders.get(row.uid)), reply_cell(self.replies.get(row.uid))

    def show_inbox(self, senders: Mapping[str, Received], replies: Mapping[str, Reply]) -> None:
        """What the journal and the replies say now, on the rows shown."""
        self.senders, self.replies = senders, replies
        for uid in self.studies:
            if uid in self.rows:
                self.set_cell(uid, "sender", sender_cell(senders.get(uid)))
                self.set_cell(uid, "reply", reply_cell(replies.get(uid)))
