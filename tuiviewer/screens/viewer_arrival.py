"""The slice viewer opened on a study still arriving: what happens when instances land.

The retrieve's :class:`~tuiviewer.widgets.arrivals.ArrivalFeed` posts what landed; these hooks
put it into the fixed slots of the :class:`~tuiviewer.services.viewer.arrival.ArrivingSeries`
on show (the first slice shown as soon as it is in, the slice the reader waits on the moment it
lands, the same slice kept when the C-FIND's list moves the indices), let the study's other
series appear and grow, ask the retrieve to bring next what the reader looks at, and turn the
viewer into the ordinary one once the series is complete or the retrieve ends (saying what did
not arrive). The slot arithmetic is in :mod:`tuiviewer.services.viewer.arrival`.

Mixed into :class:`~tuiviewer.screens.viewer.ViewerScreen`.
"""

from __future__ import annotations

from textual import on

from tuiviewer.dicom.scanning import InstanceRecord
from tuiviewer.screens.viewer_base import ViewerParts
from tuiviewer.services.jobs import RetrieveJob
from tuiviewer.services.viewer.arrival import settled
from tuiviewer.widgets.arrivals import ArrivalFeed


class ArrivalHooks(ViewerParts):
    """The viewer's side of a series still arriving (mixed into the viewer screen)."""

    @on(ArrivalFeed.Arrived)
    def _arrived(self, message: ArrivalFeed.Arrived) -> None:
        """Put what landed into its slots; the reader waiting on one of them sees it at once."""
        stack = self.stack
        series = stack.arriving
        if series is not None and (message.records or message.listed):
            opened = series.count == 0
            sop = stack.slices[stack.index].record.sop_instance_uid if stack.slices else ""
            moved = series.relist(message.listed)  # the C-FIND answered more
            moved = series.add(message.records) or moved
            for key, loaded in message.decoded:  # the first image, decoded as it landed
                stack.source.frames.put(key, loaded, loaded.nbytes)
            if opened and series.count:  # the first slice is in: show it
                sop = series.nearest(series.slot(sop) or 0) or sop
                self.keys.load(series.study_uid)
            if moved or (opened and series.count):  # same slice, new index
                self.stack = self._new_stack(self.stack_pos, [], half=False, arriving=series)
                self.stack.source.frames = stack.source.frames  # decoded frames stay valid
                self.stack.index = series.slot(sop) or 0
                self.pane.replace_stack(self.stack)
                self.request_render()
                self._lead_retrieve()
            elif stack.index in stack.fill():
                self.request_render()
            self.stacks[self.stack_pos] = list(series.records.values())
        if self.arrivals is not None:
            self._others_grew(message)
        if message.stacks:
            self._settle(message.stacks, message.job)
        elif series is not None and not series.count and message.job.finished:
            self._nothing_arrived(message.job)
        self._update_texts()

    def _lead_retrieve(self) -> None:
        """The retrieve brings next what the reader is looking at, the way they scroll."""
        series, job = self.stack.arriving, self.job
        if series is None or job is None or job.focus is None:
            return
        sop, way = series.order[self.stack.index], self.stack.direction
        job.focus.set(series.series_uid, sop, -way if series.turned else way)

    def _others_grew(self, message: ArrivalFeed.Arrived) -> None:
        """The series besides the one on show appear and grow (n/p reach them at once)."""
        assert self.arrivals is not None
        current = self.stack.arriving
        for series in self.arrivals.take(message.records, message.job.inventory, current):
            uid = series.series_uid
            places = [k for k, s in enumerate(self.stacks) if s and s[0].series_uid == uid]
            if len(places) > 1 or (places and places[0] == self.stack_pos):
                continue  # settled from disk into several stacks, or the one on show
            if places:
                self.stacks[places[0]] = self.arrivals.arrived(series)
            else:
                self.stacks.append(self.arrivals.arrived(series))

    def _nothing_arrived(self, job: RetrieveJob) -> None:
        """The retrieve ended before any image came: say why, back to where the reader was."""
        error = f" {job.error}" if job.error else ""
        self.notify(f"Retrieve {job.id} {job.state}: no image arrived.{error}", severity="error")
        if self.is_current:
            self.app.pop_screen()

    def _settle(self, stacks: list[list[InstanceRecord]], job: RetrieveJob) -> None:
        """The series is complete or the retrieve ended: the stacks on disk from now on, at the
        slice on show (or the nearest that arrived)."""
        stack, series = self.stack, self.stack.arriving
        self.stacks = [list(s) for s in stacks]
        where = settled(series, stack.index, stacks) if series is not None else None
        if series is None and stack.slices:  # the ordinary viewer: the same stack, anew placed
            sop = stack.slices[0].record.sop_instance_uid
            found = [k for k, s in enumerate(stacks) if any(r.sop_instance_uid == sop for r in s)]
            self.stack_pos = stack.stack = found[0] if found else self.stack_pos
        if series is None or where is None:
            return  # the ordinary viewer already (a later series ended), or nothing to show
        self.stack_pos = position = where.position
        if where.same:
            stack.arriving = None  # complete, and in the order the slots had: nothing moves
            stack.stack = position
            return
        self.stack = self._new_stack(position, stacks[position], half=False)
        self.stack.source.frames = stack.source.frames  # decoded frames stay valid
        self.stack.index = where.index
        self.pane.replace_stack(self.stack)
        self.request_render()
        if job.finished and not series.complete:
            self.notify(
                f"The retrieve {job.state}: {series.count} of {series.total} slices of this "
                "series arrived (F4: the retrieve queue resumes the rest).",
                severity="warning",
                timeout=8,
            )
