"""nodes.toml parsing and writing, AET@HOST:PORT specs, and C-FIND identifiers."""

from __future__ import annotations

import stat
from dataclasses import replace
from pathlib import Path

import pytest
from pydicom.datadict import dictionary_VR, tag_for_keyword

from tuiviewer.config.nodes import (
    Node,
    TlsSettings,
    load_nodes,
    nodes_path,
    parse_node_spec,
    resolve_node,
    save_nodes,
)
from tuiviewer.dicom.rows import QueryLevel, StudyRow, to_row
from tuiviewer.exceptions import ConfigError
from tuiviewer.net.find import FindQuery, QueryModel, build_identifier

GOOD = """
[nodes.pacs]
ae_title = "ORTHANC"
host = "pacs.example.org"
port = 4242
calling_aet = "READER1"
retrieve = "move"
move_port = 11120
dimse_timeout = 5.5

[nodes.pacs.tls]
ca_file = "ca.pem"
cert_file = "/etc/client.pem"
key_file = "/etc/client.key"
server_hostname = "pacs.example.org"

[nodes.demo]
ae_title = "DEMO"
host = "127.0.0.1"
port = 11112
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "nodes.toml"
    path.write_text(text)
    return path


def test_good_file_is_parsed_with_defaults_and_relative_paths(tmp_path: Path) -> None:
    nodes = load_nodes(write(tmp_path, GOOD))
    assert list(nodes) == ["pacs", "demo"]
    pacs = nodes["pacs"]
    assert (pacs.ae_title, pacs.host, pacs.port, pacs.calling_aet) == (
        "ORTHANC",
        "pacs.example.org",
        4242,
        "READER1",
    )
    assert pacs.retrieve == "move" and pacs.move_port == 11120 and pacs.dimse_timeout == 5.5
    assert pacs.tls == TlsSettings(
        ca_file=tmp_path / "ca.pem",
        cert_file=Path("/etc/client.pem"),
        key_file=Path("/etc/client.key"),
        verify=True,
        server_hostname="pacs.example.org",
    )
    demo = nodes["demo"]
    assert demo.calling_aet == "TUIVIEWER" and demo.retrieve == "get" and demo.tls is None
    assert demo.connect_timeout == 10 and demo.acse_timeout == 30


def test_missing_file_means_no_nodes(tmp_path: Path) -> None:
    assert load_nodes(tmp_path / "absent.toml") == {}


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ('ae_title = "A"\nhost = "h"\nport = 70000', "nodes.bad.port"),
        ('ae_title = "A"\nhost = "h"\nport = 0', "nodes.bad.port"),
        ('ae_title = "A"\nhost = "h"\nport = "104"', "nodes.bad.port"),
        ('ae_title = "SEVENTEEN_CHARS_X"\nhost = "h"\nport = 104', "nodes.bad.ae_title"),
        ('ae_title = "A\\\\B"\nhost = "h"\nport = 104', "nodes.bad.ae_title"),
        ('ae_title = ""\nhost = "h"\nport = 104', "nodes.bad.ae_title"),
        ('ae_title = "A"\nhost = "h"\nport = 104\ncalling_aet = "Ü"', "nodes.bad.calling_aet"),
        ('ae_title = "A"\nhost = "h"\nport = 104\nretrieve = "fetch"', "nodes.bad.retrieve"),
        ('ae_title = "A"\nhost = "h"\nport = 104\nmove_port = -1', "nodes.bad.move_port"),
        ('ae_title = "A"\nhost = "h"\nport = 104\ndimse_timeout = 0', "nodes.bad.dimse_timeout"),
        ('ae_title = "A"\nhost = "h"\nport = 104\ncolour = "red"', "nodes.bad.colour"),
        ('ae_title = "A"\nport = 104', "nodes.bad.host"),
        ('ae_title = "A"\nhost = "a b"\nport = 104', "nodes.bad.host"),
        ('host = "h"\nport = 104', "nodes.bad.ae_title"),
        (
            'ae_title = "A"\nhost = "h"\nport = 104\n[nodes.bad.tls]\nverify = "yes"',
            "nodes.bad.tls.verify",
        ),
        (
            'ae_title = "A"\nhost = "h"\nport = 104\n[nodes.bad.tls]\nkey_file = "k.pem"',
            "nodes.bad.tls.key_file",
        ),
        ('ae_title = "A"\nhost = "h"\nport = 104\n[nodes.bad.tls]\npin = "1"', "nodes.bad.tls.pin"),
    ],
)
def test_each_invalid_value_names_file_and_key(tmp_path: Path, body: str, key: str) -> None:
    path = write(tmp_path, f"[nodes.bad]\n{body}\n")
    with pytest.raises(ConfigError) as info:
        load_nodes(path)
    assert str(path) in info.value.message
    assert key in info.value.message


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[nodes.x\n")
    with pytest.raises(ConfigError, match="is not valid TOML") as info:
        load_nodes(path)
    assert str(path) in info.value.message


def test_unknown_top_level_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="top-level key 'node'"):
        load_nodes(write(tmp_path, '[node.x]\nae_title="A"\n'))


def test_save_then_load_round_trips_and_is_private(tmp_path: Path) -> None:
    nodes = load_nodes(write(tmp_path, GOOD))
    odd = Node(name="odd", ae_title='Q"UOTE', host="::1", port=1, network_timeout=0.5)
    nodes["odd"] = odd
    target = tmp_path / "out" / "nodes.toml"
    target.parent.mkdir()
    save_nodes(nodes, target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert load_nodes(target) == nodes


def test_saving_keeps_the_comments_written_by_hand(tmp_path: Path) -> None:
    text = (
        "# Our PACS, agreed with the PACS team on 2024-03-01.\n"
        "[nodes.pacs]  # the archive\n"
        'ae_title = "ORTHANC"  # as configured on the PACS\n'
        'host = "pacs.example.org"\n'
        "port = 4242\n"
        "\n"
        "[nodes.pacs.tls]\n"
        'ca_file = "ca.pem"  # relative to this file\n'
        "\n"
        "# the test PACS\n"
        "[nodes.test]\n"
        'ae_title = "TEST"\n'
        'host = "127.0.0.1"\n'
        "port = 11112\n"
    )
    path = write(tmp_path, text)
    nodes = load_nodes(path)
    # The node manager changes one node's port and adds another; the rest is as it was.
    nodes["test"] = replace(nodes["test"], port=11113)
    nodes["new"] = Node(name="new", ae_title="NEW", host="h", port=104)
    save_nodes(nodes, path)
    saved = path.read_text()
    for line in text.splitlines():
        if line != "port = 11112":
            assert line in saved.splitlines(), f"{line!r} was lost"
    assert "port = 11113" in saved
    assert load_nodes(path) == nodes
    # A deleted node goes, and with it nothing of the others.
    del nodes["new"]
    save_nodes(nodes, path)
    assert load_nodes(path) == nodes
    assert "# Our PACS, agreed with the PACS team on 2024-03-01." in path.read_text()


def test_a_broken_file_is_not_overwritten(tmp_path: Path) -> None:
    path = write(tmp_path, "[nodes.x\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        save_nodes({"a": Node(name="a", ae_title="A", host="h", port=104)}, path)
    assert path.read_text() == "[nodes.x\n"


def test_save_defaults_to_config_dir() -> None:
    save_nodes({"a": Node(name="a", ae_title="A", host="h", port=104)})
    assert stat.S_IMODE(nodes_path().stat().st_mode) == 0o600
    assert resolve_node("a").ae_title == "A"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("ORTHANC@127.0.0.1:4242", ("ORTHANC", "127.0.0.1", 4242)),
        (" PACS@pacs.example.org:104 ", ("PACS", "pacs.example.org", 104)),
        ("ANY-SCP@[::1]:11112", ("ANY-SCP", "::1", 11112)),
    ],
)
def test_parse_node_spec(spec: str, expected: tuple[str, str, int]) -> None:
    node = parse_node_spec(spec)
    assert (node.ae_title, node.host, node.port) == expected
    assert node.calling_aet == "TUIVIEWER"


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("ORTHANC@127.0.0.1", "not of the form AET@HOST:PORT"),
        ("127.0.0.1:4242", "not of the form AET@HOST:PORT"),
        ("ORTHANC@host:99999", "1 to 65535"),
        ("WAY_TOO_LONG_AE_TITLE@host:104", "longer than 16 characters"),
        ("@host:104", "not of the form"),
    ],
)
def test_parse_node_spec_errors(spec: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_node_spec(spec)


def test_resolve_node_by_name_spec_or_clear_error() -> None:
    nodes = {"pacs": Node(name="pacs", ae_title="P", host="h", port=1)}
    assert resolve_node("pacs", nodes) is nodes["pacs"]
    assert resolve_node("X@h:5", nodes).port == 5
    with pytest.raises(ConfigError, match="'nope' is not configured \\(known: 'pacs'\\)"):
        resolve_node("nope", nodes)
    with pytest.raises(ConfigError, match="AET@HOST:PORT"):
        resolve_node("X@h", nodes)


# --- C-FIND identifiers --------------------------------------------------------------------------


def test_study_identifier_has_return_keys_filters_and_utf8() -> None:
    query = FindQuery(
        level=QueryLevel.STUDY,
        patient_name="Mü*",
        patient_id="P1",
        accession_number="ACC?",
        study_date="20240101-20240131",
        modality="CT",
        study_description="Chest*",
        referring_physician="House*",
        extra={"InstitutionName": "General"},
    )
    ds = build_identifier(query)
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    assert ds.QueryRetrieveLevel == "STUDY"
    assert ds.PatientName == "Mü*" and ds.PatientID == "P1" and ds.AccessionNumber == "ACC?"
    assert ds.StudyDate == "20240101-20240131" and ds.ModalitiesInStudy == "CT"
    assert ds.StudyDescription == "Chest*" and ds.ReferringPhysicianName == "House*"
    assert ds.InstitutionName == "General"
    assert "Modality" not in ds
    for keyword in ("StudyInstanceUID", "NumberOfStudyRelatedInstances", "PatientBirthDate"):
        assert keyword in ds and ds[keyword].VR == dictionary_VR(tag_for_keyword(keyword) or 0)
    # The UTF-8 character set makes the name go out as UTF-8 bytes.
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    buf = DicomBytesIO()
    buf.is_little_endian, buf.is_implicit_VR = True, False
    write_dataset(buf, ds)
    assert "Mü*".encode() in buf.getvalue()


def test_series_and_image_levels() -> None:
    series = build_identifier(FindQuery(level=QueryLevel.SERIES, study_uid="1.2.3", modality="MR"))
    assert series.QueryRetrieveLevel == "SERIES" and series.Modality == "MR"
    assert series.StudyInstanceUID == "1.2.3" and "ModalitiesInStudy" not in series
    assert {"SeriesNumber", "BodyPartExamined", "NumberOfSeriesRelatedInstances"} <= set(
        series.dir()
    )
    image = build_identifier(
        FindQuery(level=QueryLevel.IMAGE, study_uid="1.2.3", series_uid="1.2.3.4")
    )
    assert image.SeriesInstanceUID == "1.2.3.4"
    assert {"SOPInstanceUID", "SOPClassUID", "InstanceNumber"} <= set(image.dir())


def test_patient_level_needs_patient_root() -> None:
    with pytest.raises(ValueError, match="Study Root model has no PATIENT level"):
        build_identifier(FindQuery(level=QueryLevel.PATIENT))
    ds = build_identifier(
        FindQuery(level=QueryLevel.PATIENT, patient_id="X"), QueryModel.PATIENT_ROOT
    )
    assert ds.QueryRetrieveLevel == "PATIENT" and ds.PatientID == "X"
    assert "NumberOfPatientRelatedStudies" in ds


@pytest.mark.parametrize("value", ["20240101", "20240101-20240131", "-20240131", "20240101-"])
def test_valid_dates(value: str) -> None:
    assert build_identifier(FindQuery(study_date=value)).StudyDate == value


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("2024-01-01", "must be YYYYMMDD"),
        ("20240231", "'20240231' is not a date"),
        ("20240131-20240101", "ends before it starts"),
        ("yesterday", "'yesterday' is not a date"),
        ("-", "must be YYYYMMDD"),
    ],
)
def test_invalid_dates(value: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        build_identifier(FindQuery(study_date=value))


def test_unknown_extra_keyword() -> None:
    with pytest.raises(ValueError, match="'PatientShoeSize' is not a DICOM keyword"):
        build_identifier(FindQuery(extra={"PatientShoeSize": "42"}))
    with pytest.raises(ValueError, match="sequence"):
        build_identifier(FindQuery(extra={"ReferencedStudySequence": ""}))


def test_to_row_tolerates_missing_keys() -> None:
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.StudyInstanceUID = "1.2"
    ds.ModalitiesInStudy = ["CT", "SR"]
    ds.NumberOfStudyRelatedSeries = "3"
    row = to_row("STUDY", ds)
    assert isinstance(row, StudyRow)
    assert row.uid == "1.2" and row.modalities == ("CT", "SR") and row.series_count == 3
    assert row.patient_name == "" and row.instance_count is None
