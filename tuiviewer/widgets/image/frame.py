"""One encoded frame, and the state of an image pane that its encoders and painters share.

:class:`~tuiviewer.widgets.image.view.ImageView` is made of parts, each a mixin in its own
module: the encoders that turn pixels into a protocol's frame
(:mod:`~tuiviewer.widgets.image.encoders`) and the bookkeeping that puts a frame on screen and
takes it off again (:mod:`~tuiviewer.widgets.image.placement`). They all derive from
:class:`ViewParts`, which declares what they read and write, so each part type-checks alone.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np
from rich.segment import Segment
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

from tuiviewer.graphics.pixels import Footprint
from tuiviewer.graphics.probe import GraphicsDecision, GraphicsMode
from tuiviewer.graphics.sixel import MAX_GREY_LEVELS
from tuiviewer.widgets.image.badge import Shown
from tuiviewer.widgets.image.halfcell import BLACK, Placement, StyleCache
from tuiviewer.widgets.image.png import PngEncoder


@dataclass
class Frame:
    """One encoded frame for a pane of ``cols`` × ``rows`` cells."""

    key: Hashable
    pixels: np.ndarray
    """The frame as rendered (a cheap frame is refined from it)."""
    cols: int
    rows: int
    sent: np.ndarray | None = None
    """What was encoded, when that differs from :attr:`pixels` (fewer levels)."""
    sequence: str = ""
    """Sixel or iTerm2 escape sequence sent with each repaint of the pane."""
    strips: list[Strip] | None = None
    """Lines of a character mode or of Kitty placeholders."""
    place: Footprint | None = None
    padded: np.ndarray | None = None
    """The frame padded to the whole pane (pixel protocols), for partial redraws."""
    scale: float = 1.0
    levels: int = MAX_GREY_LEVELS
    placement: Placement | None = None
    shown: Shown | None = None
    cheap: bool = False
    tolerance: int = 0


class ViewParts(Widget):
    """The image pane's shared state (the base of its mixins; set up by ImageView)."""

    decision: GraphicsDecision
    mode: GraphicsMode
    low_bandwidth: bool
    _cell: tuple[int, int]
    """Terminal pixels per cell (width, height)."""
    _frame: Frame | None
    _frame_no: int
    _styles: StyleCache
    _png: PngEncoder
    _kitty_id: int
    _kitty_uploaded: bool
    _kitty_placed: bool
    _painted: tuple[int, Region, tuple[int, int], int] | None
    """(frame, pane region, screen size, free rows) of the image known intact on screen: a
    repaint that finds it so sends nothing."""
    _placeholder_cache: tuple[tuple[int, ...], list[Strip]] | None
    _partial_cache: tuple[int, int, str] | None
    bytes_encoded: int

    def _tolerance_for(self, pixels: np.ndarray) -> int:  # ImageView's
        raise NotImplementedError

    @property
    def actual_pixels(self) -> bool:  # ImageView's
        raise NotImplementedError

    def _blank(self, width: int) -> Strip:
        return Strip([Segment(" " * width, BLACK)], width)
