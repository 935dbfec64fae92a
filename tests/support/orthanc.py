"""A real Orthanc PACS from the Debian package, plus C-STORE/C-FIND helpers to fill and query it.

The integration tests and the benchmarks talk to a genuine peer instead of a mock: Orthanc is
started with a generated configuration on free loopback ports, with its database in a work
directory, no plugin but the Debian DICOMweb one when asked for, and every DICOM service open.
Plain Python (no pytest) so benchmarks can use it too.

pynetdicom logs C-FIND identifiers (patient names) at INFO by default; importing this module turns
that off for the whole process.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from pynetdicom import AE, _config, evt

# pynetdicom generates its SOP class names at import time, out of mypy's sight.
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelFind,
)

from tests.support.ports import LOOPBACK, free_ports
from tests.support.processes import stop_process

_config.LOG_REQUEST_IDENTIFIERS = False
_config.LOG_RESPONSE_IDENTIFIERS = False

DEBIAN_ORTHANC = Path("/usr/sbin/Orthanc")
"""Where the Debian ``orthanc`` package installs the server (not on a normal user's PATH)."""

DEBIAN_DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
"""Where the Debian ``orthanc-dicomweb`` package installs the DICOMweb plugin."""

DICOMWEB_ROOT = "/dicom-web"
"""The plugin's root on Orthanc's HTTP port (its default)."""

MAX_CONTEXTS = 128
"""PS3.8 9.3.2.2: presentation context IDs are odd numbers 1..255: 128 per association."""

_PORT_ATTEMPTS = 5
_LOG_TAIL_LINES = 40


class OrthancError(RuntimeError):
    """Orthanc could not be started, stopped or queried; the message quotes the log or answer."""


class StoreError(RuntimeError):
    """A C-STORE association could not be set up or broke off; the message names the peer."""


class FindError(RuntimeError):
    """A C-FIND association could not be set up or the peer answered with a failure status."""


def find_orthanc() -> Path | None:
    """Return the Orthanc executable (PATH first, then the Debian location), or None if absent."""
    found = shutil.which("Orthanc")
    if found is not None:
        return Path(found)
    return DEBIAN_ORTHANC if DEBIAN_ORTHANC.is_file() else None


@dataclass(frozen=True)
class TlsFiles:
    """PEM files that switch Orthanc's DICOM SCP and SCU to DICOM TLS (PS3.15 B.1)."""

    certificate: Path
    """Orthanc's own certificate, used both as SCP and as SCU."""
    private_key: Path
    """The unencrypted private key of ``certificate``."""
    trusted_certificates: Path
    """Certificates (one PEM file, possibly several) Orthanc accepts from peers."""
    remote_certificate_required: bool = True
    """False lets clients connect without a certificate (DCMTK ``--verify-peer-cert``)."""


@dataclass(frozen=True)
class OrthancConfig:
    """What a test may change about the Orthanc it starts; everything else is fixed for tests."""

    aet: str = "ORTHANC"
    """Orthanc's own AE title (``DicomAet``)."""
    default_encoding: str = "Utf8"
    """``DefaultEncoding``: Orthanc answers C-FIND in this encoding, so with its Debian default
    (``Latin1``) characters outside Latin-1, Cyrillic for instance, are lost."""
    modalities: dict[str, tuple[str, str, int] | dict[str, Any]] = field(default_factory=dict)
    """``DicomModalities``: name -> (AE title, host, port), the C-MOVE destinations; or the
    object form Orthanc also reads, e.g. ``{"AET": ..., "Host": ..., "Port": ...,
    "UseDicomTls": True}`` (Orthanc >= 1.9) for a destination reached over DICOM TLS."""
    tls: TlsFiles | None = None
    """DICOM TLS for the DICOM port; None for plain TCP."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Top-level keys merged last into the generated JSON (they win over everything above)."""
    verbose: bool = False
    """Start Orthanc with ``--verbose`` (more detail in ``orthanc.log`` when debugging a test)."""
    dicomweb: bool = False
    """Load the Debian DICOMweb plugin (QIDO-RS, WADO-RS, STOW-RS under ``/dicom-web``)."""
    users: dict[str, str] = field(default_factory=dict)
    """HTTP basic authentication: user -> password (``RegisteredUsers``); none when empty."""


class Orthanc:
    """One Orthanc process with its database, configuration and log in ``workdir``.

    ``start()`` may be called again after ``stop()`` or ``kill()``: the database survives and the
    same ports are reused when they are still free, so clients configured earlier keep working.
    """

    host = LOOPBACK

    def __init__(
        self, workdir: Path, config: OrthancConfig | None = None, binary: Path | None = None
    ) -> None:
        self.workdir = Path(workdir)
        self.config = config if config is not None else OrthancConfig()
        self.aet = self.config.aet
        self.dicom_port = 0
        self.http_port = 0
        self._binary = binary
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def __repr__(self) -> str:
        state = "running" if self.is_running else "stopped"
        return (
            f"Orthanc(aet={self.aet!r}, dicom={self.host}:{self.dicom_port}, "
            f"http={self.http_port}, {state}, workdir={str(self.workdir)!r})"
        )

    @property
    def config_path(self) -> Path:
        return self.workdir / "orthanc.json"

    @property
    def log_path(self) -> Path:
        return self.workdir / "orthanc.log"

    @property
    def storage_dir(self) -> Path:
        return self.workdir / "storage"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        """The DICOMweb base URL (needs ``OrthancConfig(dicomweb=True)``)."""
        return f"{self.base_url}{DICOMWEB_ROOT}"

    @property
    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def build_config(self, dicom_port: int, http_port: int) -> dict[str, Any]:
        """Return the JSON configuration Orthanc is started with on these ports."""
        cfg: dict[str, Any] = {
            "Name": f"tuiviewer-test-{self.aet}",
            "StorageDirectory": str(self.storage_dir),
            "IndexDirectory": str(self.storage_dir),
            # An explicit empty list: the Debian plugins (web viewers, DICOMweb...) must not load.
            "Plugins": [str(DEBIAN_DICOMWEB_PLUGIN)] if self.config.dicomweb else [],
            "LuaScripts": [],
            "HttpServerEnabled": True,
            "HttpPort": http_port,
            "HttpDescribeErrors": True,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": bool(self.config.users),
            "RegisteredUsers": dict(self.config.users),
            "SslEnabled": False,
            "OrthancExplorerEnabled": False,
            "WebDavEnabled": False,
            "HttpThreadsCount": 8,
            "DicomServerEnabled": True,
            "DicomAet": self.aet,
            "DicomPort": dicom_port,
            "DicomCheckCalledAet": False,
            "DicomCheckModalityHost": False,
            "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowStore": True,
            "DicomAlwaysAllowFind": True,
            "DicomAlwaysAllowFindWorklist": True,
            "DicomAlwaysAllowGet": True,
            "DicomAlwaysAllowMove": True,
            "UnknownSopClassAccepted": True,
            "AcceptedTransferSyntaxes": ["1.2.840.10008.1.*"],
            "DicomModalities": {
                name: dict(entry) if isinstance(entry, dict) else list(entry)
                for name, entry in self.config.modalities.items()
            },
            "DicomModalitiesInDatabase": False,
            # Orthanc as C-MOVE/C-STORE SCU: fail fast and do not hold idle associations open.
            "DicomScuTimeout": 10,
            "DicomAssociationCloseDelay": 0,
            "DefaultEncoding": self.config.default_encoding,
            "LogExportedResources": False,
            "StableAge": 1,
            "SaveJobs": False,
            "StorageCompression": False,
            "DicomTlsEnabled": self.config.tls is not None,
        }
        if self.config.dicomweb:
            if not DEBIAN_DICOMWEB_PLUGIN.is_file():
                raise OrthancError(
                    f"Orthanc's DICOMweb plugin {str(DEBIAN_DICOMWEB_PLUGIN)!r} is missing "
                    "(install the Debian package 'orthanc-dicomweb')."
                )
            cfg["DicomWeb"] = {
                "Enable": True,
                "Root": DICOMWEB_ROOT + "/",
                "EnableWado": False,
                "Ssl": False,
                "StudiesMetadata": "Full",
                "SeriesMetadata": "Full",
            }
        if self.config.tls is not None:
            tls = self.config.tls
            cfg["DicomTlsCertificate"] = str(tls.certificate)
            cfg["DicomTlsPrivateKey"] = str(tls.private_key)
            cfg["DicomTlsTrustedCertificates"] = str(tls.trusted_certificates)
            cfg["DicomTlsRemoteCertificateRequired"] = tls.remote_certificate_required
        cfg.update(self.config.extra)
        return cfg

    def start(self, timeout: float = 30) -> None:
        """Start Orthanc and return once both its HTTP API and its DICOM port answer.

        Raises:
            OrthancError: Orthanc is already running, is not installed, exited, or did not become
                ready within ``timeout`` seconds; the message carries the end of its log.
        """
        if self.is_running:
            raise OrthancError(f"{self!r} is already running; stop it before starting it again.")
        binary = self._binary if self._binary is not None else find_orthanc()
        if binary is None:
            raise OrthancError(
                f"Cannot start Orthanc: no 'Orthanc' on PATH and no {str(DEBIAN_ORTHANC)!r} "
                "(install the Debian package 'orthanc')."
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.storage_dir.mkdir(exist_ok=True)
        deadline = time.monotonic() + timeout
        previous = (self.dicom_port, self.http_port)
        for attempt in range(_PORT_ATTEMPTS):
            if attempt == 0 and all(previous):
                dicom_port, http_port = previous
            else:
                dicom_port, http_port = free_ports(2)
            self._launch(binary, dicom_port, http_port)
            if self._wait_ready(deadline, timeout):
                return
            # Another process took a port between free_ports() and Orthanc's bind: try others.
        raise OrthancError(
            f"Orthanc could not bind free ports after {_PORT_ATTEMPTS} attempts; "
            f"see {str(self.log_path)!r}:\n{self.log_tail()}"
        )

    def _launch(self, binary: Path, dicom_port: int, http_port: int) -> None:
        self.dicom_port, self.http_port = dicom_port, http_port
        self.config_path.write_text(
            json.dumps(self.build_config(dicom_port, http_port), indent=2), encoding="utf-8"
        )
        if self._log is None:
            self._log = self.log_path.open("ab")
        self._log.write(f"=== starting on dicom={dicom_port} http={http_port}\n".encode())
        self._log.flush()
        args = [str(binary), "--no-jobs"]
        if self.config.verbose:
            args.append("--verbose")
        args.append(str(self.config_path))
        # Debian's DCMTK leaves Nagle's algorithm on unless asked: every DIMSE answer then waits
        # for the peer's delayed ACK, ~45 ms per C-ECHO and ~90 ms per C-STORE instead of ~2 ms.
        env = {**os.environ, "TCP_NODELAY": "1"}
        self._process = subprocess.Popen(
            args,
            cwd=self.workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def _wait_ready(self, deadline: float, timeout: float) -> bool:
        """Return True once ready, False if Orthanc exited because a port was taken."""
        assert self._process is not None
        while True:
            code = self._process.poll()
            if code is not None:
                self._close_log()
                tail = self.log_tail()
                if "already in use" in tail.rsplit("=== starting", 1)[-1]:
                    return False
                raise OrthancError(
                    f"Orthanc exited with code {code} while starting; "
                    f"see {str(self.log_path)!r}:\n{tail}"
                )
            if self._answers():
                return True
            if time.monotonic() > deadline:
                self.kill()
                raise OrthancError(
                    f"Orthanc did not answer on HTTP port {self.http_port} and DICOM port "
                    f"{self.dicom_port} within {timeout} s; see {str(self.log_path)!r}:\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.05)

    def _request(
        self, url: str, data: bytes | None = None, method: str = "GET"
    ) -> urllib.request.Request:
        """A request to Orthanc's HTTP port, with the first registered user's credentials."""
        request = urllib.request.Request(url, data=data, method=method)
        if self.config.users:
            user, password = next(iter(self.config.users.items()))
            token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            request.add_header("Authorization", f"Basic {token}")
        return request

    def _answers(self) -> bool:
        try:
            request = self._request(f"{self.base_url}/system")
            with urllib.request.urlopen(request, timeout=1) as response:
                system = json.loads(response.read())
        except (OSError, ValueError):
            return False
        # A stranger on our port (lost race) would answer with other settings.
        if system.get("DicomPort") != self.dicom_port:
            return False
        try:
            with socket.create_connection((self.host, self.dicom_port), timeout=1):
                return True
        except OSError:
            return False

    def request_stop(self) -> None:
        """Send SIGTERM without waiting (Orthanc needs ~3 s to shut down; stop several at once)."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()

    def stop(self, timeout: float = 10) -> None:
        """Ask Orthanc to shut down (SIGTERM); SIGKILL it if it is still there after timeout s."""
        if self._process is None:
            return
        stop_process(self._process, timeout)
        self._close_log()

    def kill(self) -> None:
        """SIGKILL Orthanc now, as a crash or power cut would, and reap it."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """Return the last ``lines`` lines of ``orthanc.log`` (empty if there is none yet)."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def rest(self, method: str, path: str, body: bytes | None = None, timeout: float = 30) -> Any:
        """Call Orthanc's REST API; return the decoded JSON, raw bytes for non-JSON, None if empty.

        Raises:
            OrthancError: the HTTP status is not 2xx or Orthanc cannot be reached.
        """
        request = self._request(f"{self.base_url}{path}", data=body, method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                payload = response.read()
                content_type = response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", errors="replace")
            raise OrthancError(
                f"Orthanc answered HTTP {exc.code} to {method} {path!r}: {detail.strip()!r}."
            ) from exc
        except OSError as exc:
            raise OrthancError(
                f"Cannot reach Orthanc's REST API at {self.base_url} for {method} {path!r}: {exc}."
            ) from exc
        if not payload:
            return None
        if "json" in content_type:
            return json.loads(payload)
        return payload

    def instance_count(self) -> int:
        """Return how many instances Orthanc stores."""
        return int(self.rest("GET", "/statistics")["CountInstances"])

    def clear(self) -> None:
        """Delete every patient (and so every study, series and instance) Orthanc stores."""
        for patient in self.rest("GET", "/patients"):
            self.rest("DELETE", f"/patients/{patient}")

    def __enter__(self) -> Orthanc:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class OrthancPool:
    """Starts extra Orthancs in numbered sub-directories of ``root`` and stops them all at once."""

    def __init__(self, root: Path, binary: Path | None = None) -> None:
        self.root = Path(root)
        self.binary = binary
        self.started: list[Orthanc] = []

    def start(self, config: OrthancConfig | None = None, timeout: float = 30) -> Orthanc:
        """Start one more Orthanc with ``config`` and return it (already answering)."""
        orthanc = Orthanc(self.root / f"orthanc-{len(self.started)}", config, self.binary)
        self.started.append(orthanc)
        orthanc.start(timeout)
        return orthanc

    def stop_all(self) -> None:
        """Stop every Orthanc this pool started; they shut down in parallel."""
        for orthanc in self.started:
            orthanc.request_stop()
        for orthanc in self.started:
            orthanc.stop()


def _make_ae(calling_aet: str, timeout: float) -> AE:
    ae = AE(ae_title=calling_aet)
    ae.acse_timeout = timeout
    ae.dimse_timeout = timeout
    ae.network_timeout = timeout
    return ae


def disable_nagle(event: evt.Event) -> None:
    """EVT_CONN_OPEN handler: set TCP_NODELAY on the association's socket.

    pynetdicom writes a C-STORE as several PDUs; with Nagle's algorithm on, each waits for the
    peer's delayed ACK (~40 ms on Linux), which makes a store 20 times slower on loopback.
    """
    sock = event.assoc.dul.socket.socket if event.assoc.dul.socket is not None else None
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _associate(
    ae: AE, host: str, port: int, called_aet: str, calling_aet: str, error: type[RuntimeError]
) -> Any:
    """Open an association or raise ``error`` saying who refused and why (PS3.8 7.1.1.7-9)."""
    rejection: list[str] = []

    def on_acse_recv(event: evt.Event) -> None:
        primitive: Any = getattr(event, "primitive", None)
        if getattr(primitive, "result", None) in (0x01, 0x02):
            rejection.append(
                f"rejected ({primitive.result_str}; source: {primitive.source_str}; "
                f"reason: {primitive.reason_str})"
            )

    handlers: list[Any] = [(evt.EVT_CONN_OPEN, disable_nagle), (evt.EVT_ACSE_RECV, on_acse_recv)]
    assoc = ae.associate(host, port, ae_title=called_aet, evt_handlers=handlers)
    if not assoc.is_established:
        if rejection:
            detail = rejection[0]
        elif assoc.is_aborted:
            detail = "the association was aborted"
        else:
            detail = "no answer (connection refused or timed out)"
        raise error(
            f"{calling_aet!r} could not associate with {called_aet!r} at {host}:{port}: {detail}."
        )
    return assoc


def _transfer_syntax(ds: Dataset) -> UID:
    """The transfer syntax ``ds`` is encoded in: its file meta, else how it was read, else EVRLE."""
    meta = getattr(ds, "file_meta", None)
    ts = meta.get("TransferSyntaxUID") if meta is not None else None
    if ts is not None:
        return UID(ts)
    implicit, little = ds.original_encoding
    if implicit is True:
        return ImplicitVRLittleEndian
    if little is False:
        return ExplicitVRBigEndian
    return ExplicitVRLittleEndian


def _with_transfer_syntax(ds: Dataset, ts: UID) -> Dataset:
    """Return ``ds`` if its file meta names ``ts``, else a shallow copy whose file meta does."""
    meta = getattr(ds, "file_meta", None)
    if meta is not None and meta.get("TransferSyntaxUID") == ts:
        return ds
    out = copy.copy(ds)
    out.file_meta = FileMetaDataset(meta) if meta is not None else FileMetaDataset()
    out.file_meta.TransferSyntaxUID = ts
    return out


def _store(
    host: str,
    port: int,
    called_aet: str,
    calling_aet: str,
    items: Sequence[tuple[UID, UID, Callable[[], Dataset]]],
    timeout: float,
) -> int:
    """Send ``(sop_class, transfer_syntax, load)`` items, one association per 128 contexts."""
    pairs = list(dict.fromkeys((sop, ts) for sop, ts, _ in items))
    stored = 0
    for start in range(0, len(pairs), MAX_CONTEXTS):
        chunk = set(pairs[start : start + MAX_CONTEXTS])
        ae = _make_ae(calling_aet, timeout)
        for sop, ts in pairs[start : start + MAX_CONTEXTS]:
            ae.add_requested_context(sop, [ts])
        todo = [item for item in items if (item[0], item[1]) in chunk]
        assoc = _associate(ae, host, port, called_aet, calling_aet, StoreError)
        try:
            for sent, (_sop, ts, load) in enumerate(todo):
                try:
                    status = assoc.send_c_store(_with_transfer_syntax(load(), ts))
                except ValueError:
                    # The SCP refused this SOP class/transfer syntax context: not stored.
                    continue
                if not assoc.is_established:
                    raise StoreError(
                        f"C-STORE to {called_aet!r} at {host}:{port} broke off after {sent} of "
                        f"{len(todo)} instances in this association ({stored} stored in all)."
                    )
                if status and status.get("Status") == 0x0000:
                    stored += 1
        finally:
            if assoc.is_established:
                assoc.release()
    return stored


def store_datasets(
    host: str,
    port: int,
    called_aet: str,
    datasets: Iterable[Dataset],
    calling_aet: str = "TUIVIEWER-TEST",
    timeout: float = 30,
) -> int:
    """C-STORE in-memory datasets; return how many the peer acknowledged with status 0x0000.

    Each dataset is proposed in the transfer syntax its file meta names (Explicit VR Little
    Endian when it has none). The caller's datasets are not modified.

    Raises:
        StoreError: a dataset has no SOP Class UID, no association could be established, or it
            broke off midway.
    """
    items = []
    for ds in datasets:
        sop_class = ds.get("SOPClassUID")
        if not sop_class:
            raise StoreError(
                f"Dataset {ds.get('SOPInstanceUID', '(no SOP Instance UID)')!r} has no "
                "SOP Class UID (0008,0016): it cannot be C-STORED."
            )
        items.append((UID(sop_class), _transfer_syntax(ds), (lambda d=ds: d)))
    return _store(host, port, called_aet, calling_aet, items, timeout)


def store_files(
    host: str,
    port: int,
    called_aet: str,
    paths: Iterable[Path],
    calling_aet: str = "TUIVIEWER-TEST",
    timeout: float = 30,
) -> int:
    """C-STORE DICOM files; return how many the peer acknowledged with status 0x0000.

    Each file is proposed with its own SOP class and transfer syntax (one presentation context
    per distinct pair, a new association every 128 pairs) and read only when it is sent, so
    large sets do not sit in memory.

    Raises:
        StoreError: a file has no SOP Class UID, no association could be established, or it
            broke off midway.
    """
    items = []
    for path in paths:
        # force: test corpora include files without preamble or file meta (pydicom's no_meta.dcm).
        header = dcmread(path, force=True, stop_before_pixels=True, specific_tags=["SOPClassUID"])
        sop_class = header.get("SOPClassUID")
        if not sop_class:
            raise StoreError(
                f"File {str(path)!r} has no SOP Class UID (0008,0016): it cannot be C-STORED."
            )
        items.append(
            (UID(sop_class), _transfer_syntax(header), (lambda p=path: dcmread(p, force=True)))
        )
    return _store(host, port, called_aet, calling_aet, items, timeout)


def c_find(
    host: str,
    port: int,
    called_aet: str,
    query: Dataset,
    model: UID = StudyRootQueryRetrieveInformationModelFind,
    calling_aet: str = "TUIVIEWER-TEST",
    timeout: float = 30,
) -> list[Dataset]:
    """Run one C-FIND with plain pynetdicom (not tuiviewer's client); return the matches.

    Raises:
        FindError: no association, or the peer answered with a status other than Pending/Success.
    """
    return list(_iter_find(host, port, called_aet, query, model, calling_aet, timeout))


def _iter_find(
    host: str,
    port: int,
    called_aet: str,
    query: Dataset,
    model: UID,
    calling_aet: str,
    timeout: float,
) -> Iterator[Dataset]:
    ae = _make_ae(calling_aet, timeout)
    ae.add_requested_context(model)
    assoc = _associate(ae, host, port, called_aet, calling_aet, FindError)
    try:
        for status, identifier in assoc.send_c_find(query, model):
            code = status.get("Status") if status else None
            if code in (0xFF00, 0xFF01):
                yield identifier
            elif code != 0x0000:
                shown = "no answer" if code is None else f"status 0x{code:04X}"
                raise FindError(f"C-FIND to {called_aet!r} at {host}:{port} failed: {shown}.")
    finally:
        if assoc.is_established:
            assoc.release()
