"""What every part of the slice viewer shares: the state the screen holds (the stacks, the view,
the key images, cine), the widgets it is made of, and the stack each pane gets.

The viewer is one :class:`~tuiviewer.screens.viewer.ViewerScreen` made of parts, each a mixin in
its own module (view controls, side by side and series, a study still arriving). They all
derive from :class:`ViewerParts`, which declares what they read and write and the few methods
the screen itself defines, so each part type-checks alone and none of them has to know another.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.screen import Screen
from textual.timer import Timer

from tuiviewer.dicom.scanning import InstanceRecord
from tuiviewer.graphics.probe import GraphicsDecision
from tuiviewer.render.presets import Preset
from tuiviewer.screens.base import workstation
from tuiviewer.services.jobs import RetrieveJob
from tuiviewer.services.viewer.arrival import ArrivingSeries, ArrivingStudy
from tuiviewer.services.viewer.caches import RenderCoalescer
from tuiviewer.services.viewer.slices import RenderJob, SliceRef, ViewState
from tuiviewer.services.viewer.stack import Stack
from tuiviewer.widgets.cine import Cine, Throttle
from tuiviewer.widgets.image.view import ImageView
from tuiviewer.widgets.key_images import KeyImageMarks
from tuiviewer.widgets.stack_pane import StackPane
from tuiviewer.widgets.tag_panel import TagPanel
from tuiviewer.widgets.tag_tree import TagTree
from tuiviewer.widgets.viewer_body import ViewerBody

#: Rendered frames kept for instant redisplay (a 120×80 grey frame is ~10 KB).
RENDERED_CACHE_BYTES = 16 * 1024 * 1024


class ViewerParts(Screen[None]):
    """The viewer's shared state and widgets (the base of the viewer screen's mixins)."""

    stacks: list[list[InstanceRecord]]
    priors: list[list[InstanceRecord]]
    stack_pos: int
    frame_cache_bytes: int
    job: RetrieveJob | None
    arrivals: ArrivingStudy | None
    stack: Stack
    view: ViewState
    presets: list[Preset]
    low_bandwidth: bool
    player: Cine
    _throttle: Throttle
    texts_visible: bool
    tags_visible: bool
    keys: KeyImageMarks

    # ---- the screen's own (defined in viewer.py) ---------------------------------------------
    def go(self, index: int) -> None:  # the screen's
        raise NotImplementedError

    def _update_texts(self) -> None:  # the screen's
        raise NotImplementedError

    def _follow(self) -> None:  # the side by side's
        raise NotImplementedError

    def show_series(self, position: int) -> None:  # the side by side's
        raise NotImplementedError

    def _new_stack(
        self,
        position: int,
        records: Sequence[InstanceRecord],
        *,
        half: bool,
        arriving: ArrivingSeries | None = None,
    ) -> Stack:
        share = 2 if half else 1
        if arriving is not None:
            arriving.add(records)
            records = arriving.records_by_slot()
        return Stack(
            records,
            stack=position,
            max_bytes=self.frame_cache_bytes // share,
            rendered_bytes=RENDERED_CACHE_BYTES // share,
            arriving=arriving,
        )

    # ---- what the keys and tests see --------------------------------------------------------
    @property
    def slices(self) -> list[SliceRef]:
        return self.stack.slices

    @property
    def coalescer(self) -> RenderCoalescer[RenderJob]:
        return self.stack.coalescer

    @property
    def index(self) -> int:
        """The slice the user asked for (what is shown once its render arrives)."""
        return self.stack.index

    @property
    def shown_index(self) -> int | None:
        return self.stack.shown_index

    @property
    def link(self) -> Stack | None:
        """The stack shown beside this one, if any."""
        return self.body.link

    @property
    def body(self) -> ViewerBody:
        return self.query_one(ViewerBody)

    @property
    def pane(self) -> StackPane:
        return self.body.pane

    @property
    def link_pane(self) -> StackPane:
        return self.body.link_pane

    @property
    def image_view(self) -> ImageView:
        return self.pane.image_view

    @property
    def link_view(self) -> ImageView:
        return self.link_pane.image_view

    @property
    def tag_panel(self) -> TagPanel:
        return self.query_one(TagPanel)

    @property
    def tag_tree(self) -> TagTree:
        return self.tag_panel.tag_tree

    @property
    def tags_reads(self) -> int:
        """Files read for the tag panel (a held key must not read one per slice)."""
        return self.tag_panel.reads

    @property
    def decision(self) -> GraphicsDecision:
        return workstation(self).graphics

    @property
    def cine(self) -> Timer | None:
        return self.player.timer

    @property
    def fps(self) -> int:
        return self.player.fps

    # ---- layout and rendering ---------------------------------------------------------------
    def _relayout(self, width: int | None = None) -> None:
        self.body.relayout(
            width if width is not None else self.size.width,
            texts_visible=self.texts_visible,
            tags=self.tags_visible,
            linked=self.link is not None,
        )

    def _render_all(self) -> None:
        for pane in (self.pane, self.link_pane):
            pane.view = self.view
            pane.request()

    def request_render(self) -> None:
        """Ask for the current slice and view; shown at once when already rendered."""
        self.pane.view = self.view
        self.pane.request()
