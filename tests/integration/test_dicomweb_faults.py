"""DICOMweb failure paths against a real HTTP server that fails on purpose: refused logins,
missing studies, a body too large, a server error, a multipart stream cut mid-instance, and a
STOW-RS answer that refuses some files. What arrived stays on disk and the error says why."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import generate_uid

from tests.integration.test_worklist import tiny_study
from tests.support.hostile import spoofed_file
from tests.support.ports import free_port
from tests.support.webfaults import Answer, FaultServer, Seen, qido_instance
from tuiviewer.commands.echo import run_echo
from tuiviewer.commands.find import run_find
from tuiviewer.config.dicomweb import DicomWebNode, parse_web_url
from tuiviewer.net.dicomweb.errors import AccessDenied, HttpStatusError
from tuiviewer.net.errors import AssociationAborted, AssociationRejected, ConnectionFailed
from tuiviewer.net.find import FindQuery
from tuiviewer.net.transport import echo, find, resume_study, retrieve_study, send_files
from tuiviewer.store import LocalStore


@pytest.fixture
def server() -> FaultServer:
    with FaultServer() as running:
        yield running  # type: ignore[misc]


@pytest.fixture
def series_files(tmp_path: Path) -> list[Path]:
    images = tiny_study("faults", patient_id="FAULT-1", series_sizes=(3,))
    paths = []
    for index, ds in enumerate(images):
        path = tmp_path / "files" / f"{index}.dcm"
        path.parent.mkdir(exist_ok=True)
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def _node(server: FaultServer) -> DicomWebNode:
    return parse_web_url(server.url)


def _inventory(server: FaultServer, paths: list[Path]) -> tuple[str, str]:
    headers = [dcmread(p, stop_before_pixels=True) for p in paths]
    study, series = str(headers[0].StudyInstanceUID), str(headers[0].SeriesInstanceUID)
    server.answer(
        f"/studies/{study}/instances",
        Answer(
            json_body=[
                qido_instance(study, series, str(h.SOPInstanceUID), str(h.SOPClassUID))
                for h in headers
            ]
        ),
    )
    return study, series


def test_401_is_access_denied_and_the_cli_says_so(server: FaultServer) -> None:
    server.answer("/studies", Answer(401, {"Message": "Unauthorized"}))
    with pytest.raises(AccessDenied) as info:
        echo(_node(server))
    assert isinstance(info.value, AssociationRejected)  # the worklist stops asking
    assert "HTTP 401" in info.value.message and "[auth] table" in info.value.message
    out, err = io.StringIO(), io.StringIO()
    assert run_find(server.url, "study", ["PatientName=SECRET*"], stdout=out, stderr=err) == 1
    assert "HTTP 401" in err.getvalue() and "SECRET" not in err.getvalue()


def test_500_is_a_failure_status_with_the_server_s_reason(server: FaultServer) -> None:
    server.answer("/studies", Answer(500, {"Message": "database locked"}))
    with pytest.raises(HttpStatusError) as info:
        list(find(_node(server), FindQuery(patient_id="X")))
    assert info.value.status == 500 and "database locked" in info.value.message


def test_a_refused_connection_is_connection_failed() -> None:
    node = parse_web_url(f"http://127.0.0.1:{free_port()}/dicom-web")
    with pytest.raises(ConnectionFailed, match="connection refused"):
        echo(node)
    out, err = io.StringIO(), io.StringIO()
    assert run_echo(node.url, stdout=out, stderr=err, nodes={}) == 1


def test_404_for_a_study_the_server_does_not_hold(server: FaultServer, tmp_path: Path) -> None:
    server.answer("/studies/1.2.3/instances", Answer(json_body=[]))
    with pytest.raises(HttpStatusError) as info:
        retrieve_study(_node(server), "1.2.3", store=LocalStore(tmp_path / "s"))
    assert info.value.status == 404 and "does not hold that study" in info.value.message


def test_a_cut_stream_keeps_the_complete_instances_and_resume_fetches_the_rest(
    server: FaultServer, series_files: list[Path], tmp_path: Path
) -> None:
    study, series = _inventory(server, series_files)
    parts = [p.read_bytes() for p in series_files]
    whole = len(b"".join(parts))
    server.answer(f"/studies/{study}/series/{series}", Answer(parts=parts, cut_after=whole - 100))
    store = LocalStore(tmp_path / "store")
    result = retrieve_study(_node(server), study, store=store)
    assert isinstance(result.error, AssociationAborted)
    assert "lost" in result.error.message and "2 complete instances" in result.error.message
    assert len(result.received) == 2 and result.partial
    assert not list(store.root.rglob("*.tmp"))  # the cut instance left nothing behind
    assert store.unfinished() == []  # nor a slot holding half of it
    for path in result.received:
        assert dcmread(path).PixelData  # complete files, readable to the end

    missing = [p for p in series_files if p.stem not in {r.stem for r in result.received}]
    sop = str(dcmread(series_files[-1], stop_before_pixels=True).SOPInstanceUID)
    server.answer(
        f"/studies/{study}/series/{series}/instances/{sop}",
        Answer(parts=[series_files[-1].read_bytes()], content_length_parts=False),
    )
    again = resume_study(_node(server), study, store=store)
    assert len(again.received) == 1 and not again.partial, again
    assert len(store.instance_uids(study)) == 3
    assert len(missing) == 3  # file names are not SOP UIDs; nothing to compare there


def test_a_part_of_another_study_is_refused_not_stored(
    server: FaultServer, series_files: list[Path], tmp_path: Path
) -> None:
    study, series = _inventory(server, series_files)
    stranger = tiny_study("stranger", patient_id="OTHER")[0]
    other = tmp_path / "other.dcm"
    stranger.save_as(other, enforce_file_format=True)
    server.answer(
        f"/studies/{study}/series/{series}",
        Answer(parts=[series_files[0].read_bytes(), other.read_bytes()]),
    )
    result = retrieve_study(_node(server), study, store=LocalStore(tmp_path / "store"))
    assert len(result.received) == 1 and len(result.refused) == 1
    assert "belongs to study" in result.refused[0][1]


def test_a_part_whose_data_set_names_another_instance_is_refused(
    server: FaultServer, series_files: list[Path], tmp_path: Path
) -> None:
    study, series = _inventory(server, series_files)
    real = dcmread(series_files[1])
    announced = generate_uid()
    # The file meta announces one instance, the data set is another: nothing is filed under
    # either UID (as over C-GET, where the C-STORE announces it).
    spoof = spoofed_file(tmp_path / "spoof.dcm", announced, real)
    server.answer(
        f"/studies/{study}/series/{series}",
        Answer(parts=[series_files[0].read_bytes(), spoof.read_bytes()]),
    )
    store = LocalStore(tmp_path / "store")
    result = retrieve_study(_node(server), study, store=store)
    assert len(result.received) == 1 and [r.sop_uid for r in result.refused] == [announced]
    reason = result.refused[0].reason
    assert str(real.SOPInstanceUID) in reason and "its file meta announced" in reason
    assert store.instance_uids(study) == {str(dcmread(series_files[0]).SOPInstanceUID)}


def test_stow_413_splits_the_batch_and_failures_come_per_file(
    server: FaultServer, series_files: list[Path]
) -> None:
    sops = [str(dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in series_files]

    def stow(seen: Seen) -> Answer:
        count = seen.body.count(b"Content-Type: application/dicom")
        if count > 1:
            return Answer(413, {"Message": "too large"})
        sop = next(s for s in sops if s.encode() in seen.body)
        if sop == sops[1]:
            failed = {
                "00081155": {"vr": "UI", "Value": [sop]},
                "00081197": {"vr": "US", "Value": [0xA700]},
            }
            return Answer(202, {"00081198": {"vr": "SQ", "Value": [failed]}})
        ok = {"00081155": {"vr": "UI", "Value": [sop]}}
        return Answer(200, {"00081199": {"vr": "SQ", "Value": [ok]}})

    server.answer("/studies", stow)
    result = send_files(_node(server), series_files)
    assert sorted(result.sent) == sorted([series_files[0], series_files[2]])
    assert [p for p, _ in result.failed] == [series_files[1]]
    assert "0xA700" in result.failed[0][1] and "Out of Resources" in result.failed[0][1]
    posts = [s for s in server.seen if s.method == "POST"]
    assert len(posts) == 1 + 2 + 2  # all three, then halves (1, 2), then the 2 split again
    assert all(p.headers["Content-Type"].startswith("multipart/related") for p in posts)
    assert int(posts[0].headers["Content-Length"]) == len(posts[0].body)


def test_stow_413_for_a_single_file_fails_that_file(
    server: FaultServer, series_files: list[Path]
) -> None:
    server.answer("/studies", Answer(413, {"Message": "too large"}))
    result = send_files(_node(server), series_files[:1])
    assert result.sent == [] and "too large" in result.failed[0][1]
    assert json.dumps([])  # keep json imported for readers of the test server module
