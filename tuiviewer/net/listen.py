"""Studies that arrive on their own: our storage SCP, on a configured AE title and port.

A clinic or a modality pushes a study to the reading workstation (C-STORE); this listener
takes it into the same local store that ``tuiviewer get`` fills, for as long as it runs
(``tuiviewer listen``, or the toggle in the app):

* only the calling AE titles and hosts the configuration allows get in; anyone else is
  turned away with A-ASSOCIATE-RJ (rejected-permanent, service-user: "calling AE title not
  recognised" for an unknown AE title, "no reason given" for a host outside the allowed
  networks; PS3.8 7.1.1.9);
* each instance is written into one of the store's pre-created 0600 slots, fsynced and renamed
  to its final name before the C-STORE is answered with 0x0000, so an instance we acknowledged
  is never lost: the folders' fsyncs are batched in the background (and done at the end of
  each association), and a crash before them leaves the instance under its slot's name, from
  where the next opening of the store moves it into place (:meth:`LocalStore.commit`);
  a disk below the configured free space gets 0xA700 (out of resources), a data set without
  valid UIDs, or whose SOP Instance UID is not the one its C-STORE named, 0xC000; a deflated
  one is inflated within the reading limits first, and beyond them quarantined in the store
  and refused with 0xA700; an instance already in the store is acknowledged and not written
  again;
* a client that disconnects mid-association loses only the instance in flight (never
  acknowledged, no file left);
* who sent which study (calling AE title, address, time, counts) goes into a small 0600
  journal in the store (``.inbox.jsonl``), which the worklist's Inbox reads.

Logs and the per-study summary carry UIDs, AE titles and addresses, never patient data.
Nothing here imports Textual.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import UID
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, evt
from pynetdicom.utils import make_target

from tuiviewer.config.listen import (
    RJ_CALLING_AET,
    RJ_PERMANENT,
    RJ_SERVICE_USER,
    ListenConfig,
)
from tuiviewer.exceptions import ConfigError
from tuiviewer.files import append_line, write_atomically
from tuiviewer.net.association import CheapCopyContexts, disable_nagle
from tuiviewer.net.echo import VERIFICATION
from tuiviewer.net.errors import NetError
from tuiviewer.net.move import (
    _StorageServer,
    deflated_problem,
    file_meta_bytes,
    identity_problem,
    instance_identity,
)
from tuiviewer.net.sopclasses import RANKED_STORAGE_CLASSES
from tuiviewer.net.tls import server_ssl_context
from tuiviewer.store import InvalidUIDError, LocalStore, StoreError, validate_uid

logger = logging.getLogger(__name__)

JOURNAL = ".inbox.jsonl"
"""The journal of received studies, in the store's root (dot-named: never a study folder)."""
_JOURNAL_COMPACT_BYTES = 1_000_000
#: The first bytes of a data set hold its Study and Series Instance UIDs (group 0020 comes
#: right after the short groups 0008 and 0010 in any real instance); the rest is not parsed.
_PEEK = 64 * 1024

#: Our maximum PDU receive size: 0 is no limit, so a sender may put each data set in one
#: P-DATA PDU (pynetdicom's reader pays per PDU: this doubles its throughput).
MAX_PDU = 0

#: C-STORE statuses (PS3.4 Table B.2-1).
STATUS_SUCCESS = 0x0000
STATUS_OUT_OF_RESOURCES = 0xA700
STATUS_CANNOT_UNDERSTAND = 0xC000


# --- the journal --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """One study (or part of it) received on one association: the journal's unit."""

    study_uid: str
    calling_aet: str
    address: str
    received_at: str
    """ISO 8601 UTC time of the first instance of the association."""
    instances: int
    """Instances of the study stored on this association."""
    series: int
    duplicates: int = 0
    """Instances acknowledged without writing: already in the store."""
    refused: int = 0
    complete: bool = True
    """False when the association was aborted or the connection dropped (or is still open)."""

    def line(self) -> str:
        """One line of text for stdout and logs: UIDs, counts and the sender, no PHI."""
        extra = []
        if self.duplicates:
            extra.append(f"{self.duplicates} already stored")
        if self.refused:
            extra.append(f"{self.refused} refused")
        if not self.complete:
            extra.append("association aborted")
        tail = f" ({', '.join(extra)})" if extra else ""
        return (
            f"{self.received_at}  study {self.study_uid}  {self.series} series  "
            f"{self.instances} instances{tail}  from {self.calling_aet!r} at {self.address}"
        )


def journal_path(store: LocalStore) -> Path:
    return store.root / JOURNAL


def append_journal(store: LocalStore, record: Received) -> None:
    """Append one record to the journal (0600, fsynced): it survives a crash right after."""
    append_line(journal_path(store), json.dumps(record.__dict__, sort_keys=True))


def read_journal(store: LocalStore) -> list[Received]:
    """Every record of the journal, oldest first (lines that do not parse are skipped)."""
    path = journal_path(store)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    records: list[Received] = []
    for line in text.splitlines():
        try:
            data = json.loads(line)
            record = Received(**data)
            validate_uid(record.study_uid)
        except (ValueError, TypeError, InvalidUIDError):
            continue
        records.append(record)
    return records


def compact_journal(store: LocalStore) -> None:
    """Drop records of studies no longer in the store, once the journal has grown large."""
    path = journal_path(store)
    try:
        if path.stat().st_size < _JOURNAL_COMPACT_BYTES:
            return
    except FileNotFoundError:
        return
    present = {s.study_uid for s in store.studies()}
    keep = [r for r in read_journal(store) if r.study_uid in present]
    text = "".join(json.dumps(r.__dict__, sort_keys=True) + "\n" for r in keep)
    write_atomically(
        path, lambda handle: handle.write(text.encode("utf-8")), overwrite=True, mode=0o600
    )


# --- receiving ----------------------------------------------------------------------------------


@dataclass
class _Tally:
    series: set[str] = field(default_factory=set)
    instances: int = 0
    duplicates: int = 0
    refused: int = 0


@dataclass
class _Session:
    calling_aet: str
    address: str
    started: str
    studies: dict[str, _Tally] = field(default_factory=dict)
    aborted: bool = False


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _refusal(code: int, comment: str) -> Dataset:
    status = Dataset()
    status.Status = code
    status.ErrorComment = comment[:64]  # LO
    return status


class Listener:
    """Our storage SCP for pushed studies; ``start()``, then ``stop()`` (or ``with``).

    Thread-safe: pynetdicom handles each association in a thread of its own.
    """

    def __init__(
        self,
        config: ListenConfig,
        store: LocalStore,
        *,
        on_study: Callable[[Received], None] | None = None,
        on_rejected: Callable[[str], None] | None = None,
    ) -> None:
        """Args:
        config: AE title, port, who may send, free space, TLS.
        store: where instances go (and the journal).
        on_study: called with each study once its association ended (from pynetdicom's
            thread), after the journal has it.
        on_rejected: called with a sentence (no PHI) for each association turned away.
        """
        self.config = config
        self.store = store
        self.on_study = on_study
        self.on_rejected = on_rejected
        self._sessions: dict[int, _Session] = {}
        self._lock = threading.Lock()
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.instances = 0
        """Instances written since start."""
        self.rejected = 0
        """Associations turned away since start."""

    @property
    def where(self) -> str:
        host = self.config.bind or "all interfaces"
        return f"{self.config.ae_title} on {host} port {self.config.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def __enter__(self) -> Listener:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Listen in a background thread.

        Raises:
            ConfigError: nobody is allowed to send (no ``allow`` and no ``allow_hosts``).
            NetError: the port cannot be bound (in use, privileged).
            TlsFailed: the TLS certificate, key or CA cannot be loaded.
            StoreError: the store cannot be prepared for writing (its pool of slots).
        """
        if not self.config.allow and not self.config.allow_hosts:
            raise ConfigError(
                "The listener accepts no sender: list the calling AE titles that may send "
                "studies (--allow AET,... or allow = [...] under [listen] in config.toml; "
                "'*' for any AE title from the hosts in allow_hosts)."
            )
        ssl_ctx: ssl.SSLContext | None = None
        if self.config.tls is not None:
            ssl_ctx = server_ssl_context(self.config.tls)
        compact_journal(self.store)
        self.store.prepare()
        ae = AE(ae_title=self.config.ae_title)
        ae.network_timeout = 60
        ae.acse_timeout = 30
        ae.dimse_timeout = 60
        ae.maximum_associations = 8
        ae.maximum_pdu_size = MAX_PDU
        for uid in RANKED_STORAGE_CLASSES:
            ae.add_supported_context(uid, ALL_TRANSFER_SYNTAXES)
        ae.add_supported_context(VERIFICATION, ALL_TRANSFER_SYNTAXES)
        handlers: list[tuple[Any, ...]] = [
            (evt.EVT_CONN_OPEN, disable_nagle),
            (evt.EVT_REQUESTED, self._on_requested),
            (evt.EVT_ACCEPTED, self._on_accepted),
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_ABORTED, self._on_aborted),
            (evt.EVT_CONN_CLOSE, self._on_closed),
        ]
        try:
            server = ae.make_server(
                (self.config.bind, self.config.port),
                ssl_context=ssl_ctx,
                evt_handlers=handlers,
                server_class=_StorageServer,
            )
        except OSError as exc:
            raise NetError(
                f"Cannot listen for studies on {self.where}: {exc.strerror or exc}; choose "
                "another port (--port, or port under [listen])."
            ) from exc
        assert isinstance(server, _StorageServer)
        server.contexts = CheapCopyContexts(server.contexts)
        server.handshake_timeout = ae.acse_timeout
        server.on_tls_failure = self._on_tls_failure
        ae._servers.append(server)
        self._thread = threading.Thread(
            target=make_target(server.serve_forever),
            name=f"tuiviewer-listen-{self.config.port}",
            daemon=True,
        )
        self._thread.start()
        self._server = server
        security = "DICOM TLS" if ssl_ctx is not None else "plain TCP"
        logger.info("Listening for studies as %s (%s)", self.where, security)

    def stop(self) -> None:
        """Stop listening; associations in progress are aborted (the instance in flight, never
        acknowledged, with them: the sender still has it)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            for assoc in server.active_associations:
                assoc.abort()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        self.store.flush()
        logger.info("Stopped listening as %s", self.where)

    # --- events -------------------------------------------------------------------------------

    def _on_requested(self, event: Any) -> None:
        assoc = event.assoc
        calling = str(assoc.requestor.primitive.calling_ae_title).strip()
        address = str(assoc.requestor.address)
        ok, diagnostic = self.config.admits(calling, address)
        if ok:
            return
        reason = (
            "calling AE title not recognised"
            if diagnostic == RJ_CALLING_AET
            else "host not allowed (no reason given)"
        )
        with self._lock:
            self.rejected += 1
        text = f"rejected an association from {calling!r} at {address}: {reason}"
        logger.warning("Listener %s", text)
        if self.on_rejected is not None:
            self.on_rejected(text)
        # As pynetdicom's own rejection does: the A-ASSOCIATE-RJ, then stop the DUL (which
        # sends what it has queued) before the connection is closed.
        assoc.acse.send_reject(RJ_PERMANENT, RJ_SERVICE_USER, diagnostic)
        assoc.kill()

    def _on_accepted(self, event: Any) -> None:
        assoc = event.assoc
        session = _Session(str(assoc.requestor.ae_title).strip(), str(assoc.requestor.address), "")
        with self._lock:
            self._sessions[id(assoc)] = session
        logger.info("Listener accepted %r at %s", session.calling_aet, session.address)

    def _on_tls_failure(self, peer: str, exc: BaseException) -> None:
        logger.warning("Listener: a connection from %s failed the TLS handshake: %s", peer, exc)

    def _session(self, event: Any) -> _Session:
        with self._lock:
            session = self._sessions.get(id(event.assoc))
            if session is None:  # pragma: no cover - EVT_ACCEPTED always comes first
                requestor = event.assoc.requestor
                session = _Session(str(requestor.ae_title).strip(), str(requestor.address), "")
                self._sessions[id(event.assoc)] = session
            return session

    def _on_store(self, event: Any) -> int | Dataset:
        session = self._session(event)
        request = event.request
        sop = str(request.AffectedSOPInstanceUID or "").strip()
        try:
            syntax = str(event.context.transfer_syntax)
            data = request.DataSet.getvalue()  # the data set as received, never decoded
            found = instance_identity(data[:_PEEK], syntax)
            study, series = found.study_uid, found.series_uid
            # Any study may arrive, but the data set must be the instance its C-STORE named.
            problem = identity_problem(sop, found, None)
            if problem is not None:
                logger.warning("Listener: %s", problem)
                comment = (
                    "identity mismatch" if study and series else "no Study/Series Instance UID"
                )
                return self._refuse(session, study, STATUS_CANNOT_UNDERSTAND, comment)
            tally = self._tally(session, study)
            if self.store.has_instance(study, series, sop):
                with self._lock:
                    tally.duplicates += 1
                    tally.series.add(series)
                return STATUS_SUCCESS
            if UID(syntax).is_deflated:
                over = deflated_problem(data, sop)
                if over is not None:
                    # Kept aside, never stored as an instance: nothing opens or reads it again.
                    meta = file_meta_bytes(
                        str(request.AffectedSOPClassUID), sop, syntax, session.calling_aet
                    )
                    self.store.quarantine(study, series, sop, over.message, data=meta + data)
                    logger.warning("Listener: refused instance %s: %s", sop, over.message)
                    return self._refuse(
                        session, study, STATUS_OUT_OF_RESOURCES, "beyond our reading limits"
                    )
            free = shutil.disk_usage(self.store.root).free
            if free - len(data) < self.config.min_free_mb * 1e6:
                logger.error(
                    "Listener: refused instance %s: %.0f MB free, %.0f MB kept free",
                    sop,
                    free / 1e6,
                    self.config.min_free_mb,
                )
                return self._refuse(session, study, STATUS_OUT_OF_RESOURCES, "disk full")
            meta = file_meta_bytes(
                str(request.AffectedSOPClassUID), sop, syntax, session.calling_aet
            )
            handle, temp = self.store.open_temp(study, series, sop)
            try:
                with handle:
                    handle.write(meta)
                    handle.write(data)
                # fsync and rename before we answer: what we acknowledge is on disk.
                self.store.commit(temp, study, series, sop, touch=tally.instances == 0)
            except BaseException:
                self.store.discard(temp)
                raise
        except InvalidUIDError as exc:
            logger.warning("Listener: refused instance %r: %s", sop, exc.message)
            return self._refuse(session, "", STATUS_CANNOT_UNDERSTAND, "invalid UID")
        except (StoreError, OSError) as exc:
            reason = exc.message if isinstance(exc, StoreError) else str(exc)
            logger.error("Listener: cannot store instance %s: %s", sop, reason)
            return self._refuse(session, "", STATUS_OUT_OF_RESOURCES, "cannot write to disk")
        first = False
        with self._lock:
            first = tally.instances == 0 and not tally.duplicates
            tally.instances += 1
            tally.series.add(series)
            self.instances += 1
        if first:
            # Who sent it is on disk with the first instance, in case we die before the end.
            self._journal(session, study, tally, complete=False)
        return STATUS_SUCCESS

    def _tally(self, session: _Session, study: str) -> _Tally:
        with self._lock:
            if not session.started:
                session.started = _now()
            return session.studies.setdefault(study, _Tally())

    def _refuse(self, session: _Session, study: str, code: int, comment: str) -> Dataset:
        if study:
            tally = self._tally(session, study)
            with self._lock:
                tally.refused += 1
        return _refusal(code, comment)

    def _journal(self, session: _Session, study: str, tally: _Tally, *, complete: bool) -> Received:
        with self._lock:
            record = Received(
                study_uid=study,
                calling_aet=session.calling_aet,
                address=session.address,
                received_at=session.started or _now(),
                instances=tally.instances,
                series=len(tally.series),
                duplicates=tally.duplicates,
                refused=tally.refused,
                complete=complete,
            )
        try:
            append_journal(self.store, record)
        except OSError as exc:
            logger.error("Listener: cannot write the journal: %s", exc)
        return record

    def _on_aborted(self, event: Any) -> None:
        with self._lock:
            session = self._sessions.get(id(event.assoc))
            if session is not None:
                session.aborted = True

    def _on_closed(self, event: Any) -> None:
        with self._lock:
            session = self._sessions.pop(id(event.assoc), None)
        if session is None:
            return
        if session.studies:
            self.store.flush()
        released = bool(getattr(event.assoc, "is_released", False))
        complete = released and not session.aborted
        for study, tally in session.studies.items():
            record = self._journal(session, study, tally, complete=complete)
            logger.info("Listener received %s", record.line())
            if self.on_study is not None:
                try:
                    self.on_study(record)
                except Exception:  # a broken callback must not stop the listener
                    logger.exception("Listener: the study callback failed")
        if not session.studies:
            logger.info("Listener: %r at %s sent no instance", session.calling_aet, session.address)


def received_studies(store: LocalStore) -> dict[str, Received]:
    """The latest record of each study still in the store, newest first."""
    latest: dict[str, Received] = {}
    for record in read_journal(store):
        latest[record.study_uid] = record
    present = {s.study_uid for s in store.studies()}
    ordered = sorted(
        (r for r in latest.values() if r.study_uid in present),
        key=lambda r: r.received_at,
        reverse=True,
    )
    return {r.study_uid: r for r in ordered}
