"""The image area of the viewer: one 8-bit frame shown with Kitty, iTerm2, Sixel or half-blocks.

A frame is encoded once, when :meth:`ImageView.show` receives it (already sized by the render
pipeline to :meth:`ImageView.pixel_box`), and sent once; repaints of anything else re-send
nothing. How each protocol meets Textual's cell-based screen:

- half-blocks and shade characters are ready-made strips (line API);
- pixel protocols pad the frame with black to the whole cells it covers
  (:mod:`tuiviewer.graphics.pixels`) and paint the rest of the pane with black cells, so no
  cell of the pane ever shows an older frame, a glyph fragment or the terminal's background
  under the image's last cell row;
- Sixel and iTerm2 images live in the cells (text written over a cell erases them): the
  image's cells are skipped (``CSI n C``: nothing written, nothing below shows through) and the
  sequence follows the screen update that skipped them, through Textual's writer queue, cursor
  moved to the image's cell (inside the update, the compositor would drop it with any line end
  it does not repaint or that a notification covers, and tmux drops passthrough there); it is
  sent again only when something may have erased it (another screen, a notification, a
  resize). A slice step over the same cells repaints one line of them, not the pane;
- Kitty images are uploaded under one id per pane through Textual's writer queue and shown by
  Unicode placeholder cells (text that tmux and dialogs handle like text), or, where the
  terminal has none, by a placement at the pane's top-left that is deleted whenever the pane
  changes size, is covered by another screen, or goes away.

On a change of pane size the old frame is dropped at once and the pane painted black until the
frame rendered for the new size arrives: nothing of a previous frame outlives a layout change,
a dialog, a resize or a screen switch.

Progressive frames: while frames follow each other faster than :data:`REFINE_AFTER_S` (a held
key) on a slow link (``--low-bandwidth``, a slow probe round trip or Textual's writer backing
up), each is sent cheaply (Sixel with 16 greys, Kitty/iTerm2 at half resolution, half-blocks
with 16 levels); once the reader pauses, the last frame is sent again at full quality.
:attr:`ImageView.shown` says what the screen holds, for the badge.

The widget is made of parts: this module holds the widget (its messages, geometry, what it is
told to show and Textual's hooks); the protocol painters are in
:mod:`~tuiviewer.widgets.image.encoders`, putting images on screen and erasing them in
:mod:`~tuiviewer.widgets.image.placement`, the frame and the state they share in
:mod:`~tuiviewer.widgets.image.frame`, and the badge in :mod:`~tuiviewer.widgets.image.badge`
(its names stay importable from here).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np
from rich.control import Control
from textual import events
from textual.geometry import Region
from textual.message import Message
from textual.screen import Screen
from textual.strip import Strip
from textual.timer import Timer

from tuiviewer.graphics import kitty
from tuiviewer.graphics.pixels import NEAR_LOSSLESS
from tuiviewer.graphics.probe import (
    PIXEL_MODES,
    GraphicsDecision,
    GraphicsMode,
    cell_from_winsize,
    read_winsize,
)
from tuiviewer.services.viewer import collector
from tuiviewer.widgets.image.badge import Shown, badge_text
from tuiviewer.widgets.image.encoders import (
    CHEAP_LEVELS,
    LOW_BANDWIDTH_LEVELS,
    SIXEL_LOW_GREY_LEVELS,
    FrameEncoders,
)
from tuiviewer.widgets.image.frame import Frame
from tuiviewer.widgets.image.halfcell import (
    Placement,
    StyleCache,
    halfcell_aspect,
)
from tuiviewer.widgets.image.placement import Placements
from tuiviewer.widgets.image.png import PngEncoder

__all__ = [
    "BACKLOG",
    "CHEAP_LEVELS",
    "LOW_BANDWIDTH_LEVELS",
    "REFINE_AFTER_S",
    "SIXEL_LOW_GREY_LEVELS",
    "SLOW_PROBE_S",
    "ImageView",
    "Shown",
    "badge_text",
    "id_seed",
]

REFINE_AFTER_S = 0.15
"""A pause this long after a frame makes it the one the reader looks at: full quality."""
SLOW_PROBE_S = 0.06
"""A probe round trip slower than this marks the link as slow (cheap frames while keys repeat)."""
BACKLOG = 2
"""Writes queued in Textual's writer thread from which the link counts as backed up."""


class ImageView(FrameEncoders, Placements):
    """Shows one 8-bit frame; a frame is encoded and sent once, never on unrelated repaints."""

    DEFAULT_CSS = """
    ImageView {
        width: 1fr;
        height: 1fr;
        background: black;
    }
    """

    @dataclass
    class Clicked(Message):
        """A click at output-pixel position (x, y) of the shown image."""

        x: float
        y: float

    @dataclass
    class Dragged(Message):
        """The mouse moved by (dx, dy) cells with the left button held."""

        dx: int
        dy: int

    @dataclass
    class Wheeled(Message):
        """The wheel turned: +1 down (next slice), -1 up; the modifiers held, and where (output
        pixels of the shown image, None off it) for a zoom about the pointer."""

        step: int
        ctrl: bool = False
        meta: bool = False
        at: tuple[float, float] | None = None

    @dataclass
    class Resized(Message):
        """The widget has a new size: the frame should be rendered again to fit it."""

        view: ImageView

    @dataclass
    class Refined(Message):
        """The draft on screen was replaced by the whole frame (the badge says so now)."""

        view: ImageView

    def __init__(
        self,
        decision: GraphicsDecision,
        *,
        low_bandwidth: bool = False,
        id: str | None = None,  # noqa: A002
    ) -> None:
        super().__init__(id=id)
        self.decision = decision
        self.mode = decision.mode
        self.low_bandwidth = low_bandwidth
        """Fewer levels, and only the changed rows repainted (half-blocks)."""
        self._actual_pixels = False
        self._cell = decision.cell
        self._frame: Frame | None = None
        self._styles = StyleCache()
        self._png = PngEncoder()
        self._kitty_id = kitty.image_id(id_seed(self))
        self._kitty_uploaded = False
        self._kitty_placed = False
        self._last_show = -1e9
        self._refine: Timer | None = None
        self._placeholder_cache: tuple[tuple[int, ...], list[Strip]] | None = None
        self._painted: tuple[int, Region, tuple[int, int], int] | None = None
        self._partial_cache: tuple[int, int, str] | None = None
        """(frame, pane region, screen size) of the image known intact on screen: a repaint
        that finds it so sends nothing."""
        self._frame_no = 0
        self._stale_lines: set[int] = set()
        """Half-block lines changed since the last render."""
        self.frames_sent = 0
        """Frames encoded and handed to the terminal (a repeated frame is not counted)."""
        self.bytes_encoded = 0
        """Bytes of graphics written (Kitty uploads and placements, Sixel and iTerm2
        sequences each time they are sent)."""
        self.writes = 0
        """How many times a Sixel or iTerm2 sequence went to the terminal."""
        self.on_frame_drawn: Callable[[Hashable], None] | None = None
        """Called the first time the lines of a new frame are handed to the compositor."""
        self._drawn_key: Hashable | None = None

    # ---- geometry ---------------------------------------------------------------------------
    @property
    def actual_pixels(self) -> bool:
        """Show frames 1:1 (Kitty and iTerm2 terminals do not enlarge them); else they fill
        the pane."""
        return self._actual_pixels

    @actual_pixels.setter
    def actual_pixels(self, value: bool) -> None:
        if value == self._actual_pixels:
            return
        self._actual_pixels = value
        frame = self._frame
        if frame is not None and (self.mode in PIXEL_MODES or frame.tolerance != self.tolerance):
            self._show(frame.pixels, frame.key, frame.cols, frame.rows, cheap=False)

    @property
    def tolerance(self) -> int:
        """Levels a full-quality frame's pixels may be off by (see :class:`Shown`): exact with
        ``[graphics] exact`` and in the 1:1 "actual pixels" view (where the reader looks at
        pixels), else :data:`NEAR_LOSSLESS`."""
        return 0 if self.decision.exact or self._actual_pixels else NEAR_LOSSLESS

    def _tolerance_for(self, pixels: np.ndarray) -> int:
        """:attr:`tolerance` for a grey frame; colour frames are sent as they are (a Sixel
        palette shares its registers between their greys and colours)."""
        return self.tolerance if pixels.ndim == 2 else 0

    @property
    def cell_pixels(self) -> tuple[int, int]:
        """Terminal pixels per cell (width, height)."""
        return self._cell

    @property
    def pixel_aspect(self) -> float:
        """Height over width of one frame pixel on screen (half-blocks: a half cell)."""
        if self.mode in (GraphicsMode.HALFCELL, GraphicsMode.SHADE):
            return halfcell_aspect(self._cell)
        return 1.0

    @property
    def native_pixels(self) -> bool:
        """Frames are never enlarged beyond the source: the terminal shows pixels."""
        return self.mode in PIXEL_MODES

    def pixel_box(self) -> tuple[int, int] | None:
        """The pixel size a frame should be rendered to fit in; None before layout."""
        width, height = self.content_size.width, self.content_size.height
        if width < 1 or height < 1:
            return None
        if self.mode in (GraphicsMode.HALFCELL, GraphicsMode.SHADE):
            return width, height * 2
        cell_w, cell_h = self._cell
        return width * cell_w, height * cell_h

    def cell_to_pixel(self, x: int, y: int) -> tuple[float, float] | None:
        """Output-pixel position at the centre of widget cell (x, y), if over the image."""
        frame = self._frame
        placement = frame.placement if frame is not None else None
        if placement is None:
            return None
        col, row = x + 0.5 - placement.left, y + 0.5 - placement.top
        if not (0 <= col < placement.cols and 0 <= row < placement.rows):
            return None
        return (
            col * placement.width_px / placement.cols,
            row * placement.height_px / placement.rows,
        )

    @property
    def shown(self) -> Shown | None:
        """What is on screen now (None: nothing)."""
        return self._frame.shown if self._frame is not None else None

    @property
    def _pixels(self) -> np.ndarray | None:
        """The frame on screen, as encoded (before padding)."""
        frame = self._frame
        if frame is None:
            return None
        return frame.sent if frame.sent is not None else frame.pixels

    @property
    def _placement(self) -> Placement | None:
        return self._frame.placement if self._frame is not None else None

    # ---- showing frames ---------------------------------------------------------------------
    def show(self, pixels: np.ndarray, key: Hashable, *, hurry: bool = False) -> bool:
        """Display ``pixels`` (uint8 grey or RGB, sized by :meth:`pixel_box`).

        ``key`` identifies the frame: showing the same key again does nothing, so an unchanged
        frame is never re-sent. ``hurry``: a newer frame is already on its way (a held key).
        On a slow link a hurried frame, or one that follows the last within
        :data:`REFINE_AFTER_S`, is sent as a draft, and refined once the reader pauses.
        Returns whether anything new was sent.
        """
        frame = self._frame
        width, height = self.content_size.width, self.content_size.height
        if frame is not None and key == frame.key and (frame.cols, frame.rows) == (width, height):
            return False
        if width < 1 or height < 1:
            return False
        now = time.monotonic()
        # Half-blocks already send fewer levels and only changed rows in low-bandwidth mode;
        # pixel protocols send every frame whole, so a draft saves on each one.
        quick = hurry or now - self._last_show < REFINE_AFTER_S
        cheap = self.mode in PIXEL_MODES and quick and self._slow_link()
        self._cancel_refine()
        self._show(pixels, key, width, height, cheap=cheap)
        self._last_show = time.monotonic()
        if cheap:
            self._refine = self.set_timer(REFINE_AFTER_S, self._refine_now)
        return True

    def _refine_now(self) -> None:
        self._refine = None
        frame = self._frame
        if frame is not None and frame.cheap:
            self._show(frame.pixels, frame.key, frame.cols, frame.rows, cheap=False)
            self.post_message(self.Refined(self))

    def _cancel_refine(self) -> None:
        if self._refine is not None:
            self._refine.stop()
            self._refine = None

    def _slow_link(self) -> bool:
        if self.low_bandwidth:
            return True
        probe = self.decision.probe
        if probe is not None and probe.completed and probe.asked:
            rounds = 2 if "XTSMGRAPHICS" in probe.asked else 1
            if probe.elapsed / rounds > SLOW_PROBE_S:
                return True
        return self._backlog() >= BACKLOG

    def _backlog(self) -> int:
        """Writes waiting in Textual's writer thread (0 when it cannot be told)."""
        writer = getattr(getattr(self.app, "_driver", None), "_writer_thread", None)
        queue = getattr(writer, "_queue", None)
        try:
            return int(queue.qsize()) if queue is not None else 0
        except (AttributeError, NotImplementedError):
            return 0

    def _show(
        self, pixels: np.ndarray, key: Hashable, width: int, height: int, *, cheap: bool
    ) -> None:
        previous = self._frame
        spans: list[tuple[int, int]] | None = None
        if self.mode in (GraphicsMode.HALFCELL, GraphicsMode.SHADE):
            frame, spans = self._encode_cells(pixels, key, width, height, cheap, previous)
        elif self.mode is GraphicsMode.KITTY:
            frame = self._encode_kitty(pixels, key, width, height, cheap)
        else:
            frame = self._encode_sequence(pixels, key, width, height, cheap)
        self._frame = frame
        self._frame_no += 1
        self.frames_sent += 1
        if self.mode is GraphicsMode.KITTY:
            self._send_kitty(frame, previous)
            return
        if self._same_cells(previous, frame):
            # Sixel, iTerm2: the cells around the image are as they were, and the image covers
            # all of its own: one line of its cells is repainted (a few bytes), and the new
            # sequence follows that update.
            place = frame.place
            assert place is not None
            self.refresh(Region(place.left, place.top, place.cols, 1))
            return
        if spans is None:
            self._stale_lines = set(range(height))
            self.refresh()
        elif spans:
            self._stale_lines |= {y for y, _ in spans}
            self.refresh(*[Region(0, y, right, 1) for y, right in spans])

    def _same_cells(self, previous: Frame | None, frame: Frame) -> bool:
        """A pixel-protocol frame over exactly the cells of the previous one, which is intact
        on screen (so nothing around the image needs painting again)."""
        return (
            self.mode in (GraphicsMode.SIXEL, GraphicsMode.ITERM2)
            and previous is not None
            and self._painted is not None
            and frame.place is not None
            and previous.place == frame.place
            and (previous.cols, previous.rows) == (frame.cols, frame.rows)
        )

    def clear(self) -> None:
        """Show nothing (black)."""
        self._cancel_refine()
        self._frame = None
        self._painted = None
        self._hide_kitty()
        self.refresh()

    def redraw(self) -> None:
        """Send the frame on screen again (after tmux or something else painted over it)."""
        frame = self._frame
        if frame is None:
            return
        self._painted = None
        if self.mode is GraphicsMode.KITTY:
            self._kitty_uploaded = False
            self._send_kitty(frame, None)
        self.refresh()

    # ---- Textual ----------------------------------------------------------------------------
    def on_mount(self) -> None:
        self.app.screen_change_signal.subscribe(self, self._screen_changed)
        collector.freeze_once()

    def _screen_changed(self, screen: Screen[Any]) -> None:
        if screen is not self.screen:
            # Covered (a dialog) or left (another mode): a placed Kitty image would stay on top,
            # and the other screen's text erases Sixel and iTerm2 images.
            self._painted = None
            self._hide_kitty()

    def on_resize(self, event: events.Resize) -> None:
        winsize = read_winsize(1)
        cell = cell_from_winsize(winsize) if self.decision.cell_source == "TIOCGWINSZ" else None
        if cell is not None:
            self._cell = cell  # the font may have changed size
        frame = self._frame
        if frame is not None and (frame.cols, frame.rows) != (event.size.width, event.size.height):
            # Drop the old frame at once: the pane is black until the new one arrives.
            self._cancel_refine()
            self._frame = None
            self._hide_kitty()
            self.refresh()
        self._painted = None
        # The screen's own resize does not cover a panel opening beside the image.
        self.post_message(self.Resized(self))

    def on_unmount(self) -> None:
        self._cancel_refine()
        self._hide_kitty(free=True)

    def render_lines(self, crop: Region) -> list[Strip]:
        frame = self._frame
        if frame is not None and self._drawn_key != frame.key:
            self._drawn_key = frame.key
            if self.on_frame_drawn is not None:
                self.on_frame_drawn(frame.key)
        if self.mode in (GraphicsMode.HALFCELL, GraphicsMode.SHADE):
            # The strips are final (no border, padding or tint to add): straight to the
            # compositor, past Textual's per-line styling (most of a frame's time otherwise).
            # Lines a frame left alone are taken as they are, as Textual's cache would.
            strips = frame.strips if frame is not None else None
            lines = []
            for y in crop.line_range:
                if strips is not None and y < len(strips) and y not in self._stale_lines:
                    line = strips[y]
                else:
                    line = self.render_line(y)
                lines.append(
                    line.crop(crop.x, crop.right) if crop.width != line.cell_length else line
                )
            self._stale_lines = set()
            return lines
        width = crop.width
        size = self.content_size
        if (
            frame is None
            or (frame.strips is None and not frame.sequence)
            or (frame.cols, frame.rows) != (size.width, size.height)
        ):
            # Nothing yet, or a frame made for another pane size (the layout changed and the
            # resize has not reached us yet): black, never the old frame at the new place.
            self._painted = None
            return [self._blank(width)] * crop.height
        if self.mode is GraphicsMode.KITTY:
            return self._kitty_lines(frame, crop)
        # Sixel, iTerm2: the image's cells are left alone (the cursor skips them: nothing is
        # written, and what lies below the widget does not show through), the cells around it
        # are black, and the image comes with the last line.
        place = frame.place
        assert place is not None
        region = self._screen_region()
        active = crop.height > 0 and region is not None and self._on_active_screen()
        free = self._free_rows() if active else 0
        visible = min(place.rows, free - place.top)
        lines = self._image_lines(crop, place, place.top + max(0, visible))
        if not active or region is None:
            return lines
        if visible < 1:
            self._painted = None  # what covers the pane erased the image under it
            return lines
        screen = (self.screen.size.width, self.screen.size.height)
        painted = (self._frame_no, region, screen, free)
        if self._painted == painted:
            return lines  # intact on screen: a repaint of the layout sends nothing
        self._painted = painted
        # Something over the lower rows (a notification): only the rows above it are drawn.
        sequence = frame.sequence if visible >= place.rows else self._partial(frame, visible)
        self.writes += 1
        self.bytes_encoded += len(sequence)
        move = Control.move_to(region.x + place.left, region.y + place.top).segment
        # The image follows the screen update through the same queue, never inside it: the
        # compositor writes only the dirty spans of the lines it asks for (a line-end segment
        # outside them, or under a notification, is dropped), and tmux drops passthrough that
        # arrives inside a synchronized update.
        self.call_after_refresh(self._write_raw, move.text + sequence)
        return lines

    def render_line(self, y: int) -> Strip:
        frame = self._frame
        strips = frame.strips if frame is not None else None
        if strips is not None and 0 <= y < len(strips):
            return strips[y]
        return self._blank(self.content_size.width)

    # ---- mouse ------------------------------------------------------------------------------
    def on_click(self, event: events.Click) -> None:
        where = self.cell_to_pixel(event.x, event.y)
        if where is not None:
            self.post_message(self.Clicked(*where))

    def on_mouse_move(self, event: events.MouseMove) -> None:
        if event.button == 1 and (event.delta_x or event.delta_y):
            self.post_message(self.Dragged(event.delta_x, event.delta_y))

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        event.stop()
        self.post_message(
            self.Wheeled(1, event.ctrl, event.meta, self.cell_to_pixel(event.x, event.y))
        )

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        event.stop()
        self.post_message(
            self.Wheeled(-1, event.ctrl, event.meta, self.cell_to_pixel(event.x, event.y))
        )


_ids = iter(range(1, 1 << 30))


def id_seed(view: ImageView) -> int:
    """A seed for the pane's Kitty image id: the process and a counter (two panes of one app
    differ; two apps in one terminal rarely collide)."""
    return os.getpid() * 7919 + next(_ids) * 104729
