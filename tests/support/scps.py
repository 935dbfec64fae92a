"""Small in-process pynetdicom SCPs for network fault and streaming tests (real peers, no mocks).

Each SCP listens on a free loopback port in a pynetdicom server thread and is shut down when
its context manager exits. Handlers record what the SCP saw, so tests can assert on both sides.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE

from tests.support.ports import LOOPBACK, free_port
from tuiviewer.config.nodes import Node, TlsSettings

VERIFICATION = "1.2.840.10008.1.1"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
PATIENT_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.1.1"
TRANSFER_SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]


@dataclass
class Scp:
    """A running SCP: where it listens and what it saw."""

    ae_title: str
    port: int
    host: str = LOOPBACK
    log: dict[str, Any] = field(default_factory=dict)

    def node(self, **overrides: Any) -> Node:
        """A client node for this SCP (short timeouts so fault tests stay fast)."""
        values: dict[str, Any] = {
            "name": "testscp",
            "ae_title": self.ae_title,
            "host": self.host,
            "port": self.port,
            "connect_timeout": 2,
            "acse_timeout": 2,
            "dimse_timeout": 2,
            "network_timeout": 5,
        }
        values.update(overrides)
        return Node(**values)

    def tls_node(self, tls: TlsSettings, **overrides: Any) -> Node:
        return self.node(tls=tls, **overrides)


@contextmanager
def running_scp(
    *,
    contexts: Sequence[str] = (VERIFICATION,),
    handlers: Sequence[tuple[Any, Callable[..., Any]]] = (),
    ae_title: str = "TESTSCP",
    require_calling_aet: Sequence[str] = (),
    server_ssl: ssl.SSLContext | None = None,
    log: dict[str, Any] | None = None,
) -> Iterator[Scp]:
    """Start an SCP accepting ``contexts`` (as SCP) with ``handlers`` bound; yield its address."""
    ae = AE(ae_title=ae_title)
    for uid in contexts:
        ae.add_supported_context(uid, TRANSFER_SYNTAXES)
    if require_calling_aet:
        ae.require_calling_aet = list(require_calling_aet)
    ae.network_timeout = 5
    port = free_port()
    server = ae.start_server(
        (LOOPBACK, port),
        block=False,
        evt_handlers=list(handlers),
        ssl_context=server_ssl,
    )
    assert server is not None  # block=False always returns the server
    try:
        yield Scp(ae_title=ae_title, port=port, log=log if log is not None else {})
    finally:
        server.shutdown()


def match(index: int, name: str = "STREAM^PATIENT") -> Dataset:
    """One study-level C-FIND answer."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.QueryRetrieveLevel = "STUDY"
    ds.PatientName = name
    ds.PatientID = f"ID{index:03d}"
    ds.StudyInstanceUID = f"1.2.826.0.1.3680043.10.543.{index + 1}"
    ds.StudyDate = "20240101"
    return ds


@dataclass
class StreamLog:
    """What the streaming find SCP did, with monotonic timestamps."""

    produced: list[float] = field(default_factory=list)
    cancelled_after: int | None = None
    finished: threading.Event = field(default_factory=threading.Event)


def streaming_find_handler(
    log: StreamLog, count: int = 10, interval: float = 0.2
) -> Callable[[Any], Iterator[tuple[int, Dataset | None]]]:
    """C-FIND handler yielding one pending match every ``interval`` s, honouring C-CANCEL."""

    def handler(event: Any) -> Iterator[tuple[int, Dataset | None]]:
        try:
            for index in range(count):
                time.sleep(interval)
                if event.is_cancelled:
                    log.cancelled_after = len(log.produced)
                    yield 0xFE00, None
                    return
                log.produced.append(time.monotonic())
                yield 0xFF00, match(index)
            yield 0x0000, None
        finally:
            log.finished.set()

    return handler


def failing_find_handler(code: int) -> Callable[[Any], Iterator[tuple[int, Dataset | None]]]:
    """C-FIND handler answering with a single final ``code``."""

    def handler(event: Any) -> Iterator[tuple[int, Dataset | None]]:
        yield code, None

    return handler


def sleeping_find_handler(seconds: float) -> Callable[[Any], Iterator[tuple[int, Dataset | None]]]:
    """C-FIND handler that says nothing for ``seconds`` (longer than the client's DIMSE timeout)."""

    def handler(event: Any) -> Iterator[tuple[int, Dataset | None]]:
        time.sleep(seconds)
        yield 0x0000, None

    return handler


def aborting_find_handler(after: int) -> Callable[[Any], Iterator[tuple[int, Dataset | None]]]:
    """C-FIND handler that sends ``after`` matches and then aborts the association."""

    def handler(event: Any) -> Iterator[tuple[int, Dataset | None]]:
        for index in range(after):
            yield 0xFF00, match(index)
        time.sleep(0.1)
        event.assoc.abort()
        yield 0xFF00, match(after)

    return handler


def server_ssl_context(cert: str, key: str, ca: str | None = None) -> ssl.SSLContext:
    """TLS server context; with ``ca`` it requires client certificates signed by it."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(certfile=cert, keyfile=key)
    if ca is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cafile=ca)
    return ctx
