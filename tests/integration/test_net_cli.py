"""The CLI engines of ``echo``, ``find``, ``get`` and ``send``: exit codes, output a script can
parse (DICOM JSON for ``find --json``), ``get --dest`` layout, and no PHI on stderr."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from tests.support.orthanc import Orthanc, store_files
from tests.support.ports import free_port
from tests.support.scps_retrieve import running_qr_scp
from tuiviewer.commands.echo import run_echo
from tuiviewer.commands.find import run_find
from tuiviewer.commands.get import run_get
from tuiviewer.commands.send import run_send
from tuiviewer.dicom.datagen import write_ct_series

PATIENT_NAME = "Cli^Patient"
PATIENT_ID = "CLI-PID-7"


class Tty(io.StringIO):
    """A stderr that says it is a terminal, to see progress lines."""

    def isatty(self) -> bool:
        return True


def _spec(orthanc: Orthanc) -> str:
    return f"{orthanc.aet}@{orthanc.host}:{orthanc.dicom_port}"


@pytest.fixture(scope="module")
def cli_study(orthanc: Orthanc, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    if not orthanc.is_running:
        orthanc.start()
    folder = tmp_path_factory.mktemp("cli")
    study = generate_uid()
    paths = write_ct_series(
        folder / "a", slices=4, rows=16, cols=16, seed=51, study_uid=study,
        patient_name=PATIENT_NAME, patient_id=PATIENT_ID,
    ) + write_ct_series(
        folder / "b", slices=3, rows=16, cols=16, seed=52, study_uid=study,
        patient_name=PATIENT_NAME, patient_id=PATIENT_ID,
    )  # fmt: skip
    assert store_files(orthanc.host, orthanc.dicom_port, orthanc.aet, paths) == len(paths)
    return paths


def _streams() -> tuple[io.StringIO, io.StringIO]:
    return io.StringIO(), io.StringIO()


@pytest.mark.orthanc
def test_echo_succeeds_and_traces_on_request(orthanc: Orthanc) -> None:
    out, err = _streams()
    assert run_echo(_spec(orthanc), trace=True, stdout=out, stderr=err) == 0
    assert re.search(r"success \(0x0000\) in \d+\.\d ms", out.getvalue())
    assert "Verification SOP Class (1.2.840.10008.1.1)" in err.getvalue()


def test_echo_exit_codes_for_unknown_node_and_dead_port() -> None:
    out, err = _streams()
    assert run_echo("nosuchnode", stdout=out, stderr=err, nodes={}) == 2
    assert "'nosuchnode' is not configured" in err.getvalue()
    out, err = _streams()
    assert run_echo(f"X@127.0.0.1:{free_port()}", stdout=out, stderr=err, nodes={}) == 1
    assert "refused" in err.getvalue().lower()


def test_find_usage_errors_exit_2() -> None:
    out, err = _streams()
    assert run_find("X@127.0.0.1:1", "study", ["NoSuchKeyword=1"], stdout=out, stderr=err) == 2
    assert "'NoSuchKeyword' is not a DICOM keyword" in err.getvalue()
    out, err = _streams()
    assert run_find("X@127.0.0.1:1", "galaxy", [], stdout=out, stderr=err) == 2
    out, err = _streams()
    assert run_find("X@127.0.0.1:1", "study", ["StudyDate=2024"], stdout=out, stderr=err) == 2
    assert "'2024'" in err.getvalue()


@pytest.mark.orthanc
def test_find_json_is_the_dicom_json_model(orthanc: Orthanc, cli_study: list[Path]) -> None:
    source = dcmread(cli_study[0], stop_before_pixels=True)
    out, err = _streams()
    code = run_find(
        _spec(orthanc), "series", [f"PatientID={PATIENT_ID}", "SeriesDescription"],
        as_json=True, stdout=out, stderr=err,
    )  # fmt: skip
    assert code == 0, err.getvalue()
    matches = json.loads(out.getvalue())
    assert isinstance(matches, list) and len(matches) == 2
    for obj in matches:
        # PS3.18 F.2: keys are 8 uppercase hex digits, each value an object with a "vr".
        assert all(re.fullmatch(r"[0-9A-F]{8}", tag) for tag in obj)
        assert all("vr" in attr for attr in obj.values())
        ds = Dataset.from_json(obj)
        assert ds.StudyInstanceUID == source.StudyInstanceUID
        assert ds.QueryRetrieveLevel == "SERIES"
    series = {Dataset.from_json(obj).SeriesInstanceUID for obj in matches}
    expected = {dcmread(p, stop_before_pixels=True).SeriesInstanceUID for p in cli_study}
    assert series == expected


@pytest.mark.orthanc
def test_find_table_lists_matches(orthanc: Orthanc, cli_study: list[Path]) -> None:
    out, err = _streams()
    assert (
        run_find(_spec(orthanc), "study", [f"PatientID={PATIENT_ID}"], stdout=out, stderr=err) == 0
    )
    lines = out.getvalue().splitlines()
    assert "PATIENT ID" in lines[0] and "UID" in lines[0]
    assert len(lines) == 2 and PATIENT_ID in lines[1] and PATIENT_NAME in lines[1]
    assert err.getvalue().strip() == "1 match."


@pytest.mark.orthanc
def test_get_dest_writes_study_series_sop_layout(
    orthanc: Orthanc, cli_study: list[Path], tmp_path: Path
) -> None:
    headers = [dcmread(p, stop_before_pixels=True) for p in cli_study]
    study = str(headers[0].StudyInstanceUID)
    dest = tmp_path / "out"
    out, err = Tty(), Tty()
    code = run_get(_spec(orthanc), study, dest=dest, trace=True, stdout=out, stderr=err)
    assert code == 0, err.getvalue()
    for ds in headers:
        path = dest / study / str(ds.SeriesInstanceUID) / f"{ds.SOPInstanceUID}.dcm"
        assert dcmread(path).SOPInstanceUID == ds.SOPInstanceUID
    assert f"Retrieved {len(headers)} of {len(headers)} instances" in out.getvalue()
    assert f"{len(headers)}/{len(headers)} instances" in err.getvalue()  # progress line
    assert "C-GET (message 1)" in err.getvalue()  # --trace
    # Progress, trace and summary name no patient.
    for phi in (PATIENT_NAME, "Cli", PATIENT_ID):
        assert phi not in err.getvalue() and phi not in out.getvalue()


@pytest.mark.orthanc
def test_get_resume_after_deleting_files(
    orthanc: Orthanc, cli_study: list[Path], tmp_path: Path
) -> None:
    study = str(dcmread(cli_study[0], stop_before_pixels=True).StudyInstanceUID)
    dest = tmp_path / "out"
    assert (
        run_get(_spec(orthanc), study, dest=dest, stdout=io.StringIO(), stderr=io.StringIO()) == 0
    )
    files = sorted(dest.rglob("*.dcm"))
    files[0].unlink()
    files[3].unlink()
    out, err = _streams()
    code = run_get(_spec(orthanc), study, dest=dest, resume=True, stdout=out, stderr=err)
    assert code == 0
    assert "Retrieved 2 of 2 instances" in out.getvalue()
    out, err = _streams()
    assert run_get(_spec(orthanc), study, dest=dest, resume=True, stdout=out, stderr=err) == 0
    assert "Nothing to resume" in out.getvalue()


@pytest.mark.orthanc
def test_get_exit_codes(orthanc: Orthanc, tmp_path: Path) -> None:
    out, err = _streams()
    assert run_get(_spec(orthanc), "", dest=tmp_path, stdout=out, stderr=err) == 2
    assert "Study Instance UID '' is empty" in err.getvalue()
    # A non-conformant UID is asked for as given (some archives hold them), as getscu does.
    out, err = _streams()
    assert run_get(_spec(orthanc), "not-a-uid", dest=tmp_path, stdout=out, stderr=err) == 1
    assert "'not-a-uid' is not a conformant DICOM UID" in err.getvalue()
    assert "found no instance of study" in err.getvalue()
    out, err = _streams()
    assert run_get(_spec(orthanc), generate_uid(), dest=tmp_path, stdout=out, stderr=err) == 1
    assert "found no instance of study" in err.getvalue()


def test_get_partial_failure_exits_3_and_lists_failed(tmp_path: Path) -> None:
    paths = write_ct_series(tmp_path / "ct", slices=5, rows=16, cols=16, seed=53)
    datasets = [dcmread(p) for p in paths]
    study = str(datasets[0].StudyInstanceUID)
    with running_qr_scp(datasets, fail_after=3) as (scp, _log):
        out, err = _streams()
        spec = f"{scp.ae_title}@127.0.0.1:{scp.port}"
        code = run_get(spec, study, dest=tmp_path / "out", stdout=out, stderr=err)
    assert code == 3
    assert "Retrieved 3 of 5 instances" in out.getvalue()
    for ds in datasets[3:]:
        assert f"failed: {ds.SOPInstanceUID}" in err.getvalue()


def test_get_aborted_exits_1_and_keeps_files(tmp_path: Path) -> None:
    paths = write_ct_series(tmp_path / "ct", slices=5, rows=16, cols=16, seed=54)
    datasets = [dcmread(p) for p in paths]
    study = str(datasets[0].StudyInstanceUID)
    with running_qr_scp(datasets, abort_after=2) as (scp, _log):
        out, err = _streams()
        spec = f"{scp.ae_title}@127.0.0.1:{scp.port}"
        code = run_get(spec, study, dest=tmp_path / "out", stdout=out, stderr=err)
    assert code == 1
    assert "aborted the association during C-GET" in err.getvalue()
    assert "The 2 instances received are kept" in err.getvalue()
    assert len(list((tmp_path / "out").rglob("*.dcm"))) == 2


@pytest.mark.orthanc
def test_send_exit_codes(orthanc: Orthanc, tmp_path: Path) -> None:
    write_ct_series(tmp_path / "ct", slices=2, rows=16, cols=16, seed=55)
    before = orthanc.instance_count()
    out, err = _streams()
    assert run_send(_spec(orthanc), [tmp_path / "ct"], stdout=out, stderr=err) == 0
    assert orthanc.instance_count() == before + 2
    assert "Sent 2 files" in out.getvalue()
    out, err = _streams()
    assert run_send(_spec(orthanc), [tmp_path / "missing"], stdout=out, stderr=err) == 2
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "a.txt").write_text("x")
    out, err = _streams()
    assert run_send(_spec(orthanc), [tmp_path / "text"], stdout=out, stderr=err) == 1
    assert "no DICOM file" in err.getvalue()
