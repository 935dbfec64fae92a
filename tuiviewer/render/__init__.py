"""Pixel pipeline: DICOM frame in, 8-bit grey or RGB image out (numpy only, no Textual).

The stages live in their own modules (decode, lut, color, overlay, resample) and
:mod:`tuiviewer.render.pipeline` chains them; both the viewer and ``tuiviewer render`` call
:func:`render`, so they cannot disagree.
"""

from __future__ import annotations

from tuiviewer.render.decode import decode_frame, frame_count
from tuiviewer.render.lut import (
    VoiFunction,
    Window,
    apply_voi_lut_sequence,
    apply_window,
    full_range_window,
    modality_lut,
    modality_params,
    windows_from_dataset,
)
from tuiviewer.render.pipeline import (
    Frame,
    RenderedImage,
    RenderRequest,
    load_frame,
    render,
    render_frame,
)
from tuiviewer.render.resample import Interpolation, display_size, resample

__all__ = [
    "Frame",
    "Interpolation",
    "RenderRequest",
    "RenderedImage",
    "VoiFunction",
    "Window",
    "apply_voi_lut_sequence",
    "apply_window",
    "decode_frame",
    "display_size",
    "frame_count",
    "full_range_window",
    "load_frame",
    "modality_lut",
    "modality_params",
    "render",
    "render_frame",
    "resample",
    "windows_from_dataset",
]
