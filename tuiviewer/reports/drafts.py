"""Report drafts that survive a crash, a ``kill -9`` or a dropped SSH connection.

One JSON file per study (``<Study Instance UID>.json``, or ``x-<hash>.json`` for a study whose
UID is not conformant: :func:`tuiviewer.store.uid_name`) in ``data_dir()/drafts`` (0700), each
written by :func:`tuiviewer.files.write_private` (0600): a temp file in the same folder, fsync,
rename over the old draft, fsync of the folder. A crash at any point leaves either the old draft
or the new one, never half a file.

:class:`Autosaver` is what the editor calls on every keystroke. It uses a **background thread**
(not a UI timer), so drafts keep being written even while the UI's event loop is busy: the
latest text is written at most ``delay`` (1 s) after the first change not yet on disk, so a
SIGKILL or SIGHUP loses at most the last ``delay`` seconds plus one write (well under 2 s).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuiviewer import locations
from tuiviewer.exceptions import SaveError
from tuiviewer.files import fsync_dir, write_private
from tuiviewer.reports.model import DraftError, Report, ReportError
from tuiviewer.store import InvalidUIDError, uid_name

__all__ = ["Autosaver", "Draft", "DraftInfo", "DraftStore", "default_drafts_dir"]

_LOG = logging.getLogger(__name__)
_FORMAT_VERSION = 1
_SUFFIX = ".json"
_PREVIOUS = ".previous"
"""``<uid>.previous.json``: the draft replaced by "start over", which the editor can bring back."""


def default_drafts_dir() -> Path:
    """``drafts`` in the user data dir."""
    return locations.data_dir() / "drafts"


@dataclass(frozen=True)
class Draft:
    """The report being written for one study, plus what the "resume?" prompt shows."""

    study_uid: str
    report: Report
    patient_name: str = ""
    patient_id: str = ""
    accession: str = ""
    saved_at: dt.datetime | None = field(default=None, compare=False)
    """When it was last written to disk (set by :meth:`DraftStore.save`/``load``)."""


@dataclass(frozen=True)
class DraftInfo:
    """One saved draft, as listed for "resume the draft for this study?"."""

    study_uid: str
    saved_at: dt.datetime
    patient_name: str
    patient_id: str
    accession: str
    path: Path


class DraftStore:
    """Drafts on disk, one per Study Instance UID."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_drafts_dir()

    def _ensure_root(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            os.chmod(self.root, 0o700)
        except OSError as exc:
            raise DraftError(
                f"Cannot create the drafts folder {str(self.root)!r}: {exc.strerror or exc}."
            ) from exc

    def path_for(self, study_uid: str) -> Path:
        """The draft file of ``study_uid``.

        Raises:
            DraftError: ``study_uid`` is empty or not an identifier (it never names a path
                itself: see :func:`tuiviewer.store.uid_name`).
        """
        try:
            name = uid_name(study_uid, "Study Instance UID")
        except InvalidUIDError as exc:
            raise DraftError(f"No draft can be kept for this study: {exc.message}") from exc
        return self.root / f"{name}{_SUFFIX}"

    def check_writable(self) -> None:
        """Make sure a draft can be written here now (the folder exists and takes a file).

        Raises:
            DraftError: saying why not, with the folder.
        """
        self._ensure_root()
        try:
            fd, name = tempfile.mkstemp(prefix=".probe.", suffix=".tmp", dir=self.root)
        except OSError as exc:
            raise DraftError(
                f"Drafts cannot be saved in {str(self.root)!r}: {exc.strerror or exc}."
            ) from exc
        os.close(fd)
        Path(name).unlink(missing_ok=True)

    def previous_path(self, study_uid: str) -> Path:
        """The backup of the draft of ``study_uid`` that "start over" replaced."""
        current = self.path_for(study_uid)
        return current.with_name(current.stem + _PREVIOUS + _SUFFIX)

    def keep_previous(self, study_uid: str) -> Path | None:
        """Move the draft of ``study_uid`` aside as its backup, before a fresh report replaces it.

        An older backup is replaced. Returns the backup's path (None when there was no draft).

        Raises:
            DraftError: invalid UID, or the file cannot be moved (the draft is then unchanged).
        """
        current = self.path_for(study_uid)
        backup = self.previous_path(study_uid)
        try:
            os.replace(current, backup)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise DraftError(
                f"Cannot keep the draft {current.name!r} as a backup: {exc.strerror or exc}; "
                "the draft is unchanged."
            ) from exc
        fsync_dir(self.root)
        return backup

    def has_previous(self, study_uid: str) -> bool:
        """True when a replaced draft of ``study_uid`` is kept as a backup."""
        try:
            return self.previous_path(study_uid).is_file()
        except DraftError:
            return False

    def restore_previous(self, study_uid: str) -> Draft:
        """Make the backup the draft again, and the draft the backup (so this can be undone).

        Raises:
            DraftError: there is no backup, it is unreadable, or the files cannot be swapped.
        """
        current = self.path_for(study_uid)
        backup = self.previous_path(study_uid)
        if not backup.is_file():
            raise DraftError(f"There is no earlier draft of this study to restore ({backup.name}).")
        previous = self._parse(backup, self._read(backup))
        swap = current.with_name(f".{current.name}.swap")
        try:
            os.replace(backup, swap)
            if current.exists():
                os.replace(current, backup)
            os.replace(swap, current)
        except OSError as exc:
            raise DraftError(
                f"Cannot restore the earlier draft {backup.name!r}: {exc.strerror or exc}."
            ) from exc
        fsync_dir(self.root)
        return previous

    def save(self, draft: Draft) -> Draft:
        """Write ``draft`` atomically (0600); return it with ``saved_at`` set.

        Raises:
            DraftError: the UID is invalid or the write failed; the previous draft is intact.
        """
        path = self.path_for(draft.study_uid)
        self._ensure_root()
        saved_at = dt.datetime.now().astimezone()
        payload = {
            "format": _FORMAT_VERSION,
            "study_uid": draft.study_uid,
            "patient_name": draft.patient_name,
            "patient_id": draft.patient_id,
            "accession": draft.accession,
            "saved_at": saved_at.isoformat(),
            "report": draft.report.to_dict(),
        }
        text = json.dumps(payload, ensure_ascii=False, indent=1)
        try:
            write_private(path, text)
        except SaveError as exc:
            raise DraftError(
                f"Could not save the draft {path.name!r}: {exc.message} "
                "The previous draft is unchanged."
            ) from exc
        return Draft(
            draft.study_uid,
            draft.report,
            draft.patient_name,
            draft.patient_id,
            draft.accession,
            saved_at,
        )

    def _read(self, path: Path) -> dict[str, Any]:
        if not path.is_file():
            # A folder, a FIFO (reading it would block), a dangling link: not a draft.
            raise DraftError(f"Draft {str(path)!r} cannot be read: it is not a regular file.")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DraftError(f"Draft {str(path)!r} cannot be read: {exc}.") from exc
        if not isinstance(data, dict) or data.get("format") != _FORMAT_VERSION:
            raise DraftError(f"Draft {str(path)!r} is not a tuiviewer draft (format 1).")
        return data

    def load(self, study_uid: str) -> Draft | None:
        """The draft of ``study_uid``, or None if there is none.

        Raises:
            DraftError: the UID is invalid or the file is unreadable or corrupt.
        """
        path = self.path_for(study_uid)
        if not path.exists():
            return None
        return self._parse(path, self._read(path))

    def _parse(self, path: Path, data: dict[str, Any]) -> Draft:
        try:
            report = Report.from_dict(data["report"])
            return Draft(
                study_uid=str(data["study_uid"]),
                report=report,
                patient_name=str(data.get("patient_name", "")),
                patient_id=str(data.get("patient_id", "")),
                accession=str(data.get("accession", "")),
                saved_at=dt.datetime.fromisoformat(data["saved_at"]),
            )
        except (KeyError, TypeError, ValueError, ReportError) as exc:
            raise DraftError(f"Draft {str(path)!r} is corrupt: {exc}.") from exc

    def load_or_set_aside(self, study_uid: str) -> tuple[Draft | None, Path | None]:
        """The draft of ``study_uid``; a damaged one is renamed aside instead of raising.

        Returns ``(draft, None)``, or ``(None, where_the_damaged_file_went)`` when the file was
        truncated, not JSON, not a draft or unreadable: it is kept (0600) as
        ``<uid>.damaged-<timestamp>.json`` for a person to look at, and a fresh draft can be
        written in its place.

        Raises:
            DraftError: the UID is invalid, or the damaged file could not be moved aside (then
                nothing must be written over it).
        """
        path = self.path_for(study_uid)
        if not path.exists() and not path.is_symlink():
            return None, None
        try:
            return self.load(study_uid), None
        except DraftError as damage:
            stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S%f")
            aside = path.with_name(f"{path.stem}.damaged-{stamp}{_SUFFIX}")
            try:
                os.replace(path, aside)
                if aside.is_file() and not aside.is_symlink():
                    os.chmod(aside, 0o600)
            except OSError as exc:
                raise DraftError(
                    f"{damage.message} It could not be moved aside: {exc.strerror or exc}."
                ) from exc
            fsync_dir(self.root)
            _LOG.warning("Damaged draft %s moved aside as %s: %s", path.name, aside.name, damage)
            return None, aside

    def has_draft(self, study_uid: str) -> bool:
        """True when a draft is saved for ``study_uid`` (False for an invalid UID)."""
        try:
            return self.path_for(study_uid).exists()
        except DraftError:
            return False

    def list(self) -> list[DraftInfo]:
        """Every readable draft, most recently saved first; unreadable files are skipped."""
        if not self.root.is_dir():
            return []
        infos: list[DraftInfo] = []
        try:
            paths = sorted(self.root.glob(f"*{_SUFFIX}"))
        except OSError as exc:
            _LOG.warning("Cannot list the drafts in %s: %s", self.root, exc)
            return []
        for path in paths:
            if path.name.startswith(".") or path.name.endswith(_PREVIOUS + _SUFFIX):
                continue  # temporary files and the backups of replaced drafts
            if ".damaged-" in path.name:
                continue  # set aside by load_or_set_aside
            try:
                data = self._read(path)
                if self.path_for(str(data["study_uid"])) != path:
                    raise DraftError(f"Draft {path.name!r} names another study.")
                saved_at = dt.datetime.fromisoformat(data["saved_at"])
                if saved_at.tzinfo is None:  # written by hand or by an older version
                    saved_at = saved_at.astimezone()
                infos.append(
                    DraftInfo(
                        study_uid=str(data["study_uid"]),
                        saved_at=saved_at,
                        patient_name=str(data.get("patient_name", "")),
                        patient_id=str(data.get("patient_id", "")),
                        accession=str(data.get("accession", "")),
                        path=path,
                    )
                )
            except (DraftError, KeyError, TypeError, ValueError) as exc:
                _LOG.warning("Skipping unreadable draft %s: %s", path.name, exc)
        infos.sort(key=lambda info: info.saved_at, reverse=True)
        return infos

    def discard(self, study_uid: str) -> bool:
        """Delete the draft of ``study_uid``; False when there was none.

        Raises:
            DraftError: invalid UID, or the file cannot be deleted.
        """
        path = self.path_for(study_uid)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise DraftError(f"Cannot delete draft {path.name!r}: {exc.strerror or exc}.") from exc
        fsync_dir(self.root)
        return True


class Autosaver:
    """Writes the latest draft in a background thread, ``delay`` seconds after a change.

    Call :meth:`touch` on every edit (cheap: it only records the draft), :meth:`flush` to write
    now (before signing, leaving the editor), and :meth:`close` when done. Write failures are
    passed to ``on_error`` (from the saver thread) and kept in :attr:`last_error`; the next
    change retries.
    """

    def __init__(
        self,
        store: DraftStore,
        *,
        delay: float = 1.0,
        on_error: Callable[[DraftError], None] | None = None,
    ) -> None:
        if not 0 < delay <= 1.5:
            raise ValueError(f"Autosave delay {delay!r} must be in (0, 1.5] seconds.")
        self.store = store
        self.delay = delay
        self.on_error = on_error
        self.last_error: DraftError | None = None
        self.last_saved: Draft | None = None
        self._cond = threading.Condition()
        # Serialises writes so a flush and the thread never write an older draft last.
        self._write_lock = threading.Lock()
        self._pending: Draft | None = None
        self._dirty_since: float | None = None
        self._stopping = False
        self._thread: threading.Thread | None = None

    @property
    def pending(self) -> bool:
        """A change is not on disk yet."""
        with self._cond:
            return self._pending is not None

    def touch(self, draft: Draft) -> None:
        """Record ``draft`` as the latest text; it is on disk within ``delay`` seconds."""
        with self._cond:
            if self._stopping:
                raise DraftError("The autosaver is closed; drafts are no longer written.")
            self._pending = draft
            if self._dirty_since is None:
                self._dirty_since = time.monotonic()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="draft-autosave", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def flush(self) -> Draft | None:
        """Write the pending draft now; return what was written (None if nothing pending).

        Raises:
            DraftError: the write failed (the draft stays pending).
        """
        with self._write_lock:
            return self._write_pending(raise_errors=True)

    def forget(self, study_uid: str) -> None:
        """Drop a pending draft of ``study_uid`` (before discarding it, so it is not rewritten)."""
        with self._cond:
            if self._pending is not None and self._pending.study_uid == study_uid:
                self._pending = None
                self._dirty_since = None

    def close(self) -> DraftError | None:
        """Flush, then stop the thread; the error of that last write, None when all is on disk.

        Never raises: it is called while a screen or the app goes away, where raising would
        turn a disk problem into a crash (the caller has asked the user about unsaved text).
        """
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=10)
        try:
            self.flush()
        except DraftError as exc:
            _LOG.error("The last draft could not be written: %s", exc.message)
            return exc
        return None

    def _write_pending(self, *, raise_errors: bool) -> Draft | None:
        with self._cond:
            draft = self._pending
            self._pending = None
            self._dirty_since = None
        if draft is None:
            return None
        try:
            saved = self.store.save(draft)
        except DraftError as exc:
            with self._cond:
                if self._pending is None:  # keep it for the retry unless a newer one came
                    self._pending = draft
                    self._dirty_since = time.monotonic()
            self.last_error = exc
            if raise_errors:
                raise
            if self.on_error is not None:
                self.on_error(exc)
            return None
        self.last_error = None
        self.last_saved = saved
        return saved

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                assert self._dirty_since is not None
                due = self._dirty_since + self.delay
                remaining = due - time.monotonic()
                if remaining > 0:
                    self._cond.wait(remaining)
                    continue
            with self._write_lock:
                self._write_pending(raise_errors=False)
            if self.last_error is not None:
                # A failing disk must not spin the CPU: retry after one more delay.
                time.sleep(self.delay)
