"""The listener for pushed studies: pynetdicom's and dcmtk's storescu and Orthanc push into it,
only allowed senders get in (with the right A-ASSOCIATE-RJ reason for the others), every
acknowledged instance is on disk, a sender that vanishes mid-instance leaves nothing half
written, and the journal says who sent which study."""

from __future__ import annotations

import io
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import generate_uid
from pynetdicom import AE, _config, evt
from pynetdicom.pdu import P_DATA_TF

from tests.conftest import require_tool
from tests.support.hostile import deflate_bomb, spoofed_file
from tests.support.orthanc import Orthanc, OrthancConfig, OrthancPool, store_files
from tests.support.ports import LOOPBACK, free_port
from tuiviewer.commands.listen import run_listen
from tuiviewer.config.listen import ListenConfig
from tuiviewer.dicom.datagen import write_ct_series
from tuiviewer.dicom.reading import ReadLimitError, read_dicom
from tuiviewer.net.listen import Listener, Received, read_journal
from tuiviewer.store import LocalStore


def two_series(folder: Path, seed: int, slices: tuple[int, int] = (3, 2)) -> list[Path]:
    study = generate_uid()
    first = write_ct_series(
        folder / "a", slices=slices[0], rows=16, cols=16, seed=seed, study_uid=study
    )
    return first + write_ct_series(
        folder / "b", slices=slices[1], rows=16, cols=16, seed=seed + 1, study_uid=study
    )


def _uids(paths: list[Path]) -> tuple[str, set[str]]:
    headers = [dcmread(p, stop_before_pixels=True) for p in paths]
    return str(headers[0].StudyInstanceUID), {str(h.SOPInstanceUID) for h in headers}


class Running:
    """A listener on a free port, with what it reported."""

    def __init__(self, store: LocalStore, port: int | None = None, **settings: object) -> None:
        self.port = port or free_port()
        config = ListenConfig(
            ae_title="READER",
            port=self.port,
            bind=LOOPBACK,
            **settings,  # type: ignore[arg-type]
        )
        self.studies: list[Received] = []
        self.rejections: list[str] = []
        self.listener = Listener(
            config, store, on_study=self.studies.append, on_rejected=self.rejections.append
        )

    def wait_studies(self, count: int, timeout: float = 10) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.studies) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.studies


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


@pytest.fixture
def running(store: LocalStore) -> Iterator[Running]:
    run = Running(store, allow=("CLINIC", "ORTHANC"))
    run.listener.start()
    try:
        yield run
    finally:
        run.listener.stop()


def test_pynetdicom_storescu_pushes_a_study_into_the_store_and_the_journal(
    running: Running, store: LocalStore, tmp_path: Path
) -> None:
    paths = two_series(tmp_path / "push", seed=101)
    study, sops = _uids(paths)
    assert store_files(LOOPBACK, running.port, "READER", paths, calling_aet="CLINIC") == 5
    [record] = running.wait_studies(1)
    assert (record.study_uid, record.instances, record.series) == (study, 5, 2)
    assert record.calling_aet == "CLINIC" and record.address == LOOPBACK and record.complete
    assert store.instance_uids(study) == sops
    for path in store.study_dir(study).rglob("*.dcm"):
        assert path.stat().st_mode & 0o777 == 0o600
        assert dcmread(path).PixelData  # whole files, as sent
    journal = store.root / ".inbox.jsonl"
    assert journal.stat().st_mode & 0o777 == 0o600
    records = read_journal(store)
    assert records[0].complete is False and records[-1] == record  # started, then done
    line = record.line()
    assert study in line and "5 instances" in line and "'CLINIC'" in line
    assert "Demo" not in line  # the generated patient name

    # The same study again: acknowledged, not rewritten.
    before = {p: p.stat().st_ino for p in store.study_dir(study).rglob("*.dcm")}
    assert store_files(LOOPBACK, running.port, "READER", paths, calling_aet="CLINIC") == 5
    again = running.wait_studies(2)[1]
    assert (again.instances, again.duplicates) == (0, 5)
    assert {p: p.stat().st_ino for p in store.study_dir(study).rglob("*.dcm")} == before


def test_dcmtk_storescu_pushes_a_study(running: Running, store: LocalStore, tmp_path: Path) -> None:
    require_tool("dcmtk storescu", shutil.which("storescu") is not None)
    paths = two_series(tmp_path / "dcmtk", seed=111)
    study, sops = _uids(paths)
    done = subprocess.run(
        ["storescu", "-aet", "CLINIC", "-aec", "READER", LOOPBACK, str(running.port),
         *map(str, paths)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    [record] = running.wait_studies(1)
    assert record.instances == 5 and store.instance_uids(study) == sops


def _associate(port: int, calling: str) -> object:
    ae = AE(ae_title=calling)
    ae.add_requested_context("1.2.840.10008.5.1.4.1.1.2")
    return ae.associate(LOOPBACK, port, ae_title="READER")


def test_an_unknown_ae_title_is_rejected_as_not_recognised(running: Running) -> None:
    assoc = _associate(running.port, "STRANGER")
    assert assoc.is_rejected  # type: ignore[attr-defined]
    primitive = assoc.acceptor.primitive  # type: ignore[attr-defined]
    assert (primitive.result, primitive.result_source, primitive.diagnostic) == (1, 1, 3)
    assert running.rejections and "'STRANGER'" in running.rejections[0]
    assert running.listener.rejected == 1


def test_a_host_outside_the_allowed_networks_is_rejected(store: LocalStore) -> None:
    run = Running(store, allow=("*",), allow_hosts=("10.0.0.0/8",))
    with run.listener:
        assoc = _associate(run.port, "ANYONE")
        primitive = assoc.acceptor.primitive  # type: ignore[attr-defined]
        assert (primitive.result, primitive.result_source, primitive.diagnostic) == (1, 1, 1)
    allowed = Running(store, allow=("*",), allow_hosts=("127.0.0.0/8",))
    with allowed.listener:
        assoc = _associate(allowed.port, "ANYONE")
        assert assoc.is_established  # type: ignore[attr-defined]
        assoc.release()  # type: ignore[attr-defined]


def test_nobody_allowed_means_the_listener_does_not_start(store: LocalStore) -> None:
    from tuiviewer.exceptions import ConfigError

    with pytest.raises(ConfigError, match="accepts no sender"):
        Running(store).listener.start()


def test_a_sender_that_vanishes_mid_instance_leaves_the_acknowledged_ones_and_no_debris(
    store: LocalStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PDUs of 16 kB, so that an instance arrives in several and can be cut inside.
    monkeypatch.setattr("tuiviewer.net.listen.MAX_PDU", 16384)
    running = Running(store, allow=("CLINIC",))
    running.listener.start()
    try:
        _vanish(running, store, tmp_path)
    finally:
        running.listener.stop()


def _vanish(running: Running, store: LocalStore, tmp_path: Path) -> None:
    paths = write_ct_series(tmp_path / "big", slices=3, rows=256, cols=256, seed=121)
    study, _ = _uids(paths)
    ae = AE(ae_title="CLINIC")
    ae.add_requested_context("1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.1.2.1")
    sent = {"pdus": 0, "cut": False}

    def on_pdu(event: evt.Event) -> None:
        # During the third instance, after two of its fragments, the sender's power goes.
        if isinstance(event.pdu, P_DATA_TF) and stored[0] == 2:
            sent["pdus"] += 1
            if sent["pdus"] == 2 and not sent["cut"]:
                sent["cut"] = True
                sock = event.assoc.dul.socket.socket
                sock.shutdown(socket.SHUT_RDWR)

    stored = [0]
    assoc = ae.associate(
        LOOPBACK,
        running.port,
        ae_title="READER",
        max_pdu=16384,
        evt_handlers=[(evt.EVT_PDU_SENT, on_pdu)],
    )
    assert assoc.is_established
    for path in paths:
        status = assoc.send_c_store(dcmread(path))
        if status and status.get("Status") == 0:
            stored[0] += 1
        if not assoc.is_established:
            break
    if assoc.is_established:
        assoc.abort()
    assert stored[0] == 2 and sent["cut"]
    [record] = running.wait_studies(1)
    assert record.instances == 2 and not record.complete
    assert len(store.instance_uids(study)) == 2
    assert not list(store.root.rglob("*.tmp")) and store.unfinished() == []
    # The listener is still there for the next sender.
    more = two_series(tmp_path / "next", seed=131)
    assert store_files(LOOPBACK, running.port, "READER", more, calling_aet="CLINIC") == 5


def test_a_full_disk_refuses_with_out_of_resources(store: LocalStore, tmp_path: Path) -> None:
    run = Running(store, allow=("CLINIC",), min_free_mb=1e12)
    paths = two_series(tmp_path / "full", seed=141)
    with run.listener:
        assert store_files(LOOPBACK, run.port, "READER", paths, calling_aet="CLINIC") == 0
        [record] = run.wait_studies(1)
    assert record.refused == 5 and record.instances == 0
    assert not list(store.root.rglob("*.dcm"))


def _push_as_is(port: int, paths: list[Path], calling: str = "CLINIC") -> list[int]:
    """C-STORE each file as it is on disk (its file meta's SOP Instance UID announced, its
    data set sent unparsed, deflated or not); the statuses."""
    ae = AE(ae_title=calling)
    for path in paths:
        meta = dcmread(path, stop_before_pixels=True).file_meta
        ae.add_requested_context(meta.MediaStorageSOPClassUID, [meta.TransferSyntaxUID])
    assoc = ae.associate(LOOPBACK, port, ae_title="READER")
    assert assoc.is_established
    chunked = _config.STORE_SEND_CHUNKED_DATASET
    _config.STORE_SEND_CHUNKED_DATASET = True  # the file's bytes and its meta's UIDs, as they are
    try:
        return [int(assoc.send_c_store(path).Status) for path in paths]
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = chunked
        assoc.release()


def test_an_instance_whose_data_set_is_another_is_refused(
    running: Running, store: LocalStore, tmp_path: Path
) -> None:
    paths = two_series(tmp_path / "spoof", seed=151, slices=(2, 1))
    real = dcmread(paths[1])
    announced = generate_uid()
    spoof = spoofed_file(tmp_path / "spoof.dcm", announced, real)
    assert _push_as_is(running.port, [paths[0], spoof]) == [0x0000, 0xC000]
    [record] = running.wait_studies(1)
    assert record.instances == 1 and record.refused == 1
    study = str(real.StudyInstanceUID)
    assert store.instance_uids(study) == {str(dcmread(paths[0]).SOPInstanceUID)}


def test_a_deflate_bomb_pushed_is_refused_and_quarantined(
    running: Running, store: LocalStore, tmp_path: Path
) -> None:
    bomb = deflate_bomb(tmp_path / "bomb.dcm", 1024)
    fine = deflate_bomb(tmp_path / "fine.dcm", 1, study_uid=bomb.study_uid)
    assert _push_as_is(running.port, [bomb.path, fine.path]) == [0xA700, 0x0000]
    [record] = running.wait_studies(1)
    assert record.refused == 1 and record.instances == 1
    assert store.instance_uids(bomb.study_uid) == {fine.sop_uid}
    [kept] = store.quarantined(bomb.study_uid)
    assert kept.sop_uid == bomb.sop_uid and "max_inflated_mb" in kept.reason
    with pytest.raises(ReadLimitError):
        read_dicom(kept.path)


def test_orthanc_pushes_a_study_with_its_rest_store(
    orthanc_factory: OrthancPool, store: LocalStore, tmp_path: Path
) -> None:
    port = free_port()
    orthanc: Orthanc = orthanc_factory.start(
        OrthancConfig(aet="CLINICPACS", modalities={"reader": ("READER", LOOPBACK, port)})
    )
    paths = two_series(tmp_path / "orthanc", seed=151)
    study, sops = _uids(paths)
    assert store_files(orthanc.host, orthanc.dicom_port, orthanc.aet, paths) == 5
    [orthanc_study] = orthanc.rest("GET", "/studies")
    run = Running(store, port, allow=("CLINICPACS",))
    with run.listener:
        orthanc.rest("POST", "/modalities/reader/store", orthanc_study.encode())
        [record] = run.wait_studies(1)
    assert record.calling_aet == "CLINICPACS" and record.instances == 5
    assert store.instance_uids(study) == sops


def test_the_cli_prints_one_line_per_study(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUIVIEWER_CACHE_DIR", str(tmp_path / "cache"))
    port = free_port()
    out, err = io.StringIO(), io.StringIO()
    stop, ready = threading.Event(), threading.Event()
    codes: list[int] = []

    def serve() -> None:
        codes.append(
            run_listen(
                ae_title="READER", port=port, allow="CLINIC", service=False,
                config_path=tmp_path / "none.toml", stdout=out, stderr=err,
                stop=stop, ready=ready,
            )
        )  # fmt: skip

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        assert ready.wait(10), err.getvalue()
        paths = two_series(tmp_path / "cli", seed=161)
        study, _ = _uids(paths)
        assert store_files(LOOPBACK, port, "READER", paths, calling_aet="CLINIC") == 5
        deadline = time.monotonic() + 10
        while study not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(10)
    assert codes == [0]
    [line] = out.getvalue().splitlines()
    assert f"study {study}  2 series  5 instances  from 'CLINIC' at 127.0.0.1" in line
    assert "listening as READER" in err.getvalue() and "stopped after 5 instances" in err.getvalue()
    assert LocalStore(tmp_path / "cache" / "store").instance_uids(study)

    out, err = io.StringIO(), io.StringIO()
    code = run_listen(
        ae_title="READER", port=port, allow=None, service=False,
        config_path=tmp_path / "none.toml", stdout=out, stderr=err,
    )  # fmt: skip
    assert code == 2 and "accepts no sender" in err.getvalue()
