"""The statistics of a region of interest, as plain values.

:mod:`tuiviewer.render.measure` computes them from the pixels and
:mod:`tuiviewer.reports.measurements` keeps them with a measurement and writes them into the TID
1500 document; render and reports never import each other, so the type they share lives here,
below both.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RoiStats:
    """Statistics of the modality values inside an ROI."""

    mean: float
    sd: float
    """Population standard deviation (what Horos, OsiriX and dcmtk report)."""
    minimum: float
    maximum: float
    area_mm2: float
    """Area of the drawn shape in mm² (pixels when the image has no Pixel Spacing)."""
    pixels: int
    """Pixels whose centre lies inside and which hold a value."""
    excluded: int = 0
    """Pixels inside without a value (NaN)."""
