"""``tuiviewer doctor``: what support needs, nothing that names a patient, problems flagged."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pydicom
import pynetdicom
import pytest

from tests.support.ports import free_port
from tuiviewer.commands.doctor import run_doctor

PHI = ("Canary^Patient", "CANARY-4711")


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    """Private config/data/cache/log folders (0700) and the environment pointing at them."""
    env = {"TERM": "xterm-256color"}
    for name in ("config", "data", "cache", "log"):
        folder = tmp_path / name
        folder.mkdir(mode=0o700)
        os.chmod(folder, 0o700)
        env[f"TUIVIEWER_{name.upper()}_DIR"] = str(folder)
    return env


class Tty(io.StringIO):
    """A stdout that says it is a terminal (it has no size to report)."""

    def isatty(self) -> bool:
        return True


def _doctor(env: dict[str, str], *, tty: bool = False, **kw: object) -> tuple[int, str, str]:
    out, err = Tty() if tty else io.StringIO(), io.StringIO()
    code = run_doctor(stdout=out, stderr=err, env=env, **kw)  # type: ignore[arg-type]
    return code, out.getvalue(), err.getvalue()


def _private_file(path: Path, text: str, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    path.write_text(text, encoding="utf-8")
    os.chmod(path, mode)


def test_a_clean_setup_is_all_well_and_lists_versions(home: dict[str, str]) -> None:
    code, out, err = _doctor(home)
    assert (code, err) == (0, "")
    assert "all well" in out
    for package, version in (
        ("pydicom", pydicom.__version__),
        ("pynetdicom", pynetdicom.__version__),
    ):
        assert any(line.split()[:2] == [package, version] for line in out.splitlines()), package
    for name in ("config", "data", "cache", "log"):
        assert home[f"TUIVIEWER_{name.upper()}_DIR"] in out
    # pydicom decodes JPEG Baseline with Pillow here (a dependency); the decoder line says so.
    assert any(
        "JPEG Baseline (Process 1):" in line and "pillow" in line for line in out.splitlines()
    )


def test_a_world_readable_draft_is_flagged_with_its_fix(home: dict[str, str]) -> None:
    draft = Path(home["TUIVIEWER_DATA_DIR"]) / "drafts" / "1.2.3.4.json"
    _private_file(draft, json.dumps({"patient_name": PHI[0], "patient_id": PHI[1]}), 0o644)
    code, out, err = _doctor(home)
    assert code == 1
    assert str(draft) in err and "0644" in err and "0600" in err
    assert "chmod -R go-rwx" in out
    os.chmod(draft, 0o600)
    assert _doctor(home)[0] == 0


def test_an_open_folder_is_flagged(home: dict[str, str]) -> None:
    log_dir = home["TUIVIEWER_LOG_DIR"]
    os.chmod(log_dir, 0o755)
    code, out, err = _doctor(home)
    assert code == 1
    assert f"{log_dir!r} has mode 0755" in err
    assert f"chmod 700 {log_dir!r}" in out


def test_missing_folders_are_fine_and_stay_missing(tmp_path: Path) -> None:
    env = {
        f"TUIVIEWER_{n}_DIR": str(tmp_path / n.lower()) for n in ("CONFIG", "DATA", "CACHE", "LOG")
    }
    code, out, _ = _doctor(env)
    assert code == 0
    assert "missing" in out
    assert not any((tmp_path / n).exists() for n in ("config", "data", "cache", "log"))


def test_nothing_printed_names_a_patient_or_an_address(home: dict[str, str]) -> None:
    data = Path(home["TUIVIEWER_DATA_DIR"])
    _private_file(data / "drafts" / "1.2.3.json", json.dumps({"patient_name": PHI[0]}))
    _private_file(Path(home["TUIVIEWER_LOG_DIR"]) / "tuiviewer.log", f"opened {PHI[0]} {PHI[1]}\n")
    _private_file(
        Path(home["TUIVIEWER_CONFIG_DIR"]) / "config.toml", '[ui]\nreader_name = "Reader^Doc"\n'
    )
    env = home | {
        "TERM": "xterm-kitty",
        "SSH_TTY": "/dev/pts/77",
        "SSH_CONNECTION": "10.9.8.7 50022 10.0.0.1 22",
        "TMUX": "/tmp/tmux-1000/default,4242,0",
    }
    code, out, err = _doctor(env, tty=True)
    assert code == 0, err
    for secret in (*PHI, "Canary", "Reader^Doc", "10.9.8.7", "/dev/pts/77", "tmux-1000"):
        assert secret not in out + err, secret
    # The facts themselves are there: the viewer asks the terminal, over SSH too.
    assert "SSH_TTY                set" in out
    mode = next(line for line in out.splitlines() if line.strip().startswith("mode"))
    assert "asking the terminal (over SSH too)" in mode and "DA1" in mode


def test_nodes_are_listed_and_a_dead_one_is_a_problem(home: dict[str, str]) -> None:
    port = free_port()
    nodes = Path(home["TUIVIEWER_CONFIG_DIR"]) / "nodes.toml"
    _private_file(nodes, f'[nodes.gone]\nae_title = "GONE"\nhost = "127.0.0.1"\nport = {port}\n')
    code, out, err = _doctor(home, echo_timeout=2.0)
    assert code == 1
    assert f"GONE@127.0.0.1:{port}" in out
    assert "'gone'" in err and "C-ECHO" in err
    # Without the echo the node is listed, not judged.
    code, out, _ = _doctor(home, check_nodes=False)
    assert code == 0 and "not checked" in out


def test_an_invalid_nodes_file_is_a_problem_naming_the_file(home: dict[str, str]) -> None:
    nodes = Path(home["TUIVIEWER_CONFIG_DIR"]) / "nodes.toml"
    _private_file(nodes, "[nodes.x\n")
    code, _, err = _doctor(home, check_nodes=False)
    assert code == 1 and str(nodes) in err
