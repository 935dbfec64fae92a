"""The listener over DICOM TLS: a sender with a certificate from our CA gets its instance
stored; one without a certificate, or with one from another CA, never gets an association."""

from __future__ import annotations

import time
from pathlib import Path

from pydicom import dcmread

from tests.integration.test_net_move_tls import (
    TLS_AET,
    _client_context,
    _ours,
    _store_one,
    pki,  # noqa: F401 - the module-scoped fixture
)
from tests.support.certs import Pki
from tests.support.ports import LOOPBACK, free_port
from tuiviewer.config.listen import ListenConfig
from tuiviewer.dicom.datagen import write_ct_series
from tuiviewer.net.listen import Listener, Received
from tuiviewer.store import LocalStore


def test_the_listener_over_tls_takes_our_ca_s_senders_only(
    pki: Pki,  # noqa: F811
    tmp_path: Path,
) -> None:
    paths = write_ct_series(tmp_path / "ct", slices=1, rows=8, cols=8, seed=5)
    header = dcmread(paths[0])
    store = LocalStore(tmp_path / "store")
    port = free_port()
    config = ListenConfig(
        ae_title=TLS_AET, port=port, bind=LOOPBACK, allow=("PACS",), tls=_ours(pki)
    )
    got: list[Received] = []
    with Listener(config, store, on_study=got.append):
        assert _store_one(port, paths[0], _client_context(pki, None, None)) is None
        other = _client_context(pki, pki.other_server_cert, pki.other_server_key)
        assert _store_one(port, paths[0], other) is None
        assert store.instance_uids(header.StudyInstanceUID) == set()
        ours = _client_context(pki, pki.client_cert, pki.client_key)
        assert _store_one(port, paths[0], ours) == 0x0000
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            time.sleep(0.02)
    assert store.instance_uids(header.StudyInstanceUID) == {header.SOPInstanceUID}
    assert got and got[0].calling_aet == "PACS"
