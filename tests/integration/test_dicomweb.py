"""DICOMweb against Orthanc with the Debian DICOMweb plugin: the same operations, rows, results
and command-line output as over DIMSE, through the transport seam the screens use."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import generate_uid

from tests.integration.test_worklist import tiny_study
from tests.support.orthanc import Orthanc, store_datasets, store_files
from tests.unit.services.test_worklist import report_sr
from tuiviewer.commands.echo import run_echo
from tuiviewer.commands.find import run_find
from tuiviewer.commands.get import run_get
from tuiviewer.commands.send import run_send
from tuiviewer.config.dicomweb import DicomWebNode, WebAuth
from tuiviewer.config.nodes import load_nodes
from tuiviewer.dicom.datagen import write_ct_series
from tuiviewer.dicom.rows import ImageRow, QueryLevel, SeriesRow, StudyRow, to_row
from tuiviewer.net.dicomweb.errors import AccessDenied
from tuiviewer.net.find import FindQuery
from tuiviewer.net.trace import AssociationTrace
from tuiviewer.net.transport import echo, find, resume_study, retrieve_study, send_files
from tuiviewer.services.worklist import ReportState, report_states
from tuiviewer.store import LocalStore

pytestmark = pytest.mark.orthanc

PATIENT = "Web^Patient"
PATIENT_ID = "WEB-PID-1"


def web_node(orthanc: Orthanc, **settings: object) -> DicomWebNode:
    return DicomWebNode(
        name="web",
        ae_title="",
        host=orthanc.host,
        port=orthanc.http_port,
        url=orthanc.dicomweb_url,
        **settings,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def web_study(dicomweb_orthanc: Orthanc, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A two-series CT study (4 + 3 slices) on the DICOMweb Orthanc."""
    folder = tmp_path_factory.mktemp("web")
    study = generate_uid()
    paths = write_ct_series(
        folder / "a", slices=4, rows=16, cols=16, seed=71, study_uid=study,
        patient_name=PATIENT, patient_id=PATIENT_ID,
    ) + write_ct_series(
        folder / "b", slices=3, rows=16, cols=16, seed=72, study_uid=study,
        patient_name=PATIENT, patient_id=PATIENT_ID,
    )  # fmt: skip
    o = dicomweb_orthanc
    assert store_files(o.host, o.dicom_port, o.aet, paths) == len(paths)
    return paths


def _uids(paths: list[Path]) -> tuple[str, list[str], set[str]]:
    headers = [dcmread(p, stop_before_pixels=True) for p in paths]
    series = list(dict.fromkeys(str(h.SeriesInstanceUID) for h in headers))
    return str(headers[0].StudyInstanceUID), series, {str(h.SOPInstanceUID) for h in headers}


def test_echo_and_the_three_query_levels_answer_like_c_find(
    dicomweb_orthanc: Orthanc, web_study: list[Path]
) -> None:
    node = web_node(dicomweb_orthanc)
    study_uid, series, sops = _uids(web_study)
    result = echo(node)
    assert result.status == 200 and result.rtt_ms > 0

    studies = [
        to_row(QueryLevel.STUDY, ds)
        for ds in find(node, FindQuery(patient_name="Web*", study_description=""))
    ]
    assert [s.uid for s in studies if isinstance(s, StudyRow)] == [study_uid]
    row = studies[0]
    assert isinstance(row, StudyRow)
    assert (row.patient_name, row.patient_id, row.modalities) == (PATIENT, PATIENT_ID, ("CT",))
    assert (row.series_count, row.instance_count) == (2, 7)

    found = [
        to_row(QueryLevel.SERIES, ds)
        for ds in find(node, FindQuery(level=QueryLevel.SERIES, study_uid=study_uid))
    ]
    assert {r.uid for r in found if isinstance(r, SeriesRow)} == set(series)
    assert sorted(r.instance_count or 0 for r in found if isinstance(r, SeriesRow)) == [3, 4]

    images = [
        to_row(QueryLevel.IMAGE, ds)
        for ds in find(
            node, FindQuery(level=QueryLevel.IMAGE, study_uid=study_uid, series_uid=series[0])
        )
    ]
    assert {r.uid for r in images if isinstance(r, ImageRow)} <= sops
    assert len(images) == 4


def test_paging_streams_every_page_and_the_trace_holds_no_phi(
    dicomweb_orthanc: Orthanc, web_study: list[Path]
) -> None:
    study_uid, _, sops = _uids(web_study)
    node = web_node(dicomweb_orthanc, page_size=2)
    trace = AssociationTrace()
    query = FindQuery(level=QueryLevel.IMAGE, study_uid=study_uid, patient_id=PATIENT_ID)
    found = {str(ds.SOPInstanceUID) for ds in find(node, query, trace=trace)}
    assert found == sops
    text = trace.format()
    for offset in (0, 2, 4, 6):
        assert f"offset={offset}" in text
    assert "Web" not in text and PATIENT_ID not in text
    assert text.count("-> HTTP 200") == 4


def test_retrieve_streams_series_by_series_and_resume_fetches_only_what_is_missing(
    dicomweb_orthanc: Orthanc, web_study: list[Path], tmp_path: Path
) -> None:
    node = web_node(dicomweb_orthanc)
    study_uid, series, sops = _uids(web_study)
    store = LocalStore(tmp_path / "store")
    done: list[str] = []
    progress: list[int] = []
    result = retrieve_study(
        node,
        study_uid,
        store=store,
        first_series=series[1],
        on_series_done=done.append,
        progress=lambda p: progress.append(p.done),
    )
    assert not result.partial, result
    assert done == [series[1], series[0]]
    assert result.total == 7 and progress[-1] == 7
    assert store.instance_uids(study_uid) == sops
    # Byte for byte what was sent (Orthanc keeps files as received; WADO-RS sends them as stored).
    originals = {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID): p for p in web_study}
    for path in result.received:
        ds = dcmread(path)
        assert ds.PixelData == dcmread(originals[str(ds.SOPInstanceUID)]).PixelData
        assert path.stat().st_mode & 0o777 == 0o600
    assert not list(store.root.rglob("*.tmp")) and store.unfinished() == []

    victim = result.received[2]
    victim.unlink()
    trace = AssociationTrace()
    again = resume_study(node, study_uid, store=store, trace=trace)
    assert again.total == 1 and len(again.received) == 1 and not again.partial
    assert store.instance_uids(study_uid) == sops
    assert f"/instances/{victim.stem}" in trace.format()
    assert resume_study(node, study_uid, store=store).total == 0


def test_stow_sends_files_and_a_report_whose_state_qido_then_shows(
    dicomweb_orthanc: Orthanc, tmp_path: Path
) -> None:
    o = dicomweb_orthanc
    node = web_node(o)
    images = tiny_study("stow", patient_id="WEB-STOW", series_sizes=(2,))
    study_uid = str(images[0].StudyInstanceUID)
    folder = tmp_path / "out"
    folder.mkdir()
    for index, ds in enumerate(images):
        ds.save_as(folder / f"{index}.dcm", enforce_file_format=True)
    (folder / "notes.txt").write_text("not DICOM")
    result = send_files(node, [folder])
    assert len(result.sent) == 2 and not result.failed
    assert result.skipped_not_dicom == [folder / "notes.txt"]
    store = LocalStore(tmp_path / "store")
    states = list(report_states(node, [study_uid], store))
    assert [s.state for s in states] == [ReportState.UNREPORTED]

    at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    sr = report_sr(study_uid, final=True, at=at, patient_id="WEB-STOW")
    sr_path = tmp_path / "report.dcm"
    sr.save_as(sr_path, enforce_file_format=True)
    sent = send_files(node, [sr_path])
    assert sent.sent == [sr_path]
    states = list(report_states(node, [study_uid], store))
    assert [s.state for s in states] == [ReportState.FINAL]
    assert states[0].reports and states[0].reports[0].name == f"{sr.SOPInstanceUID}.dcm"
    # Only the SR came into the store for the state, never an image.
    assert store.instance_uids(study_uid) == {str(sr.SOPInstanceUID)}


def test_basic_auth_without_and_with_credentials(dicomweb_orthanc_auth: Orthanc) -> None:
    o = dicomweb_orthanc_auth
    with pytest.raises(AccessDenied) as info:
        echo(web_node(o))
    assert "HTTP 401" in info.value.message and "auth" in info.value.message
    wrong = web_node(o, auth=WebAuth(type="basic", username="reader", password="nope"))
    with pytest.raises(AccessDenied):
        list(find(wrong, FindQuery()))
    good = web_node(o, auth=WebAuth(type="basic", username="reader", password="s3cret"))
    assert echo(good).status == 200
    assert isinstance(list(find(good, FindQuery())), list)


# --- the command line -------------------------------------------------------------------------


def _nodes_file(tmp_path: Path, orthanc: Orthanc) -> dict[str, object]:
    path = tmp_path / "nodes.toml"
    path.write_text(
        f'[nodes.web]\nkind = "dicomweb"\nurl = "{orthanc.dicomweb_url}"\n'
        '[nodes.web.auth]\ntype = "basic"\nusername = "reader"\npassword_file = "pw"\n',
        encoding="utf-8",
    )
    (tmp_path / "pw").write_text("s3cret\n", encoding="utf-8")
    return dict(load_nodes(path))


def test_cli_echo_find_get_send_take_a_url_and_answer_as_over_dimse(
    dicomweb_orthanc: Orthanc, web_study: list[Path], tmp_path: Path
) -> None:
    o = dicomweb_orthanc
    study_uid, series, sops = _uids(web_study)
    url = o.dicomweb_url
    dimse = f"{o.aet}@{o.host}:{o.dicom_port}"

    out, err = io.StringIO(), io.StringIO()
    assert run_echo(url, stdout=out, stderr=err, nodes={}) == 0
    assert out.getvalue().startswith(f"QIDO-RS echo to DICOMweb at {url}: success (HTTP 200)")

    tables = []
    for node in (url, dimse):
        out, err = io.StringIO(), io.StringIO()
        keys = [f"StudyInstanceUID={study_uid}"]
        assert run_find(node, "series", keys, stdout=out, stderr=err, nodes={}) == 0, err
        tables.append(sorted(out.getvalue().splitlines()))
        assert err.getvalue() == "2 matches.\n"
    assert tables[0] == tables[1]

    out, err = io.StringIO(), io.StringIO()
    keys = [f"StudyInstanceUID={study_uid}"]
    assert run_find(url, "study", keys, as_json=True, stdout=out, stderr=err, nodes={}) == 0
    payload = json.loads(out.getvalue())
    assert payload[0]["0020000D"]["Value"] == [study_uid]

    out, err = io.StringIO(), io.StringIO()
    dest = tmp_path / "dest"
    code = run_get(url, study_uid, None, dest, trace=True, stdout=out, stderr=err, nodes={})
    assert code == 0, err.getvalue()
    assert out.getvalue().startswith("Retrieved 7 of 7 instances (")
    assert "DICOMweb" in err.getvalue() and "multipart/related" in err.getvalue()
    assert PATIENT_ID not in err.getvalue()
    assert LocalStore(dest).instance_uids(study_uid) == sops

    out, err = io.StringIO(), io.StringIO()
    code = run_get(url, study_uid, None, dest, move=True, stdout=out, stderr=err, nodes={})
    assert code == 2 and "--move does not apply" in err.getvalue()

    before = o.instance_count()
    out, err = io.StringIO(), io.StringIO()
    assert run_send(url, web_study[:2], stdout=out, stderr=err, nodes={}) == 0
    assert (
        out.getvalue() == f"Sent 2 files to DICOMweb at {url}; 0 failed, 0 skipped (not DICOM).\n"
    )
    assert o.instance_count() == before  # the same instances again: stored over, not added


def test_cli_with_a_configured_node_uses_its_password_file(
    dicomweb_orthanc_auth: Orthanc, tmp_path: Path
) -> None:
    nodes = _nodes_file(tmp_path, dicomweb_orthanc_auth)
    out, err = io.StringIO(), io.StringIO()
    assert run_echo("web", stdout=out, stderr=err, nodes=nodes) == 0  # type: ignore[arg-type]
    out, err = io.StringIO(), io.StringIO()
    code = run_echo(dicomweb_orthanc_auth.dicomweb_url, stdout=out, stderr=err, nodes={})
    assert code == 1 and "HTTP 401" in err.getvalue()
    images = tiny_study("cli-auth", patient_id="WEB-AUTH")
    o = dicomweb_orthanc_auth
    assert store_datasets(o.host, o.dicom_port, o.aet, images) == 1
