"""Large, deep and escape-laden files in the browser and the viewer, as a user meets them.

A file of a hundred thousand elements shows its first screen from a preview while the rest is
read, is added to the tag tree a page at a time, and cannot be edited before it is whole; ten
thousand levels of nesting end in a message naming the limit, in the tags pane and in the
viewer, never in a blank pane or a RecursionError; names with escapes are shown escaped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.message import Message

from tests.functional.helpers import browser, new_app, settle, static_text
from tests.functional.test_browser import select_file
from tests.support.hostile import depth_bomb, element_bomb, escape_image
from tuiviewer.messages import FileLoaded
from tuiviewer.screens.viewer import ViewerScreen
from tuiviewer.widgets.study_tree import StudyTree
from tuiviewer.widgets.tag_tree import MORE, PAGE, TagTree


def _tree_nodes(tree: TagTree) -> int:
    count, stack = 0, [tree.root]
    while stack:
        node = stack.pop()
        count += 1
        stack.extend(node.children)
    return count


async def test_a_large_file_shows_a_preview_then_pages(tmp_path: Path) -> None:
    folder = tmp_path / "wide"
    folder.mkdir()
    element_bomb(folder / "wide.dcm", 100_000)
    seen: list[Message] = []
    app = new_app(folder)
    async with app.run_test(size=(120, 40), message_hook=seen.append) as pilot:
        await settle(pilot, timeout=120)
        await select_file(pilot, "wide.dcm")
        await settle(pilot, timeout=120)
        loads = [m.loaded for m in seen if isinstance(m, FileLoaded)]
        # First the preview (a first screen at once), then the whole file.
        assert loads[0].partial and not loads[-1].partial
        assert len(loads[0].dataset._dict) == 2000
        screen = browser(pilot)
        tags = screen.query_one(TagTree)
        assert len(tags.rows) > 100_000
        more = [n for n in tags.root.children if n.data is not None and MORE in n.data]
        assert len(more) == 1 and "more elements" in str(more[0].label)
        assert _tree_nodes(tags) < PAGE + 100, "never a node per element"
        tags.focus()
        tags.move_cursor(more[0])
        await pilot.press("enter")
        await pilot.pause()
        shown = [n for n in tags.root.children if n.data is not None and MORE not in n.data]
        assert len(shown) >= 2 * PAGE
        assert "Showing the first" not in static_text(screen, "#banner")


async def test_a_preview_cannot_be_edited(tmp_path: Path) -> None:
    folder = tmp_path / "wide"
    folder.mkdir()
    element_bomb(folder / "wide.dcm", 60_000)
    notes: list[str] = []
    app = new_app(folder)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = browser(pilot)
        await settle(pilot, timeout=120)
        screen.loaded = None
        screen.query_one(StudyTree).focus()
        await pilot.press("home", "down", "down", "down", "down")
        for _ in range(600):
            await pilot.pause(0.01)
            if screen.loaded is not None:
                break
        if screen.loaded is not None and screen.loaded.partial:
            original = app.notify

            def record(message: str, **kw: Any) -> None:
                notes.append(message)
                original(message, **kw)

            app.notify = record  # type: ignore[method-assign]
            screen.action_delete()
            assert any("still being read" in n for n in notes)
        await settle(pilot, timeout=120)
        assert screen.loaded is not None and not screen.loaded.partial


async def test_ten_thousand_levels_end_in_a_message_in_tags_and_viewer(tmp_path: Path) -> None:
    folder = tmp_path / "deep"
    folder.mkdir()
    depth_bomb(folder / "deep.dcm", 10_000, image=True)
    app = new_app(folder)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await select_file(pilot, "deep.dcm")
        screen = browser(pilot)
        banner = static_text(screen, "#banner")
        assert "nested more than 64 levels deep" in banner
        assert screen.query_one(TagTree).rows, "what could be read is shown"
        screen.query_one(StudyTree).focus()
        await pilot.press("v")
        await settle(pilot)
        viewer = app.screen
        assert isinstance(viewer, ViewerScreen)
        badge = str(viewer.query_one("#badge").content)
        assert "nested more than 64 levels deep" in badge and "max_depth" in badge
        assert "recursion" not in badge.lower()


async def test_names_with_escapes_are_shown_escaped(tmp_path: Path) -> None:
    folder = tmp_path / "evil"
    folder.mkdir()
    escape_image(folder / "evil.dcm")
    app = new_app(folder)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = browser(pilot)
        patient = screen.query_one(StudyTree).root.children[0]
        label = str(patient.label)
        assert label.startswith("Evil\\x1b]52;c;aGFja2Vk\\x07^Name[link=")
        assert "\x1b" not in label and "\x9b" not in label
        tags = screen.query_one(TagTree)
        values = [str(node.label) for node in tags.root.children]
        assert any("Series\\x1b[2Jdesc" in v for v in values)
        assert not any("\x1b" in v or "\x9b" in v for v in values)
