"""The protocol painters: one frame of pixels made into what a terminal is sent.

Half-blocks and shade characters become ready-made strips (only the lines a step changed are
encoded again); Kitty becomes a PNG upload under the pane's image id (with Unicode placeholder
strips where the terminal has them); Sixel and iTerm2 become one escape sequence over the whole
cells the frame covers, padded with black. Each fills a :class:`~.badge.Shown` that says what
reaches the screen (greys, ratio, near-lossless tolerance). Encoding happens once per frame,
when :meth:`ImageView.show <tuiviewer.widgets.image.view.ImageView.show>` receives it.
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from tuiviewer.graphics import iterm2, kitty
from tuiviewer.graphics.pixels import (
    Footprint,
    centred,
    grey_count,
    grey_counts_within_one,
    pad,
    quantised,
    within_one,
)
from tuiviewer.graphics.probe import GraphicsMode, tmux_wrap
from tuiviewer.graphics.sixel import MAX_GREY_LEVELS, SixelImage, encode_sixel
from tuiviewer.graphics.sixel import grey_levels as sixel_grey_levels
from tuiviewer.widgets.image.badge import Shown
from tuiviewer.widgets.image.frame import Frame, ViewParts
from tuiviewer.widgets.image.halfcell import (
    BLACK,
    Placement,
    changed_rows,
    halfcell_lines,
    halfcell_placement,
    shade_lines,
    within_one_cells,
)

LOW_BANDWIDTH_LEVELS = 32
"""Grey levels (per channel for colour) of half-block and Kitty frames in low-bandwidth mode."""
SIXEL_LOW_GREY_LEVELS = 16
"""Sixel greys in low-bandwidth mode."""
CHEAP_LEVELS = 16
"""Greys of a draft Sixel frame while a key is held on a slow link (half as many as
low-bandwidth mode's when that is on)."""


class FrameEncoders(ViewParts):
    """Pixels to a frame of the pane's protocol (mixed into the image view)."""

    def _greys(self, pixels: np.ndarray) -> int | None:
        return grey_count(pixels)

    def _encode_cells(
        self,
        pixels: np.ndarray,
        key: Hashable,
        width: int,
        height: int,
        cheap: bool,
        previous: Frame | None,
    ) -> tuple[Frame, list[tuple[int, int]] | None]:
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
        frame = Frame(key, pixels, width, height, sent=shown, strips=strips,
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
    ) -> Frame:
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
            greys = grey_counts_within_one(shown)[1] if tolerance else source_greys
            info = Shown("iTerm2", w, h, scale, greys, source_greys, cheap, exact,
                         tolerance=tolerance)  # fmt: skip
        return Frame(key, pixels, width, height, sequence=sequence, place=place,
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

    def _partial(self, frame: Frame, rows: int) -> str:
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
    ) -> Frame:
        shown, place, scale, padded = self._fit(pixels, width, height)
        (h, w) = shown.shape[:2]
        tolerance = 0 if self.low_bandwidth else self._tolerance_for(pixels)
        if tolerance:
            # The frame's greys and those within_one leaves of what is shown, in one pass
            # where ``shown`` is the whole frame (it is cut only where the pane is smaller).
            source_greys, greys = (
                grey_counts_within_one(pixels)
                if shown is pixels
                else (self._greys(pixels), grey_counts_within_one(shown)[1])
            )
            padded = within_one(padded)
        else:
            source_greys = greys = self._greys(pixels)
        if self.low_bandwidth:
            padded = quantised(padded, LOW_BANDWIDTH_LEVELS)
            greys = min(greys, LOW_BANDWIDTH_LEVELS) if greys is not None else None
        full = padded
        if cheap:
            padded = padded[::2, ::2]
        exact = abs(scale - 1.0) < 1e-9 and not cheap
        info = Shown("Kitty", w, h, scale, greys, source_greys, cheap, exact, tolerance=tolerance)
        # What was uploaded, and terminal pixels per uploaded pixel (a draft is half size).
        uploaded_scale = scale * full.shape[1] / padded.shape[1]
        frame = Frame(key, pixels, width, height, place=place, padded=padded,
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
