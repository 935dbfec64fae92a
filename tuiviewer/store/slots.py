"""Durable slots: every instance the store writes goes into one before its rename.

Every instance written (pushed to the listener, fetched by C-GET, C-MOVE or WADO-RS) goes into
a pre-created empty slot in ``.incoming/``, is fsynced and renamed to its final name; only then
may its arrival be acknowledged. A slot's name was made durable with its batch (one folder
fsync for 64 slots) and the folders renames go into are fsynced in the background, so an
instance costs one file fsync instead of a file and a folder fsync, and is still never lost:
after a crash it is under its final name or its slot's, and the next opening of the store
(:meth:`tuiviewer.store.LocalStore.recover`) moves it into place. That rests on rename being
atomic and the metadata being journaled in order (ext4, xfs, btrfs). A slot gets its first 132
bytes (the preamble and ``DICM``) only when it is committed, so a write cut short is never taken
for an instance: recovery puts it aside in ``.quarantine/.partial/``. A power cut during the
fsync of an instance (never acknowledged, then) may leave its first page on disk without the
rest, so recovery also checks that the element headers end exactly at the end of the file.
"""

from __future__ import annotations

import fcntl
import io
import logging
import os
import secrets
import struct
import threading
import zlib
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, cast

from pydicom.filereader import _read_file_meta_info, read_dataset
from pydicom.uid import UID

from tuiviewer.files import fsync_dir
from tuiviewer.store.paths import (
    DIR_MODE,
    FILE_MODE,
    NOFOLLOW,
    QUARANTINE_DIR,
    StoreError,
    make_private_dirs,
    scan,
)

logger = logging.getLogger(__name__)

#: The pools of empty slots every instance is written into before its rename:
#: ``<root>/.incoming/p-<random>/s-<random>``, one pool per writing process, locked by it.
INCOMING_DIR = ".incoming"
POOL_PREFIX = "p-"
SLOT_PREFIX = "s-"
LOCK_NAME = ".lock"
#: Unfinished writes found by recovery: ``.quarantine/.partial/<pool>-<slot>-<time>.dcm.bad``.
PARTIAL_DIR = ".partial"
SLOT_BATCH = 64
"""Slots created at a time, followed by one fsync of the pool's folder."""
FLUSH_SECONDS = 0.15
"""How long a rename may wait for the background fsync of its folders while writing."""
_HEAD = 132  # the preamble and "DICM": written last, in commit()
_PEEK = 256 * 1024
_IDENTIFYING_TAGS = (0x00080018, 0x0020000D, 0x0020000E)


class _NotAnInstance(Exception):
    """A slot's bytes are not a complete instance with valid UIDs (the message says why)."""


@dataclass
class Recovery:
    """What :meth:`LocalStore.recover` did with the slots of writers that stopped."""

    moved: list[Path] = field(default_factory=list)
    """Instances moved from a slot to their final name."""
    partial: list[Path] = field(default_factory=list)
    """Unfinished writes put aside in ``.quarantine/.partial``."""
    duplicates: int = 0
    """Slots whose instance was already in place (emptied for reuse)."""
    touched: set[Path] = field(default_factory=set)

    def summary(self) -> str:
        return (
            f"recovered {len(self.moved)} instance(s) that a writer which stopped had left in "
            f"its slots; {len(self.partial)} unfinished write(s) put aside in "
            f"{QUARANTINE_DIR}/{PARTIAL_DIR}; {self.duplicates} already stored."
        )


def _slot_identity(slot: Path) -> tuple[str, str, str]:
    """(study, series, SOP Instance UID) of the instance in ``slot``, reading its file meta and
    the first elements only (a deflated data set is inflated 256 KiB at most).

    :raises _NotAnInstance: no ``DICM`` (the write never reached :meth:`LocalStore.commit`),
        or the header does not parse.
    """
    fd = os.open(slot, os.O_RDONLY | NOFOLLOW)
    with os.fdopen(fd, "rb") as fh:
        head = fh.read(_HEAD)
        if len(head) < _HEAD or head[128:132] != b"DICM":
            raise _NotAnInstance("it is not a DICOM file (no 'DICM' at byte 128).")
        try:
            meta = _read_file_meta_info(fh)
            syntax = UID(str(meta.get("TransferSyntaxUID", "")))
            implicit, little = syntax.is_implicit_VR, syntax.is_little_endian
        except Exception as exc:  # pydicom raises many types on a malformed header
            raise _NotAnInstance(f"its file meta information does not parse ({exc}).") from exc
        start = fh.tell()
        if not syntax.is_deflated and not _ends_at_end(fh, start, implicit, little):
            raise _NotAnInstance("its last element ends beyond the end of the file.")
        fh.seek(start)
        raw = fh.read(_PEEK)
    try:
        if syntax.is_deflated:
            raw = zlib.decompressobj(-zlib.MAX_WBITS).decompress(raw, _PEEK)
        ds = read_dataset(
            io.BytesIO(raw),
            implicit,
            little,
            stop_when=lambda tag, vr, length: int(tag) > _IDENTIFYING_TAGS[-1],
            specific_tags=list(_IDENTIFYING_TAGS),
        )
        sop = str(ds.get("SOPInstanceUID", "") or meta.get("MediaStorageSOPInstanceUID", ""))
        study = str(ds.get("StudyInstanceUID", "") or "")
        series = str(ds.get("SeriesInstanceUID", "") or "")
    except Exception as exc:
        raise _NotAnInstance(f"its data set does not parse ({exc}).") from exc
    return study.strip(), series.strip(), sop.strip()


_LONG_VRS = frozenset(b"OB OD OF OL OV OW SQ SV UC UN UR UT UV".split())


def _ends_at_end(fh: BinaryIO, start: int, implicit: bool, little: bool) -> bool:
    """Whether the data set's element headers, walked from ``start``, end exactly at the end
    of the file: a write cut short ends inside an element. Headers only: defined lengths are
    skipped, undefined ones (sequences, items, encapsulated pixel data) walked into, the
    content of an undefined-length UN as implicit VR. A data set in implicit VR under an
    explicit transfer syntax (pydicom reads those too) is walked both ways."""
    size = os.fstat(fh.fileno()).st_size
    return _walk(fh, start, size, implicit, little) or (
        not implicit and _walk(fh, start, size, True, little)
    )


def _walk(fh: BinaryIO, pos: int, size: int, implicit: bool, little: bool) -> bool:
    order = "<" if little else ">"
    modes: list[bool] = []  # implicit VR or not, per undefined-length element walked into
    while pos < size:
        fh.seek(pos)
        head = fh.read(12)
        if len(head) < 8:
            return False
        group, element = struct.unpack(order + "HH", head[:4])
        current = modes[-1] if modes else implicit
        vr = b""
        if group == 0xFFFE or current:  # items and delimiters have no VR
            (length,) = struct.unpack(order + "L", head[4:8])
            header = 8
        elif head[4:6] in _LONG_VRS:
            if len(head) < 12:
                return False
            vr = head[4:6]
            (length,) = struct.unpack(order + "L", head[8:12])
            header = 12
        else:
            (length,) = struct.unpack(order + "H", head[6:8])
            header = 8
        pos += header
        if group == 0xFFFE and element in (0xE00D, 0xE0DD):
            if modes:
                modes.pop()
        elif length == 0xFFFFFFFF:
            modes.append(current or vr == b"UN")
        else:
            pos += length
    return pos == size


def _try_lock(folder: Path) -> int | None:
    """The pool's lock, held exclusively (an fd), or None while its owner lives: the kernel
    drops an flock with the last descriptor of the process that held it, kill -9 included."""
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT | NOFOLLOW, FILE_MODE)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        data = data[os.write(fd, data) :]


class _Dirty:
    """Folders whose new entries still need an fsync (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._folders: set[Path] = set()

    def add(self, *folders: Path) -> None:
        with self._lock:
            self._folders.update(folders)

    def take(self) -> set[Path]:
        with self._lock:
            folders, self._folders = self._folders, set()
        return folders


class _SlotWriter(io.RawIOBase):
    """The file :meth:`LocalStore.open_temp` returns: writes go straight to the slot, except
    its first 132 bytes, kept back until :meth:`LocalStore.commit` (a hole until then)."""

    def __init__(self, fd: int, pool: _SlotPool, path: Path) -> None:
        super().__init__()
        self._fd = fd
        self._pool = pool
        self._path = path
        self._pos = 0
        self._head = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: object) -> int:
        view = memoryview(cast(bytes, data)).cast("B")
        size = len(view)
        if self._pos < _HEAD:
            kept = min(_HEAD - self._pos, size)
            self._head += view[:kept]
            self._pos += kept
            os.lseek(self._fd, self._pos, os.SEEK_SET)
            view = view[kept:]
        _write_all(self._fd, view)
        self._pos += len(view)
        return size

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        if not self.closed:
            try:
                self._pool.written(self._path, bytes(self._head))
            finally:
                os.close(self._fd)
        super().close()


class _SlotPool:
    """One process's pool of empty, durable slots, and the background flusher that fsyncs
    the folders renames went into and creates the next batch of slots before they run out."""

    def __init__(
        self, incoming: Path, dirs: _Dirty, recover: Callable[[Path], None] | None = None
    ) -> None:
        self._dirs = dirs
        self._mutex = threading.Lock()
        self._free: list[Path] = []
        self._taken: dict[Path, bytes | None] = {}
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self.folder, self._lock_fd = self._open(incoming, recover)
        if len(self._free) < SLOT_BATCH:
            self._create_batch()
        self._thread = threading.Thread(target=self._run, name="tuiviewer-store-flush", daemon=True)
        self._thread.start()

    def _open(self, incoming: Path, recover: Callable[[Path], None] | None) -> tuple[Path, int]:
        if not incoming.is_dir():
            make_private_dirs(incoming)
            fsync_dir(incoming.parent)
        if incoming.is_symlink():
            raise StoreError(f"{str(incoming)!r} is a symbolic link; refusing to write through it.")
        for entry in sorted(scan(incoming), key=lambda e: e.name):
            if not entry.name.startswith(POOL_PREFIX) or not entry.is_dir(follow_symlinks=False):
                continue
            fd = _try_lock(Path(entry.path))
            if fd is None:
                continue
            # A pool whose writer stopped since the store was opened: take it over.
            folder = Path(entry.path)
            if recover is not None:
                recover(folder)
            fsync_dir(folder)  # its last batch may not have had its fsync
            self._free = [
                Path(e.path)
                for e in scan(folder)
                if e.name.startswith(SLOT_PREFIX)
                and e.is_file(follow_symlinks=False)
                and e.stat(follow_symlinks=False).st_size == 0
            ]
            return folder, fd
        folder = incoming / f"{POOL_PREFIX}{secrets.token_hex(6)}"
        folder.mkdir(mode=DIR_MODE)
        os.chmod(folder, DIR_MODE)
        fd = _try_lock(folder)
        if fd is None:  # pragma: no cover - a fresh random name nobody else knows
            raise StoreError(f"Cannot lock the new slot pool {str(folder)!r}.")
        fsync_dir(incoming)
        return folder, fd

    def _create_batch(self) -> None:
        made = []
        for _ in range(SLOT_BATCH):
            path = self.folder / f"{SLOT_PREFIX}{secrets.token_hex(8)}"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW, FILE_MODE)
            try:
                os.fchmod(fd, FILE_MODE)
            finally:
                os.close(fd)
            made.append(path)
        # One fsync for the batch: from now on each slot's name survives a crash.
        fsync_dir(self.folder)
        with self._mutex:
            self._free.extend(made)

    def take(self) -> tuple[BinaryIO, Path]:
        for _ in range(3):
            with self._mutex:
                slot = self._free.pop() if self._free else None
                low = len(self._free) < SLOT_BATCH // 2
            if low:
                self._wake.set()
            if slot is None:
                self._create_batch()  # ran out before the background caught up
                continue
            try:
                fd = os.open(slot, os.O_WRONLY | os.O_TRUNC | NOFOLLOW)
            except FileNotFoundError:
                continue  # removed under us; take another
            with self._mutex:
                self._taken[slot] = None
            return cast(BinaryIO, _SlotWriter(fd, self, slot)), slot
        raise StoreError(f"Cannot take a slot in {str(self.folder)!r}: they keep disappearing.")

    def busy(self) -> bool:
        with self._mutex:
            return bool(self._taken)

    def owns(self, path: Path) -> bool:
        with self._mutex:
            return path in self._taken

    def written(self, slot: Path, head: bytes) -> None:
        with self._mutex:
            if slot in self._taken:
                self._taken[slot] = head

    def seal(self, slot: Path, final: Path) -> None:
        """Write the held-back head, fsync the slot and rename it to ``final``."""
        with self._mutex:
            head = self._taken.get(slot)
        if head is None:
            raise StoreError(f"{str(slot)!r} is still open; close it before committing it.")
        fd = os.open(slot, os.O_WRONLY | NOFOLLOW)
        try:
            if head:
                os.pwrite(fd, head, 0)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(slot, final)
        with self._mutex:
            self._taken.pop(slot, None)
        self._dirs.add(final.parent, self.folder)
        self._wake.set()

    def give_back(self, slot: Path) -> None:
        with self._mutex:
            self._taken.pop(slot, None)
        try:
            os.truncate(slot, 0)
        except OSError:
            return
        with self._mutex:
            self._free.append(slot)

    def flush(self) -> None:
        for folder in self._dirs.take():
            fsync_dir(folder)

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait()
            # Let renames gather for a moment: one fsync per folder for all of them.
            self._stopping.wait(FLUSH_SECONDS)
            self._wake.clear()
            try:
                self.flush()
                with self._mutex:
                    low = len(self._free) < SLOT_BATCH // 2
                if low and not self._stopping.is_set():
                    self._create_batch()
            except OSError as exc:
                logger.error("Local store: the background flush failed: %s", exc)

    def close(self) -> None:
        self._stopping.set()
        self._wake.set()
        self._thread.join()
        self.flush()
        with suppress(OSError):
            os.close(self._lock_fd)
