"""pydicom's data dictionaries as one small file that loads in a few milliseconds.

``tuiviewer dump`` of one slice has a budget of about 120 ms, and ``import pydicom`` alone takes
more than that. The raw dump (:mod:`tuiviewer.dicom.rawdump`) needs only the facts pydicom's
dictionaries hold: the VR, keyword and name of each public tag (repeating groups included), the
VR and name of each private tag per creator, the names of well-known UIDs and the character sets
pydicom can decode. pydicom stays the source of truth: the first run (or a run after pydicom
changed) imports it, copies those facts into a ``marshal`` file in the user cache directory
(0600, written atomically) and later runs read that file instead. The file is keyed by where
pydicom is installed and by the size and time of its dictionary modules, so an upgrade of
pydicom makes a new one.
"""

from __future__ import annotations

import importlib.util
import marshal
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["Dictionaries", "cache_path", "dictionaries"]

#: Bumped whenever the layout of the cached tables changes.
_FORMAT = 3
_SOURCES = ("_dicom_dict.py", "_private_dict.py", "_uid_dict.py", "charset.py", "_version.py")


class Dictionaries:
    """What the raw dump needs of pydicom's dictionaries.

    Entries are kept as the cache stores them, tab-joined strings and one marshalled table per
    private creator, and unpacked when looked up: unmarshalling 15,000 small tuples would cost
    more than the rest of the dump. (A plain class: ``dataclasses`` costs ~10 ms to import.)
    """

    def __init__(self, data: dict[str, Any]) -> None:
        self.public: dict[int, str] = data["public"]
        """Tag → "VR\tkeyword\tname" of the public dictionary."""
        self.repeaters: list[tuple[int, int, str]] = data["repeaters"]
        """(mask1, mask2, "VR\tkeyword\tname") of the repeating-group tags, in pydicom's
        order."""
        self.private: dict[str, bytes] = data["private"]
        """Private creator → its marshalled table ("GGGGxxEE"-style key → (VR, name))."""
        self.uids: dict[str, str] = data["uids"]
        """UID → "name\tkeyword\ttype", e.g. "JPEG Baseline (Process 1)\tJPEGBaseline8Bit\t
        Transfer Syntax"."""
        self.charsets = frozenset(data["charsets"])
        """Specific Character Set values pydicom knows how to decode."""
        self._creators: dict[str, dict[str, tuple[str, str]]] = {}

    def entry(self, tag: int) -> tuple[str, str, str] | None:
        """(VR, keyword, name) of a public tag, as ``pydicom.datadict.get_entry`` finds it."""
        found = self.public.get(tag)
        if found is None:
            for mask1, mask2, joined in self.repeaters:
                if (tag ^ mask1) & mask2 == 0:
                    found = joined
                    break
            else:
                return None
        vr, keyword, name = found.split("\t")
        return vr, keyword, name

    def uid(self, uid: str) -> tuple[str, str, str] | None:
        """(name, keyword, type) of a UID in pydicom's UID dictionary."""
        found = self.uids.get(uid)
        if found is None:
            return None
        name, keyword, kind = found.split("\t")
        return name, keyword, kind

    def private_entry(self, tag: int, creator: str) -> tuple[str, str] | None:
        """(VR, name) of a private tag, as ``pydicom.datadict.get_private_entry`` finds it."""
        table = self._creators.get(creator)
        if table is None:
            packed = self.private.get(creator)
            if packed is None:
                return None
            table = self._creators[creator] = marshal.loads(packed)
        group = f"{tag >> 16:04X}"
        elem = f"{tag & 0xFFFF:04X}"
        for key in (f"{group}{elem}", f"{group}xx{elem[-2:]}", f"{group[:2]}xxxx{elem[-2:]}"):
            found = table.get(key)
            if found is not None:
                return found
        return None


def _key() -> list[Any] | None:
    """What the cache is valid for: pydicom's location and its dictionary files' stats."""
    spec = importlib.util.find_spec("pydicom")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations)))
    key: list[Any] = [_FORMAT, str(root)]
    for name in _SOURCES:
        try:
            st = (root / name).stat()
        except OSError:
            return None
        key.append((name, st.st_size, st.st_mtime_ns))
    return key


def cache_path() -> Path:
    """The cache file (``TUIVIEWER_CACHE_DIR`` or the user cache dir)."""
    from tuiviewer.locations import cache_dir

    return cache_dir() / f"pydicom-dictionaries-{_FORMAT}.marshal"


def _generate() -> dict[str, Any]:
    from pydicom._private_dict import private_dictionaries
    from pydicom.charset import python_encoding
    from pydicom.datadict import DicomDictionary, RepeatersDictionary, masks
    from pydicom.uid import UID_dictionary

    public = {int(tag): f"{e[0]}\t{e[4]}\t{e[2]}" for tag, e in DicomDictionary.items()}
    repeaters = [
        (masks[mask][0], masks[mask][1], f"{e[0]}\t{e[4]}\t{e[2]}")
        for mask, e in RepeatersDictionary.items()
    ]
    private = {
        creator: marshal.dumps({key: (e[0], e[2]) for key, e in table.items()})
        for creator, table in private_dictionaries.items()
    }
    uids = {str(uid): f"{e[0]}\t{e[4]}\t{e[1]}" for uid, e in UID_dictionary.items()}
    return {
        "public": public,
        "repeaters": repeaters,
        "private": private,
        "uids": uids,
        "charsets": sorted(python_encoding),
    }


def _write(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` atomically, 0600 (a failure just means no cache)."""
    import tempfile  # only when the cache is (re)made

    try:
        fd, tmp = tempfile.mkstemp(prefix=".dict-", dir=path.parent)
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


_loaded: Dictionaries | None = None


def dictionaries(before_pydicom: Callable[[], None] | None = None) -> Dictionaries:
    """The tables, from the cache when it matches the installed pydicom, else made now
    (``before_pydicom`` is called first then: the CLI imports pydicom lean)."""
    global _loaded
    if _loaded is not None:
        return _loaded
    key = _key()
    path = cache_path()
    data: dict[str, Any] | None = None
    try:
        stored = marshal.loads(path.read_bytes())
        if isinstance(stored, dict) and key is not None and stored.get("key") == key:
            data = stored["tables"]
    except (OSError, EOFError, ValueError, TypeError, KeyError):
        data = None
    if data is None:
        if before_pydicom is not None:
            before_pydicom()
        data = _generate()
        if key is not None:
            _write(path, marshal.dumps({"key": key, "tables": data}))
    _loaded = Dictionaries(data)
    return _loaded
