"""De-identified export following PS3.15 Annex E, Basic Application Level Confidentiality Profile.

Users send studies (often RT plans with their structure sets and images) to vendors and
researchers. The copies must not carry the patient's identity, yet must still reference each
other: every UID is replaced through one :class:`UIDMap`, so a plan keeps pointing at its
structure set and images, and the map can be saved to reuse in a later export.

What this does not fix: identity burned into pixel data (Burned In Annotation "YES"); that is
reported as a warning for the user to decide. Overlay planes are removed (the profile removes
their data) and the export says so.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, UID_dictionary, generate_uid

from tuiviewer import locations
from tuiviewer.dicom.deid.profile import BASIC_PROFILE
from tuiviewer.dicom.editing import save_as
from tuiviewer.dicom.reading import read_dicom
from tuiviewer.dicom.warned import quiet
from tuiviewer.exceptions import DicomReadError, ExportError, TuiviewerError
from tuiviewer.files import write_atomically

__all__ = [
    "BASIC_PROFILE",
    "DEIDENTIFICATION_METHOD",
    "ExportSummary",
    "UIDMap",
    "deidentify",
    "export_deidentified",
]

DEIDENTIFICATION_METHOD = "tuiviewer PS3.15 Basic Application Level Confidentiality Profile"

# BASIC_PROFILE is PS3.15 Table E.1-1, column "Basic Profile" (deid/basic_profile.csv):
#   D  replace with a dummy value of the same VR      Z  replace with an empty value
#   X  remove                                         K  keep (sequences are still cleaned)
#   U  replace the UID consistently (UIDMap)
#   Compound codes (X/Z, X/D, Z/D, X/Z/D, X/Z/U*) let the implementation pick whichever keeps
#   the IOD valid; _resolve() makes that choice without knowing the IOD.
# Attributes not listed are kept, except private ones (removed: no Retain Safe Private Option),
# every UI value (remapped unless it is a well-known UID), curve data (50xx,eeee) and overlay
# comments (60xx,4000).

_PATIENT_NAME = 0x00100010
_PATIENT_ID = 0x00100020
_OVERLAY_DATA = 0x3000
_OVERLAY_COMMENTS = 0x4000

# Compound actions that must not leave an empty value where some IOD makes them Type 1
# (Enhanced General Equipment, enhanced image modules), so they get a dummy instead.
_DUMMY_WHEN_COMPOUND = frozenset({0x00180010, 0x00181000, 0x0008002A})

# UIDs that name a class or an implementation, not an instance: they identify no patient and
# must stay as they are for the files to remain readable.
_CLASS_UID_TAGS = frozenset(
    {
        0x00020002,  # Media Storage SOP Class UID
        0x00020010,  # Transfer Syntax UID
        0x00080016,  # SOP Class UID
        0x00081150,  # Referenced SOP Class UID
        0x0008010C,  # Coding Scheme UID
        0x00080117,  # Context UID
        0x00080118,  # Mapping Resource UID
        0x0008001A,  # Related General SOP Class UID
        0x0008001B,  # Original Specialized SOP Class UID
        0x00041510,  # Referenced SOP Class UID in File
        0x00041512,  # Referenced Transfer Syntax UID in File
    }
)

# File Meta elements that can name the sending site; the rest of the meta is rebuilt.
_META_REMOVE = (0x00020016, 0x00020017, 0x00020018, 0x00020100, 0x00020102)

_DUMMY_TEXT = {
    "DA": "19000101",
    "TM": "000000",
    "DT": "19000101000000",
    "AS": "000Y",
    "PN": "ANONYMOUS",
    "DS": "0",
    "IS": "0",
}
_NUMERIC_VRS = frozenset({"US", "SS", "UL", "SL", "UV", "SV", "FL", "FD", "AT"})
_BINARY_VRS = frozenset({"OB", "OW", "OF", "OL", "OD", "OV", "UN", "OB or OW", "US or OW"})
_UID_PREFIX_RE = re.compile(r"(0|[1-9]\d*)(\.(0|[1-9]\d*))*\.")


def _resolve(action: str, tag: int) -> str:
    """One of D, Z, X, K, U for a table action, choosing what keeps any IOD valid."""
    if action in ("Z/D", "X/D"):
        return "D"
    if action == "X/Z":
        return "Z"
    if action == "X/Z/D":
        return "D" if tag in _DUMMY_WHEN_COMPOUND else "Z"
    if action == "X/Z/U*":
        # Reference sequences: keep them, their UIDs are remapped like every other UID.
        return "K"
    return action


class UIDMap:
    """Consistent UID replacement: the same original UID always maps to the same new UID.

    Shared by every file of an export (and across exports when saved with :meth:`to_json`),
    so references between objects survive de-identification. Thread-safe.
    """

    def __init__(self, prefix: str | None = None, mapping: dict[str, str] | None = None) -> None:
        """``prefix``: an organisation root ending with "." (default: 2.25. UUID-derived UIDs).

        Raises:
            ExportError: the prefix or a mapped UID is not a valid UID.
        """
        if prefix is not None and (not _UID_PREFIX_RE.fullmatch(prefix) or len(prefix) > 40):
            raise ExportError(
                f"UID prefix {prefix!r} is not valid: it must be digits and dots, end with a "
                "dot and be at most 40 characters, e.g. '1.2.826.0.1.3680043.10.543.'."
            )
        self.prefix = prefix
        self._mapping: dict[str, str] = {}
        self._lock = threading.Lock()
        for original, new in (mapping or {}).items():
            if not isinstance(original, str) or not isinstance(new, str):
                raise ExportError(f"UID map entry {original!r}: {new!r} is not text to text.")
            if not UID(new).is_valid:
                raise ExportError(f"UID map entry {original!r} maps to {new!r}, not a valid UID.")
            self._mapping[original] = new
        self._used = set(self._mapping.values())

    def map(self, uid: str) -> str:
        """The replacement for ``uid`` (made on first use); an empty UID stays empty."""
        key = str(uid)
        if not key:
            return key
        with self._lock:
            found = self._mapping.get(key)
            if found is None:
                found = generate_uid(self.prefix)
                while found in self._used or found in self._mapping:
                    found = generate_uid(self.prefix)
                self._mapping[key] = found
                self._used.add(found)
            return found

    @property
    def mapping(self) -> dict[str, str]:
        """A copy of original → new UID pairs."""
        with self._lock:
            return dict(self._mapping)

    def __len__(self) -> int:
        return len(self._mapping)

    def to_json(self) -> str:
        """The map as JSON text, to save beside an export."""
        with self._lock:
            data = {
                "format": "tuiviewer-uid-map",
                "version": 1,
                "prefix": self.prefix,
                "mapping": dict(sorted(self._mapping.items())),
            }
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> UIDMap:
        """Load a map written by :meth:`to_json`.

        Raises:
            ExportError: the text is not such a map.
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ExportError(
                f"The UID map is not valid JSON: {exc.msg} at line {exc.lineno}."
            ) from None
        if not isinstance(data, dict) or not isinstance(data.get("mapping"), dict):
            raise ExportError("The UID map has no 'mapping' object of original → new UIDs.")
        prefix = data.get("prefix")
        if prefix is not None and not isinstance(prefix, str):
            raise ExportError(f"The UID map's prefix {prefix!r} is not text.")
        return cls(prefix, data["mapping"])


def _is_well_known(uid: str) -> bool:
    return uid in UID_dictionary or uid.startswith("1.2.840.10008.")


def _empty_value(elem: DataElement) -> Any:
    if elem.VR == "SQ":
        return DicomSequence()
    if elem.VR in _NUMERIC_VRS:
        return None
    if elem.VR in _BINARY_VRS:
        return b""
    return ""


def _dummy_value(elem: DataElement, uids: UIDMap) -> Any:
    if elem.is_empty:
        return _empty_value(elem)
    if elem.VR == "UI":
        return _map_uid_value(elem.value, uids)
    if elem.VR in _NUMERIC_VRS:
        return 0.0 if elem.VR in ("FL", "FD") else 0
    if elem.VR in _BINARY_VRS or elem.VR in ("SQ", "UR"):
        # No meaningful dummy exists for bytes, URLs or whole sequences: empty them.
        return _empty_value(elem)
    return _DUMMY_TEXT.get(str(elem.VR), "ANONYMIZED")


def _map_uid_value(value: Any, uids: UIDMap) -> Any:
    if isinstance(value, str | UID):
        return value if _is_well_known(str(value)) else uids.map(str(value))
    return [_map_uid_value(part, uids) for part in value]


def _clean_dataset(ds: Dataset, uids: UIDMap, patient_id: str, patient_name: str) -> None:
    for key in list(ds.keys()):
        tag = int(key)
        group = tag >> 16
        if group % 2:
            del ds[tag]
            continue
        # PS3.15 E.1-1 removes Overlay Data and Overlay Comments (X); an overlay plane without
        # its data is an invalid module, so the whole 60xx group goes, as do curves (50xx).
        if 0x5000 <= group <= 0x501E or 0x6000 <= group <= 0x601E:
            del ds[tag]
            continue
        elem = ds[tag]
        if tag == _PATIENT_NAME:
            elem.value = patient_name
            continue
        if tag == _PATIENT_ID:
            elem.value = patient_id
            continue
        action = _resolve(BASIC_PROFILE.get(tag, "K"), tag)
        if action == "X":
            del ds[tag]
        elif action == "Z":
            elem.value = _empty_value(elem)
        elif action == "D":
            elem.value = _dummy_value(elem, uids)
        elif elem.VR == "SQ":
            for item in elem.value:
                _clean_dataset(item, uids, patient_id, patient_name)
        elif elem.VR == "UI" and not elem.is_empty and tag not in _CLASS_UID_TAGS:
            elem.value = _map_uid_value(elem.value, uids)


def _clean_meta(meta: FileMetaDataset, uids: UIDMap) -> FileMetaDataset:
    clean = FileMetaDataset()
    for elem in meta:
        if int(elem.tag) in _META_REMOVE:
            continue
        clean.add(copy.deepcopy(elem))
    if "MediaStorageSOPInstanceUID" in clean:
        clean.MediaStorageSOPInstanceUID = UID(uids.map(clean.MediaStorageSOPInstanceUID))
    if "ImplementationClassUID" in clean:
        # This program writes the new file, so the meta names it rather than the source's.
        clean.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        clean.ImplementationVersionName = f"PYDICOM {pydicom.__version__}"[:16]
    return clean


def deidentify(
    ds: Dataset, uids: UIDMap, *, patient_id: str = "ANON", patient_name: str = "ANONYMOUS"
) -> Dataset:
    """A de-identified copy of ``ds`` (``ds`` itself is not changed).

    Applies the Basic Profile actions of :data:`BASIC_PROFILE` at every nesting level, removes
    private elements, curve data and overlay planes, replaces every instance UID through
    ``uids`` (SOP Class, Transfer Syntax and other well-known UIDs stay), and records the
    method in Patient Identity Removed, De-identification Method and its code sequence.
    Pixel data is not inspected: check Burned In Annotation before sending.
    """
    clean = copy.deepcopy(ds)
    _clean_dataset(clean, uids, patient_id, patient_name)
    clean.PatientName = patient_name
    clean.PatientID = patient_id
    clean.PatientIdentityRemoved = "YES"
    clean.DeidentificationMethod = DEIDENTIFICATION_METHOD
    code = Dataset()
    code.CodeValue = "113100"
    code.CodingSchemeDesignator = "DCM"
    code.CodeMeaning = "Basic Application Confidentiality Profile"
    clean.DeidentificationMethodCodeSequence = DicomSequence([code])
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        clean.file_meta = _clean_meta(meta, uids)
    if hasattr(clean, "filename"):
        # The copy is a new object: it must not be mistaken for the source file when saved.
        clean.filename = None
    return clean


@dataclass(frozen=True)
class ExportSummary:
    """What a de-identified export did."""

    written: list[Path] = field(default_factory=list)
    """Files written, in source order."""
    failed: list[tuple[Path, str]] = field(default_factory=list)
    """Sources not exported, each with the reason as a sentence."""
    warnings: list[str] = field(default_factory=list)
    """Things the profile cannot fix, such as burned-in annotation, and cancellation."""
    map_path: Path | None = None
    """Where the UID map (original → new) was saved: outside the export, never sent along."""


def _read_source(path: Path) -> Dataset:
    try:
        return read_dicom(path)
    except InvalidDicomError:
        pass
    # Files without the Part 10 header (as old RT systems write them) are still DICOM when
    # they parse and name their SOP Instance.
    with quiet():
        # A forced read of a non-DICOM file warns about guessed encodings; the check below
        # turns that case into a clear failure instead.
        ds = read_dicom(path, force=True)
    if "SOPInstanceUID" not in ds:
        raise DicomReadError(
            f"{path.name!r} is not DICOM: no 'DICM' prefix and no SOP Instance UID."
        )
    return ds


def _warnings_for(ds: Dataset, path: Path) -> list[str]:
    found = []
    if str(ds.get("BurnedInAnnotation", "")).upper() == "YES":
        found.append(
            f"{path.name!r} has Burned In Annotation YES: identifying text may be in the "
            "pixels, which de-identification does not change."
        )
    if any(
        int(tag) >> 16 in range(0x6000, 0x6020, 2) and int(tag) & 0xFFFF == 0x3000
        for tag in ds.keys()
    ):
        found.append(
            f"{path.name!r} had overlay planes (which can carry identifying text); "
            "PS3.15 removes them, so they are not in the export."
        )
    return found


def _target_path(dest_dir: Path, ds: Dataset, source: Path) -> Path:
    parts = []
    for keyword, label in (
        ("StudyInstanceUID", "Study Instance UID"),
        ("SeriesInstanceUID", "Series Instance UID"),
        ("SOPInstanceUID", "SOP Instance UID"),
    ):
        value = str(ds.get(keyword, "") or "")
        # Validated before it becomes a path part, so no value can climb out of dest_dir.
        if not UID(value).is_valid:
            raise ExportError(
                f"{source.name!r} has no valid {label} ({value!r}), so it was not exported."
            )
        parts.append(value)
    return dest_dir.joinpath(parts[0], parts[1], f"{parts[2]}.dcm")


def _make_private_dirs(dest_dir: Path, folder: Path) -> None:
    missing = []
    current = folder
    while not current.exists() and current != dest_dir.parent:
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=0o700)
        os.chmod(path, 0o700)


def default_map_path(dest_dir: Path) -> Path:
    """The UID map of an export folder, in the user data dir (not in the export itself)."""
    key = hashlib.sha256(str(dest_dir.resolve()).encode()).hexdigest()[:20]
    return locations.data_dir() / "uid-maps" / f"{key}.json"


def export_deidentified(
    sources: Sequence[Path],
    dest_dir: Path,
    *,
    uids: UIDMap | None = None,
    map_path: Path | None = None,
    cancel: threading.Event | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ExportSummary:
    """De-identify ``sources`` into ``dest_dir/<Study UID>/<Series UID>/<SOP UID>.dcm``.

    The UIDs in the path are the new ones. Folders are created 0700, files 0600. The UID map
    links new UIDs back to the originals, so it is kept out of the folder that is sent away:
    by default in the user data dir (``uid-maps/``, 0600), one map per export folder.
    Without ``uids``, an existing map for ``dest_dir`` is reused so a second export to the
    same folder stays consistent with the first.

    Args:
        cancel: when set, stops before the next file (what is written stays).
        progress: called with (files done, total) after each file.

    Returns:
        Written files, failures with reasons and warnings; one bad file never stops the rest.

    Raises:
        ExportError: ``dest_dir`` cannot be created or its UID map cannot be read or written.
    """
    dest_dir = Path(dest_dir)
    try:
        _make_private_dirs(dest_dir, dest_dir)
    except OSError as exc:
        raise ExportError(
            f"Cannot create the export folder {str(dest_dir)!r}: {exc.strerror}."
        ) from exc
    if map_path is None:
        map_path = default_map_path(dest_dir)
    _make_private_dirs(map_path.parent, map_path.parent)
    if uids is None:
        try:
            uids = UIDMap.from_json(map_path.read_text()) if map_path.exists() else UIDMap()
        except OSError as exc:
            raise ExportError(
                f"Cannot read the UID map {str(map_path)!r}: {exc.strerror}."
            ) from exc
    written: list[Path] = []
    failed: list[tuple[Path, str]] = []
    warnings: list[str] = []
    total = len(sources)
    try:
        for done, source in enumerate(sources):
            if cancel is not None and cancel.is_set():
                warnings.append(f"Export cancelled after {done} of {total} files.")
                break
            source = Path(source)
            try:
                original = _read_source(source)
                clean = deidentify(original, uids)
                target = _target_path(dest_dir, clean, source)
                _make_private_dirs(dest_dir, target.parent)
                # The name is derived from the UID map, so an existing file is this same
                # instance from an earlier export: replacing it is expected.
                save_as(clean, target, overwrite=True)
                os.chmod(target, 0o600)
                written.append(target)
                warnings.extend(_warnings_for(original, source))
            except TuiviewerError as exc:
                failed.append((source, exc.message))
            except Exception as exc:  # one unreadable file must not end the export
                failed.append((source, f"{source.name!r} could not be exported: {exc}"))
            if progress is not None:
                progress(done + 1, total)
    finally:
        text = uids.to_json().encode()
        try:
            write_atomically(map_path, lambda handle: handle.write(text), overwrite=True)
            os.chmod(map_path, 0o600)
        except (TuiviewerError, OSError) as exc:
            raise ExportError(f"Could not save the UID map {str(map_path)!r}: {exc}") from exc
    return ExportSummary(written, failed, warnings, map_path)
