"""The slice viewer's other stacks: the side by side (``b``) and the next/previous series
(``n``/``p``).

The side by side shows a second stack of the study (or a prior) beside the first, linked by
position along the slice normal (not by index, so a 5 mm prior follows a 2.5 mm study); the two
stacks share the one memory budget of decoded and rendered frames. A series switch keeps the
anatomy (the slice nearest the position on show) and, while the study arrives, shows the new
series growing. The position arithmetic is in :mod:`tuiviewer.services.viewer.view` and the
linking in :class:`~tuiviewer.widgets.viewer_body.ViewerBody`.

Mixed into :class:`~tuiviewer.screens.viewer.ViewerScreen`.
"""

from __future__ import annotations

from tuiviewer.dicom.scanning import InstanceRecord
from tuiviewer.screens.dialogs.choose import ChooseDialog
from tuiviewer.screens.viewer_base import RENDERED_CACHE_BYTES, ViewerParts
from tuiviewer.services.viewer import texts
from tuiviewer.services.viewer import view as views
from tuiviewer.widgets.arrivals import ArrivalFeed


class SideBySide(ViewerParts):
    """The second stack beside the first, and switching series (mixed into the viewer screen)."""

    def _beside(self) -> list[list[InstanceRecord]]:
        """What can be shown beside the current stack: this study's stacks, then priors."""
        return self.stacks + self.priors

    def _stack_label(self, position: int) -> str:
        return texts.series_label(self._beside()[position], prior=position >= len(self.stacks))

    def action_beside(self) -> None:
        if self.link is not None:
            self.close_link()
            return
        beside = self._beside()
        others = [k for k in range(len(beside)) if k != self.stack_pos and beside[k]]
        if not others:
            self.notify(
                "Neither this study nor a prior has another series to show beside this one.",
                severity="warning",
            )
            return

        def chosen(choice: int | None) -> None:
            if choice is not None:
                self.open_link(others[choice])

        labels = [self._stack_label(k) for k in others]
        self.app.push_screen(ChooseDialog("Show beside this series", labels), chosen)

    def _share_budget(self) -> None:
        """Two stacks on screen share the one memory budget of decoded and rendered frames."""
        share = 2 if self.link is not None else 1
        self.pane.limit(self.frame_cache_bytes // share, RENDERED_CACHE_BYTES // share)

    def open_link(self, position: int) -> None:
        """Show stack ``position`` of the study (or a prior) beside the current one."""
        self.close_link()
        link = self._new_stack(position, self._beside()[position], half=True)
        placed = self.body.open_link(link, self.view)
        self._share_budget()
        if not placed:
            self.notify(
                f"{self._stack_label(position)} cannot be linked by position (no Image "
                "Position/Orientation): it stays on its first slice.",
                severity="warning",
            )
        self._relayout()

    def close_link(self) -> None:
        """Back to one stack."""
        if self.link is not None:
            self.body.close_link()
            self._share_budget()
            self._relayout()

    def _follow(self) -> None:
        """Move the linked stack to the plane nearest the left slice."""
        self.body.follow(self.view)

    # ---- series -----------------------------------------------------------------------------
    def action_series(self, delta: int) -> None:
        if len(self.stacks) < 2:
            self.notify("This study has no other series to show.", severity="warning")
            return
        self.show_series((self.stack_pos + delta) % len(self.stacks))

    def show_series(self, position: int) -> None:
        """Stack ``position`` of the study on the left pane, at the same anatomy."""
        current = self.slices[self.index].record.image_position if self.slices else None
        self.stack_pos = position
        records = self.stacks[position]
        growing = self.arrivals.series_for(records[0].series_uid) if self.arrivals else None
        if growing is not None and growing.complete:
            growing = None  # all in: the ordinary stack
        self.stack = stack = self._new_stack(position, records, half=False, arriving=growing)
        if growing is not None:
            self.query_one(ArrivalFeed).series = growing  # still arriving: it grows in view
        self.pane.replace_stack(stack)
        self.presets = []
        self.pane.reset_pointer()
        stack.index = views.nearest_slice(stack.slices, current)
        if self.link is not None:
            self._share_budget()
        self._update_texts()
        self.request_render()
        self._follow()
