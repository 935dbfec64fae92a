"""The Orthanc the integration tests rely on answers C-ECHO, C-STORE and C-FIND as a PACS would.

Expectations come from pydicom's own reading of its sample files and from the values we write,
never from tuiviewer code.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from tests.support.orthanc import (
    Orthanc,
    OrthancConfig,
    OrthancPool,
    StoreError,
    c_find,
    store_datasets,
    store_files,
)
from tests.support.ports import free_port

pytestmark = pytest.mark.orthanc

SAMPLES = ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm")
GERMAN = ("Müller^Jürgen", "ISO_IR 100")
RUSSIAN = ("Иванов^Иван", "ISO_IR 192")


def _sample(name: str) -> Path:
    path = get_testdata_file(name, download=False)
    assert path is not None, f"pydicom sample {name!r} is missing from the installation."
    return Path(path)


def _patient(name: str, charset: str) -> Dataset:
    """CT_small re-identified as a new patient, study, series and instance named ``name``."""
    ds = dcmread(_sample("CT_small.dcm"))
    ds.SpecificCharacterSet = charset
    ds.PatientName = name
    ds.PatientID = f"TEST-{generate_uid()[-12:]}"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def _study_query(**keys: str) -> Dataset:
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.PatientName = ""
    query.PatientID = ""
    query.StudyInstanceUID = ""
    for keyword, value in keys.items():
        setattr(query, keyword, value)
    return query


def test_c_echo_is_answered_with_success(orthanc: Orthanc) -> None:
    ae = AE(ae_title="TUIVIEWER-TEST")
    ae.add_requested_context(Verification)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    assoc = ae.associate(orthanc.host, orthanc.dicom_port, ae_title=orthanc.aet)
    try:
        assert assoc.is_established, f"No association with {orthanc!r}:\n{orthanc.log_tail()}"
        status = assoc.send_c_echo()
    finally:
        if assoc.is_established:
            assoc.release()
    assert status.Status == 0x0000


def test_stored_files_are_counted_and_found_by_study(empty_orthanc: Orthanc) -> None:
    paths = [_sample(name) for name in SAMPLES]
    expected_studies = {dcmread(path).StudyInstanceUID for path in paths}
    before = empty_orthanc.instance_count()

    stored = store_files(empty_orthanc.host, empty_orthanc.dicom_port, empty_orthanc.aet, paths)

    assert stored == len(paths)
    assert empty_orthanc.instance_count() == before + len(paths)
    found = c_find(empty_orthanc.host, empty_orthanc.dicom_port, empty_orthanc.aet, _study_query())
    assert {ds.StudyInstanceUID for ds in found} == expected_studies


@pytest.mark.parametrize(("name", "charset"), [GERMAN, RUSSIAN], ids=["latin1", "cyrillic"])
def test_non_ascii_patient_name_comes_back_from_c_find(
    empty_orthanc: Orthanc, name: str, charset: str
) -> None:
    ds = _patient(name, charset)
    peer = (empty_orthanc.host, empty_orthanc.dicom_port, empty_orthanc.aet)
    assert store_datasets(*peer, [ds]) == 1

    by_id = c_find(*peer, _study_query(PatientID=ds.PatientID))
    assert [str(match.PatientName) for match in by_id] == [name]

    # Searching by the name itself, as a user types it, needs the query's own character set.
    family = name.split("^")[0]
    by_name = c_find(
        *peer, _study_query(PatientName=f"{family}*", SpecificCharacterSet="ISO_IR 192")
    )
    assert [match.StudyInstanceUID for match in by_name] == [ds.StudyInstanceUID]


def test_latin1_orthanc_from_factory_loses_cyrillic_names(orthanc_factory: OrthancPool) -> None:
    # Why the default configuration says DefaultEncoding=Utf8: Orthanc's Debian default (Latin1)
    # transcodes C-FIND answers to Latin-1 and silently drops what Latin-1 cannot hold.
    latin1 = orthanc_factory.start(OrthancConfig(aet="LATIN1PACS", default_encoding="Latin1"))
    assert latin1.rest("GET", "/system")["DicomAet"] == "LATIN1PACS"
    german, russian = _patient(*GERMAN), _patient(*RUSSIAN)
    peer = (latin1.host, latin1.dicom_port, latin1.aet)
    assert store_datasets(*peer, [german, russian]) == 2

    names = {
        str(match.PatientID): str(match.PatientName) for match in c_find(*peer, _study_query())
    }

    assert names[german.PatientID] == GERMAN[0]
    assert names[russian.PatientID] != RUSSIAN[0]


def test_store_to_a_closed_port_names_the_peer() -> None:
    port = free_port()
    with pytest.raises(StoreError, match=rf"'NOBODY' at 127\.0\.0\.1:{port}"):
        store_files("127.0.0.1", port, "NOBODY", [_sample("CT_small.dcm")], timeout=5)


def test_store_of_more_sop_classes_than_one_association_holds(empty_orthanc: Orthanc) -> None:
    # PS3.8 allows 128 presentation contexts per association; 129 classes need a second one.
    # Private SOP classes also prove UnknownSopClassAccepted reached Orthanc.
    study, series = generate_uid(), generate_uid()
    datasets = []
    for _ in range(129):
        ds = Dataset()
        ds.SOPClassUID = generate_uid()
        ds.SOPInstanceUID = generate_uid()
        ds.PatientID = "MANY-CLASSES"
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = series
        ds.Modality = "OT"
        datasets.append(ds)
    peer = (empty_orthanc.host, empty_orthanc.dicom_port, empty_orthanc.aet)

    assert store_datasets(*peer, datasets) == len(datasets)
    assert empty_orthanc.instance_count() == len(datasets)
