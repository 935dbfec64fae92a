"""The key images of the study in the viewer: which slices are marked (for the corner text),
``k`` to mark or unmark the slice on show, and the list of marked images that jumps to one.

The marks live in the report: the open editor's, else the saved draft's (the workstation
decides); this keeps the set the viewer shows and reloads it when the reader comes back from
the editor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from textual.screen import Screen

from tuiviewer.dicom.scanning import InstanceRecord
from tuiviewer.exceptions import TuiviewerError
from tuiviewer.reports.model import KeyImage
from tuiviewer.screens.base import workstation
from tuiviewer.screens.dialogs.choose import ChooseDialog
from tuiviewer.services.viewer.keyimages import key_image_places, key_of
from tuiviewer.services.viewer.slices import SliceRef

MARK = "★ key image"
"""What the corner text says under the slice number of a marked slice."""


class KeyImageMarks:
    """The key images of one study, for the viewer ``screen``."""

    def __init__(self, screen: Screen[None]) -> None:
        self.screen = screen
        self.marked: set[KeyImage] = set()

    def load(self, study_uid: str) -> tuple[KeyImage, ...] | None:
        """Read them again (the editor may have changed them); None when they cannot be."""
        try:
            images = workstation(self.screen).key_images(study_uid)
        except TuiviewerError as exc:
            self.screen.notify(exc.message, severity="warning")
            return None
        self.marked = set(images)
        return images

    def text(self, ref: SliceRef, slice_text: str) -> str:
        """``slice_text`` with :data:`MARK` under it when ``ref`` is marked."""
        return f"{slice_text}\n{MARK}" if key_of(ref) in self.marked else slice_text

    def toggle(self, ref: SliceRef) -> None:
        """Mark ``ref`` as a key image of its study's report, or unmark it if it is one."""
        frame = ref.frame + 1 if ref.frames > 1 else None
        if key_of(ref) in self.marked:
            workstation(self.screen).unmark_key_image(ref.record, frame)
        else:
            workstation(self.screen).mark_key_image(ref.record, frame)
        self.load(ref.record.study_uid)

    def choose(
        self,
        study_uid: str,
        stacks: Sequence[Sequence[InstanceRecord]],
        jump: Callable[[int, int], None],
    ) -> None:
        """List the marked images; ``jump(stack, index)`` shows the one chosen."""
        images = self.load(study_uid)
        if images is None:
            return
        if not images:
            self.screen.notify("No key image of this study is marked yet: k marks the slice.")
            return
        places = key_image_places(images, stacks)

        def chosen(choice: int | None) -> None:
            place = places[choice] if choice is not None else None
            if place is not None and place.stack is not None:
                jump(place.stack, place.index)

        title = f"Key images of this study ({len(places)}): Enter shows one, k there unmarks it"
        self.screen.app.push_screen(ChooseDialog(title, [p.label for p in places]), chosen)
