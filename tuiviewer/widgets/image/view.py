"""The image area of the viewer: one 8-bit frame shown with Kitty, Sixel or half-blocks.

This is the only module that touches textual-image. It does not use textual-image's ``Image``
widget as is, for reasons read in its 0.12 source: that widget builds a new renderable on every
``render()``, so a Kitty image is transmitted again whenever the widget is redrawn; its
half-cell renderable resizes with PIL and creates a ``Style`` per pixel on each redraw (~15-25 ms
for one 80×40 slice); and its Kitty renderable writes to ``sys.__stdout__`` directly, racing
Textual's writer thread. Here a frame is encoded once, when :meth:`ImageView.show` receives
it, already sized to the widget's cells by the render pipeline:

- half-blocks: ``▀`` cells with the upper pixel as foreground and the lower as background
  (a space on the background where both are equal: one colour to send instead of two),
  runs of equal cells merged and styles cached, kept as ready-made strips (the line API), so a
  repaint of anything else re-sends nothing and a repaint of this widget re-encodes nothing;
- Kitty: the PNG (grey "L" stays grey, a third of RGB) goes through Textual's own driver
  queue once per frame, then only the Unicode placeholders of textual-image are drawn;
- Sixel: our own vectorised encoder (:mod:`tuiviewer.widgets.image.sixel`) at the frame's size,
  never enlarged (a Sixel pixel is a terminal pixel), sent by a child widget that leaves its
  cells unwritten and emits the sequence with its last line, as textual-image's Sixel widget
  does, but without its Python encoder (~100 ms a 512² slice) and its re-compose per image.

In low-bandwidth mode (``--low-bandwidth``) half-block and Kitty frames are quantised to
:data:`LOW_BANDWIDTH_LEVELS` levels per channel and Sixel to fewer colours, so neighbouring cells
merge into runs (and PNGs compress better), and only the half-block cell rows that differ from
the previous frame are repainted.

:func:`prepare_graphics` imports textual-image before the app starts, because it probes the
terminal at import time, and blinds those probes where they are unsafe (SSH, tmux, forced
mode; see :mod:`tuiviewer.widgets.image.probe`).
"""

from __future__ import annotations

import base64
import io
import os
import sys
from collections.abc import Callable, Hashable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image as PILImage
from rich.color import Color
from rich.control import Control
from rich.segment import ControlType, Segment
from rich.style import Style
from textual import events
from textual.app import ComposeResult
from textual.dom import NoScreen
from textual.errors import NoWidget
from textual.geometry import Region
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from tuiviewer.widgets.image.probe import (
    ColorPlan,
    GraphicsDecision,
    GraphicsMode,
    decide_graphics,
    may_probe,
    plan_colors,
)
from tuiviewer.widgets.image.sixel import (
    DEFAULT_GREY_LEVELS,
    DEFAULT_RGB_LEVELS,
    encode_sixel,
    quantised,
)

_UPPER_HALF = "▀"
_SHADES = np.array(["█", "▓", "▒", "░", " "][::-1])  # dark → light as grey rises
_BLACK = Style(bgcolor=Color.from_rgb(0, 0, 0))
_STYLE_CACHE_LIMIT = 70_000
_NULL_STYLE = Style()

LOW_BANDWIDTH_LEVELS = 32
"""Grey levels (per channel for colour) of half-block frames in low-bandwidth mode."""
SIXEL_LOW_GREY_LEVELS = 16
SIXEL_LOW_RGB_LEVELS = 4
"""Sixel palettes in low-bandwidth mode: 16 greys, or 4³ = 64 colours."""


class _NotATerminal:
    """``sys.__stdout__`` as textual-image must see it when it may not probe."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextmanager
def _probes_disabled() -> Iterator[None]:
    saved = sys.__stdout__
    sys.__stdout__ = _NotATerminal(saved)  # type: ignore[misc,assignment]
    try:
        yield
    finally:
        sys.__stdout__ = saved  # type: ignore[misc]


def prepare_graphics(
    requested: GraphicsMode = GraphicsMode.AUTO,
    env: Mapping[str, str] | None = None,
    color: ColorPlan | None = None,
) -> GraphicsDecision:
    """Import textual-image (probing the terminal only where safe) and decide the mode.

    Call before the app runs: once Textual reads stdin, the terminal's answers are lost.
    """
    env = os.environ if env is None else env
    is_tty = bool(sys.__stdout__ is not None and sys.__stdout__.isatty())
    probe = may_probe(requested, env, is_tty=is_tty)
    detected: GraphicsMode | None = None
    if probe:
        import textual_image.renderable as auto
        import textual_image.widget  # noqa: F401 - measures the cell size while it still can
        from textual_image.renderable.sixel import Image as SixelRenderable
        from textual_image.renderable.tgp import Image as TGPRenderable

        if auto.Image is TGPRenderable:
            detected = GraphicsMode.KITTY
        elif auto.Image is SixelRenderable:
            detected = GraphicsMode.SIXEL
        else:
            detected = GraphicsMode.HALFCELL
    else:
        with _probes_disabled():
            import textual_image.renderable  # noqa: F401
            import textual_image.widget  # noqa: F401
    from textual_image._terminal import get_cell_size

    cell = get_cell_size()
    return decide_graphics(
        requested,
        env,
        is_tty=is_tty,
        detected=detected,
        cell_size=(int(cell.width), int(cell.height)),
        color=color or plan_colors(env),
    )


# --------------------------------------------------------------------------------------------
# Encoders


@dataclass(frozen=True)
class Placement:
    """Where the image sits in the widget, in cells, and its size in pixels."""

    left: int
    top: int
    cols: int
    rows: int
    width_px: int
    height_px: int


class _StyleCache:
    """Half-block styles by (upper, lower) colour: a grey slice reuses at most 65,536."""

    def __init__(self) -> None:
        self._styles: dict[Hashable, Style] = {}

    def get(self, upper: Hashable, lower: Hashable) -> Style:
        key = (upper, lower)
        style = self._styles.get(key)
        if style is None:
            if len(self._styles) > _STYLE_CACHE_LIMIT:
                self._styles.clear()
            if upper == lower:
                # Drawn as a space: one colour in the escape sequence instead of two.
                style = Style(bgcolor=_rgb(lower))
            else:
                style = Style(color=_rgb(upper), bgcolor=_rgb(lower))
            self._styles[key] = style
        return style


def _rgb(value: Hashable) -> Color:
    if isinstance(value, tuple):
        return Color.from_rgb(*value)
    grey = int(value)  # type: ignore[call-overload]
    return Color.from_rgb(grey, grey, grey)


def _runs(keys: np.ndarray) -> list[tuple[int, int]]:
    """(start, length) of runs of equal values along a 1-D array."""
    if keys.size == 0:
        return []
    edges = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    starts = np.concatenate(([0], edges))
    ends = np.concatenate((edges, [keys.size]))
    return list(zip(starts.tolist(), (ends - starts).tolist(), strict=True))


def halfcell_strips(
    pixels: np.ndarray, width: int, height: int, styles: _StyleCache
) -> tuple[list[Strip], Placement]:
    """Strips of ``▀`` for a uint8 image, centred in ``width`` × ``height`` cells."""
    img = pixels
    if img.shape[0] % 2:
        pad = np.zeros((1, *img.shape[1:]), dtype=np.uint8)
        img = np.concatenate([img, pad])
    rows, cols = img.shape[0] // 2, min(img.shape[1], width)
    rows = min(rows, height)
    img = img[: rows * 2, :cols]
    left = max(0, (width - cols) // 2)
    top = max(0, (height - rows) // 2)
    right = max(0, width - cols - left)
    blank = Strip([Segment(" " * width, _BLACK)], width)
    strips = [blank] * top
    grey = img.ndim == 2
    for r in range(rows):
        upper, lower = img[2 * r], img[2 * r + 1]
        if grey:
            keys = upper.astype(np.int32) * 256 + lower
        else:
            packed_u = (upper[:, 0].astype(np.int64) << 16) | (upper[:, 1] << 8) | upper[:, 2]
            packed_l = (lower[:, 0].astype(np.int64) << 16) | (lower[:, 1] << 8) | lower[:, 2]
            keys = (packed_u << 24) | packed_l
        segments = [Segment(" " * left, _BLACK)] if left else []
        for start, length in _runs(keys):
            fg: Hashable = int(upper[start]) if grey else tuple(upper[start].tolist())
            bg: Hashable = int(lower[start]) if grey else tuple(lower[start].tolist())
            # A cell of one colour is a space on that background (shorter escape sequence).
            glyph = " " if fg == bg else _UPPER_HALF
            segments.append(Segment(glyph * length, styles.get(fg, bg)))
        if right:
            segments.append(Segment(" " * right, _BLACK))
        strips.append(Strip(segments, width))
    strips.extend([blank] * max(0, height - top - rows))
    return strips, Placement(left, top, cols, rows, cols, rows * 2)


def shade_strips(pixels: np.ndarray, width: int, height: int) -> tuple[list[Strip], Placement]:
    """One shade character per cell (rows averaged in pairs: a cell is two pixels tall)."""
    img = pixels if pixels.ndim == 2 else pixels.mean(axis=2)
    if img.shape[0] % 2:
        img = np.concatenate([img, img[-1:]])
    cells = (img[0::2].astype(np.float32) + img[1::2]) / 2.0
    rows, cols = min(cells.shape[0], height), min(cells.shape[1], width)
    cells = cells[:rows, :cols]
    index = np.clip((cells * len(_SHADES) / 256.0).astype(np.int64), 0, len(_SHADES) - 1)
    left, top = max(0, (width - cols) // 2), max(0, (height - rows) // 2)
    blank = Strip([Segment(" " * width)], width)
    strips = [blank] * top
    for r in range(rows):
        text = " " * left + "".join(_SHADES[index[r]].tolist())
        strips.append(Strip([Segment(text.ljust(width))], width))
    strips.extend([blank] * max(0, height - top - rows))
    return strips, Placement(left, top, cols, rows, cols, rows * 2)


def kitty_transmit(image_id: int, png: bytes) -> str:
    """Escape sequences that upload a PNG under ``image_id`` (chunks of 4096 base64 bytes)."""
    data = base64.standard_b64encode(png).decode("ascii")
    parts = []
    first = True
    while data:
        chunk, data = data[:4096], data[4096:]
        keys = f"a=t,f=100,i={image_id},q=2," if first else ""
        parts.append(f"\x1b_G{keys}m={1 if data else 0};{chunk}\x1b\\")
        first = False
    return "".join(parts)


def kitty_place(image_id: int, cols: int, rows: int) -> str:
    """A virtual placement that Unicode placeholders of ``cols`` × ``rows`` cells display."""
    return f"\x1b_Ga=p,U=1,i={image_id},c={cols},r={rows},q=2\x1b\\"


def kitty_delete(image_id: int) -> str:
    """Delete the image and free its data (``d=I``; textual-image's ``a=d,I=`` keeps it)."""
    return f"\x1b_Ga=d,d=I,i={image_id},q=2\x1b\\"


def _png(pixels: np.ndarray) -> bytes:
    mode = "L" if pixels.ndim == 2 else "RGB"
    buffer = io.BytesIO()
    PILImage.fromarray(np.ascontiguousarray(pixels), mode).save(
        buffer, format="png", compress_level=2
    )
    return buffer.getvalue()


def kitty_strips(
    image_id: int, cols: int, rows: int, width: int, height: int
) -> tuple[list[Strip], int, int]:
    """textual-image's placeholder lines for the image, centred; returns (strips, left, top)."""
    from textual_image.renderable.tgp import Image as TGPRenderable

    # _render_diacritics only reads terminal_image_id; no image data is involved.
    holder = TGPRenderable.__new__(TGPRenderable)
    holder.terminal_image_id = image_id
    lines = list(holder._render_diacritics(cols, rows))
    left, top = max(0, (width - cols) // 2), max(0, (height - rows) // 2)
    right = max(0, width - cols - left)
    blank = Strip([Segment(" " * width, _BLACK)], width)
    strips = [blank] * top
    for line in lines:
        segments = [Segment(" " * left, _BLACK)] if left else []
        segments.append(Segment(line.text.rstrip("\n"), line.style))
        if right:
            segments.append(Segment(" " * right, _BLACK))
        strips.append(Strip(segments, width))
    strips.extend([blank] * max(0, height - top - rows))
    return strips, left, top


def next_kitty_id() -> int:
    """An image id from textual-image's counter, so ids never clash with its own images."""
    from textual_image.renderable.tgp import Image as TGPRenderable

    # Ids must fit 24 bits of placeholder colour plus one diacritic byte (32 bits).
    return int(next(TGPRenderable._image_id_counter)) % (2**32 - 1) + 1


def changed_rows(
    before: np.ndarray,
    after: np.ndarray,
    placed_before: Placement | None,
    placed_after: Placement | None,
) -> list[Region] | None:
    """Regions of the half-block widget to repaint between two frames (None: all of it).

    A cell row is repainted from the widget's left edge up to its last changed cell (Textual
    writes a line's dirty span from the start of the widget's chop): the air around a body and
    the anatomy that a slice step leaves alike are not sent again.
    """
    if placed_before is None or placed_after is None or placed_before != placed_after:
        return None
    if before.shape != after.shape:
        return None
    rows, cols = placed_after.rows, placed_after.cols
    differs = before[: rows * 2, :cols] != after[: rows * 2, :cols]
    if differs.ndim == 3:
        differs = differs.any(axis=2)
    if differs.shape[0] % 2:
        differs = np.concatenate([differs, np.zeros((1, differs.shape[1]), dtype=bool)])
    per_cell = differs[0::2] | differs[1::2]
    regions = []
    for row in np.flatnonzero(per_cell.any(axis=1)).tolist():
        last = int(np.flatnonzero(per_cell[row])[-1])
        regions.append(Region(0, placed_after.top + row, placed_after.left + last + 1, 1))
    return regions


class SixelCanvas(Widget, can_focus=False):
    """Where a Sixel image lands: its cells are never written, the image comes with its last line.

    Text written into a cell erases the Sixel pixels under it in most terminals, so every line
    but the last is an empty strip (the compositor writes nothing there), and the last line
    moves the cursor to the top-left cell, writes the image, and moves back to where the line
    ends. The sequence is only written when this widget's last line is repainted: a new frame,
    a resize, or something that covered the image going away.
    """

    DEFAULT_CSS = """
    SixelCanvas {
        width: auto;
        height: auto;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.data = ""
        """The Sixel sequence of the frame on screen ("" for nothing)."""
        self.writes = 0
        """How many times the sequence was handed to the compositor."""

    def render_lines(self, crop: Region) -> list[Strip]:
        empty = [Strip([])] * crop.height
        if not self.data or crop.height < 1 or crop.bottom < self.size.height:
            return empty
        try:
            region = self.screen.find_widget(self).region
        except (NoScreen, NoWidget):
            return empty
        if not self.screen.is_active:
            return empty  # a dialog on top: drawing now would paint over it
        # The compositor writes the chops of one line one after another: the line must go on
        # where this widget's last line ends, so the cursor is put back there.
        segments = [
            Control.move_to(region.x, region.y).segment,
            Segment(self.data, _NULL_STYLE, [(ControlType.CURSOR_FORWARD, 0)]),
            Control.move_to(region.right, region.bottom - 1).segment,
        ]
        self.writes += 1
        return [*empty[:-1], Strip(segments, crop.width)]


# --------------------------------------------------------------------------------------------
# The widget


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
        """The wheel turned: +1 down (next slice), -1 up."""

        step: int

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
        self._key: Hashable | None = None
        self._strips: list[Strip] = []
        self._placement: Placement | None = None
        self._styles = _StyleCache()
        self._kitty_id: int | None = None
        self._sixel: SixelCanvas | None = None
        self._pixels: np.ndarray | None = None
        self.frames_sent = 0
        """Frames encoded and handed to the terminal (a repeated frame is not counted)."""
        self.bytes_encoded = 0
        """Bytes written outside the cell text (Kitty uploads, placements and deletions)."""
        self.on_frame_drawn: Callable[[Hashable], None] | None = None
        """Called the first time the strips of a new frame are handed to the compositor."""
        self._drawn_key: Hashable | None = None

    # ---- geometry ---------------------------------------------------------------------------
    @property
    def cell_pixels(self) -> tuple[int, int]:
        """Terminal pixels per cell (width, height)."""
        return self.decision.cell_size or (10, 20)

    def pixel_box(self) -> tuple[int, int] | None:
        """The pixel size a frame should be rendered to fit in; None before layout."""
        width, height = self.content_size.width, self.content_size.height
        if width < 1 or height < 1:
            return None
        if self.mode in (GraphicsMode.HALFCELL, GraphicsMode.SHADE):
            return width, height * 2
        cell_w, cell_h = self.cell_pixels
        return width * cell_w, height * cell_h

    def cell_to_pixel(self, x: int, y: int) -> tuple[float, float] | None:
        """Output-pixel position at the centre of widget cell (x, y), if over the image."""
        placement = self._placement
        if placement is None:
            return None
        col, row = x - placement.left, y - placement.top
        if not (0 <= col < placement.cols and 0 <= row < placement.rows):
            return None
        return (
            (col + 0.5) * placement.width_px / placement.cols,
            (row + 0.5) * placement.height_px / placement.rows,
        )

    @property
    def quantisation(self) -> str | None:
        """What this widget drops from an 8-bit frame (for the badge), None when nothing."""
        if self.mode is GraphicsMode.SHADE:
            return "5 shades"
        if self.mode is GraphicsMode.SIXEL:
            grey, rgb = self._sixel_levels()
            return f"{grey} grey levels (Sixel), {rgb**3} colours"
        if self.mode in (GraphicsMode.HALFCELL, GraphicsMode.KITTY) and self.low_bandwidth:
            return f"{LOW_BANDWIDTH_LEVELS} levels"
        return None

    def _sixel_levels(self) -> tuple[int, int]:
        if self.low_bandwidth:
            return SIXEL_LOW_GREY_LEVELS, SIXEL_LOW_RGB_LEVELS
        return DEFAULT_GREY_LEVELS, DEFAULT_RGB_LEVELS

    # ---- showing frames ---------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        if self.mode is GraphicsMode.SIXEL:
            self._sixel = SixelCanvas(id="sixel")
            yield self._sixel

    def show(self, pixels: np.ndarray, key: Hashable) -> bool:
        """Display ``pixels`` (uint8 grey or RGB, sized by :meth:`pixel_box`).

        ``key`` identifies the frame: showing the same key again does nothing, so an unchanged
        frame is never re-sent. Returns whether anything new was sent.
        """
        if key == self._key and self._strips:
            return False
        width, height = self.content_size.width, self.content_size.height
        if width < 1 or height < 1:
            return False
        self._key = key
        if self.low_bandwidth and self.mode in (GraphicsMode.HALFCELL, GraphicsMode.KITTY):
            # Fewer levels merge half-block runs and let the PNG's deflate find repeats.
            pixels = quantised(pixels, LOW_BANDWIDTH_LEVELS)
        previous, placement = self._pixels, self._placement
        self._pixels = pixels
        self._encode(pixels, width, height)
        self.frames_sent += 1
        changed = None
        if self.low_bandwidth and self.mode is GraphicsMode.HALFCELL and previous is not None:
            changed = changed_rows(previous, pixels, placement, self._placement)
        if changed is None:
            self.refresh()
        elif changed:
            self.refresh(*changed)
        return True

    def clear(self) -> None:
        """Show nothing (black)."""
        self._key = None
        self._pixels = None
        self._strips = []
        self._placement = None
        self._drop_kitty()
        if self._sixel is not None:
            self._sixel.data = ""
            self._sixel.refresh()
        self.refresh()

    def on_resize(self, event: events.Resize) -> None:
        if self._pixels is not None:
            # The screen re-renders for the new size; until then keep the old frame centred.
            self._encode(self._pixels, event.size.width, event.size.height)
        # The screen's own resize does not cover a panel opening beside the image.
        self.post_message(self.Resized(self))

    def on_unmount(self) -> None:
        self._drop_kitty()

    def _write(self, data: str) -> None:
        self.bytes_encoded += len(data)
        driver = getattr(self.app, "_driver", None)
        if driver is not None and not self.app.is_headless:
            # Through Textual's writer queue: ordered with the screen updates, never interleaved.
            driver.write(data)

    def _drop_kitty(self) -> None:
        if self._kitty_id is not None:
            self._write(kitty_delete(self._kitty_id))
            self._kitty_id = None

    def _encode(self, pixels: np.ndarray, width: int, height: int) -> None:
        if self.mode is GraphicsMode.HALFCELL:
            self._strips, self._placement = halfcell_strips(pixels, width, height, self._styles)
        elif self.mode is GraphicsMode.SHADE:
            self._strips, self._placement = shade_strips(pixels, width, height)
        elif self.mode is GraphicsMode.KITTY:
            self._encode_kitty(pixels, width, height)
        else:
            self._encode_sixel(pixels, width, height)

    def _footprint(self, pixels: np.ndarray, width: int, height: int) -> tuple[int, int]:
        cell_w, cell_h = self.cell_pixels
        h, w = pixels.shape[:2]
        scale = min(width * cell_w / w, height * cell_h / h)
        cols = max(1, min(width, round(w * scale / cell_w)))
        rows = max(1, min(height, round(h * scale / cell_h)))
        return cols, rows

    def _encode_kitty(self, pixels: np.ndarray, width: int, height: int) -> None:
        self._drop_kitty()
        cols, rows = self._footprint(pixels, width, height)
        image_id = next_kitty_id()
        self._write(kitty_transmit(image_id, _png(pixels)) + kitty_place(image_id, cols, rows))
        self._kitty_id = image_id
        self._strips, left, top = kitty_strips(image_id, cols, rows, width, height)
        h, w = pixels.shape[:2]
        self._placement = Placement(left, top, cols, rows, w, h)

    def _encode_sixel(self, pixels: np.ndarray, width: int, height: int) -> None:
        # One Sixel pixel per terminal pixel: the frame covers whole cells plus a remainder.
        cell_w, cell_h = self.cell_pixels
        h, w = pixels.shape[:2]
        cols, rows = min(width, -(-w // cell_w)), min(height, -(-h // cell_h))
        left, top = max(0, (width - cols) // 2), max(0, (height - rows) // 2)
        self._placement = Placement(left, top, cols, rows, cols * cell_w, rows * cell_h)
        blank = Strip([Segment(" " * width, _BLACK)], width)
        self._strips = [blank] * height
        if self._sixel is not None:
            # A frame larger than the widget (before the re-render for a smaller size) is cut.
            shown = pixels[: rows * cell_h, : cols * cell_w]
            grey, rgb = self._sixel_levels()
            self._sixel.data = encode_sixel(shown, grey_levels=grey, rgb_levels=rgb)
            self.bytes_encoded += len(self._sixel.data)
            self._sixel.styles.width = cols
            self._sixel.styles.height = rows
            self._sixel.styles.offset = (left, top)
            self._sixel.refresh()

    def render_line(self, y: int) -> Strip:
        if self._drawn_key != self._key and self._key is not None:
            self._drawn_key = self._key
            if self.on_frame_drawn is not None:
                self.on_frame_drawn(self._key)
        if 0 <= y < len(self._strips):
            return self._strips[y]
        return Strip([Segment(" " * self.content_size.width, _BLACK)], self.content_size.width)

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
        self.post_message(self.Wheeled(1))

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        event.stop()
        self.post_message(self.Wheeled(-1))
