"""``tuiviewer doctor`` echoes the nodes of a real ``nodes.toml``: Orthanc answers."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from tests.support.orthanc import Orthanc
from tests.support.ports import free_port
from tuiviewer.commands.doctor import run_doctor


@pytest.mark.orthanc
def test_doctor_echoes_the_orthanc_node(orthanc: Orthanc, tmp_path: Path) -> None:
    if not orthanc.is_running:
        orthanc.start()
    env = {}
    for name in ("config", "data", "cache", "log"):
        folder = tmp_path / name
        folder.mkdir()
        os.chmod(folder, 0o700)
        env[f"TUIVIEWER_{name.upper()}_DIR"] = str(folder)
    dead = free_port()
    nodes = tmp_path / "config" / "nodes.toml"
    nodes.write_text(
        f'[nodes.pacs]\nae_title = "{orthanc.aet}"\nhost = "{orthanc.host}"\n'
        f"port = {orthanc.dicom_port}\n\n"
        f'[nodes.old]\nae_title = "OLD"\nhost = "127.0.0.1"\nport = {dead}\n',
        encoding="utf-8",
    )
    os.chmod(nodes, 0o600)
    out, err = io.StringIO(), io.StringIO()
    assert run_doctor(stdout=out, stderr=err, env=env, echo_timeout=2.0) == 1
    lines = out.getvalue().splitlines()
    pacs = next(line for line in lines if line.strip().startswith("pacs "))
    assert f"{orthanc.aet}@{orthanc.host}:{orthanc.dicom_port}" in pacs
    assert "C-ECHO ok (" in pacs and "PROBLEM" not in pacs
    old = next(line for line in lines if line.strip().startswith("old "))
    assert "PROBLEM" in old
    assert err.getvalue().count("\n") == 1 and "'old'" in err.getvalue()
