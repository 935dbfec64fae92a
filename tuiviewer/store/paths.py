"""What the local store's files and folders are called, and who may read them.

Every name below the store root comes from here: a UID is used as it is when it is a PS3.5 §9.1
UID and by a hash otherwise (:func:`uid_name`), so raw text from a peer never becomes a path
component; folders are 0700 and files 0600 whatever the umask. No I/O beyond creating folders.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from tuiviewer.exceptions import TuiviewerError
from tuiviewer.locations import private_dirs

APP_NAME = "tuiviewer"
INSTANCE_SUFFIX = ".dcm"
TEMP_SUFFIX = ".tmp"
# Dot-prefixed names can never be UIDs, so they cannot collide with a series directory or an
# instance file, and a listing of UIDs skips them without extra rules.
ACCESS_MARKER = ".last-access"
#: Instances that could not be read within the reading limits: ``<root>/.quarantine/<study>/
#: <series>/<sop>.dcm.bad`` with the reason beside it in ``<sop>.reason``. Out of the study's
#: folder, so nothing that opens a study reads them again.
QUARANTINE_DIR = ".quarantine"
QUARANTINE_SUFFIX = ".dcm.bad"
REASON_SUFFIX = ".reason"
MAX_UID_LENGTH = 64
MAX_FOREIGN_UID_LENGTH = 1024
"""Longer values are not identifiers at all: refused even hashed."""
HASHED_PREFIX = "x-"
_HASHED_NAME = re.compile(r"x-[0-9a-f]{32}")

DIR_MODE = 0o700
FILE_MODE = 0o600
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)

# PS3.5 §9.1: components of ASCII digits, no leading zero unless the component is exactly "0".
# [0-9] rather than \d so that non-ASCII digits (e.g. Arabic-Indic) are refused too.
_UID_COMPONENT = re.compile(r"0|[1-9][0-9]*")
_UID_CHARS = re.compile(r"[0-9.]*")


class StoreError(TuiviewerError):
    """The local study store cannot do what was asked; nothing outside the store was touched."""

    title = "Local store"


class InvalidUIDError(StoreError):
    """A value is not a valid DICOM UID, so it is never used as a path in the store."""

    title = "Invalid UID"


def validate_uid(uid: str, what: str = "UID") -> str:
    """Check that ``uid`` is a DICOM UID (PS3.5 §9.1) and return it as a plain ``str``.

    A valid UID is 1–64 characters of digits and dots, split by dots into non-empty components,
    none of which has a leading zero (a lone ``"0"`` is allowed). Anything else — in particular
    ``".."``, ``"/"`` or letters — is refused, which is what keeps UIDs received from a remote
    peer from naming a path outside the store.

    :param uid: the candidate value.
    :param what: how to name the value in the error message (e.g. ``"Study Instance UID"``).
    :returns: ``uid`` as a plain ``str``.
    :raises InvalidUIDError: quoting the value and saying which rule it breaks.
    """
    if not isinstance(uid, str):
        raise InvalidUIDError(f"{what} {uid!r} is not a DICOM UID: it is not a string.")
    prefix = f"{what} {uid!r} is not a valid DICOM UID"
    if not uid:
        raise InvalidUIDError(f"{prefix}: it is empty.")
    if len(uid) > MAX_UID_LENGTH:
        raise InvalidUIDError(
            f"{prefix}: it is {len(uid)} characters long, more than {MAX_UID_LENGTH}."
        )
    if not _UID_CHARS.fullmatch(uid):
        bad = next(ch for ch in uid if ch not in "0123456789.")
        raise InvalidUIDError(f"{prefix}: {bad!r} is not allowed (only digits and dots).")
    for component in uid.split("."):
        if not component:
            raise InvalidUIDError(f"{prefix}: it has an empty component.")
        if not _UID_COMPONENT.fullmatch(component):
            raise InvalidUIDError(f"{prefix}: component {component!r} has a leading zero.")
    return str(uid)


def uid_name(uid: str, what: str = "UID") -> str:
    """The file or folder name for ``uid``: never raw text from a peer.

    A valid DICOM UID (:func:`validate_uid`) is its own name, as before. A PACS can also hold
    non-conformant ones (hex strings, letters, over-long values) that a workstation must still
    retrieve, show and report on, as getscu does: those are named ``x-`` and the first 32 hex
    digits of the SHA-256 of their UTF-8 text. A valid UID never starts with ``x``, so the two
    kinds cannot collide. Trailing NUL and space padding is not part of the value.

    :raises InvalidUIDError: the value is empty, not a string, or longer than
        :data:`MAX_FOREIGN_UID_LENGTH` characters.
    """
    if not isinstance(uid, str):
        raise InvalidUIDError(f"{what} {uid!r} is not a DICOM UID: it is not a string.")
    text = uid.rstrip("\x00 ")
    if not text:
        raise InvalidUIDError(f"{what} {uid!r} is empty.")
    try:
        return validate_uid(text, what)
    except InvalidUIDError:
        pass
    if len(text) > MAX_FOREIGN_UID_LENGTH:
        raise InvalidUIDError(
            f"{what} of {len(text)} characters is not an identifier (more than "
            f"{MAX_FOREIGN_UID_LENGTH})."
        )
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{HASHED_PREFIX}{digest[:32]}"


def foreign_uid(uid: str, what: str = "UID") -> str:
    """A UID as a peer gave it, to be quoted back as it is (queries, references in an SR).

    Non-conformant values are accepted, as getscu accepts them, since a PACS may hold them;
    only what cannot be an identifier at all is refused (see :func:`uid_name`). Trailing NUL
    and space padding is removed.

    :raises InvalidUIDError: empty, not a string, or absurdly long.
    """
    uid_name(uid, what)
    return uid.rstrip("\x00 ")


def is_uid_name(name: str) -> bool:
    """Whether ``name`` is what :func:`uid_name` makes (a UID, or ``x-`` and 32 hex digits)."""
    return bool(_HASHED_NAME.fullmatch(name)) or _is_valid_uid(name)


def _is_valid_uid(name: str) -> bool:
    try:
        validate_uid(name)
    except InvalidUIDError:
        return False
    return True


def make_private_dirs(path: Path) -> None:
    """Create ``path`` and any missing parents 0700 (see :func:`locations.private_dirs`)."""
    private_dirs(path)


def scan(path: Path) -> list[os.DirEntry[str]]:
    try:
        return list(os.scandir(path))
    except (FileNotFoundError, NotADirectoryError):
        return []
