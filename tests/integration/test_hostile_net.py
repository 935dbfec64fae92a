"""A PACS that lies: instances that are not what their C-STORE says, deflate bombs, callers
that are not the PACS, answers and error comments that try to drive the terminal.

Every case ends in a sentence that names the instance and why, nothing outside the request in
the store, and nothing raw on the terminal (real pynetdicom peers on loopback, no mocks).
"""

from __future__ import annotations

import io
import json
import ssl
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from tests.support.certs import make_pki, openssl_available
from tests.support.hostile import (
    BASIC_TEXT_SR,
    C1_CSI,
    CSI2J,
    OSC0,
    OSC52,
    RAW_SEQUENCES,
    HostileLog,
    deflate_bomb,
    escape_image,
    find_answer,
    running_hostile_scp,
    spoofed_file,
)
from tests.support.ports import free_port
from tests.support.scps import running_scp
from tuiviewer.commands.find import run_find
from tuiviewer.commands.get import run_get
from tuiviewer.config.nodes import TlsSettings
from tuiviewer.dicom.reading import ReadLimitError, read_dicom
from tuiviewer.net.echo import echo
from tuiviewer.net.errors import AssociationAborted, NetError, TlsFailed
from tuiviewer.net.move import Refusal, listen_address
from tuiviewer.net.retrieve import retrieve_study
from tuiviewer.store import LocalStore


def _raw(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _no_raw_sequences(text: str) -> None:
    data = _raw(text)
    for sequence in RAW_SEQUENCES:
        assert sequence not in data, f"{sequence!r} reached the output: {text[:300]!r}"
    assert b"\x1b" not in data


def _listing(study: str, series: str, sop: str, sop_class: str) -> Dataset:
    """An image-level C-FIND answer naming one instance (the retrieve's inventory)."""
    listed = Dataset()
    listed.QueryRetrieveLevel = "IMAGE"
    listed.StudyInstanceUID, listed.SeriesInstanceUID = study, series
    listed.SOPInstanceUID, listed.SOPClassUID = sop, sop_class
    return listed


def _image(tmp_path: Path, name: str, study: str, series: str) -> tuple[Path, Dataset]:
    ds = escape_image(study_uid=study, series_uid=series)
    path = tmp_path / name
    ds.save_as(path, enforce_file_format=True)
    return path, ds


# --- identities ---------------------------------------------------------------------------


def test_an_instance_whose_uid_differs_from_its_c_store_is_refused(tmp_path: Path) -> None:
    study, series = generate_uid(), generate_uid()
    good, good_ds = _image(tmp_path, "good.dcm", study, series)
    other = escape_image(study_uid=study, series_uid=series)
    announced = generate_uid()
    spoof = spoofed_file(tmp_path / "spoof.dcm", announced, other)
    store = LocalStore(tmp_path / "store")
    with running_hostile_scp(files=[good, spoof]) as (scp, _log):
        result = retrieve_study(scp.node(), study, store=store)
    assert store.instance_uids(study) == {str(good_ds.SOPInstanceUID)}
    assert [r.sop_uid for r in result.refused] == [announced]
    reason = result.refused[0].reason
    assert isinstance(result.refused[0], Refusal)
    assert f"Instance {announced} was refused" in reason
    assert str(other.SOPInstanceUID) in reason and "C-STORE announced" in reason
    assert result.partial


def test_an_instance_without_study_uid_is_not_filed_under_the_requested_study(
    tmp_path: Path,
) -> None:
    study, series = generate_uid(), generate_uid()
    ds = escape_image(study_uid=study, series_uid=series)
    del ds.StudyInstanceUID
    path = spoofed_file(tmp_path / "nostudy.dcm", str(ds.SOPInstanceUID), ds)
    store = LocalStore(tmp_path / "store")
    with running_hostile_scp(files=[path]) as (scp, _log):
        result = retrieve_study(scp.node(), study, store=store)
    assert not store.study_dir(study).exists() or store.instance_uids(study) == set()
    assert not result.received
    assert "has no Study Instance UID (0020,000D)" in result.refused[0].reason


def test_an_instance_of_another_study_or_series_is_refused(tmp_path: Path) -> None:
    study, series = generate_uid(), generate_uid()
    stranger, stranger_ds = _image(tmp_path, "other-study.dcm", generate_uid(), series)
    lost, lost_ds = _image(tmp_path, "other-series.dcm", study, generate_uid())
    store = LocalStore(tmp_path / "store")
    with running_hostile_scp(files=[stranger, lost]) as (scp, _log):
        result = retrieve_study(scp.node(), study, store=store, series_uids=[series])
    assert not result.received
    reasons = {r.sop_uid: r.reason for r in result.refused}
    assert (
        f"belongs to study {str(stranger_ds.StudyInstanceUID)!r}"
        in reasons[str(stranger_ds.SOPInstanceUID)]
    )
    assert f"not to series {series} asked for" in reasons[str(lost_ds.SOPInstanceUID)]
    assert not (tmp_path / "store" / str(stranger_ds.StudyInstanceUID)).exists()


def test_get_prints_the_refusals_cleaned(tmp_path: Path) -> None:
    study, series = generate_uid(), generate_uid()
    other = escape_image(study_uid=study, series_uid=series)
    spoof = spoofed_file(tmp_path / "spoof.dcm", generate_uid(), other)
    out, err = io.StringIO(), io.StringIO()
    with running_hostile_scp(files=[spoof]) as (scp, _log):
        node = scp.node()
        status = run_get(
            "n", study, dest=tmp_path / "dest", stdout=out, stderr=err, nodes={"n": node}
        )
    assert status != 0
    assert "was refused" in err.getvalue()
    _no_raw_sequences(out.getvalue() + err.getvalue())


# --- deflate bombs over the network -------------------------------------------------------------


def test_a_deflate_bomb_sent_by_c_get_is_refused_and_quarantined(tmp_path: Path) -> None:
    study, series = generate_uid(), generate_uid()
    bomb = deflate_bomb(tmp_path / "bomb.dcm", 4095, study_uid=study, series_uid=series)
    store = LocalStore(tmp_path / "store")
    log = HostileLog()
    listed = _listing(bomb.study_uid, bomb.series_uid, bomb.sop_uid, BASIC_TEXT_SR)
    with running_hostile_scp(find_answers=[listed], files=[bomb.path], log=log) as (scp, _):
        result = retrieve_study(
            scp.node(dimse_timeout=30), study, store=store, accept_deflated=True
        )
    assert not result.received
    assert "inflates to more than 256 MiB" in result.refused[0].reason
    assert "max_inflated_mb" in result.refused[0].reason
    kept = store.quarantined(study)
    assert [q.sop_uid for q in kept] == [bomb.sop_uid]
    # The bytes as received (the file meta is written anew): still a bomb, still refused.
    assert abs(kept[0].path.stat().st_size - bomb.path.stat().st_size) < 64
    with pytest.raises(ReadLimitError):
        read_dicom(kept[0].path)
    assert not store.has_instance(study, series, bomb.sop_uid)


def test_deflated_is_offered_for_c_get_only_when_asked(tmp_path: Path) -> None:
    study, series = generate_uid(), generate_uid()
    bomb = deflate_bomb(tmp_path / "small.dcm", 1, study_uid=study, series_uid=series)
    store = LocalStore(tmp_path / "store")
    listed = _listing(study, series, bomb.sop_uid, BASIC_TEXT_SR)
    log = HostileLog()
    with running_hostile_scp(find_answers=[listed], files=[bomb.path], log=log) as (scp, _):
        refused = retrieve_study(scp.node(), study, store=store)
    assert not refused.received and log.store_statuses == [-1]  # no Deflated context offered
    with running_hostile_scp(find_answers=[listed], files=[bomb.path]) as (scp, _):
        accepted = retrieve_study(scp.node(accept_deflated=True), study, store=store)
    assert len(accepted.received) == 1 and not accepted.refused


# --- the C-MOVE listener -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("calling", "called", "source", "reason"),
    [
        ("ROGUE", None, None, 3),  # calling AE title not recognised
        (None, "SOMEONEELSE", None, 7),  # called AE title not recognised
        (None, None, "127.0.0.2", 3),  # the PACS's AE title, from another address
    ],
    ids=["calling-aet", "called-aet", "address"],
)
def test_the_move_listener_rejects_anyone_but_the_pacs(
    tmp_path: Path, calling: str | None, called: str | None, source: str | None, reason: int
) -> None:
    study, series = generate_uid(), generate_uid()
    path, _ = _image(tmp_path, "one.dcm", study, series)
    log = HostileLog()
    store = LocalStore(tmp_path / "store")
    with running_hostile_scp(
        files=[path],
        move_calling_aet=calling,
        move_called_aet=called,
        move_source=source,
        log=log,
    ) as (scp, _):
        node = scp.node(retrieve="move", move_port=free_port(), dimse_timeout=10)
        log.move_port = node.move_port
        result = retrieve_study(node, study, store=store)
    assert log.move_rejected == [(1, 1, reason)]
    assert not result.received
    assert result.rejected_calls and "rejected an association from" in result.rejected_calls[0]


def test_only_the_instances_asked_for_are_counted(tmp_path: Path) -> None:
    study, series = generate_uid(), generate_uid()
    path, ds = _image(tmp_path, "asked.dcm", study, series)
    injected, injected_ds = _image(tmp_path, "injected.dcm", study, series)
    listed = _listing(study, series, str(ds.SOPInstanceUID), str(ds.SOPClassUID))
    log = HostileLog()
    store = LocalStore(tmp_path / "store")
    with running_hostile_scp(
        find_answers=[listed], files=[path], extra_move_files=[injected], log=log
    ) as (scp, _):
        node = scp.node(retrieve="move", move_port=free_port(), dimse_timeout=10)
        log.move_port = node.move_port
        result = retrieve_study(node, study, store=store)
    assert result.total == 1
    assert store.instance_uids(study) == {str(ds.SOPInstanceUID)}
    assert [r.sop_uid for r in result.refused] == [str(injected_ds.SOPInstanceUID)]
    assert "not one of the instances asked for" in result.refused[0].reason
    assert log.store_statuses == [0x0000, 0xC000]


# --- answers and error comments that try to drive the terminal -----------------------------------


def test_find_prints_hostile_answers_cleaned_and_json_keeps_them_exactly(tmp_path: Path) -> None:
    answer = find_answer(
        PatientName=f"Evil{OSC52}^Name",
        PatientID=f"ID{C1_CSI}",
        StudyDescription=f"desc{OSC0}",
        AccessionNumber=f"A{CSI2J}",
        StudyInstanceUID=f"1.2.3{CSI2J}",
        StudyDate="20240101",
    )
    out, err = io.StringIO(), io.StringIO()
    with running_hostile_scp(find_answers=[answer]) as (scp, _):
        assert run_find("n", "study", [], stdout=out, stderr=err, nodes={"n": scp.node()}) == 0
        table = out.getvalue()
        _no_raw_sequences(table + err.getvalue())
        assert "\\x1b]52;c;aGFja2Vk\\x07" in table and "\\x9b" in table
        out = io.StringIO()
        assert (
            run_find(
                "n", "study", [], as_json=True, stdout=out, stderr=err, nodes={"n": scp.node()}
            )
            == 0
        )
    from tuiviewer.safetext import clean_json

    document = clean_json(out.getvalue())  # what the CLI's stream writes
    _no_raw_sequences(document)
    values = json.loads(document)[0]
    assert values["00100010"]["Value"][0]["Alphabetic"] == f"Evil{OSC52}^Name"
    assert values["00100020"]["Value"][0] == f"ID{C1_CSI}"


def test_an_error_comment_with_escapes_is_cleaned_in_the_message(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    with running_hostile_scp(find_failure=(0xA700, f"disk {CSI2J}{OSC0} full")) as (scp, _):
        status = run_find("n", "study", [], stdout=out, stderr=err, nodes={"n": scp.node()})
    assert status == 1
    message = err.getvalue()
    assert "disk \\x1b[2J" in message
    _no_raw_sequences(message)


# --- TLS on the wrong kind of port ------------------------------------------------------------


@pytest.mark.skipif(not openssl_available(), reason="needs openssl to make certificates")
def test_tls_and_plain_mismatches_say_what_is_likely(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(pki.server_cert, pki.server_key)
    with running_scp(server_ssl=server) as scp:
        with pytest.raises(AssociationAborted) as plain:
            echo(scp.node())
    assert "may accept DICOM TLS only" in plain.value.message
    assert "[nodes.testscp.tls]" in plain.value.message
    with running_scp() as scp:
        with pytest.raises(TlsFailed) as tls:
            echo(scp.node(tls=TlsSettings(ca_file=pki.ca_cert)))
    assert "may not speak TLS on this port" in tls.value.message


def test_a_move_listener_is_never_on_every_interface(tmp_path: Path) -> None:
    with running_hostile_scp() as (scp, _):
        node = scp.node(retrieve="move", move_port=free_port())
        assert listen_address(node) == "127.0.0.1"
    with pytest.raises(NetError, match="move_bind"):
        listen_address(scp.node(host="no-such-host.invalid"))
