"""Hostile input, made on the spot: files and a PACS that try to exhaust memory, drive the
terminal or slip instances into a retrieve.

Files: deflate bombs of any inflated size (a 4 MB Basic Text SR that inflates to 4 GiB, written
as a stream so making it costs no memory), element bombs (a million tiny elements), nesting
bombs (10,000 levels) in several transfer syntaxes, and data sets whose names, descriptions and
UIDs carry terminal escapes (OSC 52 clipboard, OSC 0 title, CSI 2J, the C1 CSI U+009B) and
Textual markup.

The PACS (:func:`running_hostile_scp`) is a real pynetdicom Query/Retrieve SCP that answers
C-FIND with such values and error comments, and sends files as they are on disk (pynetdicom's
chunked sending), so a C-STORE may announce one SOP Instance UID and carry another, carry no
Study Instance UID, belong to another study, or be a deflate bomb; for C-MOVE it can call back
with another AE title, to another called AE title, or from another loopback address.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    generate_uid,
)
from pynetdicom import AE, _config, evt

from tests.support.ports import LOOPBACK, free_port
from tests.support.scps import STUDY_ROOT_FIND, TRANSFER_SYNTAXES, Scp

BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"
STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
DEFLATED = str(DeflatedExplicitVRLittleEndian)

#: What a value from a PACS or a file may try on a terminal.
OSC52 = "\x1b]52;c;aGFja2Vk\x07"  # put "hacked" on the clipboard
OSC0 = "\x1b]0;pwned\x07"  # set the window title
CSI2J = "\x1b[2J"  # clear the screen
C1_CSI = "\x9b31m"  # CSI as a single C1 character, then "31m" (red)
MARKUP = "[link=https://evil.example/]click[/link] [/]"
RAW_SEQUENCES = (
    b"\x1b]52;c;aGFja2Vk",
    b"\x1b]0;pwned",
    b"\x1b[2Jdesc",
    b"\x1b[2J^Who",
    b"\x1b[2Jgone",
    b"\x9b31m",
    b"\x9b2J",
)
"""Byte strings that must never reach a terminal: with their payloads they can only come from
the data (the UI's own output has ESC sequences, never these)."""


# --------------------------------------------------------------------------------------------
# Files


def _meta(sop_class: str, sop_uid: str, syntax: str) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = UID(syntax)
    buffer = DicomBytesIO()
    write_file_meta_info(buffer, meta, enforce_standard=True)
    return b"\x00" * 128 + b"DICM" + buffer.getvalue()


def _encode(ds: Dataset, *, implicit: bool = False, little: bool = True) -> bytes:
    buffer = DicomBytesIO()
    buffer.is_implicit_VR, buffer.is_little_endian = implicit, little
    write_dataset(buffer, ds)
    return buffer.getvalue()


@dataclass(frozen=True)
class Made:
    """A hostile file and what it claims to be."""

    path: Path
    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class: str


def sr_header(
    study_uid: str | None = None, series_uid: str | None = None, sop_uid: str | None = None
) -> Dataset:
    """The identifying top of a Basic Text SR report (PS3.3 A.35.1), no content yet."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = BASIC_TEXT_SR
    ds.SOPInstanceUID = sop_uid or generate_uid()
    ds.StudyDate = "20240102"
    ds.ContentDate = "20240103"
    ds.ContentTime = "101010"
    ds.Modality = "SR"
    ds.PatientName = "Bomb^Report"
    ds.PatientID = "BOMB1"
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.SeriesNumber = 99
    ds.InstanceNumber = 1
    ds.CompletionFlag = "COMPLETE"
    ds.VerificationFlag = "UNVERIFIED"
    return ds


def deflate_bomb(
    path: Path,
    inflated_mb: float,
    *,
    study_uid: str | None = None,
    series_uid: str | None = None,
    sop_uid: str | None = None,
    value: bytes = b"A",
) -> Made:
    """A Basic Text SR in Deflated Explicit VR Little Endian whose Text Value (0040,A160)
    inflates to ``inflated_mb`` MiB (at most 4 GiB - 2, the longest UT), written as a stream.

    ~1 KB of file per MiB inflated: 4,096 MiB make a 4 MB file. Each MiB is compressed once
    with a full flush (which makes the block stand alone) and repeated, so a 4 GiB bomb is
    written in a fraction of a second.
    """
    ds = sr_header(study_uid, series_uid, sop_uid)
    size = min(int(inflated_mb * (1 << 20)), 0xFFFFFFFE)
    size -= size % 2
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    chunk = (value * ((1 << 20) // len(value) + 1))[: 1 << 20]
    with open(path, "wb") as out:
        out.write(_meta(BASIC_TEXT_SR, str(ds.SOPInstanceUID), DEFLATED))
        head = _encode(ds) + struct.pack("<HH2sHL", 0x0040, 0xA160, b"UT", 0, size)
        out.write(compressor.compress(head) + compressor.flush(zlib.Z_FULL_FLUSH))
        block = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
        whole, rest = divmod(size, len(chunk))
        for _ in range(whole):
            out.write(block)
        out.write(compressor.compress(chunk[:rest]) + compressor.flush())
    return Made(
        path,
        str(ds.StudyInstanceUID),
        str(ds.SeriesInstanceUID),
        str(ds.SOPInstanceUID),
        BASIC_TEXT_SR,
    )


def element_bomb(path: Path, elements: int, *, deflated: bool = False) -> Made:
    """A Secondary Capture header followed by ``elements`` tiny private US elements (10 bytes
    each in explicit VR: a million make a 10 MB file), optionally deflated."""
    ds = Dataset()
    ds.SOPClassUID = SECONDARY_CAPTURE
    ds.SOPInstanceUID = generate_uid()
    ds.PatientName = "Wide^Million"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "OT"
    head = _encode(ds)
    syntax = DEFLATED if deflated else str(ExplicitVRLittleEndian)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS) if deflated else None

    def put(out: Any, data: bytes) -> None:
        out.write(compressor.compress(data) if compressor is not None else data)

    with open(path, "wb") as out:
        out.write(_meta(SECONDARY_CAPTURE, str(ds.SOPInstanceUID), syntax))
        # The header's groups (up to 0020) first, then the private groups, in ascending order.
        put(out, head)
        written, group = 0, 0x0021
        while written < elements:
            block = bytearray(struct.pack("<HH2sH", group, 0x0010, b"LO", 8) + b"HOSTILE ")
            count = min(elements - written, 0xF000)
            for element in range(0x1000, 0x1000 + count):
                block += struct.pack("<HH2sHH", group, element, b"US", 2, 1)
            put(out, bytes(block))
            written += count
            group += 2
        if compressor is not None:
            out.write(compressor.flush())
    return Made(
        path,
        str(ds.StudyInstanceUID),
        str(ds.SeriesInstanceUID),
        str(ds.SOPInstanceUID),
        SECONDARY_CAPTURE,
    )


def _grey16x16(ds: Dataset) -> None:
    """The Image Pixel attributes of a 16x16 8-bit grey image (PS3.3 C.7.6.3)."""
    ds.Rows, ds.Columns = 16, 16
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0


def depth_bomb(
    path: Path, levels: int, *, syntax: str = str(ExplicitVRLittleEndian), image: bool = False
) -> Made:
    """A Basic Text SR whose Content Sequence nests ``levels`` deep (undefined lengths), in
    ``syntax`` (explicit or implicit VR little endian, explicit big endian, deflated); with
    ``image``, a 16x16 Secondary Capture image whose pixel data follows the nest."""
    ds = sr_header()
    if image:
        ds.SOPClassUID = SECONDARY_CAPTURE
        ds.Modality = "OT"
        _grey16x16(ds)
    implicit = syntax == str(ImplicitVRLittleEndian)
    little = syntax != str(ExplicitVRBigEndian)
    endian = "<" if little else ">"
    if implicit:
        seq = struct.pack("<HHL", 0x0040, 0xA730, 0xFFFFFFFF)
    else:
        seq = struct.pack(endian + "HH2sHL", 0x0040, 0xA730, b"SQ", 0, 0xFFFFFFFF)
    item = struct.pack(endian + "HHL", 0xFFFE, 0xE000, 0xFFFFFFFF)
    close = struct.pack(endian + "HHL", 0xFFFE, 0xE00D, 0) + struct.pack(
        endian + "HHL", 0xFFFE, 0xE0DD, 0
    )
    body = _encode(ds, implicit=implicit, little=little) + (seq + item) * levels + close * levels
    if image:
        pixels = Dataset()
        pixels.PixelData = bytes(range(256))
        pixels["PixelData"].VR = "OB"
        body += _encode(pixels, implicit=implicit, little=little)
    if syntax == DEFLATED:
        compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        body = compressor.compress(body) + compressor.flush()
    path.write_bytes(_meta(str(ds.SOPClassUID), str(ds.SOPInstanceUID), syntax) + body)
    return Made(
        path,
        str(ds.StudyInstanceUID),
        str(ds.SeriesInstanceUID),
        str(ds.SOPInstanceUID),
        str(ds.SOPClassUID),
    )


def escape_values() -> dict[str, str]:
    """Attribute values that try every trick on a terminal, by keyword."""
    return {
        "PatientName": f"Evil{OSC52}^Name{MARKUP}",
        "PatientID": f"ID{C1_CSI}7",
        "StudyDescription": f"Study{OSC0}desc",
        "SeriesDescription": f"Series{CSI2J}desc",
        "AccessionNumber": f"ACC{C1_CSI}",
        "InstitutionName": f"Clinic{OSC52}",
        "ReferringPhysicianName": f"Dr{CSI2J}^Who",
    }


def escape_image(
    path: Path | None = None, *, study_uid: str | None = None, series_uid: str | None = None
) -> Dataset:
    """A small 8-bit Secondary Capture image whose names and descriptions hold escapes (UTF-8,
    so U+009B is stored as the bytes C2 9B); written to ``path`` when given."""
    import numpy as np

    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = SECONDARY_CAPTURE
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.StudyDate = "20240102"
    ds.Modality = "OT"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    for keyword, value in escape_values().items():
        setattr(ds, keyword, value)
    _grey16x16(ds)
    ds.PixelData = (np.arange(256, dtype=np.uint8)).tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    if path is not None:
        ds.save_as(path, enforce_file_format=True)
    return ds


def spoofed_file(
    path: Path, announced_sop: str, ds: Dataset, *, syntax: str = str(ExplicitVRLittleEndian)
) -> Path:
    """``ds`` written with ``announced_sop`` as its file meta's SOP Instance UID: sent as is,
    its C-STORE announces that UID while the data set says its own."""
    body = _encode(ds, implicit=syntax == str(ImplicitVRLittleEndian))
    path.write_bytes(_meta(str(ds.SOPClassUID), announced_sop, syntax) + body)
    return path


def plain_sr(
    study_uid: str, series_uid: str, sop_uid: str | None = None, *, text: str = "Normal."
) -> Dataset:
    """A small, harmless Basic Text SR report (the kind the worklist reads)."""
    ds = sr_header(study_uid, series_uid, sop_uid)
    title = Dataset()
    title.CodeValue, title.CodingSchemeDesignator = "18748-4", "LN"
    title.CodeMeaning = "Diagnostic Imaging Report"
    ds.ValueType = "CONTAINER"
    ds.ContinuityOfContent = "SEPARATE"
    ds.ConceptNameCodeSequence = DicomSequence([title])
    item = Dataset()
    item.RelationshipType = "CONTAINS"
    item.ValueType = "TEXT"
    name = Dataset()
    name.CodeValue, name.CodingSchemeDesignator, name.CodeMeaning = "121071", "DCM", "Finding"
    item.ConceptNameCodeSequence = DicomSequence([name])
    item.TextValue = text
    ds.ContentSequence = DicomSequence([item])
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


# --------------------------------------------------------------------------------------------
# The hostile PACS


@dataclass
class HostileLog:
    """What the hostile SCP did."""

    sent: list[str] = field(default_factory=list)
    """Files sent by C-STORE sub-operations (their names)."""
    store_statuses: list[int] = field(default_factory=list)
    """The status our client answered each C-STORE with."""
    move_rejected: list[tuple[int, int, int]] = field(default_factory=list)
    """(result, source, reason) of each C-MOVE callback association that was rejected."""
    move_port: int | None = None
    """Where the C-MOVE destination listens (set by the test: the node's move port)."""


@contextmanager
def running_hostile_scp(
    *,
    find_answers: Sequence[Dataset] = (),
    find_failure: tuple[int, str] | None = None,
    files: Sequence[Path] = (),
    sop_classes: Sequence[str] = (SECONDARY_CAPTURE, BASIC_TEXT_SR),
    move_calling_aet: str | None = None,
    move_called_aet: str | None = None,
    move_source: str | None = None,
    extra_move_files: Sequence[Path] = (),
    ae_title: str = "EVILPACS",
    log: HostileLog | None = None,
) -> Iterator[tuple[Scp, HostileLog]]:
    """A Query/Retrieve SCP that lies.

    Args:
        find_answers: every C-FIND is answered with these identifiers (whatever was asked).
        find_failure: end each C-FIND with this (status, ErrorComment) instead of success.
        files: sent as they are on disk to every C-GET and C-MOVE (chunked: the C-STORE
            announces the file meta's SOP Instance UID, the data set says what it says).
        sop_classes: storage classes it can send (as SCU over C-GET's association).
        move_calling_aet: the AE title it calls back with for C-MOVE (default its own).
        move_called_aet: the AE title it calls for C-MOVE (default the move destination).
        move_source: the loopback address it calls back from (e.g. ``127.0.0.2``).
        extra_move_files: for C-MOVE, also pushed on a second association, unasked.
    """
    record = log if log is not None else HostileLog()
    chunked = _config.STORE_SEND_CHUNKED_DATASET

    def on_find(event: Any) -> Iterator[tuple[int | Dataset, Dataset | None]]:
        for answer in find_answers:
            yield 0xFF00, answer
        if find_failure is not None:
            status = Dataset()
            status.Status = find_failure[0]
            status.ErrorComment = find_failure[1]
            yield status, None
            return
        yield 0x0000, None

    def on_get(event: Any) -> Iterator[Any]:
        # pynetdicom's C-GET service would re-encode datasets; the files go as they are, by
        # hand, over the C-GET's own association; then it reports no sub-operations of its own.
        for path in files:
            record.sent.append(path.name)
            try:
                status = event.assoc.send_c_store(path)
            except ValueError:  # no accepted context for the file's class and syntax
                record.store_statuses.append(-1)
                continue
            record.store_statuses.append(int(status.Status) if "Status" in status else -1)
        yield 0

    def push(address: tuple[str, int], calling: str, called: str, paths: Sequence[Path]) -> None:
        ae = AE(ae_title=calling)
        for uid in sop_classes:
            for syntax in (*TRANSFER_SYNTAXES, DEFLATED):  # one context each: files go as is
                ae.add_requested_context(uid, [syntax])
        kwargs: dict[str, Any] = {}
        if move_source:
            kwargs["bind_address"] = (move_source, 0)
        assoc = ae.associate(address[0], address[1], ae_title=called, **kwargs)
        if assoc.is_rejected:
            primitive: Any = assoc.acceptor.primitive
            record.move_rejected.append(
                (int(primitive.result), int(primitive.result_source), int(primitive.diagnostic))
            )
            return
        if not assoc.is_established:
            return
        try:
            for path in paths:
                record.sent.append(path.name)
                status = assoc.send_c_store(path)
                record.store_statuses.append(int(status.Status) if "Status" in status else -1)
        finally:
            assoc.release()

    def on_move(event: Any) -> Iterator[Any]:
        destination = str(event.move_destination).strip()
        # The caller listens on its node's move port, which the C-MOVE names nowhere: the
        # test hands it over in the log (``log.move_port``).
        port = record.move_port
        if port is None:
            yield None, None
            return
        address = (str(event.assoc.requestor.address), int(port))
        # pynetdicom would call back honestly; this SCP calls back by hand first, so it can
        # lie about who calls, from where, and what it sends; then it reports no
        # sub-operations of its own.
        push(
            address,
            move_calling_aet or ae_title,
            move_called_aet or destination,
            [*files, *extra_move_files],
        )
        yield address
        yield 0

    ae = AE(ae_title=ae_title)
    for uid in (STUDY_ROOT_FIND, STUDY_ROOT_GET, STUDY_ROOT_MOVE):
        ae.add_supported_context(uid, TRANSFER_SYNTAXES)
    for uid in sop_classes:
        ae.add_supported_context(uid, [*TRANSFER_SYNTAXES, DEFLATED], scu_role=True, scp_role=True)
    ae.network_timeout = 10
    ae.dimse_timeout = 20
    port = free_port()
    _config.STORE_SEND_CHUNKED_DATASET = True
    server = ae.start_server(
        (LOOPBACK, port),
        block=False,
        evt_handlers=[
            (evt.EVT_C_FIND, on_find),
            (evt.EVT_C_GET, on_get),
            (evt.EVT_C_MOVE, on_move),
        ],
    )
    assert server is not None
    try:
        yield Scp(ae_title=ae_title, port=port), record
    finally:
        server.shutdown()
        _config.STORE_SEND_CHUNKED_DATASET = chunked


def find_answer(**values: str) -> Dataset:
    """A study-level C-FIND identifier carrying ``values`` verbatim (escapes and all)."""
    answer = Dataset()
    answer.SpecificCharacterSet = "ISO_IR 192"
    answer.QueryRetrieveLevel = "STUDY"
    for keyword, value in values.items():
        setattr(answer, keyword, value)
    return answer


def c1_answer_bytes() -> bytes:
    """The raw value of a Latin-1 PN holding the single C1 byte 0x9B (CSI)."""
    return b"Evil\x9b2J^Name"


__all__ = [
    "BASIC_TEXT_SR",
    "C1_CSI",
    "CSI2J",
    "MARKUP",
    "OSC0",
    "OSC52",
    "RAW_SEQUENCES",
    "HostileLog",
    "Made",
    "c1_answer_bytes",
    "deflate_bomb",
    "depth_bomb",
    "element_bomb",
    "escape_image",
    "escape_values",
    "find_answer",
    "plain_sr",
    "running_hostile_scp",
    "spoofed_file",
]


# --------------------------------------------------------------------------------------------
# A child process with a memory limit

MEMORY_TARGET = 1536 << 20
"""The issue's bound: no input file may take tuiviewer past 1.5 GiB resident."""
ADDRESS_SPACE_LIMIT = 3 << 30
"""RLIMIT_AS of the child: allocations beyond it fail (MemoryError) instead of taking the
machine; it is looser than :data:`MEMORY_TARGET` because thread stacks and libraries reserve
address space they never touch."""


@dataclass(frozen=True)
class Limited:
    """What a memory-limited child did."""

    returncode: int
    stdout: str
    stderr: str
    peak_rss: int
    """Peak resident set size in bytes (``ru_maxrss`` of the child)."""
    seconds: float


def run_with_memory_limit(
    args: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    timeout: float = 300,
    address_space: int = ADDRESS_SPACE_LIMIT,
) -> Limited:
    """Run ``args`` with RLIMIT_AS set to ``address_space``; report its peak RSS and time.

    The peak is the child's own high-water mark (``VmHWM`` in ``/proc/PID/status``), read
    while it runs: ``ru_maxrss`` of a forked child counts the parent's memory at the fork,
    which in a test session is the whole pytest process.
    """
    import os
    import resource
    import subprocess
    import tempfile
    import time

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))

    def high_water(pid: int) -> int:
        try:
            with open(f"/proc/{pid}/status", encoding="ascii") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.monotonic()
        child = subprocess.Popen(
            list(args),
            stdout=out,
            stderr=err,
            text=True,
            preexec_fn=limit,  # the limit is set in the child only
            env={**os.environ, **(env or {})},
        )
        peak = 0
        try:
            while child.poll() is None:
                peak = max(peak, high_water(child.pid))
                if time.monotonic() - started > timeout:
                    child.kill()
                time.sleep(0.02)
        finally:
            child.wait()
        seconds = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        return Limited(child.returncode, out.read(), err.read(), peak, seconds)
