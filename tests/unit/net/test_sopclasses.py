"""Which storage contexts a C-GET proposes (128-context limit, SCP roles) and how a received
data set is placed without decoding it."""

from __future__ import annotations

import zlib

import pytest
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    generate_uid,
)

from tuiviewer.net.move import identifying_uids
from tuiviewer.net.sopclasses import (
    COMMON_COMPRESSED,
    RANKED_STORAGE_CLASSES,
    UNCOMPRESSED,
    broad_storage_contexts,
    scp_roles,
    storage_contexts,
)

CT = "1.2.840.10008.5.1.4.1.1.2"
RT_PLAN = "1.2.840.10008.5.1.4.1.1.481.5"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"


def test_every_class_gets_uncompressed_then_compressed_contexts() -> None:
    contexts = storage_contexts({CT: set(), RT_PLAN: set()}, budget=127)
    assert contexts[:2] == [(CT, list(UNCOMPRESSED)), (RT_PLAN, list(UNCOMPRESSED))]
    offered = {(uid, ts[0]) for uid, ts in contexts[2:]}
    # One context per compressed syntax, so the PACS can send each file as stored.
    assert offered == {(uid, ts) for uid in (CT, RT_PLAN) for ts in COMMON_COMPRESSED}
    assert all(len(ts) == 1 for _, ts in contexts[2:])


def test_known_transfer_syntaxes_replace_the_guesses() -> None:
    contexts = storage_contexts({CT: {str(JPEG2000Lossless)}, BASIC_TEXT_SR: set()}, budget=127)
    ct = [ts for uid, ts in contexts if uid == CT]
    assert ct == [list(UNCOMPRESSED), [str(JPEG2000Lossless)]]
    assert len([1 for uid, _ in contexts if uid == BASIC_TEXT_SR]) == 1 + len(COMMON_COMPRESSED)


def test_budget_is_respected_and_no_class_loses_its_uncompressed_context() -> None:
    classes: dict[str, set[str]] = {uid: set() for uid in RANKED_STORAGE_CLASSES[:60]}
    contexts = storage_contexts(classes, budget=127)
    assert len(contexts) == 127
    uncompressed = {uid for uid, ts in contexts if ts == list(UNCOMPRESSED)}
    assert uncompressed == set(classes)


def test_more_classes_than_contexts_is_an_error() -> None:
    classes: dict[str, set[str]] = {uid: set() for uid in RANKED_STORAGE_CLASSES[:128]}
    with pytest.raises(ValueError, match="128 SOP classes, more than the 127"):
        storage_contexts(classes, budget=127)


def test_broad_set_fits_beside_the_query_context_and_covers_mixed_studies() -> None:
    contexts = broad_storage_contexts(127)
    classes = [uid for uid, _ in contexts]
    assert len(classes) == len(set(classes)) == 127
    for uid in (CT, RT_PLAN, BASIC_TEXT_SR, "1.2.840.10008.5.1.4.1.1.7"):
        assert uid in classes
    # Offered uncompressed only: a lossy syntax in the same context could be picked for all.
    assert all(ts == list(UNCOMPRESSED) for _, ts in contexts)


def test_scp_roles_ask_to_act_as_storage_scp_once_per_class() -> None:
    assert scp_roles([CT, CT, RT_PLAN]) == [(CT, False, True), (RT_PLAN, False, True)]


def _encoded(implicit: bool) -> tuple[bytes, str, str]:
    ds = Dataset()
    ds.SOPClassUID = CT
    ds.PatientName = "Raw^Bytes"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PixelData = b"\x00\x01" * 64
    ds["PixelData"].VR = "OW"
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, implicit
    write_dataset(buffer, ds)
    return buffer.getvalue(), str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID)


@pytest.mark.parametrize(
    "ts, implicit", [(ExplicitVRLittleEndian, False), (ImplicitVRLittleEndian, True)]
)
def test_identifying_uids_read_from_raw_bytes(ts: str, implicit: bool) -> None:
    raw, study, series = _encoded(implicit)
    assert identifying_uids(raw, str(ts)) == (study, series)


def test_identifying_uids_of_a_deflated_data_set() -> None:
    raw, study, series = _encoded(False)
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    deflated = compressor.compress(raw) + compressor.flush()
    assert identifying_uids(deflated, str(DeflatedExplicitVRLittleEndian)) == (study, series)


def test_identifying_uids_of_garbage_are_empty() -> None:
    assert identifying_uids(b"\xff" * 7, str(ExplicitVRLittleEndian)) == ("", "")
