"""What the screen holds of a frame, and the line under the image that says so.

The badge is the reader's guarantee of fidelity: protocol, pixel size, ratio to the source,
how many greys reach the screen and by how much any pixel may be off. The encoders fill a
:class:`Shown` for every frame they send; :func:`badge_text` turns it into the line. Kept apart
from the widget so that its wording is read (and tested) without a terminal.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text

from tuiviewer.render.pipeline import RenderedImage


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
