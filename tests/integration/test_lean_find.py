"""``tuiviewer find``'s lean C-FIND client (net/leanfind.py) prints exactly what the pynetdicom
path prints, against Orthanc and against in-process pynetdicom SCPs that answer oddly, and the
command line's own process loads neither pydicom nor pynetdicom to do it."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE, evt

from tests.support import scps
from tests.support.certs import Pki, make_pki, openssl_available
from tests.support.hostile import (
    C1_CSI,
    CSI2J,
    OSC0,
    OSC52,
    find_answer,
    running_hostile_scp,
)
from tests.support.orthanc import Orthanc, store_datasets
from tests.support.ports import LOOPBACK, free_port
from tuiviewer.commands.find import run_find
from tuiviewer.config.nodes import TlsSettings
from tuiviewer.dicom.datagen import write_ct_series

ROOT = Path(__file__).resolve().parents[2]


def _both(node: Any, level: str, keys: list[str], **kwargs: Any) -> tuple[str, str, int]:
    """Run the query both ways; assert they print the same; return (stdout, stderr, status)."""
    results = []
    for lean in (True, False):
        out, err = io.StringIO(), io.StringIO()
        status = run_find("n", level, keys, stdout=out, stderr=err, nodes={"n": node}, lean=lean)
        results.append((out.getvalue(), err.getvalue(), status))
    assert results[0] == results[1]
    return results[0]


def _study(n: int, name: str, charset: str | None, modality: str) -> Dataset:
    ds = Dataset()
    if charset:
        ds.SpecificCharacterSet = charset
    ds.PatientName = name
    ds.PatientID = f"LEAN-{n:03d}"
    ds.PatientBirthDate = "19700101" if n % 2 else ""
    ds.PatientSex = "MF"[n % 2]
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.StudyDate = f"202401{n % 28 + 1:02d}"
    ds.StudyTime = "101010.5"
    ds.StudyDescription = f"Lean study {n}  " if n % 3 else ""
    ds.AccessionNumber = f"ACC{n}"
    ds.ReferringPhysicianName = "Ref^Doc" if n % 2 else ""
    ds.Modality = modality
    ds.SeriesNumber = n
    ds.InstanceNumber = 1
    ds.SeriesDescription = "Sér" if charset else "Plain series"
    ds.BodyPartExamined = "HEAD"
    ds.file_meta = Dataset()
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


@pytest.fixture(scope="module")
def lean_studies(orthanc: Orthanc, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    if not orthanc.is_running:
        orthanc.start()
    studies = [
        _study(0, "Plain^Patient", None, "CT"),
        _study(1, "Müller^Jürgen", "ISO_IR 100", "MR"),
        _study(2, "Ｙａｍａｄａ^Ｔａｒｏｕ", "ISO_IR 192", "SR"),
        _study(3, "Plain^Other", "ISO_IR 100", "CT"),
        _study(4, "Dup^Name", None, "OT"),
    ]
    assert store_datasets(orthanc.host, orthanc.dicom_port, orthanc.aet, studies) == len(studies)
    folder = tmp_path_factory.mktemp("lean")
    write_ct_series(folder, slices=3, rows=8, cols=8, seed=5, patient_id="LEAN-CT")
    yield


@pytest.mark.orthanc
@pytest.mark.parametrize(
    ("level", "keys"),
    [
        ("study", ["PatientID=LEAN-*"]),
        ("study", ["PatientID=LEAN-*", "ModalitiesInStudy=MR"]),
        ("study", ["PatientName=M*", "StudyDate=20240101-20241231"]),
        ("study", ["PatientID=LEAN-00?", "0008,1030"]),
        ("series", ["PatientID=LEAN-*"]),
        ("image", ["PatientID=LEAN-*"]),
        ("patient", ["PatientID=LEAN-*"]),
        ("study", ["PatientID=NOBODY"]),
    ],
)
def test_lean_client_prints_what_pynetdicom_prints(
    orthanc: Orthanc, lean_studies: None, level: str, keys: list[str]
) -> None:
    node = scps.Scp(ae_title=orthanc.aet, port=orthanc.dicom_port, host=orthanc.host).node()
    out, err, status = _both(node, level, keys)
    assert status == 0, err
    if keys != ["PatientID=NOBODY"]:
        assert out.count("\n") >= 2  # a header and rows: the comparison compared something
    if level == "study" and keys == ["PatientID=LEAN-*"]:
        # Latin-1 and UTF-8 names came through pydicom's decoding, the same on both paths.
        assert "Müller^Jürgen" in out and "Ｙａｍａｄａ^Ｔａｒｏｕ" in out
        assert err.strip() == "5 matches."


def test_hostile_answers_and_failures_print_the_same_both_ways() -> None:
    answer = find_answer(
        PatientName=f"Evil{OSC52}^Name",
        PatientID=f"ID{C1_CSI}",
        StudyDescription=f"desc{OSC0}",
        AccessionNumber=f"A{CSI2J}",
        StudyInstanceUID="1.2.3",
        StudyDate="20240101",
    )
    with running_hostile_scp(find_answers=[answer, find_answer(PatientID="ok")]) as (scp, _):
        out, _err, status = _both(scp.node(), "study", [])
    assert status == 0 and "\\x1b]52;c;aGFja2Vk\\x07" in out and "ok" in out
    with running_hostile_scp(find_failure=(0xA700, f"disk {CSI2J} full")) as (scp, _):
        out, err, status = _both(scp.node(), "study", [])
    assert status == 1 and out == ""
    assert "0xA700: Refused: Out of Resources" in err and "disk \\x1b[2J full" in err


@pytest.mark.parametrize(
    ("handler", "expected"),
    [
        (scps.failing_find_handler(0xC000), "answered the C-FIND request with 0xC000"),
        (scps.aborting_find_handler(after=2), "aborted the association during C-FIND"),
        (scps.sleeping_find_handler(4.0), "did not answer the C-FIND request within 2 s"),
    ],
)
def test_failures_from_a_pynetdicom_scp_exit_1_the_same_both_ways(
    handler: Any, expected: str
) -> None:
    with scps.running_scp(
        contexts=[scps.STUDY_ROOT_FIND], handlers=[(evt.EVT_C_FIND, handler)]
    ) as scp:
        out, err, status = _both(scp.node(), "study", [])
    assert status == 1 and out == "" and expected in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize("syntax", scps.TRANSFER_SYNTAXES)
def test_streamed_answers_in_either_syntax_print_the_same(syntax: str) -> None:
    ae = AE(ae_title="ONESYNTAX")
    ae.add_supported_context(scps.STUDY_ROOT_FIND, [syntax])
    port = free_port()
    handler = scps.streaming_find_handler(scps.StreamLog(), 40, 0.0)
    server = ae.start_server(
        (LOOPBACK, port), block=False, evt_handlers=[(evt.EVT_C_FIND, handler)]
    )
    try:
        node = scps.Scp(ae_title="ONESYNTAX", port=port).node()
        out, err, status = _both(node, "study", [])
    finally:
        server.shutdown()
    assert status == 0 and err.strip() == "40 matches."
    assert "STREAM^PATIENT" in out


def test_the_command_line_loads_neither_pydicom_nor_pynetdicom(tmp_path: Path) -> None:
    with scps.running_scp(
        contexts=[scps.STUDY_ROOT_FIND],
        handlers=[(evt.EVT_C_FIND, scps.streaming_find_handler(scps.StreamLog(), 3, 0.0))],
    ) as scp:
        code = (
            "import sys; from tuiviewer.cli import main; status = main();"
            "loaded = sorted({m.split('.')[0] for m in sys.modules} & {'pydicom', 'pynetdicom'});"
            "print('loaded', loaded, file=sys.stderr); sys.exit(status)"
        )
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        # The first run may make the dictionary cache (with pydicom); the second is the one.
        for _ in range(2):
            result = subprocess.run(
                [sys.executable, "-c", code, "find", f"{scp.ae_title}@127.0.0.1:{scp.port}"],
                capture_output=True,
                text=True,
                env=env,
                timeout=60,
                check=False,
            )
    assert result.returncode == 0, result.stderr
    assert "3 matches." in result.stderr
    assert "loaded []" in result.stderr
    assert len(result.stdout.splitlines()) == 4


def test_a_peer_without_the_query_model_fails_the_same_both_ways() -> None:
    with scps.running_scp(contexts=[scps.VERIFICATION]) as scp:
        out, err, status = _both(scp.node(), "study", [])
    assert status == 1 and out == ""
    assert "accepted none of the presentation contexts needed" in err


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.mark.skipif(not openssl_available(), reason="needs openssl to make certificates")
def test_tls_queries_and_tls_mistakes_print_the_same_both_ways(pki: Pki) -> None:
    server = scps.server_ssl_context(str(pki.server_cert), str(pki.server_key), str(pki.ca_cert))
    settings = TlsSettings(ca_file=pki.ca_cert, cert_file=pki.client_cert, key_file=pki.client_key)
    handler = scps.streaming_find_handler(scps.StreamLog(), 5, 0.0)
    with scps.running_scp(
        contexts=[scps.STUDY_ROOT_FIND], handlers=[(evt.EVT_C_FIND, handler)], server_ssl=server
    ) as scp:
        out, err, status = _both(scp.node(tls=settings), "study", [])
        assert status == 0 and err.strip() == "5 matches."
        # Plain DICOM to the TLS port.
        out, err, status = _both(scp.node(), "study", [])
        assert status == 1 and "may accept DICOM TLS only" in err
        # A CA that did not sign the server's certificate.
        other = TlsSettings(ca_file=pki.other_ca_cert)
        out, err, status = _both(scp.node(tls=other), "study", [])
        assert status == 1 and "certificate verify failed" in err
    with scps.running_scp(contexts=[scps.STUDY_ROOT_FIND]) as scp:
        # TLS to a plain port.
        out, err, status = _both(scp.node(tls=settings), "study", [])
        assert status == 1 and "may not speak TLS on this port" in err
