"""STOW-RS (PS3.18 10.5): send files and our SRs to a DICOMweb server, as C-STORE does.

Headers are read first (never pixel data), as :mod:`tuiviewer.net.send` does, and the files go
out in batches, each one ``POST /studies`` whose ``multipart/related`` body is read from disk
while it is sent (:class:`_Body`): never a batch in memory. The server's answer (PS3.18
10.5.3: Referenced SOP Sequence, Failed SOP Sequence with Failure Reason, Warning Reason) gives
every file its own outcome. A batch refused as too large (HTTP 413) is split until single
files remain; a single file still too large fails alone.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from tuiviewer.config.dicomweb import DicomWebNode
from tuiviewer.net.dicomweb.client import WebSession
from tuiviewer.net.dicomweb.errors import HttpStatusError
from tuiviewer.net.errors import NetError
from tuiviewer.net.send import SendProgress, SendResult, _Item, sendable
from tuiviewer.net.trace import AssociationTrace

BATCH_FILES = 50
BATCH_BYTES = 64 * 1024 * 1024
_READ = 256 * 1024

#: PS3.18 Table I.2-1 failure reasons, as the standard words them (hex codes like DIMSE).
_FAILURE_REASONS = {
    0xA700: "Refused: Out of Resources",
    0xA900: "Error: Data Set does not match SOP Class",
    0xC000: "Error: Cannot understand",
    0xC122: "Referenced Transfer Syntax not supported",
    0x0110: "Processing failure",
    0x0122: "Referenced SOP Class not supported",
}


class _Body:
    """A multipart/related body that reads each file only while it is being sent."""

    def __init__(self, items: Sequence[_Item], boundary: str) -> None:
        self._pieces: list[bytes | Path] = []
        self._length = 0
        for item in items:
            head = (
                f"--{boundary}\r\nContent-Type: application/dicom\r\n"
                f"Content-Length: {item.size}\r\n\r\n"
            ).encode("ascii")
            self._pieces += [head, item.path, b"\r\n"]
            self._length += len(head) + item.size + 2
        tail = f"--{boundary}--\r\n".encode("ascii")
        self._pieces.append(tail)
        self._length += len(tail)
        self._index = 0
        self._file: IO[bytes] | None = None
        self._buffer = b""

    def __len__(self) -> int:
        return self._length

    def read(self, size: int = -1) -> bytes:
        """The next bytes of the body (``b""`` at the end), for http.client's sending loop."""
        size = _READ if size is None or size < 0 else size
        while not self._buffer:
            if self._file is not None:
                data = self._file.read(size)
                if data:
                    return data
                self._file.close()
                self._file = None
                self._index += 1
                continue
            if self._index >= len(self._pieces):
                return b""
            piece = self._pieces[self._index]
            if isinstance(piece, Path):
                self._file = open(piece, "rb")  # noqa: SIM115 - closed when read to the end
                continue
            self._buffer = piece
            self._index += 1
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _batches(items: Sequence[_Item]) -> list[list[_Item]]:
    batches: list[list[_Item]] = []
    current: list[_Item] = []
    size = 0
    for item in items:
        if current and (len(current) >= BATCH_FILES or size + item.size > BATCH_BYTES):
            batches.append(current)
            current, size = [], 0
        current.append(item)
        size += item.size
    if current:
        batches.append(current)
    return batches


def _sequence(payload: dict[str, Any], tag: str) -> list[dict[str, Any]]:
    element = payload.get(tag)
    if not isinstance(element, dict):
        return []
    value = element.get("Value")
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _first(item: dict[str, Any], tag: str) -> Any:
    element = item.get(tag)
    if isinstance(element, dict) and isinstance(element.get("Value"), list) and element["Value"]:
        return element["Value"][0]
    return None


def _reason(code: Any) -> str:
    if isinstance(code, int):
        return f"0x{code:04X}: {_FAILURE_REASONS.get(code, 'failure')}"
    return "no reason given"


def _post(
    web: WebSession, batch: list[_Item]
) -> tuple[list[_Item], list[tuple[_Item, str]], list[tuple[_Item, str]]]:
    """STOW one batch; ``(stored, failed, warnings)``. A 413 splits the batch.

    Raises:
        NetError: the request failed as a whole (refused login, server error, lost connection).
    """
    node = web.node
    boundary = uuid.uuid4().hex
    body = _Body(batch, boundary)
    what = f"the STOW-RS request of {len(batch)} files"
    try:
        response = web.post(
            f"{node.service_url('stow')}/studies",
            what,
            data=body,
            sent=len(body),
            headers={
                "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
                "Accept": "application/dicom+json",
                "Content-Length": str(len(body)),
            },
        )
    finally:
        body.close()
    with response:
        status = response.status_code
        if status == 413 and len(batch) > 1:
            half = len(batch) // 2
            a = _post(web, batch[:half])
            b = _post(web, batch[half:])
            return a[0] + b[0], a[1] + b[1], a[2] + b[2]
        if status == 413:
            error = web.status_error(response, what)
            return [], [(batch[0], f"File {str(batch[0].path)!r} is not sent: {error.message}")], []
        if status >= 400 and status != 409:
            raise web.status_error(response, what)
        try:
            payload = json.loads(response.content or b"{}")
        except ValueError:
            payload = {}
        if isinstance(payload, list):
            payload = payload[0] if payload and isinstance(payload[0], dict) else {}
    by_sop = {item.sop_instance: item for item in batch}
    failed: list[tuple[_Item, str]] = []
    for entry in _sequence(payload, "00081198"):  # Failed SOP Sequence
        item = by_sop.pop(str(_first(entry, "00081155") or ""), None)
        if item is not None:
            code = _first(entry, "00081197")  # Failure Reason
            failed.append(
                (item, f"File {str(item.path)!r}: {node.describe()} refused it ({_reason(code)}).")
            )
    warnings: list[tuple[_Item, str]] = []
    for entry in _sequence(payload, "00081199"):  # Referenced SOP Sequence
        code = _first(entry, "00081196")  # Warning Reason
        item = by_sop.get(str(_first(entry, "00081155") or ""))
        if item is not None and code is not None:
            warnings.append(
                (item, f"File {str(item.path)!r}: stored with warning 0x{int(code):04X}.")
            )
    if status == 409 and not failed:  # all failed, and the server did not say which
        error = HttpStatusError(
            f"{node.describe()} stored none of the {len(batch)} files (HTTP 409 Conflict).",
            409,
            "Conflict",
        )
        return [], [(item, error.message) for item in batch], []
    return list(by_sop.values()), failed, warnings


def send_files(
    node: DicomWebNode,
    paths: Sequence[Path],
    *,
    progress: Callable[[SendProgress], None] | None = None,
    cancel: threading.Event | None = None,
    trace: AssociationTrace | None = None,
) -> SendResult:
    """STOW-RS every DICOM file under ``paths`` to ``node``, as
    :func:`tuiviewer.net.send.send_files` does over C-STORE.

    Raises:
        NetError: the first request fails as a whole (nothing was sent); later batches that
            fail mark their files as failed instead.
        DicomReadError: a DICOMDIR cannot be parsed.
    """
    started = time.monotonic()
    items, failed, skipped = sendable(paths, cancel)
    sent: list[Path] = []
    warnings: list[tuple[Path, str]] = []
    sent_bytes = 0
    cancelled = False
    trace = trace if trace is not None else AssociationTrace()
    with WebSession(node, trace) as web:
        for index, batch in enumerate(_batches(items)):
            if cancel is not None and cancel.is_set():
                cancelled = True
                break
            try:
                stored, refused, warned = _post(web, batch)
            except NetError as exc:
                if index == 0 and not sent:
                    raise
                failed.extend((item.path, exc.message) for item in batch)
                continue
            sent.extend(item.path for item in stored)
            sent_bytes += sum(item.size for item in stored)
            failed.extend((item.path, reason) for item, reason in refused)
            warnings.extend((item.path, reason) for item, reason in warned)
            if progress is not None:
                progress(
                    SendProgress(
                        done=len(sent) + len(failed),
                        total=len(items) + len(failed) - len(refused),
                        failed=len(failed),
                        bytes=sent_bytes,
                        elapsed_s=time.monotonic() - started,
                        current=batch[-1].path,
                    )
                )
    return SendResult(
        sent=sent,
        failed=failed,
        skipped_not_dicom=skipped,
        cancelled=cancelled,
        warnings=warnings,
        traces=[trace],
    )
