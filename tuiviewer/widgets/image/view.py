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
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np
from rich.control import Control
from rich.segment import ControlType, Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.geometry import Region
from textual.message import Message
from textual.screen import Screen
from textual.strip import Strip
from textual.timer import Timer
from textual.widget import Widget

from tuiviewer.graphics import iterm2, kitty
from tuiviewer.graphics.pixels import (
    NEAR_LOSSLESS,
    Footprint,
    centred,
    grey_count,
    pad,
    quantised,
    within_one,
)
from tuiviewer.graphics.probe import (
    PIXEL_MODES,
    GraphicsDecision,
    GraphicsMode,
    cell_from_winsize,
    read_winsize,
    tmux_wrap,
)
from tuiviewer.graphics.sixel import MAX_GREY_LEVELS, SixelImage, encode_sixel
from tuiviewer.graphics.sixel import grey_levels as sixel_grey_levels
from tuiviewer.render.pipeline import RenderedImage
from tuiviewer.widgets.image.halfcell import (
    BLACK,
    Placement,
    StyleCache,
    changed_rows,
    halfcell_aspect,
    halfcell_lines,
    halfcell_placement,
    shade_lines,
    within_one_cells,
)
from tuiviewer.widgets.image.png import PngEncoder

LOW_BANDWIDTH_LEVELS = 32
"""Grey levels (per channel for colour) of half-block and Kitty frames in low-bandwidth mode."""
SIXEL_LOW_GREY_LEVELS = 16
"""Sixel greys in low-bandwidth mode."""
CHEAP_LEVELS = 16
"""Greys of a draft Sixel frame while a key is held on a slow link (half as many as
low-bandwidth mode's when that is on)."""
REFINE_AFTER_S = 0.15
"""A pause this long after a frame makes it the one the reader looks at: full quality."""
SLOW_PROBE_S = 0.06
"""A probe round trip slower than this marks the link as slow (cheap frames while keys repeat)."""
BACKLOG = 2
"""Writes queued in Textual's writer thread from which the link counts as backed up."""


@dataclass(frozen=True)
class Shown:
    """What the screen holds: the badge says exactly this."""

    protocol: str
    """``Kitty``, ``iTerm2``, ``Sixel``, ``half-blocks`` or ``shade``."""
    width: int
    height: int
    """Pixels of the frame as rendered (before padding)."""
    scale: float
    """Terminal pixels per frame pixel (1.0: 1:1; half-blocks: a pixel is half a cell)."""
    grey_levels: int | None
    """Greys that reach the screen, None for a colour frame."""
    source_greys: int | None
    """Greys the frame has, None for a colour frame."""
    cheap: bool = False
    """A draft frame sent while a key is held; the full one follows when the reader pauses."""
    pixel_exact: bool = False
    """One frame pixel is one terminal pixel (pixel protocols only)."""
    colours: int | None = None
    """Palette colours for the pixels that are not grey (Sixel), None when not counted."""
    tolerance: int = 0
    """Levels any pixel may be off by at the protocol's depth (8-bit; Sixel: percent): 0
    exact, 1 near-lossless (:func:`~tuiviewer.graphics.pixels.within_one`)."""


@dataclass
class _Frame:
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


class ImageView(Widget):
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
        self._frame: _Frame | None = None
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

    def _same_cells(self, previous: _Frame | None, frame: _Frame) -> bool:
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

    # ---- encoders ---------------------------------------------------------------------------
    def _greys(self, pixels: np.ndarray) -> int | None:
        return grey_count(pixels)

    def _encode_cells(
        self,
        pixels: np.ndarray,
        key: Hashable,
        width: int,
        height: int,
        cheap: bool,
        previous: _Frame | None,
    ) -> tuple[_Frame, list[tuple[int, int]] | None]:
        """The frame's lines, and the spans of them that differ from ``previous`` (None:
        all): only the lines a step changed are encoded and repainted (a crosshair that
        moves along a pane's rows changes two of them; the air beside a body is not sent)."""
        source_greys = self._greys(pixels)
        levels = CHEAP_LEVELS if cheap else LOW_BANDWIDTH_LEVELS if self.low_bandwidth else 256
        shown = pixels if levels >= 256 else quantised(pixels, levels)
        # Near-lossless only where the colour system shows every grey (else it is coarser).
        truecolour = self.decision.grey_levels >= 256 and self.mode is GraphicsMode.HALFCELL
        tolerance = self._tolerance_for(pixels) if levels >= 256 and truecolour else 0
        if tolerance:
            shown = within_one_cells(shown)
        shown_greys = self._greys(shown) if tolerance else source_greys
        spans: list[tuple[int, int]] | None = None
        strips: list[Strip] | None = None
        if self.mode is GraphicsMode.SHADE:
            lines, placement = shade_lines(shown, width, height)
            greys = 5
            protocol = "shade"
        else:
            old = previous.strips if previous is not None else None
            same_pane = previous is not None and (previous.cols, previous.rows) == (width, height)
            if previous is not None and old is not None and same_pane:
                before = previous.sent if previous.sent is not None else previous.pixels
                placed = halfcell_placement(shown.shape, width, height)
                spans = changed_rows(before, shown, previous.placement, placed)
            only = {y for y, _ in spans} if spans is not None else None
            lines, placement = halfcell_lines(shown, width, height, self._styles, only)
            if old is not None and only is not None:
                # Lines the step left alone: the previous frame's strips, as they are.
                strips = [
                    Strip(segments, width) if y in only else old[y]
                    for y, segments in enumerate(lines)
                ]
            greys = min(levels, self.decision.grey_levels)
            protocol = "half-blocks"
        if strips is None:
            strips = [Strip(segments, width) for segments in lines]
        h, w = pixels.shape[:2]
        info = Shown(
            protocol,
            w,
            h,
            float(self._cell[0]),
            min(greys, shown_greys) if shown_greys is not None else None,
            source_greys,
            cheap=cheap,
            tolerance=tolerance,
        )
        frame = _Frame(key, pixels, width, height, sent=shown, strips=strips,
                       placement=placement, shown=info, cheap=cheap,
                       tolerance=tolerance)  # fmt: skip
        return frame, spans

    def _fit(
        self, pixels: np.ndarray, width: int, height: int
    ) -> tuple[np.ndarray, Footprint, float, np.ndarray]:
        """How a frame sits in a pane of ``width`` × ``height`` cells: the frame (cut to the
        pane if it is larger and the protocol cannot shrink it), the whole cells it covers,
        centred, with the padding that fills them, the terminal pixels per frame pixel (1 for
        Sixel and in 1:1 mode), and the frame padded to those cells."""
        cell_w, cell_h = self._cell
        pane_w, pane_h = width * cell_w, height * cell_h
        h, w = pixels.shape[:2]
        fits = min(pane_w / w, pane_h / h)
        if self.mode is GraphicsMode.SIXEL:
            scale = 1.0  # a Sixel pixel is a terminal pixel
            pixels = pixels[:pane_h, :pane_w]
        elif self.actual_pixels:
            scale = min(1.0, fits)
        else:
            scale = fits
        h, w = pixels.shape[:2]
        place = centred(w, h, (cell_w, cell_h), (width, height), scale)
        return pixels, place, scale, pad(pixels, place)

    def _placement_of(self, pixels: np.ndarray, place: Footprint, scale: float) -> Placement:
        cell_w, cell_h = self._cell
        h, w = pixels.shape[:2]
        return Placement(
            place.left + place.pad_left * scale / cell_w,
            place.top + place.pad_top * scale / cell_h,
            w * scale / cell_w,
            h * scale / cell_h,
            w,
            h,
        )

    def _encode_sequence(
        self, pixels: np.ndarray, key: Hashable, width: int, height: int, cheap: bool
    ) -> _Frame:
        shown, place, scale, padded = self._fit(pixels, width, height)
        source_greys, (h, w) = self._greys(pixels), shown.shape[:2]
        levels = SIXEL_LOW_GREY_LEVELS if self.low_bandwidth else MAX_GREY_LEVELS
        if cheap:
            levels = CHEAP_LEVELS if levels > CHEAP_LEVELS else max(4, levels // 2)
        tolerance = self._tolerance_for(pixels) if levels >= MAX_GREY_LEVELS else 0
        sequence, image = self._sequence_of(
            padded, place.cols, place.rows, levels, cheap, tolerance
        )
        if image is not None:
            shown_greys, frame_greys = sixel_grey_levels(shown, image.grey_cap, image.tolerance)
            info = Shown(
                "Sixel", w, h, scale, shown_greys if frame_greys else None,
                frame_greys or None, cheap, pixel_exact=True, colours=image.colours or None,
                tolerance=image.tolerance,
            )  # fmt: skip
        else:
            exact = abs(scale - 1.0) < 1e-9 and not cheap
            greys = self._greys(within_one(shown)) if tolerance else source_greys
            info = Shown("iTerm2", w, h, scale, greys, source_greys, cheap, exact,
                         tolerance=tolerance)  # fmt: skip
        return _Frame(key, pixels, width, height, sequence=sequence, place=place,
                      padded=padded, scale=scale, levels=levels,
                      placement=self._placement_of(shown, place, scale), shown=info,
                      cheap=cheap, tolerance=tolerance)  # fmt: skip

    def _sequence_of(
        self, padded: np.ndarray, cols: int, rows: int, levels: int, cheap: bool, tolerance: int
    ) -> tuple[str, SixelImage | None]:
        """The Sixel or iTerm2 sequence of padded pixels over ``cols`` × ``rows`` cells (tmux
        wrapped when needed, each pixel within ``tolerance`` levels), and the Sixel image's
        palette facts."""
        image = None
        if self.mode is GraphicsMode.SIXEL:
            image = encode_sixel(
                padded, registers=self.decision.registers, grey_levels=levels, tolerance=tolerance
            )
            sequence = image.data
        else:
            if tolerance:
                padded = within_one(padded)
            png = self._png.encode(padded[::2, ::2] if cheap else padded)
            sequence = iterm2.inline_image(png, cols, rows)
        if self.decision.tmux:
            sequence = tmux_wrap(sequence)
        return sequence, image

    def _partial(self, frame: _Frame, rows: int) -> str:
        """The frame's sequence for the top ``rows`` cell rows of its cells only (something
        covers the rest: drawing all of it would paint over that)."""
        cached = self._partial_cache
        if cached is not None and cached[:2] == (self._frame_no, rows):
            return cached[2]
        assert frame.padded is not None
        assert frame.place is not None
        height = round(rows * self._cell[1] / frame.scale)
        top = np.ascontiguousarray(frame.padded[:height])
        sequence, _ = self._sequence_of(
            top, frame.place.cols, rows, frame.levels, frame.cheap, frame.tolerance
        )
        self._partial_cache = (self._frame_no, rows, sequence)
        return sequence

    def _encode_kitty(
        self, pixels: np.ndarray, key: Hashable, width: int, height: int, cheap: bool
    ) -> _Frame:
        shown, place, scale, padded = self._fit(pixels, width, height)
        source_greys, (h, w) = self._greys(pixels), shown.shape[:2]
        greys = source_greys
        tolerance = 0 if self.low_bandwidth else self._tolerance_for(pixels)
        if self.low_bandwidth:
            padded = quantised(padded, LOW_BANDWIDTH_LEVELS)
            greys = min(greys, LOW_BANDWIDTH_LEVELS) if greys is not None else None
        elif tolerance:
            padded = within_one(padded)
            greys = self._greys(within_one(shown))
        full = padded
        if cheap:
            padded = padded[::2, ::2]
        exact = abs(scale - 1.0) < 1e-9 and not cheap
        info = Shown("Kitty", w, h, scale, greys, source_greys, cheap, exact, tolerance=tolerance)
        # What was uploaded, and terminal pixels per uploaded pixel (a draft is half size).
        uploaded_scale = scale * full.shape[1] / padded.shape[1]
        frame = _Frame(key, pixels, width, height, place=place, padded=padded,
                       scale=uploaded_scale,
                       placement=self._placement_of(shown, place, scale), shown=info,
                       cheap=cheap, tolerance=tolerance)  # fmt: skip
        frame.sequence = kitty.transmit(self._kitty_id, self._png.encode(padded))
        if self.decision.kitty_placeholders:
            frame.strips = self._placeholder_strips(width, height, place)
        return frame

    def _placeholder_strips(self, width: int, height: int, place: Footprint) -> list[Strip]:
        """The pane's lines: black, with placeholder cells where the image goes."""
        key = (width, height, place.left, place.top, place.cols, place.rows)
        cached = self._placeholder_cache
        if cached is not None and cached[0] == key:
            return cached[1]
        from rich.color import Color

        style = Style(color=Color.from_ansi(kitty.colour_of(self._kitty_id)), bgcolor="black")
        cols, rows = min(place.cols, kitty.MAX_CELLS), min(place.rows, kitty.MAX_CELLS)
        cells = kitty.placeholder_rows(self._kitty_id, cols, rows)
        right = width - place.left - cols
        strips = []
        for y in range(height):
            if place.top <= y < place.top + rows:
                segments = [Segment(" " * place.left, BLACK)] if place.left else []
                segments.append(Segment(cells[y - place.top], style))
                if right > 0:
                    segments.append(Segment(" " * right, BLACK))
                strips.append(Strip(segments, width))
            else:
                strips.append(self._blank(width))
        self._placeholder_cache = (key, strips)
        return strips

    # ---- Kitty ------------------------------------------------------------------------------
    def _write(self, data: str) -> None:
        if self.decision.tmux:
            data = tmux_wrap(data)
        self.bytes_encoded += len(data)
        # Through Textual's writer queue: ordered with the screen updates, never interleaved.
        self._write_raw(data)

    def _write_raw(self, data: str) -> None:
        """Write ``data`` as it is (already wrapped for tmux) through Textual's queue."""
        driver = getattr(self.app, "_driver", None)
        if driver is not None and not self.app.is_headless:
            driver.write(data)

    def _send_kitty(self, frame: _Frame, previous: _Frame | None) -> None:
        assert frame.place is not None
        cols, rows = min(frame.place.cols, kitty.MAX_CELLS), min(frame.place.rows, kitty.MAX_CELLS)
        if self.decision.kitty_placeholders:
            # The data replaces the image and drops its placement: a new virtual one follows.
            self._write(frame.sequence + kitty.place_virtual(self._kitty_id, cols, rows))
            self._kitty_uploaded = True
            if previous is None or previous.strips is not frame.strips:
                self.refresh()
            return
        region = self._screen_region()
        if region is None or not self._on_active_screen():
            self._write(frame.sequence)
            self._kitty_uploaded = True
            self._kitty_placed = False
            return
        free = self._free_rows()
        place = self._kitty_place(frame, region, free)
        self._write(frame.sequence + place)
        self._kitty_uploaded = True
        self._kitty_placed = bool(place)
        size = self.screen.size
        self._painted = (self._frame_no, region, (size.width, size.height), free)

    def _kitty_place(self, frame: _Frame, region: Region, free: int) -> str:
        """Cursor to the image's cells and the placement of a direct Kitty image over those of
        its rows above ``free`` (the pane's rows nothing covers); "" when none is free."""
        place = frame.place
        assert place is not None and frame.padded is not None
        cols, rows = min(place.cols, kitty.MAX_CELLS), min(place.rows, kitty.MAX_CELLS)
        visible = min(rows, free - place.top)
        if visible < 1:
            return ""
        move = Control.move_to(region.x + place.left, region.y + place.top).segment.text
        if visible >= rows:
            return move + kitty.place_here(self._kitty_id, cols, rows)
        width, height = frame.padded.shape[1], round(visible * self._cell[1] / frame.scale)
        return move + kitty.place_here(self._kitty_id, cols, visible, source=(width, height))

    def _hide_kitty(self, *, free: bool = False) -> None:
        if self.mode is not GraphicsMode.KITTY or not self._kitty_uploaded:
            return
        if free:
            self._write(kitty.delete(self._kitty_id))
            self._kitty_uploaded = False
        elif not self.decision.kitty_placeholders and self._kitty_placed:
            self._write(kitty.delete_placements(self._kitty_id))
        self._kitty_placed = False

    def _screen_region(self) -> Region | None:
        try:
            return self.screen.find_widget(self).region
        except Exception:  # noqa: BLE001 - not on screen (NoScreen, NoWidget)
            return None

    def _on_active_screen(self) -> bool:
        try:
            return self.screen.is_active
        except Exception:  # noqa: BLE001 - no screen yet
            return False

    # ---- Textual ----------------------------------------------------------------------------
    def on_mount(self) -> None:
        self.app.screen_change_signal.subscribe(self, self._screen_changed)

    def _screen_changed(self, screen: Screen[Any]) -> None:
        if screen is not self.screen:
            # Covered (a dialog) or left (another mode): a placed Kitty image would stay on top,
            # and the other screen's text erases Sixel and iTerm2 images.
            self._painted = None
            self._hide_kitty()

    def _free_rows(self) -> int:
        """How many cell rows of the pane, from its top, nothing else is drawn over (a
        notification at the bottom right covers the rows below it; all of them when nothing)."""
        rows = self.content_size.height
        try:
            compositor = self.screen._compositor
            mine = compositor.find_widget(self)
            top = mine.region.y
            for widget, (region, clip) in compositor.visible_widgets.items():
                # Containers (the notifications' rack spans the screen) paint through their
                # children; only what has none paints over the pane.
                if widget is self or widget in self.ancestors or widget.children:
                    continue
                covering = clip.intersection(region).intersection(mine.region)
                if covering.area and compositor.find_widget(widget).order > mine.order:
                    rows = min(rows, covering.y - top)
        except Exception:  # noqa: BLE001 - Textual internals: assume nothing is on top
            return self.content_size.height
        return max(0, rows)

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

    def _blank(self, width: int) -> Strip:
        return Strip([Segment(" " * width, BLACK)], width)

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

    def _image_lines(self, crop: Region, place: Footprint, image_bottom: int) -> list[Strip]:
        """Lines of ``crop``: black, but the image's cells above ``image_bottom`` skipped."""
        lines = []
        left, right = crop.x, crop.x + crop.width
        cells_left, cells_right = place.left, place.left + place.cols
        for y in range(crop.y, crop.y + crop.height):
            if not place.top <= y < image_bottom:
                lines.append(self._blank(crop.width))
                continue
            before = max(0, min(right, cells_left) - left)
            inside = max(0, min(right, cells_right) - max(left, cells_left))
            after = crop.width - before - inside
            segments = [Segment(" " * before, BLACK)] if before else []
            if inside:
                segments.append(_skip_segment(inside))
            if after:
                segments.append(Segment(" " * after, BLACK))
            lines.append(Strip(segments, crop.width))
        return lines

    def _kitty_lines(self, frame: _Frame, crop: Region) -> list[Strip]:
        if frame.strips is not None:  # placeholders
            lines = []
            for y in range(crop.y, crop.y + crop.height):
                strip = frame.strips[y] if y < len(frame.strips) else self._blank(frame.cols)
                lines.append(strip.crop(crop.x, crop.x + crop.width))
            return lines
        lines = [self._blank(crop.width)] * crop.height
        region = self._screen_region()
        if region is None or not self._on_active_screen() or not self._kitty_uploaded:
            return lines
        free = self._free_rows()
        if free <= (frame.place.top if frame.place is not None else 0):
            self._hide_kitty()  # a dialog-like widget over the pane: the image would hide it
            self._painted = None
            return lines
        screen = (self.screen.size.width, self.screen.size.height)
        painted = (self._frame_no, region, screen, free)
        if self._kitty_placed and self._painted == painted:
            return lines
        # A repaint of the pane (a dialog closed, the screen came back, a notification came or
        # went): place it again, over the rows nothing else covers.
        self._painted = painted
        place = self._kitty_place(frame, region, free)
        if self.decision.tmux:
            place = tmux_wrap(place)
        self._kitty_placed = True
        self.bytes_encoded += len(place)
        self.call_after_refresh(self._write_raw, place)
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


def _skip_segment(width: int) -> Segment:
    """Moves the cursor over ``width`` cells and writes nothing."""
    return Segment(f"\x1b[{width}C", None, [(ControlType.CURSOR_FORWARD, width)])


_ids = iter(range(1, 1 << 30))


def id_seed(view: ImageView) -> int:
    """A seed for the pane's Kitty image id: the process and a counter (two panes of one app
    differ; two apps in one terminal rarely collide)."""
    return os.getpid() * 7919 + next(_ids) * 104729


def badge_text(
    shown: Shown | None, image: RenderedImage, source_per_pixel: float, *, low_bandwidth: bool
) -> Text:
    """The line under the image: protocol, pixel size, ratio to the source, grey levels.

    ``source_per_pixel`` is source pixels per frame pixel along the coarser axis (above 1:
    downsampled, below 1: enlarged by zooming). "1:1" only when one source pixel is one
    terminal pixel; anything the screen does not show of the source marks the line ``◩``.
    """
    parts: list[str] = []
    lost = False
    if shown is None:
        return Text("")
    parts.append(f"{shown.protocol} {shown.width}×{shown.height} px")
    exact = abs(source_per_pixel - 1.0) < 1e-6
    if source_per_pixel > 1.0 + 1e-6:
        parts.append(f"downsampled {source_per_pixel:.1f}:1")
        lost = True
    elif not exact:
        parts.append(f"zoomed ×{1 / source_per_pixel:.2f}")
    if shown.protocol in ("half-blocks", "shade"):
        parts.append("1 px = ½ cell" if shown.protocol == "half-blocks" else "1 px = ½ shade")
    elif abs(shown.scale - 1.0) > 1e-6:
        parts.append(f"×{shown.scale:.2f} by the terminal")
    elif exact and shown.pixel_exact:
        parts.append("1:1")
    if shown.source_greys is None:
        parts.append("colour")
    elif shown.grey_levels is not None and shown.grey_levels < shown.source_greys:
        parts.append(f"{shown.grey_levels} of {shown.source_greys} grey levels")
        lost = True
    else:
        parts.append(f"all {shown.source_greys} grey levels")
    if shown.tolerance:
        # Near-lossless: say by how much, at the protocol's own depth.
        unit = " %" if shown.protocol == "Sixel" else f" level{'s' * (shown.tolerance > 1)}"
        parts.append(f"each within ±{shown.tolerance}{unit}")
        lost = True
    if shown.colours:
        parts.append(f"{shown.colours} colours")
    if shown.cheap:
        parts.append("draft while keys repeat")
        lost = True
    if low_bandwidth:
        parts.append("low-bandwidth")
    if image.lossy:
        parts.append("lossy compressed source")
        lost = True
    line = " · ".join(parts)
    return Text("◩ " + line, "bold") if lost else Text(line, "dim")
