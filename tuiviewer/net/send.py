"""C-STORE of files and folders to a PACS (later: reports sent back to it).

Headers are read first (never pixel data) to learn each file's SOP class and transfer syntax;
the association proposes exactly those contexts, at most 128 per association, so a folder
with many classes and syntaxes is sent over several associations. Each file is then read
and sent on its own, and gets its own status: one refused file never stops the others.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from tuiviewer.config.nodes import Node
from tuiviewer.dicom.reading import ReadLimitError, read_dicom
from tuiviewer.dicom.scanning import iter_candidate_files
from tuiviewer.exceptions import DicomReadError
from tuiviewer.net.association import MAX_CONTEXTS, associate, check_status
from tuiviewer.net.errors import NetError, format_status, status_meaning
from tuiviewer.net.sopclasses import UNCOMPRESSED
from tuiviewer.net.trace import AssociationTrace, uid_name
from tuiviewer.safetext import clean

_HEADER_TAGS = [0x00080016, 0x00080018]  # SOP Class UID, SOP Instance UID
_FIRST_GROUPS = (0x0002, 0x0008)


@dataclass(frozen=True)
class SendProgress:
    """Where a send stands; reported after every file."""

    done: int
    """Files handled (sent or failed)."""
    total: int
    """DICOM files to send."""
    failed: int
    bytes: int
    """Bytes of the files sent so far."""
    elapsed_s: float
    current: Path | None


@dataclass(frozen=True)
class SendResult:
    """What happened to every file given."""

    sent: list[Path]
    """Acknowledged with Success or Warning."""
    failed: list[tuple[Path, str]]
    """Each with the reason in words (status code and meaning, or why it was not sent)."""
    skipped_not_dicom: list[Path]
    cancelled: bool = False
    warnings: list[tuple[Path, str]] = field(default_factory=list)
    """Stored with a warning status (e.g. 0xB000 coercion of data elements)."""
    traces: list[AssociationTrace] = field(default_factory=list)
    """One per association used."""

    @property
    def partial(self) -> bool:
        return bool(self.failed) or self.cancelled


@dataclass(frozen=True)
class _Item:
    path: Path
    sop_class: str
    sop_instance: str
    transfer_syntax: str
    has_meta: bool
    size: int

    @property
    def context_key(self) -> tuple[str, tuple[str, ...]]:
        # Implicit and explicit little endian are interchangeable: pynetdicom re-encodes
        # between them, so one context offering both serves either kind of file.
        if self.transfer_syntax in UNCOMPRESSED:
            first = [self.transfer_syntax]
            return self.sop_class, tuple(dict.fromkeys([*first, *UNCOMPRESSED]))
        return self.sop_class, (self.transfer_syntax,)


def _read_header(path: Path) -> _Item | str | None:
    """The file's send item, a reason it cannot be sent, or None if it is not DICOM."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
            has_prefix = head[128:132] == b"DICM"
            if not has_prefix:
                if len(head) < 8:
                    return None
                group_le = int.from_bytes(head[:2], "little")
                group_be = int.from_bytes(head[:2], "big")
                if group_le not in _FIRST_GROUPS and group_be not in _FIRST_GROUPS:
                    return None
            fh.seek(0)
            ds = read_dicom(
                fh, stop_before_pixels=True, specific_tags=_HEADER_TAGS, force=not has_prefix
            )
        size = path.stat().st_size
    except InvalidDicomError:
        return None
    except ReadLimitError as exc:
        return exc.message
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    except Exception as exc:  # pydicom raises many types on corrupt headers
        if not has_prefix:
            return None
        return f"its header cannot be parsed: {exc}"
    sop_class = str(ds.get("SOPClassUID", "") or "")
    sop_instance = str(ds.get("SOPInstanceUID", "") or "")
    if not has_prefix and not (sop_class or sop_instance):
        return None  # a forced parse of random bytes yields junk, not identifiers
    if not sop_class or not sop_instance:
        missing = "SOP Class UID (0008,0016)" if not sop_class else "SOP Instance UID (0008,0018)"
        return f"it has no {missing}"
    meta = getattr(ds, "file_meta", None)
    ts = str(meta.get("TransferSyntaxUID", "") or "") if meta is not None else ""
    if not ts:
        implicit, little = ds.original_encoding
        if implicit:
            ts = str(ImplicitVRLittleEndian)
        elif little is False:
            ts = str(ExplicitVRBigEndian)
        else:
            ts = str(ExplicitVRLittleEndian)
    return _Item(path, sop_class, sop_instance, ts, has_prefix and bool(meta), size)


def _load(item: _Item) -> Dataset:
    ds = read_dicom(item.path, force=not item.has_meta)
    meta = getattr(ds, "file_meta", None)
    if meta is None or "TransferSyntaxUID" not in meta:
        ds.file_meta = FileMetaDataset(meta) if meta is not None else FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = UID(item.transfer_syntax)
    return ds


def _chunks(items: list[_Item]) -> Iterator[tuple[list[tuple[str, list[str]]], list[_Item]]]:
    """Split ``items`` into groups whose distinct contexts fit in one association."""
    keys = list(dict.fromkeys(item.context_key for item in items))
    for start in range(0, len(keys), MAX_CONTEXTS):
        chunk = keys[start : start + MAX_CONTEXTS]
        wanted = set(chunk)
        yield (
            [(uid, list(ts)) for uid, ts in chunk],
            [item for item in items if item.context_key in wanted],
        )


def _accepts(assoc: Any, item: _Item) -> bool:
    for cx in assoc.accepted_contexts:
        if str(cx.abstract_syntax) != item.sop_class or not cx.as_scu:
            continue
        accepted = str(cx.transfer_syntax[0])
        if accepted == item.transfer_syntax or (
            accepted in UNCOMPRESSED and item.transfer_syntax in UNCOMPRESSED
        ):
            return True
    return False


def sendable(
    paths: Sequence[Path], cancel: threading.Event | None = None
) -> tuple[list[_Item], list[tuple[Path, str]], list[Path]]:
    """The DICOM files under ``paths`` read for sending (headers only): the items, the files
    that cannot be sent with the reason, and the files that are not DICOM.

    Raises:
        DicomReadError: a DICOMDIR cannot be parsed.
    """
    items: list[_Item] = []
    failed: list[tuple[Path, str]] = []
    skipped: list[Path] = []
    for path in iter_candidate_files([Path(p) for p in paths], cancel=cancel):
        header = _read_header(path)
        if header is None:
            skipped.append(path)
        elif isinstance(header, str):
            failed.append((path, f"File {str(path)!r} is not sent: {header}."))
        else:
            items.append(header)
    return items, failed, skipped


def send_files(
    node: Node,
    paths: Sequence[Path],
    *,
    progress: Callable[[SendProgress], None] | None = None,
    cancel: threading.Event | None = None,
    trace: AssociationTrace | None = None,
) -> SendResult:
    """C-STORE every DICOM file under ``paths`` (files and folders, recursively) to ``node``.

    DICOMDIRs are followed to the files they reference and not sent themselves; files that
    are not DICOM are skipped. Files are sent one at a time (memory holds one file).

    Args:
        node: the PACS.
        paths: files and folders.
        progress: called after each file.
        cancel: stops between files; the result says ``cancelled``.
        trace: filled with the first association; later ones (more than 128 contexts) are in
            ``result.traces``.

    Returns:
        Files sent, failed (with the reason) and skipped.

    Raises:
        NetError: the first association cannot be established (nothing was sent). Later
            associations that fail mark their files as failed instead.
        DicomReadError: a DICOMDIR cannot be parsed.
    """
    started = time.monotonic()
    items, failed, skipped = sendable(paths, cancel)

    sent: list[Path] = []
    warnings: list[tuple[Path, str]] = []
    traces: list[AssociationTrace] = []
    sent_bytes = 0
    cancelled = False
    total = len(items)

    def report(current: Path | None) -> None:
        if progress is not None:
            progress(
                SendProgress(
                    done=len(sent) + len(failed),
                    total=total + len(failed),
                    failed=len(failed),
                    bytes=sent_bytes,
                    elapsed_s=time.monotonic() - started,
                    current=current,
                )
            )

    for index, (contexts, group) in enumerate(_chunks(items)):
        if cancel is not None and cancel.is_set():
            cancelled = True
            break
        assoc_trace = trace if index == 0 and trace is not None else AssociationTrace()
        traces.append(assoc_trace)
        try:
            with associate(node, contexts, trace=assoc_trace) as assoc:
                for msg_id, item in enumerate(group, start=1):
                    if cancel is not None and cancel.is_set():
                        cancelled = True
                        break
                    outcome = _send_one(assoc, item, msg_id % 65536)
                    if outcome is None:
                        sent.append(item.path)
                        sent_bytes += item.size
                    elif outcome[0] == "warning":
                        sent.append(item.path)
                        sent_bytes += item.size
                        warnings.append((item.path, outcome[1]))
                    else:
                        failed.append((item.path, outcome[1]))
                    report(item.path)
        except NetError as exc:
            if index == 0 and not sent:
                raise
            done = {p for p in sent} | {p for p, _ in failed}
            for item in group:
                if item.path not in done:
                    failed.append((item.path, exc.message))
        if cancelled:
            break
    return SendResult(
        sent=sent,
        failed=failed,
        skipped_not_dicom=skipped,
        cancelled=cancelled,
        warnings=warnings,
        traces=traces,
    )


def _send_one(assoc: Any, item: _Item, msg_id: int) -> tuple[str, str] | None:
    """Send one file: None on success, ``("warning"|"failure", reason)`` otherwise.

    Raises:
        NetError: the association died (timeout, abort).
    """
    name = str(item.path)
    if not _accepts(assoc, item):
        return (
            "failure",
            f"File {name!r} is not sent: the peer accepted no presentation context for "
            f"{uid_name(item.sop_class)} in {uid_name(item.transfer_syntax)}.",
        )
    try:
        ds = _load(item)
    except ReadLimitError as exc:
        return ("failure", exc.message)
    except (OSError, InvalidDicomError, DicomReadError) as exc:
        return ("failure", f"File {name!r} cannot be read: {exc}.")
    try:
        status = assoc.send_c_store(ds, msg_id=msg_id)
    except (ValueError, AttributeError) as exc:
        return ("failure", f"File {name!r} cannot be encoded for sending: {exc}.")
    finally:
        del ds
    code = _status_code(status, assoc)
    category, _ = status_meaning("C-STORE", code)
    if category in ("Success",):
        return None
    comment = status.get("ErrorComment")
    detail = f" ({clean(str(comment)[:200])})" if comment else ""
    text = f"File {name!r}: the peer answered {format_status('C-STORE', code)}{detail}."
    if category == "Warning":
        return ("warning", text)
    return ("failure", text)


def _status_code(status: Dataset, assoc: Any) -> int:
    """The C-STORE status; failure codes are returned, lost answers raise."""
    if status is None or "Status" not in status:
        check_status("C-STORE", status, assoc)
    return int(status.Status)
