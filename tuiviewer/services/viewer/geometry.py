"""Geometry of what the viewer shows: orientation letters, distances, where a source pixel lands in
the rendered image (the cursor works at source-pixel precision although a terminal cell is
coarser), and where the slices of a stack lie along its normal, to link two stacks by position."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from tuiviewer.render.pipeline import displayed_spacing
from tuiviewer.render.resample import display_size
from tuiviewer.services.viewer.slices import SliceRef

#: Letters for +x, +y, +z of the patient coordinate system (LPS, PS3.3 C.7.6.2.1.1) and their
#: opposites: x increases to the patient's Left, y to Posterior, z to the Head.
_POSITIVE = ("L", "P", "H")
_NEGATIVE = ("R", "A", "F")

#: A direction cosine component below this does not earn a letter (a 15° tilt still reads "L").
ORIENTATION_THRESHOLD = 0.25


def direction_letters(vector: Sequence[float]) -> str:
    """The patient direction a vector points to, strongest component first (e.g. ``"LA"``)."""
    if len(vector) != 3:
        raise ValueError(f"A direction needs 3 components, got {list(vector)!r}.")
    ranked = sorted(range(3), key=lambda i: -abs(vector[i]))
    letters = [
        (_POSITIVE if vector[i] > 0 else _NEGATIVE)[i]
        for i in ranked
        if abs(vector[i]) >= ORIENTATION_THRESHOLD
    ]
    return "".join(letters)


@dataclass(frozen=True)
class EdgeLabels:
    """Letters at the four edges of the displayed image."""

    left: str
    right: str
    top: str
    bottom: str


def edge_labels(orientation: Sequence[float] | None) -> EdgeLabels | None:
    """Edge letters from Image Orientation (Patient): the row cosines point right, the column
    cosines down (PS3.3 C.7.6.2.1.1); None without a usable orientation."""
    if orientation is None or len(orientation) != 6:
        return None
    row = [float(v) for v in orientation[:3]]
    col = [float(v) for v in orientation[3:]]
    if math.hypot(*row) < 1e-6 or math.hypot(*col) < 1e-6:
        return None
    return EdgeLabels(
        left=direction_letters([-v for v in row]),
        right=direction_letters(row),
        top=direction_letters([-v for v in col]),
        bottom=direction_letters(col),
    )


@dataclass(frozen=True)
class Distance:
    """A measured distance and how it should be read."""

    value: float
    unit: str
    """``"mm"`` or ``"px"``."""
    qualifier: str = ""
    """``"at detector"`` for Imager Pixel Spacing (projection images are magnified)."""

    @property
    def text(self) -> str:
        number = f"{self.value:.1f} {self.unit}"
        return f"{number} {self.qualifier}" if self.qualifier else number


def measure(
    start: tuple[float, float],
    end: tuple[float, float],
    spacing: tuple[float, float] | None,
    spacing_kind: str,
) -> Distance:
    """Distance between two source pixels given as ``(column, row)``.

    ``spacing`` is (row spacing, column spacing) as in Pixel Spacing (PS3.3 10.7.1.3): columns
    are ``spacing[1]`` mm apart horizontally, rows ``spacing[0]`` mm vertically. Pixel Spacing
    measures in the patient; Imager Pixel Spacing at the detector (PS3.3 10.7.1.1), which is
    said; a Pixel Aspect Ratio or no spacing at all gives pixels.
    """
    d_col = end[0] - start[0]
    d_row = end[1] - start[1]
    if spacing is not None and spacing_kind in ("PixelSpacing", "ImagerPixelSpacing"):
        value = math.hypot(d_col * spacing[1], d_row * spacing[0])
        qualifier = "at detector" if spacing_kind == "ImagerPixelSpacing" else ""
        return Distance(value, "mm", qualifier)
    return Distance(math.hypot(d_col, d_row), "px")


@dataclass(frozen=True)
class ViewMapping:
    """Output pixel ``x`` covers source columns ``[start_x + x*step_x, start_x + (x+1)*step_x)``."""

    out_w: int
    out_h: int
    start_x: float
    start_y: float
    step_x: float
    step_y: float

    def to_output(self, col: float, row: float) -> tuple[float, float]:
        """Output position (fractional pixels) of the centre of source pixel (col, row)."""
        return (
            (col + 0.5 - self.start_x) / self.step_x,
            (row + 0.5 - self.start_y) / self.step_y,
        )

    def to_source(self, x: float, y: float) -> tuple[int, int]:
        """Source pixel (col, row) under output position (x, y)."""
        return (
            math.floor(self.start_x + x * self.step_x),
            math.floor(self.start_y + y * self.step_y),
        )


def view_mapping(
    rows: int,
    cols: int,
    spacing: tuple[float, float] | None,
    size: tuple[int, int] | None,
    zoom: float = 1.0,
    pan: tuple[float, float] = (0.0, 0.0),
    pixel_aspect: float = 1.0,
) -> ViewMapping:
    """The same geometry :func:`tuiviewer.render.pipeline.render_frame` uses for a request."""
    spacing = displayed_spacing(spacing, pixel_aspect)
    if size is None:
        fit_w, fit_h = cols, rows
    else:
        fit_w, fit_h = display_size(rows, cols, spacing, size[0], size[1])
    scale_x = fit_w / cols * zoom
    scale_y = fit_h / rows * zoom
    if zoom <= 1.0 and pan == (0.0, 0.0):
        out_w = max(1, round(cols * scale_x))
        out_h = max(1, round(rows * scale_y))
        return ViewMapping(out_w, out_h, 0.0, 0.0, cols / out_w, rows / out_h)
    step_x, step_y = 1.0 / scale_x, 1.0 / scale_y
    start_x = cols / 2.0 - pan[0] * step_x - fit_w / 2.0 * step_x
    start_y = rows / 2.0 - pan[1] * step_y - fit_h / 2.0 * step_y
    return ViewMapping(fit_w, fit_h, start_x, start_y, step_x, step_y)


def capped_box(
    rows: int, cols: int, spacing: tuple[float, float] | None, box: tuple[int, int]
) -> tuple[int, int]:
    """``box`` shrunk so that the fitted image is no larger than the source.

    A 512² slice in a 1200×760-pixel Kitty area would otherwise be enlarged before the upload
    (1.9× the pixels, sent on every step); the terminal scales the smaller image for free.
    """
    fit_w, fit_h = display_size(rows, cols, spacing, box[0], box[1])
    scale = min(1.0, cols / fit_w, rows / fit_h)
    if scale >= 1.0:
        return box
    return max(1, math.floor(box[0] * scale)), max(1, math.floor(box[1] * scale))


Vector = tuple[float, float, float]


def slice_normal(orientation: Sequence[float] | None) -> Vector | None:
    """Unit normal ``row × column`` of Image Orientation (Patient) (PS3.3 C.7.6.2.1.1)."""
    if orientation is None or len(orientation) != 6:
        return None
    rx, ry, rz, cx, cy, cz = (float(v) for v in orientation)
    normal = (ry * cz - rz * cy, rz * cx - rx * cz, rx * cy - ry * cx)
    length = math.hypot(*normal)
    if length < 1e-6:
        return None
    return (normal[0] / length, normal[1] / length, normal[2] / length)


def slice_position(ref: SliceRef) -> Vector | None:
    """Image Position (Patient) of a slice as the scan recorded it; None for the frames of a
    multi-frame object (its record holds at most the first frame's position)."""
    if ref.frames > 1:
        return None
    return ref.record.image_position


@dataclass(frozen=True)
class StackGeometry:
    """Where the slices of a stack lie along its normal, to find the one nearest a position.

    Linking by position rather than by index is what makes a 5 mm prior follow a 2.5 mm
    current study: slice 10 of one is not slice 10 of the other, but the plane 22.5 mm up is.
    """

    normal: Vector | None
    locations: tuple[float | None, ...]
    """Position of each slice along ``normal`` in mm (None: unknown)."""

    @classmethod
    def of(cls, slices: Sequence[SliceRef]) -> StackGeometry:
        normal = next(
            (
                n
                for n in (slice_normal(ref.record.image_orientation) for ref in slices)
                if n is not None
            ),
            None,
        )
        locations: list[float | None] = []
        for ref in slices:
            position = slice_position(ref)
            locations.append(None if position is None or normal is None else _dot(position, normal))
        return cls(normal, tuple(locations))

    @property
    def spacing(self) -> float | None:
        """Median distance between neighbouring slices (mm), None with fewer than two known."""
        known = [v for v in self.locations if v is not None]
        gaps = sorted(abs(b - a) for a, b in zip(known, known[1:], strict=False))
        return gaps[len(gaps) // 2] if gaps else None

    def location_of(self, position: Vector) -> float | None:
        """``position`` projected on this stack's normal (mm), None without a normal."""
        return None if self.normal is None else _dot(position, self.normal)

    def nearest(self, position: Vector | None) -> int | None:
        """Index of the slice whose plane is nearest to ``position``; None when either side has
        no geometry. Of two equally near slices the first in stack order wins."""
        if position is None:
            return None
        target = self.location_of(position)
        if target is None:
            return None
        best: int | None = None
        best_distance = math.inf
        for i, location in enumerate(self.locations):
            if location is not None and abs(location - target) < best_distance - 1e-9:
                best, best_distance = i, abs(location - target)
        return best


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return float(a[0] * b[0] + a[1] * b[1] + a[2] * b[2])
