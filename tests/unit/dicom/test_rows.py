"""C-FIND answers become the same rows whether their values are read straight from the bytes
(ASCII, the fast way) or converted by pydicom first (non-ASCII, ISO 2022, already decoded)."""

from __future__ import annotations

import struct
from io import BytesIO

import pytest
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset

from tuiviewer.dicom.rows import QueryLevel, StudyRow, to_row


def _encoded(values: dict[str, tuple[str, bytes]], *, implicit: bool) -> Dataset:
    """A data set as it arrives over the network: raw elements from the bytes given."""
    out = bytearray()
    for keyword, (vr, data) in sorted(values.items(), key=lambda kv: tag_for_keyword(kv[0])):
        tag = tag_for_keyword(keyword)
        if len(data) % 2:
            data += b"\x00" if vr == "UI" else b" "
        out += struct.pack("<HH", tag >> 16, tag & 0xFFFF)
        out += (
            struct.pack("<I", len(data)) if implicit else vr.encode() + struct.pack("<H", len(data))
        )
        out += data
    return read_dataset(BytesIO(bytes(out)), implicit, True)


ANSWERS: dict[str, dict[str, tuple[str, bytes]]] = {
    "padded": {
        "StudyInstanceUID": ("UI", b"1.2.3.4\x00"),
        "StudyDate": ("DA", b"20240131"),
        "StudyTime": ("TM", b"101500.25 "),
        "StudyDescription": ("LO", b"CT chest \\second "),
        "AccessionNumber": ("SH", b"A1 "),
        "PatientName": ("PN", b"Doe^Jane =^ "),
        "PatientID": ("LO", b" 42 "),
        "PatientSex": ("CS", b"F "),
        "ModalitiesInStudy": ("CS", b"CT\\SR\\\\MR "),
        "NumberOfStudyRelatedSeries": ("IS", b" 3 "),
        "NumberOfStudyRelatedInstances": ("IS", b"1\\2 "),
        "ReferringPhysicianName": ("PN", b""),
    },
    "latin-1": {
        "SpecificCharacterSet": ("CS", b"ISO_IR 100"),
        "PatientName": ("PN", "Müller^Jürgen".encode("latin-1")),
        "StudyDescription": ("LO", "Thorax ä".encode("latin-1")),
        "NumberOfStudyRelatedSeries": ("IS", b"x1"),
    },
    "iso-2022": {
        "SpecificCharacterSet": ("CS", b"\\ISO 2022 IR 87"),
        "PatientName": ("PN", "Yamada^Tarou=山田^太郎".encode("iso2022_jp")),
        "StudyDescription": ("LO", b"plain"),
    },
    "control characters": {
        "PatientName": ("PN", b"Doe\x1b[2J^Jane"),
        "StudyDescription": ("LO", b"line\r\nbreak\x07"),
    },
    "empty": {},
}


@pytest.mark.parametrize("implicit", [True, False], ids=["implicit", "explicit"])
@pytest.mark.parametrize("name", list(ANSWERS))
def test_rows_from_bytes_equal_rows_from_pydicom_values(name: str, implicit: bool) -> None:
    fast = _encoded(ANSWERS[name], implicit=implicit)
    converted = _encoded(ANSWERS[name], implicit=implicit)
    converted.decode()  # every value converted by pydicom: the rows take the old path
    for level in QueryLevel:
        assert to_row(level, fast) == to_row(level, converted)


def test_an_ascii_answer_is_read_as_a_user_reads_it() -> None:
    row = to_row(QueryLevel.STUDY, _encoded(ANSWERS["padded"], implicit=True))
    assert isinstance(row, StudyRow)
    assert row.uid == "1.2.3.4"
    assert row.description == "CT chest\\second"
    assert row.patient_name == "Doe^Jane =^"
    assert row.modalities == ("CT", "SR", "MR")
    assert row.series_count == 3
    assert row.instance_count is None  # two values: not a count
    assert row.referring_physician == ""
