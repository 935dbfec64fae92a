"""A small Query/Retrieve SCP that answers like a PACS: the demo's archive, and a test peer.

pynetdicom's ``qrscp`` answers C-FIND only with the keys its sqlite model stores: no Study
Description, Modalities in Study, number of series or instances, Series Description or Body
Part, so every screen of the workstation looks half-empty against it. :class:`MiniPacs`, on
pynetdicom's AE, serves what a real PACS serves:

* C-ECHO;
* C-FIND at PATIENT, STUDY, SERIES and IMAGE level, Patient Root and Study Root, with the
  matching of PS3.4 C.2.2.2 (single value, list of UIDs, ``*``/``?`` wildcards, date and time
  ranges, universal) and the attributes PS3.4 C.6.1.1.5/C.6.2.1.2 has the SCP compute: Number
  of Patient/Study/Series Related Studies/Series/Instances, Modalities in Study, SOP Classes
  in Study, Available Transfer Syntax UID; any other key is answered from the headers;
* C-GET and C-MOVE (to the destinations it is given) of a patient, study, series or instances,
  decompressing a file when the requestor accepted only uncompressed syntaxes;
* C-STORE: what a workstation sends (its reports) is written to its store and indexed.

The index is in memory (one header per instance, pixel data left on disk). ``overrides`` set
attributes per study in every answer and every instance sent (the demo dates its sample
studies today, yesterday... without rewriting them). Run ``python -m tuiviewer.net.minipacs
--help`` for the process the demo starts. No Textual here.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import logging
import re
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydicom
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from tuiviewer.net.association import disable_nagle
from tuiviewer.net.sopclasses import RANKED_STORAGE_CLASSES, UNCOMPRESSED
from tuiviewer.store import InvalidUIDError, LocalStore, StoreError

__all__ = ["MiniPacs", "main"]

_LOG = logging.getLogger(__name__)

#: The unique key of each level (PS3.4 C.6.1.1, C.6.2.1) and the attributes that belong to it.
LEVEL_KEYS: dict[str, str] = {
    "PATIENT": "PatientID",
    "STUDY": "StudyInstanceUID",
    "SERIES": "SeriesInstanceUID",
    "IMAGE": "SOPInstanceUID",
}
_LEVELS = ("PATIENT", "STUDY", "SERIES", "IMAGE")
_DIRECTORY_CLASS = "1.2.840.10008.1.3.10"
_PENDING, _SUCCESS = 0xFF00, 0x0000
_UNABLE_TO_PROCESS, _IDENTIFIER_MISMATCH = 0xC000, 0xA900
_PROCESSING_FAILURE, _OUT_OF_RESOURCES = 0x0110, 0xA700


@dataclass
class _Instance:
    path: Path
    header: Dataset
    """The file's elements without pixel data, with the study's overrides applied."""
    transfer_syntax: str

    def get(self, keyword: str) -> Any:
        return self.header.get(keyword)

    def text(self, keyword: str) -> str:
        value = self.header.get(keyword)
        return "" if value is None else str(value).strip()


@dataclass
class _Request:
    level: str
    keys: list[str]
    matching: dict[str, str] = field(default_factory=dict)


def _values(value: Any) -> list[str]:
    """An element value as strings (multi-valued → each value), trailing padding removed."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split("\\")]
    if isinstance(value, Sequence) and not isinstance(value, bytes):
        return [str(part).strip() for part in value]
    return [str(value).strip()]


def _matches_one(candidate: str, wanted: str, vr: str) -> bool:
    """One value against one matching key value (PS3.4 C.2.2.2.1-5)."""
    if vr in ("DA", "TM", "DT") and "-" in wanted:
        low, _, high = wanted.partition("-")
        if not candidate:
            return False
        width = max(len(low), len(high))
        value = candidate[:width] if width else candidate
        return (not low or value >= low) and (not high or value <= high)
    if "*" in wanted or "?" in wanted:
        pattern = fnmatch.translate(wanted)
        flags = re.IGNORECASE if vr == "PN" else 0
        return re.fullmatch(pattern, candidate, flags) is not None
    if vr == "PN":
        return candidate.casefold() == wanted.casefold()
    return candidate == wanted


def _matches(candidates: list[str], wanted: str, vr: str) -> bool:
    """Any value of a (multi-valued) attribute against a key (a UID list matches any UID)."""
    options = wanted.split("\\") if vr in ("UI", "CS") or "\\" in wanted else [wanted]
    return any(_matches_one(value, option, vr) for value in candidates for option in options)


class MiniPacs:
    """An in-memory index of DICOM files served over C-FIND, C-GET, C-MOVE and C-STORE."""

    def __init__(
        self,
        store: Path,
        *,
        ae_title: str = "MINIPACS",
        destinations: Mapping[str, tuple[str, int]] | None = None,
        overrides: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        """``store``: where received instances are written (a :class:`LocalStore` tree);
        ``destinations``: C-MOVE destination AE titles → (host, port); ``overrides``: per
        Study Instance UID, attributes (keyword → value) every answer and instance carries."""
        self.ae_title = ae_title
        self.store = LocalStore(store)
        self.destinations = dict(destinations or {})
        self.overrides = {uid: dict(values) for uid, values in (overrides or {}).items()}
        self._lock = threading.Lock()
        self._instances: dict[str, _Instance] = {}
        self._server: Any = None
        self.port = 0

    # ---- the index ----------------------------------------------------------------------------
    def add(self, paths: Iterable[Path]) -> int:
        """Index the DICOM files at ``paths`` (folders recursively); returns how many.

        Files are served from where they are. Unreadable files and DICOMDIRs are skipped.
        """
        count = 0
        for path in paths:
            files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
            for file in files:
                if self._index(file):
                    count += 1
        return count

    def _index(self, path: Path) -> bool:
        try:
            # force: files without a preamble or file meta (some of pydicom's samples).
            header = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        except (InvalidDicomError, OSError, ValueError, AttributeError, EOFError):
            return False
        meta = getattr(header, "file_meta", None)
        sop = str(header.get("SOPInstanceUID", "") or "").strip()
        sop_class = str(header.get("SOPClassUID", "") or "").strip()
        if not sop or not sop_class or sop_class == _DIRECTORY_CLASS:
            return False
        study = str(header.get("StudyInstanceUID", "") or "").strip()
        for keyword, value in self.overrides.get(study, {}).items():
            setattr(header, keyword, value)
        syntax = str(
            (meta.get("TransferSyntaxUID") if meta is not None else None)
            or (ImplicitVRLittleEndian if header.original_encoding[0] else ExplicitVRLittleEndian)
        )
        with self._lock:
            self._instances[sop] = _Instance(path, header, syntax)
        return True

    def instances(self) -> list[Path]:
        """The files of every indexed instance."""
        with self._lock:
            return [instance.path for instance in self._instances.values()]

    def _snapshot(self) -> list[_Instance]:
        with self._lock:
            return list(self._instances.values())

    # ---- C-FIND -------------------------------------------------------------------------------
    def find(self, identifier: Dataset) -> list[Dataset]:
        """The answers to a C-FIND ``identifier`` (PS3.4 C.4.1), without the status.

        Raises:
            ValueError: no or an unknown Query/Retrieve Level.
        """
        request = self._request(identifier)
        groups = self._groups(request, self._snapshot())
        answers = []
        for members in groups.values():
            answer = self._answer(request, members, identifier)
            if answer is not None:
                answers.append(answer)
        return answers

    def _request(self, identifier: Dataset) -> _Request:
        level = str(identifier.get("QueryRetrieveLevel", "") or "").strip().upper()
        if level not in _LEVELS:
            raise ValueError(f"Query/Retrieve Level {level!r} is not one of {', '.join(_LEVELS)}.")
        request = _Request(level, [])
        for element in identifier:
            keyword = element.keyword
            if not keyword or keyword in ("QueryRetrieveLevel", "SpecificCharacterSet"):
                continue
            request.keys.append(keyword)
            if element.VR != "SQ" and element.value not in (None, "", b""):
                request.matching[keyword] = "\\".join(_values(element.value))
        return request

    def _groups(self, request: _Request, pool: list[_Instance]) -> dict[str, list[_Instance]]:
        """The instances of each entity at the level, in a stable order."""
        key = LEVEL_KEYS[request.level]
        groups: dict[str, list[_Instance]] = {}
        for instance in sorted(pool, key=lambda i: (i.text("StudyDate"), str(i.path))):
            groups.setdefault(instance.text(key), []).append(instance)
        return groups

    def _computed(self, keyword: str, members: list[_Instance]) -> str | None:
        """The attributes an SCP computes over the entity's instances (C.6.1.1.5, C.6.2.1.2)."""
        everyone = self._snapshot()
        first = members[0]
        if keyword == "ModalitiesInStudy":
            return "\\".join(sorted({m.text("Modality") for m in members if m.text("Modality")}))
        if keyword == "SOPClassesInStudy":
            return "\\".join(sorted({m.text("SOPClassUID") for m in members}))
        if keyword == "NumberOfStudyRelatedSeries":
            return str(len({m.text("SeriesInstanceUID") for m in members}))
        if keyword in ("NumberOfStudyRelatedInstances", "NumberOfSeriesRelatedInstances"):
            return str(len(members))
        if keyword in ("NumberOfPatientRelatedStudies", "NumberOfPatientRelatedSeries"):
            key = "StudyInstanceUID" if keyword.endswith("Studies") else "SeriesInstanceUID"
            patient = [i for i in everyone if i.text("PatientID") == first.text("PatientID")]
            return str(len({i.text(key) for i in patient}))
        if keyword == "NumberOfPatientRelatedInstances":
            return str(sum(1 for i in everyone if i.text("PatientID") == first.text("PatientID")))
        if keyword == "AvailableTransferSyntaxUID":
            return first.transfer_syntax
        return None

    def _answer(
        self, request: _Request, members: list[_Instance], identifier: Dataset
    ) -> Dataset | None:
        first = members[0]
        for keyword, wanted in request.matching.items():
            computed = self._computed(keyword, members)
            vr = _vr(keyword)
            if computed is not None:
                if not _matches(computed.split("\\"), wanted, vr):
                    return None
            elif not any(_matches(_values(m.get(keyword)), wanted, vr) for m in members):
                return None
        answer = Dataset()
        charset = first.get("SpecificCharacterSet")
        if charset:
            answer.SpecificCharacterSet = charset
        answer.QueryRetrieveLevel = request.level
        for keyword in request.keys:
            computed = self._computed(keyword, members)
            tag = tag_for_keyword(keyword)
            if tag is None:
                continue
            if computed is not None:
                answer.add_new(tag, _vr(keyword), computed or None)
            elif keyword in first.header:
                answer[tag] = first.header[tag]
            else:
                answer.add_new(tag, identifier[tag].VR, None)
        return answer

    # ---- C-GET / C-MOVE -----------------------------------------------------------------------
    def select(self, identifier: Dataset) -> list[_Instance]:
        """The instances a C-GET/C-MOVE identifier names (its unique keys, PS3.4 C.4.2/C.4.3).

        Raises:
            ValueError: no or an unknown level, or no unique key for it.
        """
        level = str(identifier.get("QueryRetrieveLevel", "") or "").strip().upper()
        if level not in _LEVELS:
            raise ValueError(f"Query/Retrieve Level {level!r} is not one of {', '.join(_LEVELS)}.")
        wanted: dict[str, set[str]] = {}
        for name in _LEVELS[: _LEVELS.index(level) + 1]:
            key = LEVEL_KEYS[name]
            values = {v for v in _values(identifier.get(key)) if v}
            if values:
                wanted[key] = values
        if LEVEL_KEYS[level] not in wanted:
            raise ValueError(f"A {level} level retrieve needs {LEVEL_KEYS[level]}.")
        selected = [
            instance
            for instance in self._snapshot()
            if all(instance.text(key) in values for key, values in wanted.items())
        ]
        # Sent in the order the identifier lists them (a reader's workstation asks for the
        # slices around the one on show first); the standard leaves the order open.
        order = {v: n for n, v in enumerate(_values(identifier.get(LEVEL_KEYS[level])))}
        return sorted(selected, key=lambda i: order.get(i.text(LEVEL_KEYS[level]), len(order)))

    def _dataset(self, instance: _Instance, accepted: Mapping[str, list[str]] | None) -> Dataset:
        """The instance to send; ``accepted``: the C-GET association's syntaxes per class
        (None for a C-MOVE, whose sub-association proposes uncompressed syntaxes only)."""
        ds = pydicom.dcmread(instance.path, force=True)
        study = str(ds.get("StudyInstanceUID", "") or "").strip()
        for keyword, value in self.overrides.get(study, {}).items():
            setattr(ds, keyword, value)
        syntaxes = list(UNCOMPRESSED) if accepted is None else accepted.get(str(ds.SOPClassUID), [])
        compressed = instance.transfer_syntax not in (*UNCOMPRESSED, str(ExplicitVRBigEndian))
        if compressed and syntaxes and instance.transfer_syntax not in syntaxes:
            if not set(syntaxes) & set(UNCOMPRESSED):
                return ds  # pynetdicom reports the sub-operation as failed
            # A PACS transcodes for a requestor that takes only uncompressed data (pynetdicom
            # converts between the uncompressed syntaxes itself).
            ds.decompress()
        return ds

    def _send(self, event: Any, instances: list[_Instance], *, move: bool = False) -> Iterator[Any]:
        accepted: dict[str, list[str]] | None = None if move else {}
        if accepted is not None:
            for context in event.assoc.accepted_contexts:
                accepted.setdefault(str(context.abstract_syntax), []).append(
                    str(context.transfer_syntax[0])
                )
        yield len(instances)
        for instance in instances:
            if event.is_cancelled:
                yield 0xFE00, None
                return
            try:
                yield _PENDING, self._dataset(instance, accepted)
            except (OSError, InvalidDicomError, ValueError, RuntimeError) as exc:
                _LOG.warning("Cannot send %s: %s", instance.path.name, exc)
                failed = Dataset()
                failed.FailedSOPInstanceUIDList = [instance.text("SOPInstanceUID")]
                yield _PROCESSING_FAILURE, failed
                return

    # ---- handlers -----------------------------------------------------------------------------
    def _on_find(self, event: Any) -> Iterator[tuple[int, Dataset | None]]:
        try:
            answers = self.find(event.identifier)
        except ValueError as exc:
            _LOG.info("C-FIND refused: %s", exc)
            yield _IDENTIFIER_MISMATCH, None
            return
        for answer in answers:
            if event.is_cancelled:
                yield 0xFE00, None
                return
            yield _PENDING, answer
        yield _SUCCESS, None

    def _on_get(self, event: Any) -> Iterator[Any]:
        yield from self._retrieve(event, move=False)

    def _on_move(self, event: Any) -> Iterator[Any]:
        destination = self.destinations.get(str(event.move_destination).strip())
        if destination is None:
            yield None, None  # pynetdicom answers 0xA801, Move Destination unknown
            return
        yield destination
        yield from self._retrieve(event, move=True)

    def _retrieve(self, event: Any, *, move: bool) -> Iterator[Any]:
        try:
            instances = self.select(event.identifier)
        except ValueError as exc:
            _LOG.info("%s refused: %s", "C-MOVE" if move else "C-GET", exc)
            yield 0
            yield _IDENTIFIER_MISMATCH, None
            return
        yield from self._send(event, instances, move=move)

    def _on_store(self, event: Any) -> int:
        ds = event.dataset
        ds.file_meta = event.file_meta
        try:
            path = self.store.write_dataset(ds)
        except (StoreError, InvalidUIDError) as exc:
            _LOG.warning("C-STORE refused: %s", exc.message)
            return _OUT_OF_RESOURCES
        self._index(path)
        return _SUCCESS

    # ---- running ------------------------------------------------------------------------------
    def start(self, host: str = "127.0.0.1", port: int = 0, *, block: bool = False) -> int:
        """Listen on ``host:port`` (0: a free port); returns the port.

        With ``block`` this serves until the process is stopped.
        """
        ae = AE(ae_title=self.ae_title)
        ae.network_timeout = ae.dimse_timeout = ae.acse_timeout = 30
        ae.maximum_associations = 8
        ae.add_supported_context(Verification)
        for model in (
            PatientRootQueryRetrieveInformationModelFind,
            PatientRootQueryRetrieveInformationModelGet,
            PatientRootQueryRetrieveInformationModelMove,
            StudyRootQueryRetrieveInformationModelFind,
            StudyRootQueryRetrieveInformationModelGet,
            StudyRootQueryRetrieveInformationModelMove,
        ):
            ae.add_supported_context(model, ALL_TRANSFER_SYNTAXES)
        for uid in RANKED_STORAGE_CLASSES:
            # Received (C-STORE) and sent back over a C-GET association (SCP role for them).
            ae.add_supported_context(uid, ALL_TRANSFER_SYNTAXES, scu_role=True, scp_role=True)
        for uid in RANKED_STORAGE_CLASSES[:128]:
            # What the C-MOVE sub-association to a destination proposes (uncompressed only:
            # _dataset decompresses for it).
            ae.add_requested_context(uid, list(UNCOMPRESSED))
        handlers: list[Any] = [
            (evt.EVT_C_FIND, self._on_find),
            (evt.EVT_C_GET, self._on_get),
            (evt.EVT_C_MOVE, self._on_move),
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_CONN_OPEN, disable_nagle),
        ]
        if block:
            self.port = port
            ae.start_server((host, port), block=True, evt_handlers=handlers)
            return port
        self._server = ae.start_server((host, port), block=False, evt_handlers=handlers)
        self.port = int(self._server.server_address[1])
        return self.port

    def stop(self) -> None:
        """Stop listening (associations in progress are aborted)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()


def _vr(keyword: str) -> str:
    tag = tag_for_keyword(keyword)
    return str(dictionary_VR(tag)) if tag is not None else "LO"


def _destination(text: str) -> tuple[str, tuple[str, int]]:
    aet, _, address = text.partition("=")
    host, _, port = address.rpartition(":")
    if not aet or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not AET=HOST:PORT")
    return aet, (host, int(port))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tuiviewer.net.minipacs``: serve files as a PACS until stopped."""
    parser = argparse.ArgumentParser(prog="python -m tuiviewer.net.minipacs", description=__doc__)
    parser.add_argument("--aet", default="MINIPACS")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--store", type=Path, required=True, help="where received files go")
    parser.add_argument("--load", type=Path, action="append", default=[], help="files/folders")
    parser.add_argument("--overrides", type=Path, help="JSON: {study UID: {keyword: value}}")
    parser.add_argument(
        "--destination", type=_destination, action="append", default=[], help="AET=HOST:PORT"
    )
    args = parser.parse_args(argv)
    overrides = json.loads(args.overrides.read_text()) if args.overrides else {}
    pacs = MiniPacs(
        args.store, ae_title=args.aet, destinations=dict(args.destination), overrides=overrides
    )
    count = pacs.add([*args.load, args.store])
    print(f"{args.aet}: {count} instances, listening on {args.host}:{args.port}", flush=True)
    pacs.start(args.host, args.port, block=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
