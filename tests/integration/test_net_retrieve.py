"""C-GET and C-MOVE of whole studies from a real Orthanc into the local store: every SOP class
arrives, in the transfer syntax it was stored in, series by series, with progress, cancel and
resume."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ImplicitVRLittleEndian, generate_uid

from tests.conftest import testdata as sample_file
from tests.support.orthanc import Orthanc, OrthancConfig, OrthancPool, store_datasets, store_files
from tests.support.ports import free_port
from tuiviewer.config.nodes import Node
from tuiviewer.dicom.datagen import write_ct_series
from tuiviewer.net.retrieve import RetrieveProgress, resume_study, retrieve_study
from tuiviewer.net.trace import AssociationTrace
from tuiviewer.store import LocalStore

pytestmark = pytest.mark.orthanc

#: One file per class the naive "common storage" lists get wrong, some compressed.
MIXED_SOURCES = [
    "CT_small.dcm",  # CT, Explicit VR LE
    "MR_small_jp2klossless.dcm",  # MR, JPEG 2000 lossless
    "SC_rgb_rle.dcm",  # Secondary Capture, RLE
    "SC_rgb_jpeg_dcmtk.dcm",  # Secondary Capture, JPEG baseline
    "rtplan.dcm",  # RT Plan (no file meta)
    "rtstruct.dcm",  # RT Structure Set (no file meta)
    "rtdose.dcm",  # RT Dose
    "reportsi.dcm",  # Basic Text SR
    "test-SR.dcm",  # Comprehensive SR
    "waveform_ecg.dcm",  # 12-lead ECG waveform
]


def _node(orthanc: Orthanc, **kw: object) -> Node:
    values: dict[str, object] = {
        "name": "orthanc",
        "ae_title": orthanc.aet,
        "host": orthanc.host,
        "port": orthanc.dicom_port,
        "dimse_timeout": 10,
        "network_timeout": 10,
    }
    values.update(kw)
    return Node(**values)  # type: ignore[arg-type]


def _mixed_study() -> list[Dataset]:
    """The sample files re-labelled as one study; each source file is its own series."""
    study = generate_uid()
    out: list[Dataset] = []
    for index, name in enumerate(MIXED_SOURCES):
        ds = dcmread(sample_file(name), force=True)
        if "TransferSyntaxUID" not in getattr(ds, "file_meta", {}):
            ds.file_meta = FileMetaDataset()
            ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = generate_uid()
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.PatientID, ds.PatientName = "MIXED-RETRIEVE", "Mixed^Retrieve"
        ds.SeriesNumber = index + 1
        out.append(ds)
    return out


@pytest.fixture(scope="module")
def mixed(orthanc: Orthanc) -> list[Dataset]:
    if not orthanc.is_running:
        orthanc.start()
    datasets = _mixed_study()
    assert store_datasets(orthanc.host, orthanc.dicom_port, orthanc.aet, datasets) == len(datasets)
    return datasets


@pytest.fixture(scope="module")
def ct_study(orthanc: Orthanc, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A 3-series CT study of 12 small slices each, stored in the session Orthanc."""
    folder = tmp_path_factory.mktemp("ct-study")
    study = generate_uid()
    paths: list[Path] = []
    for seed in (11, 12, 13):
        paths += write_ct_series(
            folder / str(seed), slices=12, rows=32, cols=32, seed=seed, study_uid=study
        )
    assert store_files(orthanc.host, orthanc.dicom_port, orthanc.aet, paths) == len(paths)
    return paths


def _headers(paths: list[Path]) -> dict[str, Dataset]:
    return {
        str(ds.SOPInstanceUID): ds for ds in (dcmread(p, stop_before_pixels=True) for p in paths)
    }


def test_get_brings_every_instance_of_a_mixed_class_study(
    orthanc: Orthanc, mixed: list[Dataset], tmp_path: Path
) -> None:
    store = LocalStore(tmp_path / "store")
    result = retrieve_study(_node(orthanc), mixed[0].StudyInstanceUID, store=store)

    sent = {str(ds.SOPInstanceUID): ds for ds in mixed}
    got = _headers(result.received)
    assert set(got) == set(sent)
    assert result.completed == len(sent) and result.failed == 0 and not result.partial
    assert store.instance_uids(mixed[0].StudyInstanceUID) == set(sent)
    for sop, ds in got.items():
        assert ds.SOPClassUID == sent[sop].SOPClassUID
        # Compressed files arrive as stored (JPEG 2000, RLE, JPEG), not transcoded.
        original_ts = sent[sop].file_meta.TransferSyntaxUID
        if original_ts.is_compressed:
            assert ds.file_meta.TransferSyntaxUID == original_ts
        # Stored under <study>/<series>/<sop>.dcm with the instance's own UIDs.
        path = store.instance_path(ds.StudyInstanceUID, ds.SeriesInstanceUID, sop)
        assert path.is_file()


def test_retrieved_files_are_private(
    orthanc: Orthanc, mixed: list[Dataset], tmp_path: Path
) -> None:
    store = LocalStore(tmp_path / "store")
    result = retrieve_study(_node(orthanc), mixed[0].StudyInstanceUID, store=store)
    assert result.received
    for path in result.received:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700
    leftovers = [p for p in store.study_dir(mixed[0].StudyInstanceUID).rglob("*.tmp")]
    assert leftovers == [] and store.unfinished() == []


def test_first_series_arrives_first_and_is_complete_when_announced(
    orthanc: Orthanc, ct_study: list[Path], tmp_path: Path
) -> None:
    headers = _headers(ct_study)
    study = next(iter(headers.values())).StudyInstanceUID
    by_series: dict[str, set[str]] = {}
    for sop, ds in headers.items():
        by_series.setdefault(str(ds.SeriesInstanceUID), set()).add(sop)
    # The series the C-FIND lists last, so putting it first is a real reordering.
    store = LocalStore(tmp_path / "store")
    probe = retrieve_study(_node(orthanc), study, store=LocalStore(tmp_path / "probe"))
    wanted = probe.series_done[-1]

    on_disk_when_done: list[tuple[str, set[str]]] = []

    def series_done(uid: str) -> None:
        on_disk_when_done.append((uid, set(store.instance_uids(study))))

    result = retrieve_study(
        _node(orthanc), study, store=store, first_series=wanted, on_series_done=series_done
    )
    assert result.series_done[0] == wanted
    assert sorted(result.series_done) == sorted(by_series)
    first_uid, first_disk = on_disk_when_done[0]
    assert first_uid == wanted
    # When the first series is announced, it is all there and nothing else has arrived yet.
    assert first_disk == by_series[wanted]


def test_progress_counts_up_to_the_total(
    orthanc: Orthanc, ct_study: list[Path], tmp_path: Path
) -> None:
    headers = _headers(ct_study)
    study = next(iter(headers.values())).StudyInstanceUID
    reports: list[RetrieveProgress] = []
    result = retrieve_study(
        _node(orthanc), study, store=LocalStore(tmp_path / "s"), progress=reports.append
    )
    assert reports[-1].done == reports[-1].total == len(headers)
    assert [r.done for r in reports] == sorted(r.done for r in reports)
    assert reports[-1].bytes == result.bytes > 32 * 32 * 2 * len(headers)
    assert reports[-1].mb_per_s > 0
    assert reports[-1].eta_s == 0


def test_resume_fetches_exactly_the_missing_instances(
    orthanc: Orthanc, ct_study: list[Path], tmp_path: Path
) -> None:
    headers = _headers(ct_study)
    study = next(iter(headers.values())).StudyInstanceUID
    store = LocalStore(tmp_path / "store")
    first = retrieve_study(_node(orthanc), study, store=store)
    assert len(first.received) == len(headers)
    # Delete 4 instances spread over two series.
    deleted = [first.received[1], first.received[5], first.received[14], first.received[20]]
    for path in deleted:
        path.unlink()

    trace = AssociationTrace()
    result = resume_study(_node(orthanc), study, store=store, trace=trace)

    # Count the C-STORE sub-operations the PACS sent, as the association saw them.
    incoming = [r for r in trace.dimse if r.direction == "in" and r.service == "C-STORE"]
    assert sum(r.count for r in incoming) == len(deleted)
    assert sorted(result.received) == sorted(deleted)
    assert result.total == len(deleted) and not result.partial
    assert store.instance_uids(study) == set(headers)
    assert "C-GET" in trace.format()


def test_resume_of_a_complete_study_sends_nothing(
    orthanc: Orthanc, ct_study: list[Path], tmp_path: Path
) -> None:
    study = dcmread(ct_study[0], stop_before_pixels=True).StudyInstanceUID
    store = LocalStore(tmp_path / "store")
    retrieve_study(_node(orthanc), study, store=store)
    trace = AssociationTrace()
    result = resume_study(_node(orthanc), study, store=store, trace=trace)
    assert result.received == [] and result.total == 0
    assert trace.dimse == []  # no C-GET association at all


def test_cancel_mid_retrieve_keeps_what_arrived(
    orthanc: Orthanc, ct_study: list[Path], tmp_path: Path
) -> None:
    study = dcmread(ct_study[0], stop_before_pixels=True).StudyInstanceUID
    store = LocalStore(tmp_path / "store")
    cancel = threading.Event()

    def progress(p: RetrieveProgress) -> None:
        if p.done >= 5:
            cancel.set()

    result = retrieve_study(_node(orthanc), study, store=store, progress=progress, cancel=cancel)
    assert result.cancelled and result.partial
    assert 5 <= len(result.received) < len(ct_study)
    on_disk = store.instance_uids(study)
    assert len(on_disk) == len(result.received)
    assert all(p.is_file() for p in result.received)


@pytest.fixture(scope="module")
def move_orthanc(
    orthanc_factory: OrthancPool, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Orthanc, int, list[Path]]:
    """An Orthanc that knows TUIVIEWER as a C-MOVE destination on a free local port."""
    port = free_port()
    config = OrthancConfig(aet="MOVEPACS", modalities={"tv": ("TUIVIEWER", "127.0.0.1", port)})
    server = orthanc_factory.start(config)
    paths = write_ct_series(tmp_path_factory.mktemp("move"), slices=8, rows=32, cols=32, seed=21)
    assert store_files(server.host, server.dicom_port, server.aet, paths) == len(paths)
    return server, port, paths


def test_move_to_our_own_storage_scp(
    move_orthanc: tuple[Orthanc, int, list[Path]], tmp_path: Path
) -> None:
    server, port, paths = move_orthanc
    headers = _headers(paths)
    study = next(iter(headers.values())).StudyInstanceUID
    store = LocalStore(tmp_path / "store")
    trace = AssociationTrace()
    node = _node(server, retrieve="move", move_port=port, calling_aet="TUIVIEWER")
    result = retrieve_study(node, study, store=store, trace=trace)
    assert result.method == "move"
    assert set(_headers(result.received)) == set(headers)
    assert result.completed == len(headers) and not result.partial
    text = trace.format()
    assert "storage association from 'MOVEPACS'" in text
    assert "C-MOVE (message 1)" in text


def test_move_refused_by_orthanc_explains_the_destination(
    move_orthanc: tuple[Orthanc, int, list[Path]], tmp_path: Path
) -> None:
    from tuiviewer.net.errors import DimseStatusError

    server, port, paths = move_orthanc
    study = dcmread(paths[0], stop_before_pixels=True).StudyInstanceUID
    node = _node(server, retrieve="move", move_port=free_port(), calling_aet="STRANGER")
    with pytest.raises(DimseStatusError) as info:
        retrieve_study(node, study, store=LocalStore(tmp_path / "s"))
    assert info.value.category == "Failure"
    assert "'STRANGER' as a C-MOVE destination" in info.value.message
    assert "MOVEPACS" in info.value.message
