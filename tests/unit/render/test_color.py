"""Colour stage: RGB planar layouts, YBR, palette colour and deep samples to 8-bit RGB."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from tests.conftest import testdata as sample
from tests.support import imagegen
from tuiviewer.exceptions import RenderError
from tuiviewer.render.color import Photometric, to_rgb
from tuiviewer.render.decode import decode_frame_with_photometric
from tuiviewer.render.pipeline import RenderRequest, render


def _rgb(name: str) -> np.ndarray:
    ds = pydicom.dcmread(sample(name))
    arr, photometric = decode_frame_with_photometric(ds)
    return to_rgb(arr, photometric, int(ds.get("PlanarConfiguration", 0)), ds)


@pytest.mark.parametrize("planar", [0, 1])
def test_rgb_planar_configuration_0_and_1_give_the_encoded_image(planar: int) -> None:
    ds = imagegen.rgb(planar=planar)
    image = render(ds, RenderRequest())
    assert image.mode == "RGB"
    np.testing.assert_array_equal(image.pixels, imagegen.rgb_expected(8, 12))


def test_16_and_32_bit_rgb_are_scaled_to_the_8_bit_twin() -> None:
    eight = _rgb("SC_rgb_rle.dcm")
    np.testing.assert_array_equal(_rgb("SC_rgb_rle_16bit.dcm"), eight)
    np.testing.assert_array_equal(_rgb("SC_rgb_rle_32bit.dcm"), eight)


def test_ybr_full_422_uncompressed_is_close_to_the_rgb_original() -> None:
    # Chroma subsampling loses detail, so the twin agrees only approximately.
    diff = np.abs(_rgb("SC_ybr_full_422_uncompressed.dcm").astype(int) - _rgb("SC_rgb_rle.dcm"))
    assert diff.mean() < 1.0 and diff.max() <= 8


def test_ybr_full_array_that_was_not_converted_is_converted_here() -> None:
    ds = pydicom.dcmread(sample("SC_rgb_rle.dcm"))
    # BT.601 full range: pure red (255, 0, 0) is Y 76.245, Cb 84.97, Cr 255.5 → clipped 255.
    ybr = np.array([[[76, 85, 255]]], dtype=np.uint8)
    rgb = to_rgb(ybr, "YBR_FULL", 0, ds)
    assert abs(int(rgb[0, 0, 0]) - 255) <= 2 and rgb[0, 0, 1] <= 2 and rgb[0, 0, 2] <= 2


def test_palette_colour_looks_up_each_index_in_the_16_bit_luts() -> None:
    ds = pydicom.dcmread(sample("examples_palette.dcm"))
    arr, photometric = decode_frame_with_photometric(ds)
    rgb = to_rgb(arr, photometric, 0, ds)
    first = int(ds.RedPaletteColorLookupTableDescriptor[1])
    tables = [
        np.frombuffer(ds[f"{c}PaletteColorLookupTableData"].value, dtype="<u2")
        for c in ("Red", "Green", "Blue")
    ]
    for y, x in [(0, 0), (175, 400), (349, 799), (100, 50)]:
        idx = int(arr[y, x]) - first
        expected = [round(int(t[idx]) * 255 / 65535) for t in tables]
        assert rgb[y, x].tolist() == expected


def test_a_big_endian_palette_renders_like_its_little_endian_twin() -> None:
    """The LUT words of an Explicit VR Big Endian file are big-endian (PS3.5 7.3)."""
    from pydicom.uid import ExplicitVRBigEndian

    little = pydicom.dcmread(sample("examples_palette.dcm"))
    arr, photometric = decode_frame_with_photometric(little)
    big = pydicom.dcmread(sample("examples_palette.dcm"))
    big.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
    for colour in ("Red", "Green", "Blue"):
        words = np.frombuffer(big[f"{colour}PaletteColorLookupTableData"].value, dtype="<u2")
        big[f"{colour}PaletteColorLookupTableData"].value = words.astype(">u2").tobytes()
    expected = to_rgb(arr, photometric, 0, little)
    assert expected.mean() > 10  # not the near-black image the bug gave
    assert np.array_equal(to_rgb(arr, photometric, 0, big), expected)


def test_grey_interpretation_is_refused_by_to_rgb() -> None:
    ds = imagegen.ct_slice()
    with pytest.raises(RenderError, match="grey scale"):
        to_rgb(np.zeros((2, 2), dtype=np.uint16), "MONOCHROME2", 0, ds)


def test_unknown_photometric_interpretation_is_quoted() -> None:
    with pytest.raises(RenderError, match="'CMYK'"):
        Photometric.parse("CMYK")
