"""One stack on screen: its slices, caches of decoded and rendered frames, render coalescer,
geometry and position. Each pane of the viewer holds one: the left pane and the one linked
beside it."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from tuiviewer.dicom.index import StudyIndex
from tuiviewer.dicom.scanning import InstanceRecord, scan
from tuiviewer.render.pipeline import RenderedImage, RenderRequest, render_frame
from tuiviewer.services.viewer.arrival import ArrivingSeries
from tuiviewer.services.viewer.caches import ByteLRU, RenderCoalescer
from tuiviewer.services.viewer.geometry import StackGeometry, Vector, capped_box
from tuiviewer.services.viewer.slices import (
    DEFAULT_FRAME_CACHE_BYTES,
    LoadedSlice,
    RenderJob,
    SliceRef,
    SliceSource,
    slices_of,
)


class Stack:
    """One stack on screen: its own slices, decoded-frame cache, rendered-frame cache and render
    coalescer (so holding a key skips slices on both sides of a side-by-side), and where it is."""

    def __init__(
        self,
        records: Sequence[InstanceRecord],
        *,
        stack: int,
        max_bytes: int = DEFAULT_FRAME_CACHE_BYTES // 2,
        rendered_bytes: int = 8 * 1024 * 1024,
        arriving: ArrivingSeries | None = None,
    ) -> None:
        """``arriving``: the stack is that series while it arrives, one slot per instance
        (``records`` are its :meth:`~ArrivingSeries.records_by_slot`)."""
        self.stack = stack
        """Position of this stack in the viewer's list of stacks."""
        self.arriving = arriving
        self.slices = [SliceRef(r) for r in records] if arriving else slices_of(records)
        self.source = SliceSource(self.slices, max_bytes=max_bytes)
        self.rendered: ByteLRU[tuple[object, ...], RenderedImage] = ByteLRU(rendered_bytes)
        self.coalescer: RenderCoalescer[RenderJob] = RenderCoalescer()
        self.geometry = StackGeometry.of(self.slices)
        self.index = 0
        """The slice asked for (follows the other stack)."""
        self.shown_index: int | None = None
        self.shown_seq = -1
        self.direction = 1

    def __len__(self) -> int:
        return len(self.slices)

    def waiting(self, index: int | None = None) -> bool:
        """Whether slice ``index`` (default: the one asked for) has not arrived yet."""
        index = self.index if index is None else index
        return self.arriving is not None and not self.arriving.arrived(index)

    def fill(self) -> list[int]:
        """Put the instances of :attr:`arriving` that landed since into their slots; the
        slots filled."""
        series = self.arriving
        if series is None:
            return []
        filled = []
        for index, ref in enumerate(self.slices):
            record = series.records.get(ref.record.sop_instance_uid)
            if record is not None and record is not ref.record:
                self.slices[index] = self.source.slices[index] = SliceRef(record)
                filled.append(index)
        if filled:
            self.geometry = StackGeometry.of(self.slices)
        return filled

    def follow(self, position: Vector | None) -> bool:
        """Move to the slice nearest ``position``; False (and no move) when it cannot be placed."""
        index = self.geometry.nearest(position)
        if index is None:
            return False
        if index != self.index:
            self.direction = 1 if index > self.index else -1
        self.index = index
        return True


def study_stacks(study_uid: str, path: Path) -> list[list[InstanceRecord]] | None:
    """The stacks of study ``study_uid`` under ``path`` (its folder when ``path`` is a file),
    series by series, each stack's instances in viewing order; None when no instance of the
    study is there. Only headers are read."""
    folder = path if path.is_dir() else path.parent
    index = StudyIndex()
    for batch in scan([folder]):
        index.add(r for r in batch if r.study_uid == study_uid)
    try:
        study = index.study(study_uid)
    except KeyError:
        return None
    return [list(stack.instances) for series in study.series for stack in series.stacks]


def size_for(job: RenderJob, loaded: LoadedSlice) -> tuple[int, int] | None:
    """The pixel box ``job`` is rendered into: its box, capped at the source's resolution for
    terminals that scale images themselves (see :func:`capped_box`)."""
    if job.box is None or not job.cap_to_source:
        return job.box
    frame = loaded.frame
    return capped_box(frame.rows, frame.columns, frame.pixel_spacing, job.box)


def render_job(
    source: SliceSource, job: RenderJob, cancel: threading.Event | None = None
) -> tuple[RenderedImage, LoadedSlice, tuple[int, int] | None] | None:
    """Decode (through ``source``'s cache) and render ``job``; None when cancelled first.

    Blocking: for a worker thread.

    Raises:
        RenderError, DicomReadError: the slice cannot be read or rendered.
    """
    loaded = source.load(job.index, cancel)
    if loaded is None:
        return None
    size = size_for(job, loaded)
    state = job.state
    request = RenderRequest(
        frame=loaded.frame.index,
        window=state.window,
        invert=state.invert,
        overlays=state.overlays,
        size=size,
        zoom=state.zoom,
        pan=state.pan,
        pixel_aspect=job.pixel_aspect,
    )
    return render_frame(loaded.ds, loaded.frame, request), loaded, size
