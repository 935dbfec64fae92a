"""The local study store: retrieved instances kept on disk, private to the user, bounded in size.

Instances fetched by C-GET/C-MOVE are patient data at rest, often on a shared server. This module
decides where they live (``<root>/<study>/<series>/<sop>.dcm``), never lets raw text from a
peer become a path component (a PS3.5 §9.1 UID is used as it is; anything else a PACS may
hold, such as hex strings or over-long values, by a hash: :func:`uid_name`), keeps every
directory 0700 and every file 0600 whatever the umask, and bounds the store with
least-recently-used eviction and an explicit ``tuiviewer purge`` (:mod:`tuiviewer.commands.purge`).

Every instance is written through a durable slot (:mod:`tuiviewer.store.slots`): fsynced and
renamed before its arrival may be acknowledged, and moved into place by the next opening of the
store if a crash came between the two. Names and modes: :mod:`tuiviewer.store.paths`.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import stat
import threading
import time
from collections import Counter
from collections.abc import Collection, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import platformdirs
from pydicom.dataset import Dataset

from tuiviewer.files import fsync_dir
from tuiviewer.store.paths import (
    ACCESS_MARKER,
    APP_NAME,
    DIR_MODE,
    FILE_MODE,
    HASHED_PREFIX,
    INSTANCE_SUFFIX,
    MAX_FOREIGN_UID_LENGTH,
    MAX_UID_LENGTH,
    NOFOLLOW,
    QUARANTINE_DIR,
    QUARANTINE_SUFFIX,
    REASON_SUFFIX,
    TEMP_SUFFIX,
    InvalidUIDError,
    StoreError,
    foreign_uid,
    is_uid_name,
    make_private_dirs,
    scan,
    uid_name,
    validate_uid,
)
from tuiviewer.store.slots import (
    FLUSH_SECONDS,
    INCOMING_DIR,
    LOCK_NAME,
    PARTIAL_DIR,
    POOL_PREFIX,
    SLOT_BATCH,
    SLOT_PREFIX,
    Recovery,
    _Dirty,
    _NotAnInstance,
    _slot_identity,
    _SlotPool,
    _try_lock,
)

__all__ = [
    "ACCESS_MARKER",
    "APP_NAME",
    "DIR_MODE",
    "FILE_MODE",
    "FLUSH_SECONDS",
    "HASHED_PREFIX",
    "INCOMING_DIR",
    "INSTANCE_SUFFIX",
    "LOCK_NAME",
    "MAX_FOREIGN_UID_LENGTH",
    "MAX_UID_LENGTH",
    "PARTIAL_DIR",
    "POOL_PREFIX",
    "QUARANTINE_DIR",
    "QUARANTINE_SUFFIX",
    "REASON_SUFFIX",
    "SLOT_BATCH",
    "SLOT_PREFIX",
    "TEMP_SUFFIX",
    "InvalidUIDError",
    "LocalStore",
    "QuarantinedInstance",
    "Recovery",
    "StoreError",
    "StoredStudy",
    "default_store_root",
    "foreign_uid",
    "format_size",
    "is_uid_name",
    "uid_name",
    "validate_uid",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class QuarantinedInstance:
    """An instance moved aside because it could not be read within the reading limits."""

    study_uid: str
    series_uid: str
    sop_uid: str
    reason: str
    """The full sentence that said why (the file, the limit and how to raise it)."""
    path: Path
    """Where the bytes are kept (``….dcm.bad``), for a look with other tools."""


@dataclass(frozen=True)
class StoredStudy:
    """One study in the local store, as the store browser and ``tuiviewer purge`` show it."""

    study_uid: str
    """The directory name: the Study Instance UID, or ``x-<hash>`` for a non-conformant one."""
    path: Path
    """The study's directory."""
    size_bytes: int
    """Bytes on disk of every file in the study, temporary files included."""
    instances: int
    """Number of complete instance files (temporary files not counted)."""
    last_access: float
    """When the study was last written or opened (seconds since the epoch)."""


def default_store_root() -> Path:
    """``$TUIVIEWER_CACHE_DIR/store``, else the platformdirs user cache dir's ``store``.

    The store is a cache — everything in it can be retrieved again — so it lives under the cache
    dir, where backup tools and quotas expect disposable data.
    """
    cache = os.environ.get("TUIVIEWER_CACHE_DIR") or platformdirs.user_cache_dir(
        APP_NAME, appauthor=False
    )
    return Path(cache) / "store"


def _remove_tree(path: Path) -> None:
    """Delete ``path`` without following symbolic links, at its top or anywhere below it.

    A link is unlinked, never descended into: a link planted in the store must not turn a purge
    into the deletion of someone else's files. ``shutil.rmtree`` already refuses to follow links
    inside the tree (and uses the fd-based, race-resistant walk on Linux).
    """
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        path.unlink()


def _tree_usage(path: Path) -> tuple[int, int]:
    """Return (bytes, complete instance files) below ``path``, following no links."""
    total = 0
    instances = 0
    stack = [path]
    while stack:
        current = stack.pop()
        try:
            entries = list(os.scandir(current))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(st.st_mode):
                stack.append(Path(entry.path))
                continue
            total += st.st_size
            if stat.S_ISREG(st.st_mode) and _is_instance_name(entry.name):
                instances += 1
    return total, instances


def _is_instance_name(name: str) -> bool:
    return name.endswith(INSTANCE_SUFFIX) and is_uid_name(name[: -len(INSTANCE_SUFFIX)])


def _is_temp_name(name: str) -> bool:
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


class LocalStore:
    """Retrieved instances on disk under ``root``, laid out ``<study>/<series>/<sop>.dcm``.

    Thread-safe for the usual pattern: one worker retrieving a study inside
    ``with store.in_use(study_uid):`` while another thread browses, evicts or purges. The
    "in use" set is per process; a second tuiviewer process does not see it.
    """

    def __init__(self, root: Path | None = None, *, cap_bytes: int | None = None) -> None:
        """Open (creating it 0700 if needed) the store at ``root``.

        :param root: the store directory; default :func:`default_store_root`.
        :param cap_bytes: size limit used by :meth:`evict` when it is given none; ``None`` means
            no limit.
        :raises StoreError: if ``cap_bytes`` is negative or the directory cannot be created.
        """
        if cap_bytes is not None and cap_bytes < 0:
            raise StoreError(f"The store size cap {cap_bytes!r} is negative.")
        self.root = Path(root) if root is not None else default_store_root()
        self.cap_bytes = cap_bytes
        self._lock = threading.RLock()
        self._in_use: Counter[str] = Counter()
        self._known: set[Path] = set()
        self._dirs = _Dirty()
        self._pool: _SlotPool | None = None
        try:
            if root is None:
                # The cache dir holds only tuiviewer's files, so it is made private as well.
                make_private_dirs(self.root.parent)
            make_private_dirs(self.root)
        except OSError as exc:
            raise StoreError(
                f"Cannot create the local store at {str(self.root)!r}: {exc.strerror or exc}."
            ) from exc
        # Every reader and writer opens the store here: what a crashed writer left in its
        # slots is in place before anything lists or writes the store.
        self.recover()

    # --- paths ---------------------------------------------------------------------------------

    def study_dir(self, study_uid: str) -> Path:
        """The directory of a study (not created; named by :func:`uid_name`).

        :raises InvalidUIDError: empty or absurdly long.
        """
        return self.root / uid_name(study_uid, "Study Instance UID")

    def series_dir(self, study_uid: str, series_uid: str) -> Path:
        """The directory of a series (not created). :raises InvalidUIDError:"""
        return self.study_dir(study_uid) / uid_name(series_uid, "Series Instance UID")

    def instance_path(self, study_uid: str, series_uid: str, sop_uid: str) -> Path:
        """Where an instance is (or would be) stored. :raises InvalidUIDError:"""
        sop = uid_name(sop_uid, "SOP Instance UID")
        return self.series_dir(study_uid, series_uid) / f"{sop}{INSTANCE_SUFFIX}"

    def _ensure_series_dir(self, study_uid: str, series_uid: str, *, fresh: bool = False) -> Path:
        series = self.series_dir(study_uid, series_uid)
        if not fresh and series in self._known:
            return series
        for directory in (series.parent, series):
            if directory.is_symlink():
                raise StoreError(
                    f"{str(directory)!r} in the local store is a symbolic link; refusing to "
                    "write through it."
                )
        if not series.is_dir():
            # The new folders' entries reach the disk with the background flush; a rename
            # into them is journaled after their mkdir, so it never outlives them.
            self._dirs.add(series.parent, series.parent.parent)
        make_private_dirs(series)
        with self._lock:
            self._known.add(series)
        return series

    # --- writing -------------------------------------------------------------------------------

    def open_temp(self, study_uid: str, series_uid: str, sop_uid: str) -> tuple[BinaryIO, Path]:
        """Take an empty 0600 slot for a streaming write of one instance.

        Write the instance to the returned binary file, close it, then call :meth:`commit`
        (or :meth:`discard` to give the slot back). The slot lives in the store's private pool
        (:data:`INCOMING_DIR`), never in a study folder, and its first 132 bytes (preamble and
        ``DICM``) reach the file only in :meth:`commit`: a slot that was never committed is
        not a DICOM file, so the recovery of a crashed writer cannot mistake half an instance
        for one.

        :returns: the open file (write mode) and the slot's path.
        :raises InvalidUIDError: if a UID is invalid.
        :raises StoreError: if the series folder or the slot cannot be created.
        """
        sop = uid_name(sop_uid, "SOP Instance UID")
        try:
            self._ensure_series_dir(study_uid, series_uid)
            return self._slots().take()
        except OSError as exc:
            raise StoreError(
                f"Cannot create a temporary file for instance {sop!r} in the local store: "
                f"{exc.strerror or exc}."
            ) from exc

    def commit(
        self, temp: Path, study_uid: str, series_uid: str, sop_uid: str, *, touch: bool = True
    ) -> Path:
        """Make the written slot ``temp`` durable and move it to the instance's final name.

        The file is fsynced (data and size) and renamed; the directory fsyncs are batched in
        the background (:meth:`flush`). Once this returns, the instance survives a crash or
        a power cut: under its final name, or under its slot name, from where the next
        opening of the store (:meth:`recover`) moves it into place. That rests on the rename
        being atomic and the file system's metadata being journaled in order (ext4, xfs,
        btrfs): the slot's own directory entry was made durable when its batch was created.

        ``temp`` must come from :meth:`open_temp` and be closed. An existing instance with the
        same SOP Instance UID is replaced. The study is marked as used now (unless ``touch``
        is false: a writer of many instances marks it once).

        :returns: the final instance path (it exists when this returns).
        :raises InvalidUIDError: if a UID is invalid.
        :raises StoreError: if ``temp`` is not a slot taken from this store or the rename
            fails.
        """
        final = self.instance_path(study_uid, series_uid, sop_uid)
        pool = self._pool
        if pool is None or not pool.owns(Path(temp)):
            raise StoreError(
                f"{str(temp)!r} is not a temporary file of series {series_uid!r} in the local "
                "store; only files from open_temp() can be committed."
            )
        try:
            pool.seal(Path(temp), final)
        except FileNotFoundError:
            # The series folder went away under us (a purge from another process).
            try:
                self._ensure_series_dir(study_uid, series_uid, fresh=True)
                pool.seal(Path(temp), final)
            except OSError as exc:
                raise StoreError(
                    f"Cannot store instance {sop_uid!r} in the local store: {exc.strerror or exc}."
                ) from exc
        except OSError as exc:
            raise StoreError(
                f"Cannot store instance {sop_uid!r} in the local store: {exc.strerror or exc}."
            ) from exc
        if touch:
            self.touch(study_uid)
        return final

    def discard(self, temp: Path) -> None:
        """Give back a slot from :meth:`open_temp` that will not be committed: it is emptied
        and reused, and nothing of what was written to it is ever taken for an instance."""
        pool = self._pool
        if pool is not None and pool.owns(Path(temp)):
            pool.give_back(Path(temp))
        else:
            Path(temp).unlink(missing_ok=True)

    def flush(self) -> None:
        """Make every rename so far durable now (the folders' fsyncs the background flusher
        would do within :data:`FLUSH_SECONDS`): at the end of an association or a retrieve."""
        if self._pool is not None:
            self._pool.flush()

    def close(self) -> None:
        """Flush, stop the background flusher and release the slot pool (its empty slots are
        kept for the next process). Writing again opens the pool again."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    def unfinished(self) -> list[Path]:
        """Files of writes that did not finish: non-empty slots not being written by this
        store, and leftover temporary files of older versions. Empty after a clean run."""
        found = [
            Path(e.path)
            for pool in scan(self.root / INCOMING_DIR)
            if pool.is_dir(follow_symlinks=False)
            for e in scan(Path(pool.path))
            if e.name.startswith(SLOT_PREFIX) and e.stat(follow_symlinks=False).st_size
        ]
        if self._pool is not None:
            found = [p for p in found if not self._pool.owns(p)]
        return found + [p for p in self.root.rglob(f"*{TEMP_SUFFIX}") if _is_temp_name(p.name)]

    def prepare(self) -> None:
        """Create the pool of slots now rather than with the first instance (a listener's
        start), so the first instance waits for no batch.

        :raises StoreError: if the pool cannot be created.
        """
        try:
            self._slots()
        except OSError as exc:
            raise StoreError(
                f"Cannot prepare the local store at {str(self.root)!r} for writing: "
                f"{exc.strerror or exc}."
            ) from exc

    def _slots(self) -> _SlotPool:
        with self._lock:
            if self._pool is None:
                self._pool = _SlotPool(self.root / INCOMING_DIR, self._dirs, self._recover_adopted)
            return self._pool

    # --- recovery ------------------------------------------------------------------------------

    def recover(self) -> Recovery:
        """Move the instances that crashed writers left in their slots into place.

        Every pool of slots whose owner is gone (its lock is free: the lock of a process dies
        with it) is looked at: an empty slot is left for reuse; a slot that holds a DICOM file
        with valid UIDs (an instance acknowledged, or written completely just before the
        crash) is renamed to its final name, unless that instance is already there; anything
        else (a write cut short, never acknowledged) is moved to ``.quarantine/.partial/``
        with a log line, never made an instance. Run by every opening of the store.

        :returns: what was done, for the log and the tests.
        """
        result = Recovery()
        incoming = self.root / INCOMING_DIR
        for pool in sorted(scan(incoming), key=lambda e: e.name):
            if not pool.is_dir(follow_symlinks=False) or not pool.name.startswith(POOL_PREFIX):
                continue
            if self._pool is not None and Path(pool.path) == self._pool.folder:
                continue
            lock = _try_lock(Path(pool.path))
            if lock is None:
                continue  # a live writer's pool
            try:
                self._recover_pool(Path(pool.path), result)
            finally:
                os.close(lock)
        self._settle(result)
        return result

    def _recover_adopted(self, folder: Path) -> None:
        result = Recovery()
        self._recover_pool(folder, result)
        self._settle(result)

    def _settle(self, result: Recovery) -> None:
        for folder in sorted(result.touched):
            fsync_dir(folder)
        if result.moved or result.partial:
            logger.warning("Local store: %s", result.summary())

    def _recover_pool(self, folder: Path, result: Recovery) -> None:
        for entry in sorted(scan(folder), key=lambda e: e.name):
            if not entry.name.startswith(SLOT_PREFIX):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
                continue
            try:
                self._recover_slot(Path(entry.path), result)
            except (OSError, StoreError) as exc:
                # Left where it is: the next opening tries again; nothing is lost.
                logger.error("Local store: cannot recover the slot %s: %s", entry.path, exc)

    def _recover_slot(self, slot: Path, result: Recovery) -> None:
        try:
            study, series, sop = _slot_identity(slot)
            final = self.instance_path(study, series, sop)
        except (InvalidUIDError, _NotAnInstance) as exc:
            self._quarantine_slot(slot, str(exc), result)
            return
        if self.has_instance(study, series, sop):
            os.truncate(slot, 0)
            result.duplicates += 1
            return
        self._ensure_series_dir(study, series)
        os.chmod(slot, FILE_MODE)
        os.replace(slot, final)
        result.moved.append(final)
        result.touched.update({slot.parent, final.parent, final.parent.parent, self.root})

    def _quarantine_slot(self, slot: Path, why: str, result: Recovery) -> None:
        folder = self.root / QUARANTINE_DIR / PARTIAL_DIR
        stamp = time.strftime("%Y%m%dT%H%M%S")
        bad = folder / f"{slot.parent.name}-{slot.name}-{stamp}{QUARANTINE_SUFFIX}"
        reason = (
            f"A write into the local store was cut short (slot {slot.name!r}): {why} It was "
            "never acknowledged as stored, so it is kept here and not made an instance."
        )
        try:
            make_private_dirs(folder)
            os.replace(slot, bad)
            fd = os.open(
                bad.with_suffix(REASON_SUFFIX),
                os.O_WRONLY | os.O_CREAT | os.O_TRUNC | NOFOLLOW,
                FILE_MODE,
            )
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(reason + "\n")
        except OSError as exc:
            logger.error("Local store: cannot put aside the unfinished slot %s: %s", slot, exc)
            return
        result.partial.append(bad)
        result.touched.update({slot.parent, folder})
        logger.warning("Local store: %s Kept as %s.", reason, bad)

    def write_dataset(
        self, ds: Dataset, *, study_uid: str | None = None, series_uid: str | None = None
    ) -> Path:
        """Write ``ds`` as a DICOM file (PS3.10) into the store, atomically, mode 0600.

        The UIDs come from the dataset unless ``study_uid``/``series_uid`` are given (for a peer
        that sends instances without them). ``ds.file_meta`` must carry the Transfer Syntax UID
        (pynetdicom: ``ds.file_meta = event.file_meta``); pydicom fills in the other file meta
        elements, which updates ``ds.file_meta`` in place.

        :returns: the instance path.
        :raises InvalidUIDError: if a UID is missing or invalid.
        :raises StoreError: if the dataset cannot be encoded or written; no partial file is left.
        """
        study = study_uid if study_uid is not None else ds.get("StudyInstanceUID", "")
        series = series_uid if series_uid is not None else ds.get("SeriesInstanceUID", "")
        sop = ds.get("SOPInstanceUID", "")
        file_meta = getattr(ds, "file_meta", None)
        if not sop and file_meta is not None:
            sop = file_meta.get("MediaStorageSOPInstanceUID", "")
        study, series, sop = str(study or ""), str(series or ""), str(sop or "")
        uid_name(study, "Study Instance UID")
        uid_name(series, "Series Instance UID")
        uid_name(sop, "SOP Instance UID")
        if file_meta is None or not file_meta.get("TransferSyntaxUID"):
            raise StoreError(
                f"Instance {sop!r} has no Transfer Syntax UID in its file meta information, so "
                "it cannot be written as a DICOM file."
            )
        buffer = io.BytesIO()
        try:
            ds.save_as(buffer, enforce_file_format=True)
        except (OSError, ValueError, AttributeError, TypeError) as exc:
            raise StoreError(f"Cannot write instance {sop!r} to the local store: {exc}") from exc
        handle, temp = self.open_temp(study, series, sop)
        try:
            with handle:
                handle.write(buffer.getbuffer())
            return self.commit(temp, study, series, sop)
        except OSError as exc:
            self.discard(temp)
            raise StoreError(f"Cannot write instance {sop!r} to the local store: {exc}") from exc
        except BaseException:
            self.discard(temp)
            raise

    # --- quarantine ----------------------------------------------------------------------------

    def _quarantine_paths(self, study_uid: str, series_uid: str, sop_uid: str) -> tuple[Path, Path]:
        study = validate_uid(study_uid, "Study Instance UID")
        series = validate_uid(series_uid, "Series Instance UID")
        sop = validate_uid(sop_uid, "SOP Instance UID")
        folder = self.root / QUARANTINE_DIR / study / series
        return folder / f"{sop}{QUARANTINE_SUFFIX}", folder / f"{sop}{REASON_SUFFIX}"

    def quarantine(
        self,
        study_uid: str,
        series_uid: str,
        sop_uid: str,
        reason: str,
        *,
        data: bytes | None = None,
    ) -> Path:
        """Move an instance that cannot be read within the limits out of its study, for good.

        The bytes go to ``.quarantine/<study>/<series>/<sop>.dcm.bad`` (0600, in 0700
        folders) and ``reason`` beside them, so the instance is neither read again at the next
        start nor fetched again from the PACS (:meth:`is_quarantined`). Purging or evicting
        the study removes its quarantine too.

        :param reason: why, as the reader said it (file, limit, how to raise it).
        :param data: the instance's bytes when it never reached the store (refused on
            arrival); otherwise the stored instance file is moved.
        :returns: where the bytes are now.
        :raises InvalidUIDError: if a UID is invalid.
        :raises StoreError: if the files cannot be moved or written.
        """
        bad, why = self._quarantine_paths(study_uid, series_uid, sop_uid)
        try:
            make_private_dirs(bad.parent)
            if data is None:
                source = self.instance_path(study_uid, series_uid, sop_uid)
                if source.is_file() and not source.is_symlink():
                    os.replace(source, bad)
            else:
                fd = os.open(bad, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | NOFOLLOW, FILE_MODE)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
            if bad.exists():
                os.chmod(bad, FILE_MODE)
            fd = os.open(why, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | NOFOLLOW, FILE_MODE)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(reason + "\n")
        except OSError as exc:
            raise StoreError(
                f"Cannot put instance {sop_uid!r} aside in the local store's quarantine: "
                f"{exc.strerror or exc}."
            ) from exc
        return bad

    def is_quarantined(self, study_uid: str, series_uid: str, sop_uid: str) -> bool:
        """Whether the instance was put aside by :meth:`quarantine`."""
        return self._quarantine_paths(study_uid, series_uid, sop_uid)[1].is_file()

    def quarantined(self, study_uid: str) -> list[QuarantinedInstance]:
        """The study's quarantined instances, by series and SOP Instance UID.

        :raises InvalidUIDError: if ``study_uid`` is invalid.
        """
        folder = self.root / QUARANTINE_DIR / validate_uid(study_uid, "Study Instance UID")
        found: list[QuarantinedInstance] = []
        for series in sorted(scan(folder), key=lambda e: e.name):
            if not series.is_dir(follow_symlinks=False) or not _is_uid(series.name):
                continue
            for entry in sorted(scan(Path(series.path)), key=lambda e: e.name):
                name = entry.name
                if not name.endswith(REASON_SUFFIX) or not _is_uid(name[: -len(REASON_SUFFIX)]):
                    continue
                sop = name[: -len(REASON_SUFFIX)]
                try:
                    reason = Path(entry.path).read_text(encoding="utf-8").strip()
                except (OSError, UnicodeDecodeError):
                    reason = "It could not be read within the reading limits."
                found.append(
                    QuarantinedInstance(
                        study_uid,
                        series.name,
                        sop,
                        reason,
                        Path(series.path) / f"{sop}{QUARANTINE_SUFFIX}",
                    )
                )
        return found

    # --- reading -------------------------------------------------------------------------------

    def has_instance(self, study_uid: str, series_uid: str, sop_uid: str) -> bool:
        """Whether the instance is stored completely (a temporary file does not count)."""
        path = self.instance_path(study_uid, series_uid, sop_uid)
        try:
            return stat.S_ISREG(path.lstat().st_mode)
        except (FileNotFoundError, NotADirectoryError):
            return False

    def instance_uids(self, study_uid: str) -> set[str]:
        """The names (:func:`uid_name`) of the study's complete instance files, for resuming.

        A valid SOP Instance UID is its own name; compare others through :func:`uid_name`.

        :raises InvalidUIDError: if ``study_uid`` is invalid.
        """
        study = self.study_dir(study_uid)
        found: set[str] = set()
        for series in scan(study):
            if not series.is_dir(follow_symlinks=False) or not _is_uid(series.name):
                continue
            for entry in scan(Path(series.path)):
                if entry.is_file(follow_symlinks=False) and _is_instance_name(entry.name):
                    found.add(entry.name[: -len(INSTANCE_SUFFIX)])
        return found

    def touch(self, study_uid: str, *, at: float | None = None) -> None:
        """Mark the study as used at ``at`` (default: now), for least-recently-used eviction.

        The time is the modification time of a 0600 marker file in the study directory: one
        file per study, so two processes never rewrite a shared index.

        :raises InvalidUIDError: if ``study_uid`` is invalid.
        :raises StoreError: if the study is not in the store.
        """
        study = self.study_dir(study_uid)
        if not study.is_dir() or study.is_symlink():
            raise StoreError(f"No study {study_uid!r} in the local store at {str(self.root)!r}.")
        marker = study / ACCESS_MARKER
        when = time.time() if at is None else at
        try:
            fd = os.open(marker, os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), FILE_MODE)
            try:
                os.fchmod(fd, FILE_MODE)
            finally:
                os.close(fd)
            os.utime(marker, (when, when), follow_symlinks=False)
        except OSError as exc:
            raise StoreError(
                f"Cannot record the last access of study {study_uid!r}: {exc.strerror or exc}."
            ) from exc

    def _last_access(self, study: Path) -> float:
        for candidate in (study / ACCESS_MARKER, study):
            try:
                return candidate.lstat().st_mtime
            except FileNotFoundError:
                continue
        return 0.0

    def studies(self) -> list[StoredStudy]:
        """Every study in the store, most recently used first."""
        found = []
        for entry in scan(self.root):
            if not entry.is_dir(follow_symlinks=False) or not _is_uid(entry.name):
                continue
            path = Path(entry.path)
            size, instances = _tree_usage(path)
            found.append(
                StoredStudy(
                    study_uid=entry.name,
                    path=path,
                    size_bytes=size,
                    instances=instances,
                    last_access=self._last_access(path),
                )
            )
        found.sort(key=lambda s: (-s.last_access, s.study_uid))
        return found

    def size_bytes(self) -> int:
        """Bytes on disk of everything under the store root (links counted, not followed)."""
        return _tree_usage(self.root)[0]

    # --- removing ------------------------------------------------------------------------------

    @contextmanager
    def in_use(self, study_uid: str) -> Iterator[None]:
        """Keep :meth:`evict` (and :meth:`purge`) away from a study while it is being written.

        Nestable and usable from several threads at once.

        :raises InvalidUIDError: if ``study_uid`` is invalid.
        """
        uid = uid_name(study_uid, "Study Instance UID")
        with self._lock:
            self._in_use[uid] += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_use[uid] -= 1
                if self._in_use[uid] <= 0:
                    del self._in_use[uid]

    def is_in_use(self, study_uid: str) -> bool:
        """Whether some thread of this process holds :meth:`in_use` for the study."""
        try:
            return self._name_in_use(uid_name(study_uid))
        except InvalidUIDError:
            return False

    def _name_in_use(self, name: str) -> bool:
        with self._lock:
            return self._in_use.get(name, 0) > 0

    def evict(self, *, cap_bytes: int | None = None, protected: Collection[str] = ()) -> list[str]:
        """Delete least-recently-used studies until the store fits in the cap.

        Studies in ``protected`` (e.g. with an open report draft) and studies :meth:`in_use` are
        never deleted, even if the store then stays over the cap.

        :param cap_bytes: the limit; default the store's ``cap_bytes``; with neither, nothing
            is deleted.
        :param protected: Study Instance UIDs to keep.
        :returns: the evicted Study Instance UIDs, oldest first.
        :raises StoreError: if ``cap_bytes`` is negative or a study cannot be deleted.
        """
        cap = self.cap_bytes if cap_bytes is None else cap_bytes
        if cap is None:
            return []
        if cap < 0:
            raise StoreError(f"The store size cap {cap!r} is negative.")
        keep = set()
        for uid in protected:
            try:
                keep.add(uid_name(uid))
            except InvalidUIDError:
                continue
        total = self.size_bytes()
        evicted: list[str] = []
        for study in reversed(self.studies()):
            if total <= cap:
                break
            if study.study_uid in keep:
                continue
            # Holding the lock while deleting means a writer entering in_use() waits for the
            # deletion to finish and then recreates the directories, instead of losing files.
            with self._lock:
                if self._name_in_use(study.study_uid):
                    continue
                self._remove_path(study.path)
                self._remove_path(self.root / QUARANTINE_DIR / study.study_uid)
            total -= study.size_bytes
            evicted.append(study.study_uid)
        return evicted

    def purge(self, study_uid: str | None = None) -> list[str]:
        """Delete one study, or everything in the store (leftover temporary files included).

        Symbolic links are removed, never followed. With no ``study_uid``, studies in use by
        this process are skipped (so absent from the result).

        :returns: the removed Study Instance UIDs.
        :raises InvalidUIDError: if ``study_uid`` is invalid.
        :raises StoreError: if the study is not in the store, is in use, or cannot be deleted.
        """
        if study_uid is not None:
            path = self.study_dir(study_uid)
            if not path.is_dir() or path.is_symlink():
                raise StoreError(
                    f"No study {study_uid!r} in the local store at {str(self.root)!r}."
                )
            with self._lock:
                if self.is_in_use(study_uid):
                    raise StoreError(
                        f"Study {study_uid!r} is being retrieved; it can be purged once that "
                        "finishes or is cancelled."
                    )
                self._remove_path(path)
                self._remove_path(self.root / QUARANTINE_DIR / study_uid)
            return [study_uid]
        removed: list[str] = []
        self._purge_slots()
        for entry in scan(self.root):
            if entry.name == INCOMING_DIR:
                continue  # slots being written, by this process or another: see _purge_slots
            with self._lock:
                if self._name_in_use(entry.name):
                    continue
                self._remove_path(Path(entry.path))
            if _is_uid(entry.name) and entry.is_dir(follow_symlinks=False):
                removed.append(entry.name)
        return sorted(removed)

    def _purge_slots(self) -> None:
        """Remove the pools of slots nobody is writing into (ours too, when idle)."""
        with self._lock:
            if self._pool is not None and not self._pool.busy():
                self.close()
        incoming = self.root / INCOMING_DIR
        for entry in scan(incoming):
            if self._pool is not None and Path(entry.path) == self._pool.folder:
                continue
            lock = _try_lock(Path(entry.path)) if entry.is_dir(follow_symlinks=False) else None
            if lock is None and entry.is_dir(follow_symlinks=False):
                continue  # a live writer's
            try:
                self._remove_path(Path(entry.path))
            finally:
                if lock is not None:
                    os.close(lock)
        with suppress(OSError):
            incoming.rmdir()  # only if empty

    def _remove_path(self, path: Path) -> None:
        with self._lock:
            self._known.clear()
        try:
            _remove_tree(path)
        except OSError as exc:
            raise StoreError(
                f"Cannot delete {str(path)!r} from the local store: {exc.strerror or exc}."
            ) from exc


def _is_uid(name: str) -> bool:
    return is_uid_name(name)


def format_size(size: int) -> str:
    """A byte count for people: ``"512 B"``, ``"1.5 MiB"``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover
