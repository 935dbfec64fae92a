"""The report editor as a radiologist uses it: write, autosave, save, sign, send, resume."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from textual.widgets import Input, TextArea

from tests.functional.helpers import burst, settle, slowed
from tests.support.orthanc import Orthanc, c_find
from tests.support.screentext import screen_lines
from tuiviewer.app import TuiviewerApp, make_app
from tuiviewer.config.nodes import Node
from tuiviewer.config.settings import Config
from tuiviewer.reports.drafts import DraftStore
from tuiviewer.reports.model import ReportStatus, SectionKind
from tuiviewer.reports.sr.read import read_sr
from tuiviewer.screens import report_outputs
from tuiviewer.screens.dialogs.common import ConfirmDialog, QuestionDialog
from tuiviewer.screens.dialogs.edit import EditValueDialog
from tuiviewer.screens.report import ReportScreen
from tuiviewer.store import LocalStore

FINDINGS = "Kein Herdbefund. Légère atélectasie. Очаговых изменений нет."


def app_for(folder: Path, store_root: Path, node: Node | None = None) -> TuiviewerApp:
    nodes = {node.name: node} if node else {}
    return make_app(Config(), [folder], nodes=nodes, store=LocalStore(store_root))


def pacs_node(orthanc: Orthanc) -> Node:
    """The Orthanc of a test as the node named "pacs"."""
    return Node(name="pacs", ae_title=orthanc.aet, host=orthanc.host, port=orthanc.dicom_port)


async def open_report(pilot, app: TuiviewerApp) -> ReportScreen:  # type: ignore[no-untyped-def]
    await settle(pilot)
    await pilot.press("W")
    for _ in range(300):
        await pilot.pause(0.02)
        screen = app.screen
        if isinstance(screen, ReportScreen) and screen.report is not None:
            return screen
        if isinstance(screen, QuestionDialog):
            return screen  # type: ignore[return-value]
    raise AssertionError(f"the report editor did not open: {app.screen!r}")


def dciodvfy_errors(path: Path) -> list[str]:
    run = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]


def instances_on_pacs(orthanc: Orthanc, study_uid: str) -> set[str]:
    """The SOP Instance UIDs the PACS holds for ``study_uid`` (an image-level C-FIND)."""
    query = Dataset()
    query.QueryRetrieveLevel = "IMAGE"
    query.StudyInstanceUID = study_uid
    query.SOPInstanceUID = ""
    found = c_find(orthanc.host, orthanc.dicom_port, orthanc.aet, query)
    return {str(ds.SOPInstanceUID) for ds in found}


async def wait_for(predicate, timeout: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return False


async def test_write_autosave_save_sign_and_send(
    ct_folder: Path, tmp_path: Path, empty_orthanc: Orthanc
) -> None:
    ct = pydicom.dcmread(ct_folder / "CT_small.dcm")
    uid = str(ct.StudyInstanceUID)
    node = Node(
        name="pacs",
        ae_title=empty_orthanc.aet,
        host=empty_orthanc.host,
        port=empty_orthanc.dicom_port,
    )
    app = app_for(ct_folder, tmp_path / "store", node)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_report(pilot, app)
        assert isinstance(screen, ReportScreen)
        header = str(screen.query_one("#study-header").render())
        assert str(ct.PatientID) in header
        findings = screen.query_one("#section-findings", TextArea)
        findings.focus()
        findings.insert(FINDINGS)
        await pilot.pause()
        # Autosaved without any explicit save, within the promised 2 s.
        drafts = DraftStore()
        assert await wait_for(
            lambda: (
                (d := drafts.load(uid)) is not None
                and d.report.text_of(SectionKind.FINDINGS) == FINDINGS
            ),
            timeout=2.5,
        )

        await pilot.press("ctrl+s")
        await settle(pilot)
        assert screen.last_sr is not None
        preliminary = read_sr(screen.last_sr)
        assert preliminary.status is ReportStatus.PRELIMINARY
        assert preliminary.text_of(SectionKind.FINDINGS) == FINDINGS
        assert dciodvfy_errors(screen.last_sr) == []

        await pilot.press("ctrl+g")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, EditValueDialog)
        dialog.query_one("#value", Input).value = "Curie^Marie"
        await pilot.press("enter")
        await settle(pilot)
        confirm = app.screen
        assert isinstance(confirm, ConfirmDialog)
        assert str(ct.PatientID) in confirm.question  # whose study, before signing
        await pilot.click("#yes")
        await settle(pilot)
        final = read_sr(screen.last_sr)
        assert final.status is ReportStatus.FINAL and final.reader == "Curie^Marie"
        assert dciodvfy_errors(screen.last_sr) == []

        await pilot.press("ctrl+t")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.click("#yes")
        await settle(pilot)
        assert screen.sent

    sent_uid = str(pydicom.dcmread(screen.last_sr).SOPInstanceUID)
    assert sent_uid in instances_on_pacs(empty_orthanc, uid)
    # A final report that reached the PACS needs no draft any more.
    assert DraftStore().load(uid) is None


async def test_a_draft_is_offered_again_in_the_next_session(
    ct_folder: Path, tmp_path: Path
) -> None:
    app = app_for(ct_folder, tmp_path / "store")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_report(pilot, app)
        assert isinstance(screen, ReportScreen)
        area = screen.query_one("#section-findings", TextArea)
        area.focus()
        area.insert("Draft text that must survive.")
        await pilot.pause()
        # Leave without saving anything: the draft stays.
    app = app_for(ct_folder, tmp_path / "store")
    async with app.run_test(size=(120, 40)) as pilot:
        dialog = await open_report(pilot, app)
        assert isinstance(dialog, QuestionDialog)
        assert "Resume" in dialog.question
        await pilot.click("#resume")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ReportScreen)
        area = screen.query_one("#section-findings", TextArea)
        assert area.text == "Draft text that must survive."


async def test_snippet_keyword_expands(ct_folder: Path, tmp_path: Path) -> None:
    app = app_for(ct_folder, tmp_path / "store")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_report(pilot, app)
        assert isinstance(screen, ReportScreen)
        assert screen.snippets, "default snippets ship with the package"
        keyword, text = next(iter(screen.snippets.items()))
        area = screen.query_one("#section-findings", TextArea)
        area.focus()
        await pilot.press(*f";{keyword}", "space")
        await pilot.pause()
        assert text in area.text
        assert f";{keyword}" not in area.text


async def ask_to_sign_as(pilot, app: TuiviewerApp, reader: str) -> ConfirmDialog:  # type: ignore[no-untyped-def]
    """ctrl+g, the reader's name, Enter: the "Sign the report as …?" question on screen."""
    await pilot.press("ctrl+g")
    await pilot.pause()
    dialog = app.screen
    assert isinstance(dialog, EditValueDialog)
    dialog.query_one("#value", Input).value = reader
    await pilot.press("enter")
    await settle(pilot)
    confirm = app.screen
    assert isinstance(confirm, ConfirmDialog)
    return confirm


async def sign_as(pilot, app: TuiviewerApp, reader: str) -> None:  # type: ignore[no-untyped-def]
    await ask_to_sign_as(pilot, app, reader)
    await pilot.click("#yes")
    await settle(pilot)


async def test_signing_a_sent_preliminary_makes_a_new_document(
    ct_folder: Path, tmp_path: Path, empty_orthanc: Orthanc
) -> None:
    node = Node(
        name="pacs",
        ae_title=empty_orthanc.aet,
        host=empty_orthanc.host,
        port=empty_orthanc.dicom_port,
    )
    app = app_for(ct_folder, tmp_path / "store", node)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_report(pilot, app)
        assert isinstance(screen, ReportScreen)
        area = screen.query_one("#section-findings", TextArea)
        area.focus()
        area.insert("Preliminary: small nodule.")
        await pilot.press("ctrl+s")
        await settle(pilot)
        await pilot.press("ctrl+t")
        await settle(pilot)
        await pilot.click("#yes")
        await settle(pilot)
        assert screen.sent and screen.last_sr is not None
        sent = pydicom.dcmread(screen.last_sr)
        await sign_as(pilot, app, "Curie^Marie")
        assert screen.last_sr is not None
        signed = pydicom.dcmread(screen.last_sr)
    assert signed.SOPInstanceUID != sent.SOPInstanceUID
    assert signed.VerificationFlag == "VERIFIED"
    (predecessor,) = signed.PredecessorDocumentsSequence
    referenced = predecessor.ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert referenced.ReferencedSOPInstanceUID == sent.SOPInstanceUID
    assert dciodvfy_errors(screen.last_sr) == []


async def test_addendum_to_a_final_report(ct_folder: Path, tmp_path: Path) -> None:
    from tuiviewer.reports.model import Report, Section, sign
    from tuiviewer.reports.sr.build import write_sr
    from tuiviewer.reports.sr.context import study_context_from_paths

    context = study_context_from_paths(ct_folder)
    original = sign(
        Report(sections=(Section(SectionKind.FINDINGS, "Original finding."),)), "Roentgen^W"
    )
    original_path = write_sr(original, context, ct_folder / "final-sr.dcm")
    original_uid = str(pydicom.dcmread(original_path).SOPInstanceUID)

    app = app_for(ct_folder, tmp_path / "store")
    async with app.run_test(size=(120, 40)) as pilot:
        dialog = await open_report(pilot, app)
        assert isinstance(dialog, QuestionDialog) and "addendum" in dialog.question
        await pilot.click("#yes")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ReportScreen)
        assert "Original finding." in str(screen.query_one("#priors").render())
        area = screen.query_one("#section-addendum", TextArea)
        area.focus()
        area.insert("Comparison with the prior now available: stable.")
        await sign_as(pilot, app, "Curie^Marie")
        assert screen.last_sr is not None
        addendum = read_sr(screen.last_sr)
        path = screen.last_sr
    assert addendum.text_of(SectionKind.FINDINGS) == "Original finding."
    assert (
        addendum.text_of(SectionKind.ADDENDUM) == "Comparison with the prior now available: stable."
    )
    assert [p.sop_instance_uid for p in addendum.predecessors] == [original_uid]
    assert dciodvfy_errors(path) == []


async def test_key_image_marked_in_the_viewer_goes_into_the_sr(
    ct_folder: Path, tmp_path: Path
) -> None:
    from tuiviewer.screens.viewer import ViewerScreen
    from tuiviewer.widgets.study_tree import StudyTree

    ct = pydicom.dcmread(ct_folder / "CT_small.dcm")
    app = app_for(ct_folder, tmp_path / "store")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.screen.query_one(StudyTree).focus()
        await pilot.press("v")
        await settle(pilot)
        assert isinstance(app.screen, ViewerScreen)
        await pilot.press("k")
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)
        screen = await open_report(pilot, app)
        assert isinstance(screen, ReportScreen)
        assert screen.report is not None
        assert [k.sop_instance_uid for k in screen.report.key_images] == [ct.SOPInstanceUID]
        area = screen.query_one("#section-findings", TextArea)
        area.focus()
        area.insert("See key image.")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert screen.last_sr is not None
        saved = read_sr(screen.last_sr)
        path = screen.last_sr
    assert [k.sop_instance_uid for k in saved.key_images] == [ct.SOPInstanceUID]
    assert dciodvfy_errors(path) == []


async def test_measurements_and_key_images_travel_with_the_signed_report(
    ct_folder: Path, tmp_path: Path, empty_orthanc: Orthanc
) -> None:
    """What the reader measured (volume screen) and marked (`k`) is in what the editor signs
    and sends: a TID 1500 SR and a KO beside the narrative, each passing dciodvfy, on the PACS;
    the copied text lists the measurements."""
    from tuiviewer.reports.measurements import Measurement, MeasurementKind, MeasurementStore
    from tuiviewer.reports.model import KeyImage
    from tuiviewer.screens.viewer import ViewerScreen
    from tuiviewer.widgets.study_tree import StudyTree

    ct = pydicom.dcmread(ct_folder / "CT_small.dcm")
    uid = str(ct.StudyInstanceUID)
    key = KeyImage(ct.SOPClassUID, ct.SOPInstanceUID, uid, ct.SeriesInstanceUID)
    ruler = Measurement(
        MeasurementKind.LENGTH, ((10.0, 20.0), (40.0, 20.0)), key, label="lesion", length_mm=20.5
    )
    MeasurementStore().save(uid, [ruler])
    node = pacs_node(empty_orthanc)
    app = app_for(ct_folder, tmp_path / "store", node)
    copied: list[str] = []
    app.copy_to_clipboard = copied.append  # type: ignore[method-assign]
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.screen.query_one(StudyTree).focus()
        await pilot.press("v")
        await settle(pilot)
        assert isinstance(app.screen, ViewerScreen)
        await pilot.press("k", "escape")
        await settle(pilot)
        screen = await open_report(pilot, app)
        assert isinstance(screen, ReportScreen)
        area = screen.query_one("#section-findings", TextArea)
        area.focus()
        await pilot.press(*"Nodule.")
        await sign_as(pilot, app, "Curie^Marie")
        assert screen.last_sr is not None and read_sr(screen.last_sr).status is ReportStatus.FINAL
        companions = list(screen.last_companions)
        await pilot.press("ctrl+t")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.click("#yes")
        await settle(pilot)
        assert await wait_for(lambda: screen.sent, timeout=20)
        await pilot.press("ctrl+b")
        await settle(pilot)
    kinds = {str(pydicom.dcmread(p).SOPClassUID): p for p in companions}
    assert set(kinds) == {"1.2.840.10008.5.1.4.1.1.88.33", "1.2.840.10008.5.1.4.1.1.88.59"}
    for path in companions:
        assert dciodvfy_errors(path) == [], path
    on_pacs = instances_on_pacs(empty_orthanc, uid)
    for path in [screen.last_sr, *companions]:
        assert str(pydicom.dcmread(path).SOPInstanceUID) in on_pacs
    assert copied and "lesion" in copied[-1] and "20.5 mm" in copied[-1], copied
    MeasurementStore().save(uid, [])


async def test_a_damaged_measurement_list_never_keeps_the_report_from_being_saved(
    ct_folder: Path, tmp_path: Path
) -> None:
    from tuiviewer.reports.measurements import MeasurementStore

    uid = str(pydicom.dcmread(ct_folder / "CT_small.dcm").StudyInstanceUID)
    damaged = MeasurementStore().path_for(uid)
    damaged.parent.mkdir(parents=True, exist_ok=True)
    damaged.write_text("{not json", encoding="utf-8")
    app = app_for(ct_folder, tmp_path / "store")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_report(pilot, app)
        assert isinstance(screen, ReportScreen)
        screen.query_one("#section-findings", TextArea).focus()
        await pilot.press(*"Saved anyway.")
        await pilot.press("ctrl+s")
        assert await wait_for(lambda: screen.last_sr is not None, timeout=10)
        assert read_sr(screen.last_sr).text_of(SectionKind.FINDINGS) == "Saved anyway."
        messages = [n.message for n in app._notifications]
        assert any("saved without them" in m for m in messages), messages
    assert damaged.read_text(encoding="utf-8") == "{not json", "the damaged list is left as it was"


async def test_send_right_after_signing_sends_the_signed_report(
    ct_folder: Path, tmp_path: Path, empty_orthanc: Orthanc, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ctrl+t pressed while the signed SR is still being written (a slow disk, a busy
    server) waits for it: the PACS gets the final report, never the preliminary before it,
    and the reader is not told to sign first."""
    import tuiviewer.screens.report_outputs as outputs

    slow_write = outputs.write_report_documents

    def write_slowly(*args, **kwargs):  # type: ignore[no-untyped-def]
        time.sleep(1.0)
        return slow_write(*args, **kwargs)

    uid = str(pydicom.dcmread(ct_folder / "CT_small.dcm").StudyInstanceUID)
    node = pacs_node(empty_orthanc)
    app = app_for(ct_folder, tmp_path / "store", node)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_report(pilot, app)
        assert isinstance(screen, ReportScreen)
        screen.query_one("#section-findings", TextArea).focus()
        await pilot.press(*"Signed and sent.", "ctrl+s")
        assert await wait_for(lambda: screen.last_sr is not None, timeout=10)
        preliminary = screen.last_sr
        monkeypatch.setattr(outputs, "write_report_documents", write_slowly)
        await ask_to_sign_as(pilot, app, "Curie^Marie")
        await pilot.click("#yes")
        await pilot.press("ctrl+t")  # at once, while the signed SR is being written
        assert await wait_for(lambda: isinstance(app.screen, ConfirmDialog), timeout=10), (
            app.screen,
            [n.message for n in app._notifications],
        )
        assert screen.last_sr != preliminary, "the send waited for the signed SR"
        await settle(pilot)  # the dialog laid out before its button is clicked
        await pilot.click("#yes")
        assert await wait_for(lambda: screen.sent, timeout=20)
        messages = [n.message for n in app._notifications]
        assert not any("first" in m and "sign" in m for m in messages), messages
        final = screen.last_sr
    assert final is not None and read_sr(final).status is ReportStatus.FINAL
    assert instances_on_pacs(empty_orthanc, uid) == {str(pydicom.dcmread(final).SOPInstanceUID)}


async def test_send_the_moment_the_signed_report_is_written_is_not_swallowed(
    ct_folder: Path, tmp_path: Path, empty_orthanc: Orthanc, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ctrl+t arriving just as the signed SR lands (its worker has handed the result back but
    is not finished yet: seen over SSH on a busy machine) asks where to send it, as at any other
    moment. It used to be taken for "still being written" and never answered."""
    import tuiviewer.screens.report_outputs as outputs

    written = outputs.ReportOutputs._written

    def written_then_send(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        written(self, *args, **kwargs)
        if self.report is not None and self.report.status is ReportStatus.FINAL:
            # The worker is blocked in call_from_thread until this returns: not finished.
            self.action_send()

    node = pacs_node(empty_orthanc)
    app = app_for(ct_folder, tmp_path / "store", node)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_report(pilot, app)
        assert isinstance(screen, ReportScreen)
        screen.query_one("#section-findings", TextArea).focus()
        await pilot.press(*"Signed, then sent at once.")
        monkeypatch.setattr(outputs.ReportOutputs, "_written", written_then_send)
        await ask_to_sign_as(pilot, app, "Curie^Marie")
        await pilot.click("#yes")
        assert await wait_for(lambda: isinstance(app.screen, ConfirmDialog), timeout=10), (
            app.screen,
            [n.message for n in app._notifications],
        )
        assert any("Send the report to pacs" in line for line in screen_lines(app))
        messages = [n.message for n in app._notifications]
        assert not any("being written" in m for m in messages), messages


async def test_keys_behind_ctrl_t_answer_the_send_question_not_the_editor(
    ct_folder: Path, tmp_path: Path, empty_orthanc: Orthanc, monkeypatch: pytest.MonkeyPatch
) -> None:
    ct = pydicom.dcmread(ct_folder / "CT_small.dcm")
    uid = str(ct.StudyInstanceUID)
    slowed(monkeypatch, report_outputs, "confirmation_text", 0.8)
    app = app_for(ct_folder, tmp_path / "store", pacs_node(empty_orthanc))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_report(pilot, app)
        findings = screen.query_one("#section-findings", TextArea)
        findings.focus()
        findings.insert(FINDINGS)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert screen.last_sr is not None
        # Esc right behind ctrl+t, before the question is up: the send is taken back, the
        # editor stays, and what is typed after it goes into the findings.
        await burst(pilot, "ctrl+t", "escape", *" More.")
        await settle(pilot)
        await pilot.pause(0.5)
        assert app.screen is screen
        assert findings.text == FINDINGS + " More."
        assert not screen.sent
        # "y" right behind ctrl+t is the question's Yes, not a letter of the report.
        await burst(pilot, "ctrl+t", "y")
        assert await wait_for(lambda: screen.sent, timeout=10)
        assert findings.text == FINDINGS + " More."
        assert app.screen is screen
    assert instances_on_pacs(empty_orthanc, uid)
