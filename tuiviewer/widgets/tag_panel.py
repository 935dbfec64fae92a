"""The tag panel beside the image: the tags of the slice the user stops on.

The title and the tree are made when the panel is first used, not with the viewer: most
readings never open it, and a hidden tree is still styled while the viewer opens.

The read is debounced: a slice is read once it has stayed on screen for :data:`DEBOUNCE_S`,
so scrolling through a stack does not read every file on the way, and another frame of the
object already shown is not read again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.containers import Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Static
from textual.worker import Worker, WorkerState, get_current_worker

from tuiviewer.dicom.display import display_date
from tuiviewer.dicom.loading import PREVIEW_ELEMENTS, LoadedFile, load_file
from tuiviewer.dicom.scanning import InstanceRecord
from tuiviewer.exceptions import TuiviewerError
from tuiviewer.services.viewer.slices import SliceRef
from tuiviewer.widgets.safe import shown
from tuiviewer.widgets.tag_tree import TagTree


def whose_text(record: InstanceRecord) -> str:
    """Patient ID and study date (``DEMO001 · 2020-02-25``), then the series (``#10 CT axial``)
    on a line of its own, so a narrow panel cuts neither; the file is the tree's root."""
    number = record.series_number if record.series_number is not None else "?"
    series = f"#{number} {record.modality} {record.series_description}".rstrip()
    parts = (record.patient_id or "no ID", display_date(record.study_date))
    return " · ".join(p for p in parts if p) + f"\n{series}"


DEBOUNCE_S = 0.15
"""The panel reads a slice once it has stayed on screen this long (a held key never does)."""


class TagPanel(Vertical):
    """A title (which slice, which file) over the tag tree of that file."""

    @dataclass
    class TagsLoaded(Message):
        """The tags of a file were read for the panel."""

        loaded: LoadedFile

    @dataclass
    class TagsFailed(Message):
        """A file could not be read for the panel."""

        path: Path
        reason: str

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.reads = 0
        """Files read so far (a held key must not read one per slice)."""
        self._slice: tuple[SliceRef, int, int] | None = None
        self._timer: Timer | None = None
        self._wanted: Path | None = None
        self._loaded: LoadedFile | None = None
        self._built = False

    def _build(self) -> None:
        if not self._built:
            self._built = True
            self.mount(Static("", id="tags-title"), TagTree(id="tags"))

    @property
    def tag_tree(self) -> TagTree:
        self._build()
        return self.query_one("#tags", TagTree)

    def at(self, ref: SliceRef, index: int, count: int) -> None:
        """The slice on screen is now ``ref``, number ``index`` (0-based) of ``count``."""
        self._build()
        self._slice = (ref, index, count)

    def schedule(self) -> None:
        """Read the tags once the slice on screen has stayed there for a moment."""
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(DEBOUNCE_S, self.read_now)
        self.update_title()

    def stop(self) -> None:
        """No read is due any more (the panel is hidden)."""
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def read_now(self) -> None:
        self._timer = None
        if self._slice is None:
            return
        path = self._slice[0].path
        loaded = self._loaded
        if (loaded is not None and loaded.path == path) or self._wanted == path:
            self.update_title()  # another frame of the same object, or already on its way
            return
        self._wanted = path
        self.reads += 1
        self.update_title()
        self.read_tags(path)

    @work(thread=True, exclusive=True, exit_on_error=False, group="tags", description="Tags")
    def read_tags(self, path: Path) -> None:
        cancel = get_current_worker().cancelled_event
        try:
            # A large file shows its first elements at once, then the whole file.
            loaded = load_file(path, head=PREVIEW_ELEMENTS, cancel=cancel)
            if loaded.partial and not cancel.is_set():
                self.post_message(self.TagsLoaded(loaded))
                loaded = load_file(path, cancel=cancel)
        except TuiviewerError as exc:
            self.post_message(self.TagsFailed(path, exc.message))
            return
        if not cancel.is_set():
            self.post_message(self.TagsLoaded(loaded))

    @on(TagsLoaded)
    def _tags_loaded(self, message: TagsLoaded) -> None:
        if message.loaded.path != self._wanted:
            return  # the user has moved on; the newer read is under way
        if not message.loaded.partial:  # a preview: the whole file follows
            self._wanted = None
        self._loaded = message.loaded
        tree = self.tag_tree
        # The element the reader follows (say Slice Location) stays under the cursor.
        keep = tree.cursor_path if tree.rows else None
        tree.show(message.loaded, keep_path=keep)
        self.update_title()

    @on(TagsFailed)
    def _tags_failed(self, message: TagsFailed) -> None:
        if message.path != self._wanted:
            return
        self._wanted = None
        self._loaded = None
        self.tag_tree.clear()
        self._title(shown(f"⚠ {message.path.name}: {message.reason}", "bold red"))

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "tags" and event.state == WorkerState.ERROR:
            self._wanted = None
            self.notify(f"Reading the tags failed: {event.worker.error!r}", severity="error")

    def update_title(self) -> None:
        """Three lines: which slice (or frame) the tags belong to, and whose (patient ID, study
        date, series: the panel takes the place of the column that says so)."""
        if self._slice is None or not self.display:
            return
        ref, index, count = self._slice
        loaded = self._loaded
        whose = whose_text(ref.record)
        if loaded is None or loaded.path != ref.path:
            self._title(f"Tags · reading slice {index + 1} …\n{whose}")
            return
        where = f"slice {index + 1}/{count}"
        if ref.frames > 1:
            where = f"frame {ref.frame + 1}/{ref.frames} (whole object)"
        self._title(f"Tags · {where}\n{whose}")

    def _title(self, content: str | Text) -> None:
        self._build()
        title = self.query_one("#tags-title", Static)
        if isinstance(content, str):
            content = shown(content, lines=True)  # the file's name: shown literally, cleaned
        if title.content != content:
            title.update(content, layout=False)
