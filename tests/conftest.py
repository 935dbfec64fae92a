"""Fixtures shared by every test: private per-test user dirs and pydicom's sample files."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file


def testdata(name: str) -> Path:
    """A file from pydicom's bundled test files (never downloaded: there is no network)."""
    found = get_testdata_file(name, download=False)
    if found is None:
        raise FileNotFoundError(f"pydicom test file {name!r} is not bundled")
    return Path(str(found))


TEST_FILES = testdata("CT_small.dcm").parent


@pytest.fixture(autouse=True)
def private_user_dirs(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Point config, data, log and cache dirs at a temporary folder so no test touches the
    real ones."""
    base = tmp_path_factory.mktemp("userdirs")
    for name in ("CONFIG", "DATA", "LOG", "CACHE"):
        monkeypatch.setenv(f"TUIVIEWER_{name}_DIR", str(base / name.lower()))
    yield base


@pytest.fixture
def sample_folder(tmp_path: Path) -> Path:
    """A folder with an RT plan, a CT, an MR, a nested DICOM file and a file that is not DICOM."""
    folder = tmp_path / "samples"
    (folder / "nested" / "deeper").mkdir(parents=True)
    shutil.copy(testdata("rtplan.dcm"), folder / "rtplan.dcm")
    shutil.copy(testdata("CT_small.dcm"), folder / "CT_small.dcm")
    shutil.copy(testdata("MR_small.dcm"), folder / "nested" / "deeper" / "MR_small.dcm")
    (folder / "notes.txt").write_text("not a DICOM file\n")
    return folder


@pytest.fixture
def ct_folder(tmp_path: Path) -> Path:
    """A study folder holding pydicom's CT_small.dcm alone."""
    folder = tmp_path / "study"
    folder.mkdir()
    shutil.copy(testdata("CT_small.dcm"), folder / "CT_small.dcm")
    return folder


def require_tool(name: str, found: bool) -> None:
    """Skip a test whose real tool is missing here; on CI (CI=true) that is a failure instead,
    since scripts/test installs every tool and a silent skip would hide a broken set-up."""
    if found:
        return
    message = f"{name} is not installed (scripts/test installs it)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)
