"""Messages that workers post to the screens (past tense: something has happened)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual.message import Message

from tuiviewer.dicom.deid import ExportSummary
from tuiviewer.dicom.loading import LoadedFile
from tuiviewer.dicom.scanning import InstanceRecord, ScanProgress


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
