"""Find DICOM instances under files, folders and DICOMDIRs quickly, in a worker, cancellably.

The study browser must show a folder of thousands of files within a second or two and keep
the UI responsive meanwhile, so this module reads headers only (a few tags, stopping before
the pixel data), turns each file into a small frozen :class:`InstanceRecord` (no ``Dataset``
kept alive), and hands records out in batches as soon as they are ready. Files that are not
DICOM are counted, not reported; DICOM files whose header cannot be read are counted separately
and can be reported one by one through ``on_error``.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag
from pydicom.uid import MediaStorageDirectoryStorage

from tuiviewer.dicom.reading import ReadLimitError, read_dicom
from tuiviewer.exceptions import DicomReadError

logger = logging.getLogger(__name__)

NO_SOP_INSTANCE_UID = "(no SOP Instance UID)"
NO_STUDY_UID = "(no Study Instance UID)"
NO_SERIES_UID = "(no Series Instance UID)"

#: The only attributes a record needs, in tag order. Reading stops after the last one, which
#: skips private groups, long sequences and the pixel data.
_TAGS: tuple[int, ...] = (
    0x00080005,  # SpecificCharacterSet, needed to decode names
    0x00080008,  # ImageType
    0x00080016,  # SOPClassUID
    0x00080018,  # SOPInstanceUID
    0x00080020,  # StudyDate
    0x00080030,  # StudyTime
    0x00080050,  # AccessionNumber
    0x00080060,  # Modality
    0x00081030,  # StudyDescription
    0x0008103E,  # SeriesDescription
    0x00100010,  # PatientName
    0x00100020,  # PatientID
    0x00100030,  # PatientBirthDate
    0x00100040,  # PatientSex
    0x00180086,  # EchoNumbers
    0x0020000D,  # StudyInstanceUID
    0x0020000E,  # SeriesInstanceUID
    0x00200011,  # SeriesNumber
    0x00200012,  # AcquisitionNumber
    0x00200013,  # InstanceNumber
    0x00200032,  # ImagePositionPatient
    0x00200037,  # ImageOrientationPatient
    0x00280008,  # NumberOfFrames
    0x00280010,  # Rows
    0x00280011,  # Columns
)
_LAST_TAG = _TAGS[-1]
_SPECIFIC_TAGS: list[BaseTag | int] = list(_TAGS)

#: Groups a DICOM data set without preamble plausibly starts with (little or big endian):
#: file meta (0002), identifying (0008). Anything else is not worth a forced parse.
_HEADLESS_FIRST_GROUPS = {0x0002, 0x0008}

_MEDIA_STORAGE_DIRECTORY = str(MediaStorageDirectoryStorage)


@dataclass(frozen=True)
class InstanceRecord:
    """One DICOM instance as the study browser needs it; plain values, no ``Dataset``."""

    path: Path
    sop_instance_uid: str
    sop_class_uid: str
    patient_name: str
    """As stored (``Family^Given``), decoded with the file's character set."""
    patient_id: str
    patient_birth_date: str
    patient_sex: str
    study_uid: str
    study_date: str
    study_time: str
    study_description: str
    accession_number: str
    series_uid: str
    series_number: int | None
    series_description: str
    modality: str
    instance_number: int | None
    acquisition_number: int | None
    echo_number: int | None
    image_position: tuple[float, float, float] | None
    image_orientation: tuple[float, ...] | None
    """Six direction cosines (row then column), or ``None``."""
    rows: int | None
    columns: int | None
    frames: int
    problem: str | None = None
    """Set when the header was read but something is odd (missing UIDs, bad values)."""
    image_type: tuple[str, ...] = ()
    """ImageType values (e.g. ``("ORIGINAL", "PRIMARY", "LOCALIZER")``)."""


@dataclass(frozen=True)
class ScanProgress:
    """Counters of a running scan; ``done`` is true in the last report only."""

    files_seen: int
    instances: int
    skipped_not_dicom: int
    unreadable: int
    current: Path | None
    done: bool


# --------------------------------------------------------------------------------------------
# Finding files


def _dicomdir_references(path: Path, ds: Dataset | None = None) -> list[Path]:
    """Files referenced by a DICOMDIR's records, resolved against the DICOMDIR's folder.

    Walks the flat DirectoryRecordSequence rather than pydicom's ``FileSet`` hierarchy: the
    latter refuses DICOMDIRs with broken offsets or unknown record types, while every record
    that carries a ReferencedFileID is still a usable reference.
    """
    if ds is None:
        try:
            ds = read_dicom(path)
        except ReadLimitError:
            raise
        except (OSError, InvalidDicomError, ValueError, EOFError) as exc:
            raise DicomReadError(f"Cannot read the DICOMDIR {str(path)!r}: {exc}") from exc
    root = path.parent
    out: list[Path] = []
    for record in ds.get("DirectoryRecordSequence", []):
        file_id = record.get("ReferencedFileID")
        if not file_id:
            continue
        parts = [file_id] if isinstance(file_id, str) else [str(p) for p in file_id]
        out.append(_resolve_file_id(root, parts))
    return out


def _resolve_file_id(root: Path, parts: Sequence[str]) -> Path:
    """``root/parts…``, matching case-insensitively when the exact name is absent.

    File IDs are upper case by the standard, but CDs copied or mounted on Linux often end up
    lower case.
    """
    exact = root.joinpath(*parts)
    if exact.exists():
        return exact
    current = root
    for part in parts:
        candidate = current / part
        if not candidate.exists():
            try:
                matches = [e.name for e in os.scandir(current) if e.name.upper() == part.upper()]
            except OSError:
                return exact
            if not matches:
                return exact
            candidate = current / sorted(matches)[0]
        current = candidate
    return current


def _looks_like_dicomdir(path: Path) -> bool:
    """True when the file meta says Media Storage Directory Storage (cheap: 1 KiB read)."""
    try:
        with open(path, "rb") as f:
            head = f.read(1024)
    except OSError:
        return False
    return _meta_sop_class(head) == _MEDIA_STORAGE_DIRECTORY


def _meta_sop_class(head: bytes) -> str | None:
    """MediaStorageSOPClassUID from the first bytes of a Part 10 file, if present there."""
    if head[128:132] != b"DICM":
        return None
    # File meta is always Explicit VR Little Endian (PS3.10 7.1).
    marker = b"\x02\x00\x02\x00UI"
    at = head.find(marker, 132)
    if at < 0 or at + 8 > len(head):
        return None
    (length,) = struct.unpack_from("<H", head, at + 6)
    value = head[at + 8 : at + 8 + length]
    return value.rstrip(b"\x00 ").decode("ascii", "replace")


class _Walker:
    """Depth-first, name-sorted walk that yields each real file once and never loops."""

    def __init__(self, cancel: threading.Event | None) -> None:
        self.cancel = cancel
        self.seen_files: set[tuple[int, int] | str] = set()
        self.seen_dirs: set[tuple[int, int]] = set()

    def cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    def first_visit(self, path: Path, st: os.stat_result | None = None) -> bool:
        if st is None:
            try:
                st = path.stat()
            except OSError:
                key: tuple[int, int] | str = str(path)  # missing: read_record will explain
            else:
                key = (st.st_dev, st.st_ino)
        else:
            key = (st.st_dev, st.st_ino)
        if key in self.seen_files:
            return False
        self.seen_files.add(key)
        return True

    def walk(self, paths: Iterable[Path]) -> Iterator[Path]:
        for path in paths:
            if self.cancelled():
                return
            path = Path(path)
            if path.is_dir():
                yield from self._walk_dir(path)
            elif self.first_visit(path):
                yield path

    def _walk_dir(self, folder: Path) -> Iterator[Path]:
        try:
            st = folder.stat()
        except OSError:
            return
        if (st.st_dev, st.st_ino) in self.seen_dirs:
            return  # a symlink back up the tree, or the same folder given twice
        self.seen_dirs.add((st.st_dev, st.st_ino))
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            logger.debug("Cannot list a folder while scanning: %s", exc.strerror)
            return
        subdirs = []
        for entry in entries:
            if self.cancelled():
                return
            try:
                if entry.is_dir():
                    subdirs.append(entry)
                    continue
                if not entry.is_file():
                    continue  # broken symlink, socket, fifo
                est = entry.stat()
            except OSError:
                continue
            path = Path(entry.path)
            if self.first_visit(path, est):
                yield path
        for entry in subdirs:
            yield from self._walk_dir(Path(entry.path))


def _is_dicomdir_name(path: Path) -> bool:
    return path.name.upper() == "DICOMDIR"


def iter_candidate_files(
    paths: Sequence[Path], *, cancel: threading.Event | None = None
) -> Iterator[Path]:
    """Yield every file worth reading under ``paths``, each real file once.

    Parameters:
        paths: files and folders. Folders are walked recursively in name order (symlinked
            folders are followed once; loops are cut). A DICOMDIR — a file named ``DICOMDIR`` or
            any file whose meta says Media Storage Directory Storage — is replaced by the files
            its records reference; the DICOMDIR itself is not an instance and is not yielded.
        cancel: stop promptly once set.

    Raises:
        DicomReadError: a DICOMDIR cannot be parsed.
    """
    walker = _Walker(cancel)
    for path in walker.walk(paths):
        if _is_dicomdir_name(path) or _looks_like_dicomdir(path):
            for ref in _dicomdir_references(path):
                if walker.cancelled():
                    return
                if walker.first_visit(ref):
                    yield ref
        else:
            yield path


# --------------------------------------------------------------------------------------------
# Reading one file


class _Dicomdir:
    """Marker returned by :func:`_inspect` for a Media Storage Directory."""

    def __init__(self, references: list[Path]) -> None:
        self.references = references


def _inspect(path: Path) -> InstanceRecord | _Dicomdir | None:
    """Read one file's header: a record, a DICOMDIR's references, or ``None`` (not DICOM)."""
    try:
        with open(path, "rb") as f:
            head = f.read(144)
            has_prefix = len(head) >= 132 and head[128:132] == b"DICM"
            if not has_prefix and not _plausible_headless(head):
                return None
            f.seek(0)
            stopped = False

            def stop_after_last_tag(tag: BaseTag, vr: str | None, length: int) -> bool:
                nonlocal stopped
                stopped = int(tag) > _LAST_TAG
                return stopped

            try:
                ds = read_dicom(
                    f,
                    stop_when=stop_after_last_tag,
                    force=not has_prefix,
                    specific_tags=_SPECIFIC_TAGS,
                )
            except ReadLimitError:
                if not has_prefix:
                    return None
                raise
            except Exception as exc:  # pydicom raises many types on corrupt headers
                if not has_prefix:
                    return None
                raise DicomReadError(
                    f"File {str(path)!r} starts like DICOM but its header cannot be read: "
                    f"{_describe(exc)}"
                ) from exc
            # pydicom does not complain about a file cut short: a skipped value seeks past the
            # end, a read value comes back short, a cut element header ends the data set. All
            # mean a partial copy or download; an image ending before its pixel data is one too.
            size = os.fstat(f.fileno()).st_size
            try:
                truncated = (f.tell() > size or (not stopped and 0x00280010 in ds)) or any(
                    isinstance(e, RawDataElement)
                    and e.value is not None
                    and e.length != 0xFFFFFFFF
                    and len(e.value) < e.length
                    for e in ds.elements()
                )
                meta = getattr(ds, "file_meta", None)
                media_class = (
                    str(meta.get("MediaStorageSOPClassUID", "")) if meta is not None else ""
                )
            except Exception as exc:  # e.g. an unknown VR in a corrupt header
                raise DicomReadError(
                    f"File {str(path)!r} starts like DICOM but its header cannot be read: "
                    f"{_describe(exc)}"
                ) from exc
    except FileNotFoundError as exc:
        raise DicomReadError(f"File {str(path)!r} does not exist.") from exc
    except OSError as exc:
        raise DicomReadError(f"Cannot open file {str(path)!r}: {exc.strerror}.") from exc

    if media_class == _MEDIA_STORAGE_DIRECTORY:
        return _Dicomdir(_dicomdir_references(path))
    if not has_prefix and not any(
        t in ds for t in (0x00080016, 0x00080018, 0x0020000D, 0x0020000E)
    ):
        return None  # a forced parse of random bytes yields junk elements, not identifiers
    if has_prefix and size <= _data_set_start(head):
        raise DicomReadError(
            f"File {str(path)!r} has the DICOM prefix but no data set after its file meta "
            "information; it is probably truncated."
        )
    try:
        return _record(path, ds, media_class, truncated)
    except Exception as exc:  # a value pydicom cannot convert at all
        raise DicomReadError(
            f"File {str(path)!r} is DICOM but its identifying attributes cannot be decoded: "
            f"{_describe(exc)}"
        ) from exc


def _data_set_start(head: bytes) -> int:
    """Offset where the data set starts, from FileMetaInformationGroupLength; 0 if unknown."""
    if len(head) < 144 or head[132:140] != b"\x02\x00\x00\x00UL\x04\x00":
        return 0
    return 144 + int(struct.unpack_from("<I", head, 140)[0])


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if text.endswith(".") else text + "."


def _plausible_headless(head: bytes) -> bool:
    """A preamble-less data set (PS3.10 files must have one, old ACR-NEMA files do not)."""
    if len(head) < 8:
        return False
    (group_le,) = struct.unpack_from("<H", head, 0)
    (group_be,) = struct.unpack_from(">H", head, 0)
    return group_le in _HEADLESS_FIRST_GROUPS or group_be in _HEADLESS_FIRST_GROUPS


def read_record(path: Path) -> InstanceRecord | None:
    """Read the header of one file into an :class:`InstanceRecord`.

    Only the attributes a record needs are parsed (reading stops before the pixel data), so
    this costs a fraction of a millisecond for a typical file.

    Returns:
        The record, or ``None`` when the file is not DICOM (no ``DICM`` prefix and no plausible
        data set) or is a DICOMDIR, which describes instances but is not one.

    Raises:
        DicomReadError: the file cannot be opened, or it is DICOM but its header cannot be
            parsed. The message names the file.
    """
    result = _inspect(path)
    return result if isinstance(result, InstanceRecord) else None


# pydicom converts every value through its hooks (about 15 µs an element); the identifiers,
# numbers, dates and times below use ASCII-only VRs (UI, CS, DA, TM, IS, DS: PS3.5 6.2), so
# their raw bytes are decoded directly. Names and descriptions go through pydicom, which
# applies the Specific Character Set.


def _strings(ds: Dataset, tag: int) -> list[str]:
    """Values of an ASCII-VR element, stripped; ``[]`` when absent or empty."""
    elem = ds.get_item(tag)
    if elem is None:
        return []
    if isinstance(elem, RawDataElement):
        raw = elem.value
        if not raw:
            return []
        text = raw.decode("ascii", "replace")
        values = [v.strip(" \x00") for v in text.split("\\")]
    else:
        value = elem.value
        if value is None or value == "":
            return []
        if isinstance(value, str | int | float):
            values = [str(value).strip()]
        else:
            values = [str(v).strip() for v in value]
    return values if any(values) else []


def _ascii(ds: Dataset, tag: int) -> str:
    return "\\".join(_strings(ds, tag))


def _text(ds: Dataset, keyword: str, problems: list[str]) -> str:
    """A character-set dependent value (PN, LO, SH) decoded by pydicom."""
    try:
        value = ds.get(keyword)
    except Exception as exc:  # an undecodable byte sequence or a broken charset term
        problems.append(f"{keyword} cannot be decoded ({_describe(exc)})")
        return ""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, MultiValue):
        return "\\".join(str(v).strip() for v in value)
    return str(value).strip()


def _integer(ds: Dataset, tag: int, keyword: str, problems: list[str]) -> int | None:
    values = _strings(ds, tag)
    if not values or not values[0]:
        return None
    try:
        return int(float(values[0]))  # "1.0" and " 5" occur in the wild
    except ValueError:
        problems.append(f"{keyword} {values[0]!r} is not an integer")
        return None


def _unsigned_short(ds: Dataset, tag: int, keyword: str, problems: list[str]) -> int | None:
    elem = ds.get_item(tag)
    if elem is None:
        return None
    if isinstance(elem, RawDataElement):
        raw = elem.value
        if not raw:
            return None
        if len(raw) != 2:
            problems.append(f"{keyword} has {len(raw)} bytes instead of 2")
            return None
        return int(struct.unpack("<H" if elem.is_little_endian else ">H", raw)[0])
    value = elem.value
    return int(value) if isinstance(value, int) else None


def _floats(
    ds: Dataset, tag: int, keyword: str, count: int, problems: list[str]
) -> tuple[float, ...] | None:
    values = _strings(ds, tag)
    if not values:
        return None
    try:
        numbers = tuple(float(v) for v in values)
    except ValueError:
        joined = "\\".join(values)
        problems.append(f"{keyword} {joined!r} is not numeric")
        return None
    if len(numbers) != count:
        problems.append(f"{keyword} has {len(numbers)} values instead of {count}")
        return None
    return numbers


def _uid_or(ds: Dataset, tag: int, keyword: str, placeholder: str, problems: list[str]) -> str:
    value = _ascii(ds, tag)
    if not value:
        problems.append(f"{keyword} is missing")
        return placeholder
    return value


def _record(path: Path, ds: Dataset, media_class: str, truncated: bool) -> InstanceRecord:
    problems: list[str] = ["the file is truncated"] if truncated else []
    frames = _integer(ds, 0x00280008, "NumberOfFrames", problems)
    xyz = _floats(ds, 0x00200032, "ImagePositionPatient", 3, problems)
    position = (xyz[0], xyz[1], xyz[2]) if xyz is not None else None
    return InstanceRecord(
        path=path,
        sop_instance_uid=_uid_or(ds, 0x00080018, "SOPInstanceUID", NO_SOP_INSTANCE_UID, problems),
        sop_class_uid=_ascii(ds, 0x00080016) or media_class,
        patient_name=_text(ds, "PatientName", problems),
        patient_id=_text(ds, "PatientID", problems),
        patient_birth_date=_ascii(ds, 0x00100030),
        patient_sex=_ascii(ds, 0x00100040),
        study_uid=_uid_or(ds, 0x0020000D, "StudyInstanceUID", NO_STUDY_UID, problems),
        study_date=_ascii(ds, 0x00080020),
        study_time=_ascii(ds, 0x00080030),
        study_description=_text(ds, "StudyDescription", problems),
        accession_number=_text(ds, "AccessionNumber", problems),
        series_uid=_uid_or(ds, 0x0020000E, "SeriesInstanceUID", NO_SERIES_UID, problems),
        series_number=_integer(ds, 0x00200011, "SeriesNumber", problems),
        series_description=_text(ds, "SeriesDescription", problems),
        modality=_ascii(ds, 0x00080060),
        instance_number=_integer(ds, 0x00200013, "InstanceNumber", problems),
        acquisition_number=_integer(ds, 0x00200012, "AcquisitionNumber", problems),
        echo_number=_integer(ds, 0x00180086, "EchoNumbers", problems),
        image_position=position,
        image_orientation=_floats(ds, 0x00200037, "ImageOrientationPatient", 6, problems),
        rows=_unsigned_short(ds, 0x00280010, "Rows", problems),
        columns=_unsigned_short(ds, 0x00280011, "Columns", problems),
        frames=frames if frames and frames > 0 else 1,
        problem="; ".join(problems) + "." if problems else None,
        image_type=tuple(_strings(ds, 0x00080008)),
    )


# --------------------------------------------------------------------------------------------
# The scan


def scan(
    paths: Sequence[Path],
    *,
    cancel: threading.Event | None = None,
    progress: Callable[[ScanProgress], None] | None = None,
    batch_size: int = 100,
    max_interval: float = 0.1,
    on_error: Callable[[DicomReadError], None] | None = None,
) -> Iterator[list[InstanceRecord]]:
    """Scan files, folders and DICOMDIRs, yielding instance records in batches.

    Parameters:
        paths: files, folders (recursive) and DICOMDIRs (expanded to their references), see
            :func:`iter_candidate_files`. Every real file is read at most once.
        cancel: checked between files; once set the scan stops without yielding further.
        progress: called with counters at most every ``max_interval`` seconds, and once more
            with ``done=True`` when the scan ends (also when cancelled).
        batch_size: yield as soon as this many records are ready…
        max_interval: …or when this many seconds passed since the last yield and at least one
            record is pending, so a UI shows partial results quickly.
        on_error: receives the error of each DICOM file whose header could not be read (the
            scan itself never raises for a single bad file).

    Yields:
        Non-empty lists of records in walk order (folders by name, DICOMDIRs in record order).
    """
    walker = _Walker(cancel)
    files_seen = instances = skipped = unreadable = 0
    current: Path | None = None
    batch: list[InstanceRecord] = []
    clock = time.monotonic
    last_yield = last_report = clock()

    def report(done: bool) -> None:
        if progress is not None:
            progress(ScanProgress(files_seen, instances, skipped, unreadable, current, done))

    dicomdir_refs: list[Path] = []

    def candidates() -> Iterator[Path]:
        # A DICOMDIR (recognised by its content while reading) expands in place: its references
        # are read right after it, deduplicated with the folder walk so a CD's files are read
        # once. References that are DICOMDIRs themselves extend the same queue.
        for path in walker.walk(paths):
            yield path
            while dicomdir_refs:
                ref = dicomdir_refs.pop(0)
                if walker.first_visit(ref):
                    yield ref

    report(False)
    try:
        for path in candidates():
            if walker.cancelled():
                return
            current = path
            files_seen += 1
            try:
                result = _inspect(path)
            except DicomReadError as exc:
                unreadable += 1
                if on_error is not None:
                    on_error(exc)
            else:
                if isinstance(result, InstanceRecord):
                    instances += 1
                    batch.append(result)
                elif isinstance(result, _Dicomdir):
                    dicomdir_refs.extend(result.references)
                else:
                    skipped += 1
            # Reading headers is pure Python and holds the GIL; giving it up between files
            # keeps a UI thread responsive (without this a key waited ~1 s behind the scan).
            time.sleep(0)
            now = clock()
            if batch and (len(batch) >= batch_size or now - last_yield >= max_interval):
                out, batch = batch, []
                yield out
                if walker.cancelled():
                    return
                now = last_yield = clock()
            if now - last_report >= max_interval:
                report(False)
                last_report = now
        if batch and not walker.cancelled():
            yield batch
    finally:
        current = None
        report(True)
