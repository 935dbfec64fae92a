"""The one rendering pipeline shared by the viewer and ``tuiviewer render``.

decode one frame → Modality LUT → VOI (window or VOI LUT) → MONOCHROME1 inversion (after VOI,
PS3.3 C.7.6.3.1.2) → user inversion → overlays → zoom/pan/resample. Colour images skip the
grey-scale stages and go through :func:`tuiviewer.render.color.to_rgb`. Because the CLI and the
viewer call the same :func:`render`, the PNG the CLI writes is what the screen shows before
terminal encoding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydicom.dataset import Dataset

from tuiviewer.exceptions import RenderError
from tuiviewer.render.color import Photometric, to_rgb
from tuiviewer.render.decode import decode_frame_with_photometric, frame_count
from tuiviewer.render.lut import (
    Lut,
    ModalityParams,
    Window,
    apply_voi_lut_sequence,
    apply_window,
    full_range_window,
    functional_item,
    modality_lut,
    modality_params,
    voi_luts_from_dataset,
    windows_from_dataset,
)
from tuiviewer.render.overlay import overlay_masks
from tuiviewer.render.resample import AxisMap, Interpolation, display_size, remap

#: Transfer syntaxes that are always lossy (JPEG baseline and extended, PS3.5 A.4.1).
_LOSSY_SYNTAXES = frozenset({"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51"})


@dataclass(frozen=True)
class Frame:
    """One decoded frame and the attributes that apply to it (per-frame ones for enhanced)."""

    index: int
    """0-based frame index."""
    pixels: np.ndarray = field(repr=False)
    """Decoded stored values (see :func:`tuiviewer.render.decode.decode_frame`)."""
    photometric: str
    """Colour space of ``pixels`` as decoded (``"RGB"`` once pydicom converted YBR)."""
    modality: ModalityParams
    windows: tuple[Window, ...]
    """The file's windows for this frame, in file order."""
    voi_luts: tuple[Lut, ...]
    pixel_spacing: tuple[float, float] | None
    """(row spacing, column spacing) in mm, or a Pixel Aspect Ratio; None for square pixels."""
    spacing_kind: str
    """``"PixelSpacing"``, ``"ImagerPixelSpacing"``, ``"PixelAspectRatio"`` or ``""``."""

    @property
    def rows(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def columns(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def is_grey(self) -> bool:
        return self.photometric in ("MONOCHROME1", "MONOCHROME2")

    def values(self) -> np.ndarray:
        """Modality values (HU for CT) of the frame: float32, or float64 for 32-bit data."""
        if not self.is_grey:
            raise RenderError(f"A {self.photometric} frame has no modality values.")
        return modality_lut(self.pixels, self.modality)


@dataclass(frozen=True)
class RenderRequest:
    """What to show of a dataset."""

    frame: int = 0
    """0-based frame index."""
    window: Window | None = None
    """None: the file's first window, else its first VOI LUT, else the full range."""
    voi_lut: int | None = None
    """Use VOI LUT Sequence item ``voi_lut`` (0-based) instead of a window."""
    invert: bool = False
    """Invert the display (on top of MONOCHROME1's own inversion)."""
    overlays: bool = True
    size: tuple[int, int] | None = None
    """(width, height) box to fit in, honouring pixel spacing; None: native resolution."""
    zoom: float = 1.0
    """Magnification over the fitted size; above 1 the output keeps the fitted size and crops."""
    pan: tuple[float, float] = (0.0, 0.0)
    """Image shift in output pixels (x right, y down), applied when zoomed or panned."""
    interpolation: Interpolation = Interpolation.AUTO
    pixel_aspect: float = 1.0
    """Height over width of one output pixel where it is shown (a half-block pixel on a 10×19
    cell is 0.95): the image keeps its physical aspect there."""

    def __post_init__(self) -> None:
        if self.frame < 0:
            raise RenderError(f"Frame index {self.frame} is negative.")
        if not (math.isfinite(self.pixel_aspect) and self.pixel_aspect > 0):
            raise RenderError(f"Pixel aspect {self.pixel_aspect!r} must be a positive number.")
        if not (math.isfinite(self.zoom) and self.zoom > 0):
            raise RenderError(f"Zoom {self.zoom!r} must be a positive number.")
        if self.size is not None and (self.size[0] < 1 or self.size[1] < 1):
            raise RenderError(f"Size {self.size[0]}x{self.size[1]} must be at least 1x1.")


@dataclass(frozen=True)
class RenderedImage:
    """The 8-bit image to display and what the viewer should say about it."""

    pixels: np.ndarray = field(repr=False)
    """uint8, ``(H, W)`` for mode "L", ``(H, W, 3)`` for "RGB"."""
    mode: Literal["L", "RGB"]
    window: Window | None
    """The window applied (None for colour or when a VOI LUT was used)."""
    source_size: tuple[int, int]
    """(columns, rows) of the frame."""
    downsampled: float
    """Source pixels per output pixel along the coarser axis; 1.0 when nothing was dropped."""
    lossy: bool
    """Lossy Image Compression (0028,2110) is "01", or the transfer syntax is lossy JPEG."""
    notes: tuple[str, ...] = ()


def _spacing(ds: Dataset, frame: int) -> tuple[tuple[float, float] | None, str]:
    measures = functional_item(ds, frame, "PixelMeasuresSequence")
    candidates = [
        (measures, "PixelSpacing"),
        (ds, "PixelSpacing"),
        (ds, "ImagerPixelSpacing"),
        (ds, "PixelAspectRatio"),
    ]
    for source, keyword in candidates:
        value = source.get(keyword) if source is not None else None
        try:
            if (
                value is not None
                and len(value) == 2
                and float(value[0]) > 0
                and float(value[1]) > 0
            ):
                return (float(value[0]), float(value[1])), keyword
        except (TypeError, ValueError):
            continue
    return None, ""


def load_frame(ds: Dataset, index: int = 0) -> Frame:
    """Decode frame ``index`` (0-based) and gather the attributes that apply to it.

    Raises:
        RenderError: no pixel data, frame out of range, undecodable data.
        DecoderMissingError: a decoder plugin is missing.
    """
    pixels, photometric = decode_frame_with_photometric(ds, index)
    spacing, kind = _spacing(ds, index)
    grey = photometric in ("MONOCHROME1", "MONOCHROME2")
    return Frame(
        index=index,
        pixels=pixels,
        photometric=photometric,
        modality=modality_params(ds, index) if grey else ModalityParams(),
        windows=tuple(windows_from_dataset(ds, index)) if grey else (),
        voi_luts=tuple(voi_luts_from_dataset(ds)) if grey else (),
        pixel_spacing=spacing,
        spacing_kind=kind,
    )


def displayed_spacing(
    spacing: tuple[float, float] | None, pixel_aspect: float
) -> tuple[float, float] | None:
    """Pixel spacing (row, column) that fits an image for output pixels ``pixel_aspect`` times
    taller than wide: rows count as that much shorter, so fewer of them fill the height."""
    if pixel_aspect == 1.0:
        return spacing
    row, col = spacing if spacing else (1.0, 1.0)
    return row / pixel_aspect, col


def _geometry(
    rows: int, cols: int, spacing: tuple[float, float] | None, request: RenderRequest
) -> tuple[AxisMap, AxisMap]:
    spacing = displayed_spacing(spacing, request.pixel_aspect)
    if request.size is None:
        fit_w, fit_h = cols, rows
    else:
        fit_w, fit_h = display_size(rows, cols, spacing, request.size[0], request.size[1])
    scale_x = fit_w / cols * request.zoom  # output pixels per source pixel
    scale_y = fit_h / rows * request.zoom
    if request.zoom <= 1.0 and request.pan == (0.0, 0.0):
        out_w = max(1, round(cols * scale_x))
        out_h = max(1, round(rows * scale_y))
        return AxisMap(cols, out_w, 0.0, cols / out_w), AxisMap(rows, out_h, 0.0, rows / out_h)
    # Zoomed or panned: a viewport of the fitted size looks at the centre, shifted by pan.
    step_x, step_y = 1.0 / scale_x, 1.0 / scale_y
    start_x = cols / 2.0 - request.pan[0] * step_x - fit_w / 2.0 * step_x
    start_y = rows / 2.0 - request.pan[1] * step_y - fit_h / 2.0 * step_y
    return AxisMap(cols, fit_w, start_x, step_x), AxisMap(rows, fit_h, start_y, step_y)


def _is_lossy(ds: Dataset) -> bool:
    if str(ds.get("LossyImageCompression", "")).strip() == "01":
        return True
    meta = getattr(ds, "file_meta", None)
    return meta is not None and str(meta.get("TransferSyntaxUID", "")) in _LOSSY_SYNTAXES


def render_frame(ds: Dataset, frame: Frame, request: RenderRequest) -> RenderedImage:
    """Render an already decoded ``frame`` of ``ds`` (the viewer caches frames)."""
    notes: list[str] = []
    window: Window | None = None
    kind = Photometric.parse(frame.photometric)
    if kind.is_grey:
        values = frame.values()
        if request.window is not None:
            window = request.window
            image = apply_window(values, window)
        elif request.voi_lut is not None:
            if not 0 <= request.voi_lut < len(frame.voi_luts):
                raise RenderError(
                    f"VOI LUT {request.voi_lut + 1} does not exist: the file has "
                    f"{len(frame.voi_luts)}."
                )
            lut = frame.voi_luts[request.voi_lut]
            image = apply_voi_lut_sequence(values, lut)
            notes.append(f"VOI LUT {lut.explanation or request.voi_lut + 1}")
        elif frame.windows:
            window = frame.windows[0]
            image = apply_window(values, window)
        elif frame.voi_luts:
            image = apply_voi_lut_sequence(values, frame.voi_luts[0])
            notes.append(f"VOI LUT {frame.voi_luts[0].explanation or 1}")
        else:
            window = full_range_window(values)
            image = apply_window(values, window)
            notes.append("full-range window (the file proposes none)")
        if kind is Photometric.MONOCHROME1:
            image = 255 - image  # PS3.3 C.7.6.3.1.2: minimum is white, so after VOI
    else:
        planar = int(ds.get("PlanarConfiguration", 0) or 0)
        image = to_rgb(frame.pixels, frame.photometric, planar, ds)
        if request.window is not None:
            notes.append("window ignored: colour image")
    if request.invert:
        image = 255 - image
    if request.overlays:
        masks = overlay_masks(ds, frame.index)
        if masks:
            if not image.flags.writeable:
                image = image.copy()
            for mask in masks:
                image[mask] = 255
            notes.append(f"{len(masks)} overlay{'s' if len(masks) > 1 else ''}")
    x_axis, y_axis = _geometry(frame.rows, frame.columns, frame.pixel_spacing, request)
    image = remap(np.ascontiguousarray(image), x_axis, y_axis, request.interpolation)
    ratio = max(x_axis.step, y_axis.step)
    downsampled = ratio if ratio > 1.0 + 1e-9 else 1.0
    lossy = _is_lossy(ds)
    if lossy:
        notes.append("lossy compressed source")
    return RenderedImage(
        pixels=image,
        mode="L" if image.ndim == 2 else "RGB",
        window=window,
        source_size=(frame.columns, frame.rows),
        downsampled=downsampled,
        lossy=lossy,
        notes=tuple(notes),
    )


def render(ds: Dataset, request: RenderRequest | None = None) -> RenderedImage:
    """Render one frame of ``ds`` as :class:`RenderedImage` (see the module docstring).

    Raises:
        RenderError: frame out of range, unsupported photometric, bad window or geometry.
        DecoderMissingError: the transfer syntax needs a decoder that is not installed.
    """
    request = request or RenderRequest()
    frames = frame_count(ds) if "PixelData" in ds else 0
    if frames and request.frame >= frames:
        raise RenderError(
            f"Frame {request.frame + 1} does not exist: the image has {frames} "
            f"frame{'s' if frames != 1 else ''} (1 to {frames})."
        )
    return render_frame(ds, load_frame(ds, request.frame), request)
