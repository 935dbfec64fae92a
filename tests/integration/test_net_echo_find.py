"""C-ECHO and C-FIND against a real Orthanc: every level, both models, each filter, non-ASCII
names (UTF-8 and Latin-1 Orthancs) and DICOM TLS."""

from __future__ import annotations

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from tests.conftest import testdata as sample_file
from tests.support.certs import make_pki, openssl_available
from tests.support.orthanc import Orthanc, OrthancConfig, OrthancPool, TlsFiles, store_datasets
from tuiviewer.config.nodes import Node, TlsSettings
from tuiviewer.dicom.rows import StudyRow, to_row
from tuiviewer.net import FindQuery, QueryLevel, QueryModel, TlsFailed, echo, find

pytestmark = pytest.mark.orthanc

# (name, id, accession, date, description, referring, source file, modality)
STUDIES = [
    (
        "Müller^Jürgen",
        "PID-MU",
        "ACC100",
        "20240105",
        "Chest CT",
        "House^Gregory",
        "CT_small.dcm",
        "CT",
    ),
    (
        "Иванов^Иван",
        "PID-IV",
        "ACC200",
        "20240220",
        "Brain MR",
        "Wilson^James",
        "MR_small.dcm",
        "MR",
    ),
    (
        "Doe^John",
        "PID-DO",
        "ACC300",
        "20230701",
        "Abdomen CT",
        "House^Gregory",
        "CT_small.dcm",
        "CT",
    ),
]


def _study(row: tuple[str, ...], series: int) -> list[Dataset]:
    name, pid, acc, date, desc, ref, source, modality = row
    study_uid = generate_uid()
    out: list[Dataset] = []
    for s in range(series):
        series_uid = generate_uid()
        for i in range(2):
            ds = dcmread(sample_file(source))
            ds.SpecificCharacterSet = "ISO_IR 192"
            ds.PatientName, ds.PatientID, ds.AccessionNumber = name, pid, acc
            ds.StudyDate, ds.StudyDescription, ds.ReferringPhysicianName = date, desc, ref
            ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.Modality, ds.SeriesNumber, ds.InstanceNumber = modality, s + 1, i + 1
            ds.SeriesDescription = f"{desc} series {s + 1}"
            out.append(ds)
    return out


@pytest.fixture(scope="module")
def loaded() -> dict[str, list[Dataset]]:
    return {row[1]: _study(row, series=2 if row[1] == "PID-MU" else 1) for row in STUDIES}


def _node(orthanc: Orthanc, **kw: object) -> Node:
    return Node(
        name="orthanc",
        ae_title=orthanc.aet,
        host=orthanc.host,
        port=orthanc.dicom_port,
        dimse_timeout=10,
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def pacs(orthanc: Orthanc, loaded: dict[str, list[Dataset]]) -> Node:
    if not orthanc.is_running:
        orthanc.start()
    orthanc.clear()
    datasets = [ds for group in loaded.values() for ds in group]
    assert store_datasets(orthanc.host, orthanc.dicom_port, orthanc.aet, datasets) == len(datasets)
    return _node(orthanc)


def _studies(node: Node, **criteria: object) -> list[StudyRow]:
    rows = [to_row(QueryLevel.STUDY, ds) for ds in find(node, FindQuery(**criteria))]  # type: ignore[arg-type]
    return sorted((r for r in rows if isinstance(r, StudyRow)), key=lambda r: r.patient_id)


def test_echo(pacs: Node) -> None:
    result = echo(pacs)
    assert result.status == 0x0000 and result.rtt_ms > 0
    assert "Verification SOP Class" in result.trace.format()


def test_study_level_returns_every_study_with_counts(
    pacs: Node, loaded: dict[str, list[Dataset]]
) -> None:
    rows = _studies(pacs)
    assert [r.patient_id for r in rows] == sorted(loaded)
    mu = rows[[r.patient_id for r in rows].index("PID-MU")]
    assert mu.uid == loaded["PID-MU"][0].StudyInstanceUID
    assert (mu.series_count, mu.instance_count) == (2, 4)
    assert mu.modalities == ("CT",) and mu.accession == "ACC100" and mu.date == "20240105"


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        ({"patient_name": "Mül*"}, ["PID-MU"]),
        ({"patient_name": "D?e^J*"}, ["PID-DO"]),
        ({"patient_id": "PID-IV"}, ["PID-IV"]),
        ({"accession_number": "ACC300"}, ["PID-DO"]),
        ({"study_date": "20240101-20240331"}, ["PID-IV", "PID-MU"]),
        ({"study_date": "-20231231"}, ["PID-DO"]),
        ({"modality": "MR"}, ["PID-IV"]),
        ({"study_description": "*CT"}, ["PID-DO", "PID-MU"]),
        ({"referring_physician": "House*"}, ["PID-DO", "PID-MU"]),
    ],
)
def test_each_filter_narrows(pacs: Node, criteria: dict[str, str], expected: list[str]) -> None:
    assert [r.patient_id for r in _studies(pacs, **criteria)] == expected


def test_non_ascii_names_come_back_decoded(pacs: Node) -> None:
    by_id = {r.patient_id: r.patient_name for r in _studies(pacs)}
    assert by_id["PID-MU"] == "Müller^Jürgen"
    assert by_id["PID-IV"] == "Иванов^Иван"
    assert [r.patient_id for r in _studies(pacs, patient_name="Иван*")] == ["PID-IV"]


def test_series_and_image_levels_both_models(pacs: Node, loaded: dict[str, list[Dataset]]) -> None:
    study = loaded["PID-MU"]
    study_uid = study[0].StudyInstanceUID
    expected_series = sorted({ds.SeriesInstanceUID for ds in study})
    expected_images = sorted(ds.SOPInstanceUID for ds in study)
    for model in (QueryModel.STUDY_ROOT, QueryModel.PATIENT_ROOT):
        extra = {"PatientID": "PID-MU"} if model is QueryModel.PATIENT_ROOT else {}
        series = list(
            find(
                pacs,
                FindQuery(level=QueryLevel.SERIES, study_uid=study_uid, extra=extra),
                model=model,
            )
        )
        assert sorted(ds.SeriesInstanceUID for ds in series) == expected_series
        assert {ds.Modality for ds in series} == {"CT"}
        images = list(
            find(
                pacs,
                FindQuery(level=QueryLevel.IMAGE, study_uid=study_uid, extra=extra),
                model=model,
            )
        )
        assert sorted(ds.SOPInstanceUID for ds in images) == expected_images
        assert {ds.SOPClassUID for ds in images} == {study[0].SOPClassUID}
    one = list(
        find(
            pacs,
            FindQuery(level=QueryLevel.IMAGE, study_uid=study_uid, series_uid=expected_series[0]),
        )
    )
    assert len(one) == 2


def test_patient_level_with_patient_root(pacs: Node) -> None:
    rows = list(find(pacs, FindQuery(level=QueryLevel.PATIENT), model=QueryModel.PATIENT_ROOT))
    assert sorted(ds.PatientID for ds in rows) == ["PID-DO", "PID-IV", "PID-MU"]
    only = list(
        find(
            pacs,
            FindQuery(level=QueryLevel.PATIENT, patient_name="Mü*"),
            model=QueryModel.PATIENT_ROOT,
        )
    )
    assert [str(ds.PatientName) for ds in only] == ["Müller^Jürgen"]


def test_latin1_orthanc(orthanc_factory: OrthancPool, loaded: dict[str, list[Dataset]]) -> None:
    latin = orthanc_factory.start(OrthancConfig(aet="LATIN", default_encoding="Latin1"))
    datasets = loaded["PID-MU"] + loaded["PID-IV"]
    store_datasets(latin.host, latin.dicom_port, latin.aet, datasets)
    answers = list(find(_node(latin), FindQuery()))
    names = {ds.PatientID: str(ds.PatientName) for ds in answers}
    charsets = {ds.PatientID: ds.get("SpecificCharacterSet") for ds in answers}
    assert names["PID-MU"] == "Müller^Jürgen"
    # A Latin-1 Orthanc cannot express Cyrillic: Orthanc 1.10 drops the letters (only the
    # "^" separator comes back), declaring ISO_IR 100 for every answer.
    assert names["PID-IV"] != "Иванов^Иван"
    assert not any("\u0400" <= c <= "\u04ff" for c in names["PID-IV"])
    assert charsets["PID-MU"] == "ISO_IR 100"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> object:
    if not openssl_available():
        pytest.skip("the openssl command is needed to make test certificates")
    return make_pki(tmp_path_factory.mktemp("pki"))


def test_tls_echo_and_find(
    orthanc_factory: OrthancPool, pki: object, loaded: dict[str, list[Dataset]]
) -> None:
    from tests.support.certs import Pki

    assert isinstance(pki, Pki)
    tls_orthanc = orthanc_factory.start(
        OrthancConfig(
            aet="TLSPACS",
            tls=TlsFiles(
                certificate=pki.server_cert,
                private_key=pki.server_key,
                trusted_certificates=pki.ca_cert,
            ),
        )
    )
    settings = TlsSettings(ca_file=pki.ca_cert, cert_file=pki.client_cert, key_file=pki.client_key)
    node = _node(tls_orthanc, tls=settings)
    result = echo(node)
    assert result.status == 0 and "(TLS)" in result.trace.format()
    assert list(find(node, FindQuery())) == []

    # With host name checking the certificate must name the host (it carries IP:127.0.0.1).
    checked = _node(
        tls_orthanc,
        tls=TlsSettings(
            ca_file=pki.ca_cert,
            cert_file=pki.client_cert,
            key_file=pki.client_key,
            server_hostname="localhost",
        ),
    )
    assert echo(checked).status == 0

    # Trusting only another CA: our client refuses the server's certificate.
    wrong_ca = _node(
        tls_orthanc,
        tls=TlsSettings(
            ca_file=pki.other_ca_cert, cert_file=pki.client_cert, key_file=pki.client_key
        ),
    )
    with pytest.raises(TlsFailed) as info:
        echo(wrong_ca)
    assert "certificate verify failed" in info.value.message
    assert f"127.0.0.1:{tls_orthanc.dicom_port}" in info.value.message

    # Plain TCP to a TLS port fails in words too (Orthanc drops the connection).
    with pytest.raises(Exception) as plain:
        echo(_node(tls_orthanc, connect_timeout=2, acse_timeout=2))
    assert f"127.0.0.1:{tls_orthanc.dicom_port}" in str(plain.value)


def test_tls_server_signed_by_other_ca_fails(pki: object) -> None:
    """In-process TLS SCP whose certificate our CA did not sign: TlsFailed, verification reason."""
    from tests.support import scps
    from tests.support.certs import Pki

    assert isinstance(pki, Pki)
    server = scps.server_ssl_context(str(pki.other_server_cert), str(pki.other_server_key))
    with scps.running_scp(server_ssl=server) as scp:
        with pytest.raises(
            TlsFailed, match="certificate verify failed: unable to get local issuer"
        ):
            echo(scp.node(tls=TlsSettings(ca_file=pki.ca_cert)))
        # Verification off (test PACS only) gets through.
        assert echo(scp.node(tls=TlsSettings(verify=False))).status == 0
