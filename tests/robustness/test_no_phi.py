"""No patient name or ID in the log file or in error messages, unless the user turns it on.

Two canary patients (a Latin-1 name and an ASCII one) go through every command that talks to a
PACS and through a session of the app, with logging at DEBUG so pynetdicom's own debug output
is in the file too. Then the log, the commands' stderr, the typed errors' messages, the
banners and the notifications are searched for any piece of the names and IDs, in every
spelling a formatter could produce (text, Python repr escapes, raw Latin-1 and UTF-8 bytes).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid
from pynetdicom import evt
from textual.widgets import Static

from tests.functional.helpers import browser, new_app, settle, static_text
from tests.support.orthanc import Orthanc
from tests.support.ports import free_port
from tests.support.scps import (
    STUDY_ROOT_FIND,
    aborting_find_handler,
    failing_find_handler,
    running_scp,
)
from tuiviewer.commands.echo import run_echo
from tuiviewer.commands.find import run_find
from tuiviewer.commands.get import run_get
from tuiviewer.commands.send import run_send
from tuiviewer.config.nodes import Node
from tuiviewer.dicom.datagen import write_ct_series
from tuiviewer.dicom.loading import load_file
from tuiviewer.exceptions import TuiviewerError
from tuiviewer.logsetup import setup_logging
from tuiviewer.net.errors import NetError
from tuiviewer.net.find import FindQuery, find
from tuiviewer.widgets.study_tree import StudyTree

PATIENTS = (("Müller^Jürgen", "PHIID4711XQ"), ("PHI^CANARY", "CANARY-0815"))
#: Every piece of the names and IDs, as text and as a repr() or bytes formatter writes it.
TEXT_CANARIES = (
    "Müller",
    "Jürgen",
    "M\\xfcller",
    "J\\xfcrgen",
    "M\\xc3\\xbcller",
    "CANARY",
    "PHIID4711XQ",
)
BYTE_CANARIES = (b"M\xfcller", b"J\xfcrgen", "Müller".encode(), b"CANARY", b"PHIID4711XQ")


def phi_in(text: str) -> list[str]:
    """The canaries found in ``text``."""
    return [canary for canary in TEXT_CANARIES if canary.lower() in text.lower()]


def phi_in_bytes(data: bytes) -> list[bytes]:
    return [canary for canary in BYTE_CANARIES if canary.lower() in data.lower()]


@pytest.fixture
def debug_log() -> Iterator[Path]:
    """``tuiviewer.log`` at DEBUG (in the test's private log dir); logging restored after."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    path = setup_logging("DEBUG")
    try:
        yield path
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
            if handler not in saved[0]:
                handler.close()
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
        logging.captureWarnings(False)


def _assert_log_clean(path: Path) -> str:
    data = path.read_bytes()
    text = data.decode("utf-8", errors="backslashreplace")
    assert not phi_in(text) and not phi_in_bytes(data), [
        line for line in text.splitlines() if phi_in(line)
    ][:5]
    return text


def _spec(orthanc: Orthanc) -> str:
    return f"{orthanc.aet}@{orthanc.host}:{orthanc.dicom_port}"


def _canary_studies(folder: Path) -> dict[str, list[Path]]:
    """One small CT series per canary patient; returns the files by Study Instance UID."""
    studies: dict[str, list[Path]] = {}
    for seed, (name, patient_id) in enumerate(PATIENTS, start=71):
        study = generate_uid()
        studies[study] = write_ct_series(
            folder / f"p{seed}", slices=2, rows=16, cols=16, seed=seed, study_uid=study,
            patient_name=name, patient_id=patient_id,
        )  # fmt: skip
    return studies


@pytest.mark.orthanc
def test_pacs_commands_keep_phi_out_of_the_log_and_stderr(
    orthanc: Orthanc, debug_log: Path, tmp_path: Path
) -> None:
    if not orthanc.is_running:
        orthanc.start()
    studies = _canary_studies(tmp_path / "upload")
    spec = _spec(orthanc)
    stderr: list[str] = []

    def command(run: Callable[..., int], *args: object, **kw: object) -> int:
        out, err = io.StringIO(), io.StringIO()
        code = run(*args, stdout=out, stderr=err, **kw)
        stderr.append(err.getvalue())
        return code

    assert command(run_send, spec, [tmp_path / "upload"]) == 0, stderr[-1]
    assert command(run_echo, spec) == 0
    for name, patient_id in PATIENTS:
        assert command(run_find, spec, "study", [f"PatientName={name}"]) == 0, stderr[-1]
        assert command(run_find, spec, "patient", [f"PatientID={patient_id}"]) == 0
    for study in studies:
        assert command(run_get, spec, study, dest=tmp_path / "got") == 0, stderr[-1]
    # And the failures: a dead port, with the names in the query and the files to send.
    dead = f"NOBODY@127.0.0.1:{free_port()}"
    assert command(run_find, dead, "study", [f"PatientName={PATIENTS[0][0]}"]) == 1
    assert command(run_send, dead, [tmp_path / "upload"]) == 1
    assert command(run_get, dead, next(iter(studies)), dest=tmp_path / "none") == 1

    for text in stderr:
        assert not phi_in(text), text
    log = _assert_log_clean(debug_log)
    # The check means something only if the log holds the exchanges themselves.
    assert "pynetdicom" in log and "C-FIND" in log.upper()


def _canary_match(event: object) -> Iterator[tuple[int, Dataset | None]]:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.QueryRetrieveLevel = "STUDY"
    ds.PatientName, ds.PatientID = PATIENTS[0]
    ds.StudyInstanceUID = str(generate_uid())
    yield 0xFF00, ds
    yield 0x0000, None


def test_network_errors_carry_no_phi(debug_log: Path) -> None:
    query = FindQuery(patient_name=PATIENTS[0][0], patient_id=PATIENTS[1][1])
    errors: list[NetError] = []

    def failing(node: Node) -> None:
        with pytest.raises(NetError) as info:
            for _ in find(node, query):
                pass
        errors.append(info.value)

    failing(Node("dead", "NOBODY", "127.0.0.1", free_port(), connect_timeout=2))
    contexts = (STUDY_ROOT_FIND,)
    with running_scp(
        contexts=contexts, handlers=[(evt.EVT_C_FIND, failing_find_handler(0xA700))]
    ) as scp:
        failing(scp.node())
    with running_scp(
        contexts=contexts, handlers=[(evt.EVT_C_FIND, aborting_find_handler(1))]
    ) as scp:
        failing(scp.node())
    with running_scp(contexts=contexts, require_calling_aet=["SOMEONE"]) as scp:
        failing(scp.node())
    # A match naming the patient, then success: nothing fails, but the match passes the log.
    with running_scp(contexts=contexts, handlers=[(evt.EVT_C_FIND, _canary_match)]) as scp:
        assert [str(m.PatientName) for m in find(scp.node(), query)] == [PATIENTS[0][0]]

    kinds = {type(e).__name__ for e in errors}
    assert len(kinds) == 4, kinds  # refused, failure status, aborted, rejected
    for error in errors:
        assert not phi_in(error.message), error.message
    _assert_log_clean(debug_log)


def _damaged_copies(folder: Path) -> list[Path]:
    """Files whose identifying elements are damaged in ways that produce load problems."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName, ds.PatientID = PATIENTS[0]
    ds.OtherPatientIDs = PATIENTS[1][1] * 6  # longer than LO's 64 characters
    ds.PatientMotherBirthName = PATIENTS[1][0] + "^" + "X" * 70  # a component over 64
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = UID("1.2.840.10008.5.1.4.1.1.7")
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    base = folder / "base.dcm"
    ds.save_as(base, enforce_file_format=True)
    data = base.read_bytes()
    name_at = data.index(PATIENTS[0][0].encode("latin-1"))
    vr_at = name_at - 4  # explicit VR: tag (4) VR (2) length (2) value
    variants = {
        "cut-in-name.dcm": data[: name_at + 5],
        "unknown-vr.dcm": data[:vr_at] + b"XX" + data[vr_at + 2 :],
        "sequence-vr.dcm": data[:vr_at] + b"SQ" + data[vr_at + 2 :],
        "bad-charset.dcm": data.replace(b"ISO_IR 100", b"ISO_IR 1x0"),
        "long-values.dcm": data,
    }
    paths = []
    for name, content in variants.items():
        (folder / name).write_bytes(content)
        paths.append(folder / name)
    base.unlink()
    return paths


def test_load_problems_name_the_element_not_the_patient(debug_log: Path, tmp_path: Path) -> None:
    folder = tmp_path / "damaged"
    folder.mkdir()
    problems = []
    for path in _damaged_copies(folder):
        try:
            problems += [p.message for p in load_file(path).problems]
        except TuiviewerError as exc:
            problems.append(exc.message)
    assert len(problems) >= 5
    for message in problems:
        assert not phi_in(message), message
    _assert_log_clean(debug_log)


@pytest.mark.parametrize("vr", [b"UI", b"IS"])
def test_a_name_read_with_the_wrong_vr_is_not_quoted(
    vr: bytes, debug_log: Path, tmp_path: Path
) -> None:
    path = _damaged_copies(tmp_path)[-1]
    data = path.read_bytes()
    vr_at = data.index(PATIENTS[0][0].encode("latin-1")) - 4
    path.write_bytes(data[:vr_at] + vr + data[vr_at + 2 :])
    messages = [p.message for p in load_file(path).problems]
    assert messages
    assert not [m for m in messages if phi_in(m)]
    _assert_log_clean(debug_log)


async def test_a_session_shows_and_logs_no_phi_in_its_errors(
    debug_log: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "session"
    studies = list(_canary_studies(folder).values())
    damaged = _damaged_copies(folder)
    app = new_app(folder)
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        screen = browser(pilot)
        tree = screen.query_one(StudyTree)
        # A failed load: this file is gone by the time it is selected.
        gone = studies[1][0]
        gone.rename(gone.with_suffix(".gone"))
        marked: Path | None = None
        banners = []
        stack = [tree.root]
        while stack:
            node = stack.pop()
            if node.allow_expand and not node.is_expanded:
                node.expand()
                await pilot.pause()
            stack.extend(node.children)
            if node.data is None or node.data.kind != "instance":
                continue
            tree.move_cursor(node)
            await settle(pilot)
            if screen.query_one("#banner", Static).display:
                banners.append(static_text(screen, "#banner"))
            if marked is None and screen.loaded is not None and not screen.loaded.problems:
                await pilot.press("m")  # marked for a diff, then taken away below
                marked = screen.loaded.path
                marked.rename(marked.with_suffix(".gone"))
        assert marked is not None and screen.loaded is not None
        assert any(gone.name in b and "no such file" in b for b in banners), banners
        assert len(banners) >= len(damaged)  # each damaged file and the one that has gone
        # An error notification: the diff cannot read the marked file any more.
        await pilot.press("d")
        await settle(pilot)
        notes = [n.message for n in app._notifications]
        assert any(marked.name in n and "no such file" in n for n in notes), notes
    for text in banners + notes:
        assert not phi_in(text), text
    _assert_log_clean(debug_log)
