"""DICOMweb nodes in nodes.toml are read as strictly as DIMSE nodes, written back unchanged,
and a base URL works wherever a node name does; secrets come from files or commands."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tuiviewer.config.dicomweb import CredentialError, DicomWebNode
from tuiviewer.config.nodes import dumps_nodes, load_nodes, resolve_node, save_nodes
from tuiviewer.exceptions import ConfigError
from tuiviewer.net.trace import safe_url


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "nodes.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_dicomweb_node_with_prefixes_auth_and_tls_round_trips(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
[nodes.cloud]
kind = "dicomweb"
url = "https://pacs.example.org:8443/dicom-web/"
qido_prefix = "qido"
wado_prefix = "/wado/"
page_size = 25
fuzzy_matching = true
connect_timeout = 5
network_timeout = 30

[nodes.cloud.auth]
type = "bearer"
token_command = "printf token"

[nodes.cloud.tls]
ca_file = "ca.pem"
cert_file = "client.pem"
key_file = "client.key"

[nodes.pacs]
ae_title = "ORTHANC"
host = "127.0.0.1"
port = 4242
""",
    )
    nodes = load_nodes(path)
    cloud = nodes["cloud"]
    assert isinstance(cloud, DicomWebNode)
    assert cloud.kind == "dicomweb" and nodes["pacs"].kind == "dimse"
    assert cloud.url == "https://pacs.example.org:8443/dicom-web"
    assert (cloud.host, cloud.port) == ("pacs.example.org", 8443)
    assert cloud.service_url("qido") == "https://pacs.example.org:8443/dicom-web/qido"
    assert cloud.service_url("wado") == "https://pacs.example.org:8443/dicom-web/wado"
    assert cloud.service_url("stow") == "https://pacs.example.org:8443/dicom-web"
    assert cloud.auth.token_command == ("printf", "token")
    assert cloud.tls is not None and cloud.tls.ca_file == tmp_path / "ca.pem"
    assert (cloud.page_size, cloud.fuzzy_matching) == (25, True)
    assert (cloud.connect_timeout, cloud.network_timeout) == (5, 30)
    assert cloud.describe() == "'cloud' (DICOMweb at https://pacs.example.org:8443/dicom-web)"
    # Written back and read again: the same nodes.
    again = save_nodes(nodes, tmp_path / "again.toml")
    assert load_nodes(again) == nodes
    assert 'kind = "dicomweb"' in dumps_nodes(nodes)


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ('kind = "dicomweb"', "nodes.bad.url is missing"),
        ('kind = "dicomweb"\nurl = "ftp://x/y"', "must start with http:// or https://"),
        ('kind = "dicomweb"\nurl = "http://x/y?a=1"', "must not have a query"),
        ('kind = "dicomweb"\nurl = "http://u:p@x/y"', "must not carry credentials"),
        ('kind = "dicomweb"\nurl = "http://x"\nae_title = "X"', "nodes.bad.ae_title is not a"),
        ('kind = "dicomweb"\nurl = "http://x"\npage_size = 0', "nodes.bad.page_size must be"),
        ('kind = "smoke"', "nodes.bad.kind must be 'dimse' or 'dicomweb'"),
        (
            'kind = "dicomweb"\nurl = "http://x"\n[nodes.bad.tls]\nca_file = "c.pem"',
            "is not https://",
        ),
        (
            'kind = "dicomweb"\nurl = "http://x"\n[nodes.bad.auth]\ntype = "basic"',
            "nodes.bad.auth.username is missing",
        ),
        (
            'kind = "dicomweb"\nurl = "http://x"\n[nodes.bad.auth]\ntype = "bearer"',
            "needs token_file or token_command",
        ),
        (
            'kind = "dicomweb"\nurl = "http://x"\n[nodes.bad.auth]\ntype = "bearer"\n'
            'username = "u"\ntoken_file = "t"',
            "nodes.bad.auth.username does not apply to auth type 'bearer'",
        ),
        (
            'kind = "dicomweb"\nurl = "http://x"\n[nodes.bad.auth]\ntype = "oauth"',
            "nodes.bad.auth.type must be",
        ),
    ],
)
def test_a_bad_dicomweb_node_is_refused_naming_the_key(
    tmp_path: Path, table: str, expected: str
) -> None:
    path = _write(tmp_path, f"[nodes.bad]\n{table}\n")
    with pytest.raises(ConfigError) as info:
        load_nodes(path)
    assert expected in info.value.message
    assert str(path) in info.value.message


def test_a_base_url_resolves_like_a_node_name_and_brings_the_configured_auth(
    tmp_path: Path,
) -> None:
    path = _write(
        tmp_path,
        '[nodes.cloud]\nkind = "dicomweb"\nurl = "http://127.0.0.1:8042/dicom-web"\n'
        '[nodes.cloud.auth]\ntype = "basic"\nusername = "alice"\npassword = "secret"\n',
    )
    nodes = load_nodes(path)
    configured = resolve_node("http://127.0.0.1:8042/dicom-web/", nodes)
    assert configured is nodes["cloud"]
    adhoc = resolve_node("https://archive.example:9443/rs", nodes)
    assert isinstance(adhoc, DicomWebNode)
    assert adhoc.url == "https://archive.example:9443/rs" and adhoc.auth.type == "none"
    with pytest.raises(ConfigError, match="DICOMweb URL"):
        resolve_node("nowhere", nodes)
    with pytest.raises(ConfigError, match="is not a valid URL"):
        resolve_node("http://host:notaport/x", nodes)


def test_secrets_come_from_their_file_or_command_and_failures_say_where(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("abc123\n", encoding="utf-8")
    path = _write(
        tmp_path,
        '[nodes.f]\nkind = "dicomweb"\nurl = "http://x"\n'
        '[nodes.f.auth]\ntype = "bearer"\ntoken_file = "token"\n'
        '[nodes.c]\nkind = "dicomweb"\nurl = "http://x"\n'
        f'[nodes.c.auth]\ntype = "bearer"\ntoken_command = ["{sys.executable}", "-c", '
        "\"print('from-command')\"]\n"
        '[nodes.bad]\nkind = "dicomweb"\nurl = "http://x"\n'
        f'[nodes.bad.auth]\ntype = "bearer"\ntoken_command = ["{sys.executable}", "-c", '
        '"import sys; sys.exit(3)"]\n'
        '[nodes.gone]\nkind = "dicomweb"\nurl = "http://x"\n'
        '[nodes.gone.auth]\ntype = "basic"\nusername = "u"\npassword_file = "missing"\n',
    )
    nodes = load_nodes(path)
    assert isinstance(nodes["f"], DicomWebNode) and nodes["f"].auth.secret() == "abc123"
    assert isinstance(nodes["c"], DicomWebNode) and nodes["c"].auth.secret() == "from-command"
    with pytest.raises(CredentialError, match="failed with exit code 3"):
        assert isinstance(nodes["bad"], DicomWebNode)
        nodes["bad"].auth.secret()
    with pytest.raises(CredentialError, match="missing"):
        assert isinstance(nodes["gone"], DicomWebNode)
        nodes["gone"].auth.secret()


def test_the_trace_shows_paths_and_paging_but_never_matching_values() -> None:
    url = (
        "http://h/dicom-web/studies/1.2.3/series?PatientName=DOE%5EJOHN&PatientID=12345"
        "&includefield=StudyDate&includefield=PatientName&limit=100&offset=200"
    )
    shown = safe_url(url)
    assert "DOE" not in shown and "12345" not in shown
    assert shown.startswith("/dicom-web/studies/1.2.3/series?")
    assert "PatientName=…" in shown and "PatientID=…" in shown
    assert "includefield=StudyDate,PatientName" in shown
    assert "limit=100" in shown and "offset=200" in shown


def test_the_listen_section_is_read_strictly(tmp_path: Path) -> None:
    from tuiviewer.config.settings import load_config

    path = tmp_path / "config.toml"
    path.write_text(
        '[listen]\nae_title = "READER"\nport = 11112\nallow = ["CLINIC", "CT01"]\n'
        'allow_hosts = ["10.1.0.0/16", "192.168.3.7"]\nmin_free_mb = 2000\n'
        '[listen.reply]\nCLINIC = "clinic-pacs"\n',
        encoding="utf-8",
    )
    listen = load_config(path).listen
    assert listen is not None
    assert listen.allow == ("CLINIC", "CT01") and listen.reply == {"CLINIC": "clinic-pacs"}
    assert listen.admits("CLINIC", "10.1.2.3") == (True, 0)
    assert listen.admits("CLINIC", "10.2.0.1") == (False, 1)  # host: no reason given
    assert listen.admits("OTHER", "10.1.2.3") == (False, 3)  # calling AE not recognised
    for bad, message in (
        ('allow_hosts = ["not-an-ip"]', "is not an IP address or network"),
        ("port = 0", "port must be a port number"),
        ('allow = ["WAY-TOO-LONG-AE-TITLE"]', "longer than 16"),
        ("colour = 1", "unknown key 'colour'"),
        ('[listen.tls]\nca_file = "ca.pem"', "needs cert_file"),
    ):
        path.write_text(f"[listen]\n{bad}\n", encoding="utf-8")
        with pytest.raises(ConfigError, match=message):
            load_config(path)
