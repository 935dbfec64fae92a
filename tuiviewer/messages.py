"""Messages that workers post to the screens (past tense: something has happened)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from textual.message import Message

from tuiviewer.config.nodes import Node
from tuiviewer.dicom.deid.export import ExportSummary
from tuiviewer.dicom.loading import LoadedFile
from tuiviewer.dicom.rows import SeriesRow, StudyRow
from tuiviewer.dicom.scanning import InstanceRecord, ScanProgress
from tuiviewer.exceptions import TuiviewerError
from tuiviewer.net.trace import AssociationTrace
from tuiviewer.net.transport import echo
from tuiviewer.render.pipeline import RenderedImage
from tuiviewer.services.jobs import RetrieveJob
from tuiviewer.services.viewer.slices import LoadedSlice, RenderJob
from tuiviewer.services.viewer.stack import Stack
from tuiviewer.services.worklist import StudyStatus


@dataclass
class InstancesFound(Message):
    """A batch of instances found by the folder scan."""

    records: list[InstanceRecord]


@dataclass
class ScanProgressed(Message):
    """Scan counters; a flood collapses to the latest."""

    progress: ScanProgress

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ScanProgressed)


@dataclass
class FileLoaded(Message):
    """A file was read (possibly with problems) for the tag tree."""

    loaded: LoadedFile


@dataclass
class FileLoadFailed(Message):
    """A file could not be read at all."""

    path: Path
    reason: str


@dataclass
class ExportFinished(Message):
    """A de-identified export ended (written, failed and warnings inside)."""

    summary: ExportSummary
    dest: Path


@dataclass
class StudiesFound(Message):
    """Matches of a running C-FIND (a batch, in arrival order)."""

    query_id: int
    rows: list[StudyRow]


@dataclass
class SeriesFound(Message):
    """The series of one study (series-level C-FIND)."""

    study_uid: str
    rows: list[SeriesRow]


@dataclass
class QueryFinished(Message):
    """A C-FIND ended: normally, cancelled, or with an error (rows found before it are kept)."""

    query_id: int
    count: int
    elapsed_s: float
    cancelled: bool
    error: str | None


@dataclass
class EchoAnswered(Message):
    """A C-ECHO finished (``error`` is None when the node answered)."""

    node_name: str
    rtt_ms: float | None
    error: str | None


def echo_node(node: Node, trace: AssociationTrace | None = None) -> EchoAnswered:
    """C-ECHO ``node`` (blocking: call it from a worker thread) and say how it went."""
    try:
        result = echo(node, trace=trace)
    except TuiviewerError as exc:
        return EchoAnswered(node.name, None, exc.message)
    return EchoAnswered(node.name, result.rtt_ms, None)


@dataclass
class JobFinished(Message):
    """A retrieve job ended (its state says how)."""

    job: RetrieveJob
    evicted: list[str] = field(default_factory=list)
    """Studies removed from the local store after it, to stay within the size cap."""


@dataclass
class FrameRendered(Message):
    """A slice of ``stack`` was decoded and rendered for the viewer (``job`` says what was
    asked)."""

    job: RenderJob
    image: RenderedImage
    loaded: LoadedSlice
    size: tuple[int, int] | None
    """The pixel box the image was fitted into (capped at the source resolution for Kitty/Sixel)."""
    stack: Stack


@dataclass
class RenderFailed(Message):
    """A slice of ``stack`` could not be read or rendered."""

    job: RenderJob
    reason: str
    stack: Stack


@dataclass
class StatesFound(Message):
    """Report states of some studies (worklist rows or priors; ``refresh_id`` -1 for priors)."""

    refresh_id: int
    statuses: list[StudyStatus]
