"""Writing files so that a crash, a kill or a full disk never leaves half a file: one atomic
writer (temp file beside the destination, fsync, rename, fsync of the folder) for every file
tuiviewer writes whole (saved DICOM files, SR documents, the UID map, nodes.toml, worklist.json,
report drafts), and one appender for the journals that grow a line at a time (received studies,
reports sent back)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from tuiviewer.exceptions import SaveError


def fsync_dir(folder: Path) -> None:
    """Make a rename (or unlink) in ``folder`` durable; a platform or filesystem that cannot
    open or fsync a directory is not an error."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_atomically(
    dest: Path,
    write: Callable[[BinaryIO], object],
    *,
    overwrite: bool,
    mode: int | None = None,
) -> None:
    """Run ``write(binary_file)`` into a temp file beside ``dest``, fsync it, move it into place
    and fsync the folder: a crash leaves the old file or the new one, never half of one.

    Args:
        dest: the file to write.
        write: writes the content into the open binary file it is given.
        overwrite: replace ``dest`` if it exists; if false an existing ``dest`` is never
            replaced, even one that appears while writing.
        mode: the new file's permissions; None: 0600 for a new file, a replaced file keeps its
            mode.

    Raises:
        SaveError: the folder is missing, ``dest`` exists (without ``overwrite``), or the write
            failed; ``dest`` is left untouched and no temp file behind.
    """
    folder = dest.parent
    if not folder.is_dir():
        raise SaveError(f"Cannot save {dest.name!r}: the folder {str(folder)!r} does not exist.")
    try:
        fd, temp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=folder)
    except OSError as exc:
        raise SaveError(f"Cannot save {dest.name!r} in {str(folder)!r}: {exc.strerror}.") from exc
    temp = Path(temp_name)
    try:
        os.fchmod(fd, 0o600 if mode is None else mode)
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            if mode is None:
                with contextlib.suppress(FileNotFoundError):
                    os.chmod(temp, dest.stat().st_mode & 0o7777)
            os.replace(temp, dest)
        else:
            # link() fails if dest appeared meanwhile, so nothing is ever replaced by accident.
            try:
                os.link(temp, dest)
            except FileExistsError:
                raise SaveError(
                    f"{dest.name!r} already exists; choose another name or confirm overwrite."
                ) from None
            except OSError:
                if dest.exists():
                    raise SaveError(
                        f"{dest.name!r} already exists; choose another name or confirm overwrite."
                    ) from None
                os.replace(temp, dest)
            temp.unlink(missing_ok=True)
        fsync_dir(folder)
    except SaveError:
        temp.unlink(missing_ok=True)
        raise
    except Exception as exc:
        temp.unlink(missing_ok=True)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SaveError(f"Could not write {dest.name!r}: {reason}.") from exc


def write_private(dest: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``dest`` with :func:`write_atomically`, replacing it, readable
    by the owner only (0600) whatever the mode of the file it replaces: the one writer of
    nodes.toml, worklist.json and report drafts.

    Raises:
        SaveError: the folder is missing or the write failed; ``dest`` is left as it was.
    """
    write_atomically(
        dest, lambda handle: handle.write(text.encode("utf-8")), overwrite=True, mode=0o600
    )
    return dest


def append_line(path: Path, line: str) -> None:
    """Append one line of text to the journal ``path`` (created 0600, never through a symlink)
    and fsync it, so the line survives a crash right after.

    Raises:
        OSError: the file cannot be opened or written.
    """
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (line.rstrip("\n") + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
