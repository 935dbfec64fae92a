"""Decode exactly one frame of pixel data, and say clearly what to install when we cannot.

A multi-frame object (an enhanced CT, an ultrasound cine) can hold hundreds of frames; the viewer
shows one at a time, so decoding goes through pydicom 3's frame-index API
(``Decoder.as_array(ds, index=k)``), which for native data slices the bytes of frame ``k`` and for
encapsulated data decodes only the fragments of frame ``k``. pydicom already masks bits above
BitsStored, sign-extends signed data, removes YBR_FULL_422 subsampling and converts YBR_FULL(_422),
YBR_ICT and YBR_RCT to RGB; :func:`decode_frame_with_photometric` reports the resulting colour
space so :mod:`tuiviewer.render.color` does not convert twice.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import get_decoder
from pydicom.pixels.utils import as_pixel_options, get_nr_frames
from pydicom.uid import UID

from tuiviewer.exceptions import DecoderMissingError, RenderError

#: What to ``pip install`` for each compressed transfer syntax (pydicom's plugin tables,
#: ``pydicom/pixels/decoders/__init__.py``); tuiviewer's own dependencies come first.
_PACKAGE_HINTS: dict[str, str] = {
    "1.2.840.10008.1.2.4.50": "python-gdcm or pylibjpeg-libjpeg: pip install python-gdcm",
    "1.2.840.10008.1.2.4.51": "python-gdcm or pylibjpeg-libjpeg: pip install python-gdcm",
    "1.2.840.10008.1.2.4.57": "python-gdcm or pylibjpeg-libjpeg: pip install python-gdcm",
    "1.2.840.10008.1.2.4.70": "python-gdcm or pylibjpeg-libjpeg: pip install python-gdcm",
    "1.2.840.10008.1.2.4.80": "python-gdcm or pylibjpeg-libjpeg: pip install python-gdcm",
    "1.2.840.10008.1.2.4.81": "python-gdcm or pylibjpeg-libjpeg: pip install python-gdcm",
    "1.2.840.10008.1.2.4.90": "pylibjpeg-openjpeg or python-gdcm: pip install pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.91": "pylibjpeg-openjpeg or python-gdcm: pip install pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.201": "pylibjpeg-openjpeg 2.4 or later: pip install pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.202": "pylibjpeg-openjpeg 2.4 or later: pip install pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.203": "pylibjpeg-openjpeg 2.4 or later: pip install pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.5": "pylibjpeg-rle: pip install pylibjpeg-rle",
}


#: JPEG processes that allow 12-bit samples (PS3.5 A.4.1: Extended, and the lossless ones).
_TWELVE_BIT_JPEG = frozenset({"1.2.840.10008.1.2.4.51"})


class _DecoderLike(Protocol):
    """The part of :class:`pydicom.pixels.decoders.base.Decoder` that availability needs."""

    @property
    def UID(self) -> UID: ...  # noqa: N802 - pydicom's name

    @property
    def is_available(self) -> bool: ...

    @property
    def missing_dependencies(self) -> list[str]: ...


def _describe(uid: UID) -> str:
    name = uid.name if uid.is_transfer_syntax else "unknown transfer syntax"
    return f"{name} ({uid})"


def decoder_missing_message(uid: UID) -> str:
    """The sentence shown when pixel data in transfer syntax ``uid`` cannot be decoded here."""
    hint = _PACKAGE_HINTS.get(str(uid))
    if hint is None:
        return (
            f"{_describe(uid)} pixel data cannot be decoded: neither pydicom nor an installed "
            "plugin supports it."
        )
    return f"{_describe(uid)} needs {hint}."


def check_decoder(decoder: _DecoderLike) -> None:
    """Raise :class:`DecoderMissingError` when ``decoder`` has no usable plugin.

    Separate from :func:`decode_frame` so the check can be exercised on a pydicom ``Decoder``
    that has no plugins, without uninstalling anything.
    """
    if not decoder.is_available:
        message = decoder_missing_message(decoder.UID)
        missing = "; ".join(decoder.missing_dependencies)
        if missing:
            message = f"{message[:-1]} (pydicom: {missing})."
        raise DecoderMissingError(message)


def frame_count(ds: Dataset) -> int:
    """Number of Frames: 1 when absent or empty; the leading digits of an invalid IS.

    pydicom raises on a value such as ``"1A"`` (seen in the wild, in its own ``badVR.dcm``)
    while dcmtk reads the leading number; we follow dcmtk so such files still display.
    """
    raw = ds["NumberOfFrames"].value if "NumberOfFrames" in ds else None
    if raw is None or raw == "":
        return 1
    try:
        return max(int(get_nr_frames(ds, warn=False)), 1)
    except (TypeError, ValueError):
        digits = re.match(r"\s*(\d+)", str(raw))
        return max(int(digits.group(1)), 1) if digits else 1


def _with_valid_frame_count(ds: Dataset, frames: int) -> Dataset:
    """``ds`` itself, or a shallow copy whose Number of Frames pydicom can parse."""
    try:
        int(str(ds.get("NumberOfFrames", 1) or 1))
        return ds
    except ValueError:
        fixed = Dataset(ds)  # shares the elements, including Pixel Data: no copy of pixels
        if hasattr(ds, "file_meta"):
            fixed.file_meta = ds.file_meta
        fixed.NumberOfFrames = frames
        return fixed


def _transfer_syntax(ds: Dataset) -> UID:
    meta = getattr(ds, "file_meta", None)
    tsyntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if not tsyntax:
        # Datasets built in memory (or read without meta) are taken as Explicit VR Little
        # Endian when they say so; pydicom records what it actually parsed.
        little = getattr(ds, "is_little_endian", None)
        implicit = getattr(ds, "is_implicit_VR", None)
        if little is None:
            raise RenderError(
                "The dataset has no (0002,0010) Transfer Syntax UID, so its pixel data cannot "
                "be interpreted."
            )
        if not little:
            return UID("1.2.840.10008.1.2.2")
        return UID("1.2.840.10008.1.2" if implicit else "1.2.840.10008.1.2.1")
    return UID(str(tsyntax))


def decode_frame_with_photometric(ds: Dataset, index: int = 0) -> tuple[np.ndarray, str]:
    """Decode frame ``index`` (0-based) of ``ds``; return the array and its colour space.

    The array is ``(rows, columns)`` for one sample per pixel, ``(rows, columns, samples)``
    otherwise, with pydicom's dtype (``uint8/16/32`` or ``int8/16/32`` by BitsAllocated and
    PixelRepresentation; ``uint8`` for BitsAllocated 1). The string is the Photometric
    Interpretation that describes the returned values (``"RGB"`` after pydicom's YBR conversion).

    Raises:
        RenderError: no pixel data, or ``index`` is outside ``0 .. NumberOfFrames - 1``.
        DecoderMissingError: the transfer syntax needs a plugin that is not installed.
    """
    if "PixelData" not in ds:
        if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
            raise RenderError("Float Pixel Data (parametric maps) cannot be displayed yet.")
        raise RenderError("The dataset has no (7FE0,0010) Pixel Data element.")
    if isinstance(index, bool) or not isinstance(index, int | np.integer):
        raise RenderError(f"Frame index {index!r} is not an integer.")
    frames = frame_count(ds)
    if not 0 <= int(index) < frames:
        raise RenderError(
            f"Frame {int(index) + 1} does not exist: the image has {frames} "
            f"frame{'s' if frames != 1 else ''} (1 to {frames})."
        )
    uid = _transfer_syntax(ds)
    try:
        decoder = get_decoder(uid)
    except NotImplementedError:
        raise DecoderMissingError(decoder_missing_message(uid)) from None
    check_decoder(decoder)
    source = _with_valid_frame_count(ds, frames)
    options: dict[str, Any] = as_pixel_options(source)
    try:
        arr, meta = decoder.as_array(source, index=int(index), **options)
    except (ValueError, RuntimeError, AttributeError, KeyError, TypeError) as exc:
        precision = int(ds.get("BitsStored", 8) or 8)
        if str(uid) in _TWELVE_BIT_JPEG and precision > 8 and "does not support" in str(exc):
            # gdcm's wheel and Pillow decode 8-bit JPEG only; 12-bit needs libjpeg.
            raise DecoderMissingError(
                f"{_describe(uid)} with {precision}-bit samples needs pylibjpeg-libjpeg: "
                "pip install pylibjpeg-libjpeg."
            ) from exc
        raise RenderError(decode_failure(exc, uid, int(index))) from exc
    photometric = str(
        meta.get("photometric_interpretation", ds.get("PhotometricInterpretation", ""))
    )
    # pydicom's PhotometricInterpretation enum prints as its value through str() of .value.
    photometric = getattr(meta.get("photometric_interpretation"), "value", photometric)
    return arr, str(photometric)


_SHORT = re.compile(r"less than expected \((\d+) vs (\d+) bytes\)")
#: Plugin reasons that say nothing about the data (gdcm's wheel failing on its own input).
_NOISE = ("'NoneType' object has no attribute",)


def decode_failure(exc: BaseException, uid: UID, index: int) -> str:
    """A decoder's failure as a sentence for the reader, not a library's line.

    pydicom's "Unable to decode as exceptions were raised by all available plugins:" is
    followed by one line per plugin: those reasons are quoted (the ones that say something),
    after a sentence that says what it means.
    """
    text = str(exc).strip()
    frame = f"frame {index + 1}"
    short = _SHORT.search(text)
    if short:
        have, need = int(short.group(1)), int(short.group(2))
        return (
            f"The pixel data of {frame} cannot be decoded: the file holds {have} bytes of pixel "
            f"data where its Rows, Columns, Bits Allocated and Samples per Pixel need {need}; "
            "it is probably truncated, or those attributes are wrong."
        )
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines and "all available plugins" in lines[0]:
        reasons = [
            line.rstrip(".") for line in lines[1:] if not any(noise in line for noise in _NOISE)
        ]
        said = f" The decoders said: {'; '.join(reasons)}." if reasons else ""
        return (
            f"The {_describe(uid)} pixel data of {frame} cannot be decoded: it looks damaged "
            f"or incomplete.{said}"
        )
    first = lines[0].rstrip(".:") if lines else type(exc).__name__
    first = first[:1].lower() + first[1:]
    return f"The pixel data of {frame} cannot be decoded ({_describe(uid)}): {first}."


def decode_frame(ds: Dataset, index: int = 0) -> np.ndarray:
    """Decode frame ``index`` (0-based) of ``ds`` alone (see decode_frame_with_photometric)."""
    return decode_frame_with_photometric(ds, index)[0]
