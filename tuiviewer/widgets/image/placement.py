"""Putting a frame on screen and taking it off again: the placement and erase bookkeeping.

Kitty images are uploaded and placed through Textual's writer queue, and deleted whenever the
pane changes size, is covered or goes away; Sixel and iTerm2 images live in cells that the
screen update skips (``CSI n C``) and are re-sent only when something may have erased them.
Both need to know which rows of the pane nothing else is drawn over (a notification covers
the lower ones) and whether the image already on screen is intact (:attr:`ViewParts._painted`),
so that a repaint of anything else sends nothing.
"""

from __future__ import annotations

from rich.control import Control
from rich.segment import ControlType, Segment
from textual.geometry import Region
from textual.strip import Strip

from tuiviewer.graphics import kitty
from tuiviewer.graphics.pixels import Footprint
from tuiviewer.graphics.probe import GraphicsMode, tmux_wrap
from tuiviewer.widgets.image.frame import Frame, ViewParts
from tuiviewer.widgets.image.halfcell import BLACK


class Placements(ViewParts):
    """Writes, placements and erasures of the pane's image (mixed into the image view)."""

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

    def _send_kitty(self, frame: Frame, previous: Frame | None) -> None:
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

    def _kitty_place(self, frame: Frame, region: Region, free: int) -> str:
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

    def _kitty_lines(self, frame: Frame, crop: Region) -> list[Strip]:
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


def _skip_segment(width: int) -> Segment:
    """Moves the cursor over ``width`` cells and writes nothing."""
    return Segment(f"\x1b[{width}C", None, [(ControlType.CURSOR_FORWARD, width)])
