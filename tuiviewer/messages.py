"""Messages that workers post to the screens (past tense: something has happened)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual.message import Message

from tuiviewer.dicom.deid import ExportSummary
from tuiviewer.dicom.loading import LoadedFile
from tuiviewer.dicom.scanning import InstanceRecord, ScanProgress
from tuiviewer.exceptions import TuiviewerError
from tuiviewer.jobs import RetrieveJob
from tuiviewer.net.find import SeriesRow, StudyRow
from tuiviewer.net.nodes import Node
from tuiviewer.net.trace import AssociationTrace
from tuiviewer.net.transport import echo
from tuiviewer.render.pipeline import RenderedImage
from tuiviewer.viewing import LoadedSlice, RenderJob


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


@dataclass
class FrameRendered(Message):
    """A slice was decoded and rendered for the viewer (``job`` says what was asked)."""

    job: RenderJob
    image: RenderedImage
    loaded: LoadedSlice
    size: tuple[int, int] | None
    """The pixel box the image was fitted into (capped at the source resolution for Kitty/Sixel)."""


@dataclass
class RenderFailed(Message):
    """A slice could not be read or rendered."""

    job: RenderJob
    reason: str
