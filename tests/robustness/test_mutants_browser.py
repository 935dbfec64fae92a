"""One pilot session opens a folder of every damaged file and shows each one's problem.

Walking the study tree instance by instance, the banner must say what ``load_file`` found wrong
(or why the file could not be read at all) and stay hidden for files that read cleanly; files
the scan set aside are counted in the scan status, and the unreadable ones are listed with
their reasons behind ``u``.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pydicom
from textual.widgets import Static
from textual.widgets.tree import TreeNode, UnknownNodeID

from tests.conftest import testdata as sample_file
from tests.functional.helpers import browser, new_app, settle, static_text
from tests.support.mutants import all_mutants
from tuiviewer.dicom.index import StudyIndex
from tuiviewer.dicom.loading import load_file
from tuiviewer.dicom.scanning import read_record
from tuiviewer.exceptions import DicomReadError, TuiviewerError
from tuiviewer.screens.dialogs.common import ValueDialog
from tuiviewer.widgets.study_tree import StudyRef, StudyTree

_STATUS = re.compile(
    r"Scanned (\d+) files?: (\d+) DICOM(?:, (\d+) not DICOM \(skipped\))?(?:, (\d+) unreadable)?"
)


def _scan_killers(folder: Path) -> set[str]:
    """Mutants on which the header scan raises something other than DicomReadError.

    Such a file ends the whole scan (``scanning._inspect`` lets pydicom's NotImplementedError
    for an unknown VR escape; see test_mutants.py::test_scan_accounts_for_every_mutant), so
    the session would never see the files after it. They are left out here until the scan is
    fixed; then this set is empty and every mutant is in the folder.
    """
    killers = set()
    for path in folder.iterdir():
        try:
            read_record(path)
        except DicomReadError:
            pass
        except Exception:  # noqa: BLE001 - exactly what is being looked for
            killers.add(path.name)
    return killers


def _expected_banner(path: Path) -> str | None:
    """What the banner must say for ``path``, from load_file itself."""
    try:
        loaded = load_file(path)
    except TuiviewerError as exc:
        return f"⚠ {exc.message}"
    return f"⚠ {loaded.banner}" if loaded.banner else None


def _instance_nodes(tree: StudyTree) -> list[TreeNode[StudyRef]]:
    found = []
    stack: list[TreeNode[StudyRef]] = [tree.root]
    while stack:
        node = stack.pop()
        if node.data is not None and node.data.kind == "instance":
            found.append(node)
        stack.extend(reversed(node.children))
    return found


def _attached(tree: StudyTree, node: TreeNode[StudyRef]) -> bool:
    """Whether ``node`` is still in the tree (the tree rebuilds stack nodes when it updates)."""
    try:
        return tree.get_node_by_id(node.id) is node
    except UnknownNodeID:
        return False


def _series_in_several_studies(index: StudyIndex) -> set[str]:
    """Series UIDs that occur in more than one study: the clash the study tree mishandles."""
    studies: dict[str, set[str]] = {}
    for patient in index.patients():
        for study in patient.studies:
            for series in study.series:
                studies.setdefault(series.uid, set()).add(study.uid)
    return {uid for uid, found in studies.items() if len(found) > 1}


def _expand_everything(tree: StudyTree) -> None:
    stack: list[TreeNode[StudyRef]] = [tree.root]
    while stack:
        node = stack.pop()
        if node.allow_expand and not node.is_expanded:
            node.expand()  # a stack adds its instance nodes when expanded
        stack.extend(node.children)


async def test_browser_shows_the_problem_of_every_mutant(tmp_path: Path) -> None:
    folder = tmp_path / "mutants"
    folder.mkdir()
    for mutant in all_mutants():
        (folder / mutant.name).write_bytes(mutant.data)
    for name in _scan_killers(folder):
        (folder / name).unlink()
    files = sorted(folder.iterdir())
    assert len(files) >= 500

    app = new_app(folder)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot, timeout=120)
        screen = browser(pilot)
        status = static_text(screen, "#scan-status")
        match = _STATUS.match(status)
        assert match, status
        seen, dicom, skipped, unreadable = (int(g or 0) for g in match.groups())
        assert seen == len(files)
        assert dicom + skipped + unreadable == len(files)

        tree = screen.query_one(StudyTree)
        for _ in range(3):  # a series shows its stacks, a stack its instances, once expanded
            _expand_everything(tree)
            await pilot.pause()
        nodes = _instance_nodes(tree)
        indexed = {Path(p) for p in screen.index._instances}
        assert len(indexed) == dicom

        wrong = []
        banner = screen.query_one("#banner", Static)

        def current() -> str | None:
            return static_text(screen, "#banner").split("\n")[0] if banner.display else None

        unreachable: list[str] = []

        async def check(
            path: Path, show: Callable[[], object], fallback: Callable[[], object] | None = None
        ) -> None:
            """Show ``path``; wait (bounded) until the banner says what it should.

            Waiting on the expected text rather than on the workers keeps the walk at the
            app's own pace (~40 ms a file) instead of the 10 ms polls of ``settle``. When the
            cursor cannot reach the node (the tree's series UID clash, see the xfail test
            below), ``fallback`` shows the file the way a highlight does.
            """
            expected = _expected_banner(path)
            show()
            started = time.monotonic()
            retried = False
            while time.monotonic() < started + 5:
                await asyncio.sleep(0.002)
                if screen._requested != path:
                    if not retried and time.monotonic() > started + 0.5:
                        retried = True
                        if fallback is not None:
                            unreachable.append(path.name)
                        (fallback or show)()
                    continue
                loaded = screen.loaded
                if current() != expected:
                    continue
                if expected is None and (loaded is None or loaded.path != path):
                    continue  # the banner of a clean file is hidden before and after
                return
            requested = screen._requested.name if screen._requested else None
            wrong.append(
                f"{path.name}: banner {current()!r}, expected {expected!r} "
                f"(the browser was last asked for {requested})"
            )

        in_tree = set()
        for node in nodes:
            assert node.data is not None and node.data.record is not None
            if not _attached(tree, node):
                continue  # replaced since it was collected (the series UID clash below)
            path = node.data.record.path
            in_tree.add(path)
            await check(path, partial(tree.move_cursor, node), partial(screen.show_instance, path))
        # Instances the tree lost (see test_every_indexed_instance_has_a_node_in_the_tree) are
        # still shown the way a highlight shows them, so their banners are checked too.
        for path in sorted(indexed - in_tree):
            await check(path, partial(screen.show_instance, path))
        if not _series_in_several_studies(screen.index):
            assert not unreachable and in_tree == indexed, unreachable[:5]
        assert not wrong, "\n".join(wrong[:10])

        # The files the scan set aside: every one is accounted for, and each unreadable one
        # is listed with a reason that names it.
        left_out = [p for p in files if p not in indexed]
        assert len(left_out) == skipped + unreadable
        tree.focus()
        await pilot.press("u")
        await pilot.pause()
        if unreadable:
            dialog = app.screen
            assert isinstance(dialog, ValueDialog)
            reasons = dialog.text.splitlines()
            assert len(reasons) == unreadable
            named = {p.name for p in left_out if any(p.name in r for r in reasons)}
            assert len(named) == unreadable, reasons[:5]
            await pilot.press("escape")
        # Files left out and not unreadable were skipped as "not DICOM": load_file must not
        # find a clean DICOM file among them.
        for path in left_out:
            expected = _expected_banner(path)
            assert expected is not None, f"{path.name} reads cleanly but is not in the tree"


async def test_every_indexed_instance_has_a_node_in_the_tree(tmp_path: Path) -> None:
    original = sample_file("CT_small.dcm")
    folder = tmp_path / "two-studies"
    folder.mkdir()
    shutil.copy(original, folder / "a.dcm")
    # The same series UID in another study: what a flipped bit in a Study UID gives.
    other = pydicom.dcmread(original)
    other.StudyInstanceUID = other.StudyInstanceUID + ".9"
    other.SOPInstanceUID = other.SOPInstanceUID + ".9"
    other.save_as(folder / "b.dcm")
    app = new_app(folder)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        tree = browser(pilot).query_one(StudyTree)
        for _ in range(3):
            _expand_everything(tree)
            await pilot.pause()
        names = {n.data.record.path.name for n in _instance_nodes(tree) if n.data and n.data.record}
        assert names == {"a.dcm", "b.dcm"}
