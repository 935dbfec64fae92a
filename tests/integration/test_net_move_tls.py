"""DICOM TLS on the association the PACS opens back to us: the C-MOVE storage SCP.

A real Orthanc with ``DicomTlsEnabled`` delivers a C-MOVE to our storage SCP over TLS; when it
calls back without TLS, or with a certificate we do not trust, the retrieve fails at once and
says why. In-process TLS clients show that a silent connection cannot block the SCP.
"""

from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path

import pytest
from pydicom import dcmread
from pynetdicom import AE

from tests.support.certs import Pki, make_pki, openssl_available
from tests.support.orthanc import Orthanc, OrthancConfig, OrthancPool, TlsFiles
from tests.support.ports import LOOPBACK, free_port
from tuiviewer.config.nodes import Node, TlsSettings, node_from_mapping
from tuiviewer.dicom.datagen import write_ct_series
from tuiviewer.net.errors import NetError, TlsFailed
from tuiviewer.net.move import InstanceWriter, StorageScp, listen_address
from tuiviewer.net.retrieve import retrieve_study
from tuiviewer.net.tls import server_ssl_context
from tuiviewer.net.trace import AssociationTrace
from tuiviewer.store import LocalStore

#: Our AE title as the TLS destination, and the same port known to Orthanc without TLS.
TLS_AET = "TUIVIEWER"
PLAIN_AET = "PLAINTV"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    if not openssl_available():
        pytest.skip("the openssl command is needed to make test certificates")
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_pacs(
    orthanc_factory: OrthancPool, pki: Pki, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Orthanc, int, list[Path]]:
    """A TLS-only Orthanc holding one small CT study, knowing our SCP port twice: as
    TUIVIEWER over DICOM TLS and as PLAINTV over plain TCP."""
    port = free_port()
    server = orthanc_factory.start(
        OrthancConfig(
            aet="TLSMOVE",
            verbose=True,  # its log then says whether it called us back over TLS
            tls=TlsFiles(
                certificate=pki.server_cert,
                private_key=pki.server_key,
                trusted_certificates=pki.ca_cert,
            ),
            modalities={
                "tv": {"AET": TLS_AET, "Host": LOOPBACK, "Port": port, "UseDicomTls": True},
                "plain": (PLAIN_AET, LOOPBACK, port),
            },
        )
    )
    paths = write_ct_series(tmp_path_factory.mktemp("ct"), slices=4, rows=16, cols=16, seed=7)
    # Its DICOM port speaks TLS only: load the study over the REST API.
    for path in paths:
        server.rest("POST", "/instances", path.read_bytes())
    assert server.instance_count() == len(paths)
    return server, port, paths


def _node(server: Orthanc, port: int, calling_aet: str, tls: TlsSettings) -> Node:
    return Node(
        name="tlspacs",
        ae_title=server.aet,
        host=server.host,
        port=server.dicom_port,
        calling_aet=calling_aet,
        retrieve="move",
        move_port=port,
        tls=tls,
        dimse_timeout=20,
        network_timeout=20,
    )


def _ours(pki: Pki) -> TlsSettings:
    # The server certificate carries both serverAuth and clientAuth: we present it when we
    # call Orthanc and when Orthanc calls us back.
    return TlsSettings(ca_file=pki.ca_cert, cert_file=pki.server_cert, key_file=pki.server_key)


@pytest.mark.orthanc
def test_move_over_tls_arrives_in_the_store(
    tls_pacs: tuple[Orthanc, int, list[Path]], pki: Pki, tmp_path: Path
) -> None:
    server, port, paths = tls_pacs
    sent = {dcmread(p).SOPInstanceUID for p in paths}
    study = dcmread(paths[0]).StudyInstanceUID
    store = LocalStore(tmp_path / "store")
    trace = AssociationTrace()
    result = retrieve_study(
        _node(server, port, TLS_AET, _ours(pki)), study, store=store, trace=trace
    )
    assert result.method == "move" and result.error is None
    assert {dcmread(p).SOPInstanceUID for p in result.received} == sent
    assert store.instance_uids(study) == sent
    text = trace.format()
    # The PACS is on this computer: the SCP listened on loopback only, and over TLS.
    assert f"storage SCP listening on 127.0.0.1 port {port} (DICOM TLS" in text
    assert "storage association from 'TLSMOVE' (127.0.0.1) accepted over TLS" in text
    assert "Opening a DICOM SCU connection using DICOM TLS" in server.log_tail(400)


@pytest.mark.orthanc
def test_pacs_calling_back_without_tls_fails_in_words(
    tls_pacs: tuple[Orthanc, int, list[Path]], pki: Pki, tmp_path: Path
) -> None:
    server, port, paths = tls_pacs
    study = dcmread(paths[0]).StudyInstanceUID
    store = LocalStore(tmp_path / "store")
    node = _node(server, port, PLAIN_AET, _ours(pki))
    started = time.monotonic()
    with pytest.raises(TlsFailed) as info:
        retrieve_study(node, study, store=store)
    # Well within the node's 20 s timeouts: the refusal is immediate, not a hang.
    assert time.monotonic() - started < 10
    message = info.value.message
    assert f"storage SCP on 127.0.0.1 port {port}" in message
    assert "the PACS connected without TLS" in message
    assert repr(PLAIN_AET) in message
    assert store.instance_uids(study) == set()


@pytest.mark.orthanc
def test_pacs_refusing_our_client_only_certificate_is_explained(
    tls_pacs: tuple[Orthanc, int, list[Path]], pki: Pki, tmp_path: Path
) -> None:
    """A certificate made for clientAuth only cannot serve our SCP: OpenSSL in the PACS
    checks the server purpose (extendedKeyUsage, RFC 5280 4.2.1.12)."""
    server, port, paths = tls_pacs
    study = dcmread(paths[0]).StudyInstanceUID
    client_only = TlsSettings(
        ca_file=pki.ca_cert, cert_file=pki.client_cert, key_file=pki.client_key
    )
    with pytest.raises(TlsFailed) as info:
        retrieve_study(
            _node(server, port, TLS_AET, client_only), study, store=LocalStore(tmp_path / "s")
        )
    assert f"the PACS refused our certificate {str(pki.client_cert)!r}" in info.value.message
    assert "serverAuth" in info.value.message


# --- the SCP against in-process TLS clients ----------------------------------------------------


def _client_context(pki: Pki, cert: Path | None, key: Path | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(pki.ca_cert))
    ctx.check_hostname = False
    if cert is not None:
        ctx.load_cert_chain(str(cert), str(key) if key else None)
    return ctx


def _store_one(port: int, path: Path, ctx: ssl.SSLContext) -> int | None:
    """C-STORE one file over TLS with plain pynetdicom; the status, or None without an
    association."""
    ds = dcmread(path)
    ae = AE(ae_title="PACS")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 5
    ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate(LOOPBACK, port, ae_title=TLS_AET, tls_args=(ctx, None))  # type: ignore[arg-type]
    if not assoc.is_established:
        return None
    try:
        status = assoc.send_c_store(ds)
        return int(status.Status) if "Status" in status else None
    finally:
        assoc.release()


def _wait_for(condition: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.05)
    return False


def test_silent_connection_does_not_block_the_tls_scp(pki: Pki, tmp_path: Path) -> None:
    paths = write_ct_series(tmp_path / "ct", slices=1, rows=8, cols=8, seed=3)
    header = dcmread(paths[0])
    store = LocalStore(tmp_path / "store")
    writer = InstanceWriter(store, header.StudyInstanceUID)
    port = free_port()
    trace = AssociationTrace()
    scp = StorageScp(
        TLS_AET,
        port,
        writer.handle,
        host=LOOPBACK,
        ssl_context=server_ssl_context(_ours(pki)),
        trace=trace,
        acse_timeout=1,
    )
    with scp, socket.create_connection((LOOPBACK, port)):
        # A port scanner (or a stuck peer) holds a connection without a ClientHello; the
        # PACS's own connection must still be served.
        ctx = _client_context(pki, pki.client_cert, pki.client_key)
        assert _store_one(port, paths[0], ctx) == 0x0000
        assert _wait_for(lambda: scp.tls_failures, 5)
    writer.close()
    assert store.instance_uids(header.StudyInstanceUID) == {header.SOPInstanceUID}
    assert "no TLS handshake within 1 s" in scp.tls_failures[0]
    assert "no TLS handshake within 1 s" in trace.format()


def test_tls_scp_requires_a_certificate_from_our_ca(pki: Pki, tmp_path: Path) -> None:
    paths = write_ct_series(tmp_path / "ct", slices=1, rows=8, cols=8, seed=4)
    header = dcmread(paths[0])
    store = LocalStore(tmp_path / "store")
    writer = InstanceWriter(store, header.StudyInstanceUID)
    port = free_port()
    scp = StorageScp(
        TLS_AET, port, writer.handle, host=LOOPBACK, ssl_context=server_ssl_context(_ours(pki))
    )
    with scp:
        no_cert = _client_context(pki, None, None)
        other_ca = _client_context(pki, pki.other_server_cert, pki.other_server_key)
        assert _store_one(port, paths[0], no_cert) is None
        assert _store_one(port, paths[0], other_ca) is None
        assert _wait_for(lambda: len(scp.tls_failures) == 2, 5)
    writer.close()
    assert store.instance_uids(header.StudyInstanceUID) == set()
    assert "peer did not return a certificate" in scp.tls_failures[0]
    assert "certificate verify failed" in scp.tls_failures[1]
    assert scp.associations == 0


# --- settings ----------------------------------------------------------------------------------


def test_server_context_errors_name_the_file(pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(TlsFailed, match="no cert_file"):
        server_ssl_context(TlsSettings(ca_file=pki.ca_cert))
    missing = tmp_path / "absent.pem"
    with pytest.raises(TlsFailed) as info:
        server_ssl_context(TlsSettings(cert_file=missing, key_file=pki.server_key))
    assert repr(str(missing)) in info.value.message
    assert "No such file or directory" in info.value.message
    # A key that does not belong to the certificate.
    with pytest.raises(TlsFailed) as info:
        server_ssl_context(TlsSettings(cert_file=pki.server_cert, key_file=pki.client_key))
    assert repr(str(pki.server_cert)) in info.value.message
    with pytest.raises(TlsFailed, match="CA file"):
        server_ssl_context(TlsSettings(ca_file=missing, cert_file=pki.server_cert))
    ctx = server_ssl_context(_ours(pki))
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2


@pytest.mark.parametrize(
    ("host", "move_bind", "expected"),
    [
        ("127.0.0.1", "", "127.0.0.1"),
        ("localhost", "", "127.0.0.1"),
        ("::1", "", "::1"),
        ("192.0.2.10", "10.1.2.3", "10.1.2.3"),
    ],
)
def test_listen_address_follows_the_pacs(host: str, move_bind: str, expected: str) -> None:
    node = Node(name="n", ae_title="PACS", host=host, port=104, move_bind=move_bind)
    assert listen_address(node) == expected


@pytest.mark.parametrize(
    ("host", "family"),
    [
        ("192.0.2.10", socket.AF_INET),  # TEST-NET-1 (RFC 5737): some other computer
        ("2001:db8::10", socket.AF_INET6),  # documentation prefix (RFC 3849)
    ],
)
def test_listen_address_for_a_remote_pacs_is_ours_on_its_route_never_a_wildcard(
    host: str, family: socket.AddressFamily
) -> None:
    node = Node(name="n", ae_title="PACS", host=host, port=104)
    try:
        address = listen_address(node)
    except NetError as exc:  # no route to that network from this computer
        assert "move_bind" in exc.message and host in exc.message
        return
    assert address not in ("0.0.0.0", "::", "")
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((address, 0))  # an address of this computer: binding it works


def test_move_bind_is_read_from_the_node_table() -> None:
    table = {"ae_title": "PACS", "host": "pacs", "port": 104, "move_bind": "10.1.2.3"}
    assert node_from_mapping("n", table).move_bind == "10.1.2.3"
    with pytest.raises(ValueError, match="nodes.n.move_bind"):
        node_from_mapping("n", {**table, "move_bind": "not an address"})
