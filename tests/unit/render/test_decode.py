"""Decoding: every transfer syntax in pydicom's files, one frame at a time, clear errors."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pydicom
import pytest
from pydicom.pixels.decoders.base import Decoder
from pydicom.uid import MPEG2MPML, JPEGLSLossless, RLELossless

from tests.conftest import testdata as sample
from tests.support import imagegen
from tuiviewer.exceptions import DecoderMissingError, RenderError
from tuiviewer.render.decode import check_decoder, decode_frame, decode_frame_with_photometric

TWINS = [
    ("MR_small.dcm", "MR_small_RLE.dcm"),
    ("MR_small.dcm", "MR_small_bigendian.dcm"),
    ("MR_small.dcm", "MR_small_expb.dcm"),
    ("MR_small.dcm", "MR_small_implicit.dcm"),
    ("MR_small.dcm", "MR_small_jp2klossless.dcm"),
    ("MR_small.dcm", "MR_small_jpeg_ls_lossless.dcm"),
    ("MR_small.dcm", "MR_small_padded.dcm"),
    ("rtdose.dcm", "rtdose_expb.dcm"),
    ("rtdose.dcm", "rtdose_rle.dcm"),
    ("liver_1frame.dcm", "liver_expb_1frame.dcm"),
    ("SC_rgb_small_odd.dcm", "SC_rgb_small_odd_big_endian.dcm"),
    ("SC_rgb_rle.dcm", "SC_rgb_jpeg_gdcm.dcm"),  # JPEG lossless
    ("SC_rgb_rle.dcm", "SC_rgb_gdcm_KY.dcm"),  # JPEG 2000
]


@pytest.mark.parametrize(("reference", "twin"), TWINS)
def test_lossless_twins_decode_to_the_same_pixels(reference: str, twin: str) -> None:
    a = pydicom.dcmread(sample(reference))
    b = pydicom.dcmread(sample(twin))
    frames = int(a.get("NumberOfFrames", 1) or 1)
    for k in {0, frames - 1}:
        np.testing.assert_array_equal(decode_frame(a, k), decode_frame(b, k))


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("CT_small.dcm", (128, 128)),
        ("JPEG2000.dcm", (1024, 256)),
        ("693_J2KI.dcm", (512, 512)),
        ("JPEGLSNearLossless_16.dcm", (50, 10)),
        ("image_dfl.dcm", (512, 512)),  # deflated
        ("examples_ybr_color.dcm", (240, 320, 3)),  # JPEG baseline, 30 frames
        ("SC_rgb_jpeg_dcmtk.dcm", (100, 100, 3)),
        ("examples_palette.dcm", (350, 800)),
        ("SC_rgb_rle_32bit_2frame.dcm", (100, 100, 3)),
    ],
)
def test_sample_files_decode_one_frame_of_the_expected_shape(name: str, shape: tuple) -> None:
    ds = pydicom.dcmread(sample(name))
    assert decode_frame(ds, 0).shape == shape


def test_ybr_jpeg_is_reported_as_rgb_after_pydicom_converted_it() -> None:
    ds = pydicom.dcmread(sample("SC_rgb_jpeg_dcmtk.dcm"))
    assert ds.PhotometricInterpretation == "YBR_FULL"
    _, photometric = decode_frame_with_photometric(ds)
    assert photometric == "RGB"


def test_frames_of_a_multiframe_object_are_selected_by_index() -> None:
    ds = pydicom.dcmread(sample("SC_rgb_rle_2frame.dcm"))
    first, second = decode_frame(ds, 0), decode_frame(ds, 1)
    # pydicom's whole-object decode is the independent reference here.
    whole = ds.pixel_array
    np.testing.assert_array_equal(first, whole[0])
    np.testing.assert_array_equal(second, whole[1])
    assert not np.array_equal(first, second)


@pytest.mark.parametrize("compressed", [False, True])
def test_decoding_frame_k_of_200_allocates_about_one_frame(compressed: bool) -> None:
    ds = imagegen.many_frames(frames=200 if not compressed else 60, rows=128, cols=128)
    if compressed:
        ds.compress(RLELossless, encoding_plugin="pydicom")
    frame_bytes = 128 * 128 * 2
    decode_frame(ds, 1)  # warm up imports and caches outside the measurement
    tracemalloc.start()
    try:
        frame = decode_frame(ds, 42)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert int(frame[0, 0]) == 42 and frame.shape == (128, 128)
    assert peak < 3 * frame_bytes


def test_bits_above_bits_stored_are_masked() -> None:
    ds = imagegen.bits_stored_12_with_junk()
    np.testing.assert_array_equal(decode_frame(ds), imagegen.ramp(32, 32, 0, 4095))


@pytest.mark.parametrize("bits_stored", [16, 12])
def test_signed_values_are_sign_extended(bits_stored: int) -> None:
    ds = imagegen.signed16(bits_stored=bits_stored)
    np.testing.assert_array_equal(decode_frame(ds), imagegen.ramp(32, 32, -2000, 2000))


def test_frame_out_of_range_names_the_frame_and_the_count() -> None:
    ds = pydicom.dcmread(sample("SC_rgb_rle_2frame.dcm"))
    with pytest.raises(RenderError, match=r"Frame 3 does not exist: the image has 2 frames"):
        decode_frame(ds, 2)


def test_missing_pixel_data_is_a_render_error() -> None:
    ds = pydicom.dcmread(sample("rtplan.dcm"))
    with pytest.raises(RenderError, match="no \\(7FE0,0010\\) Pixel Data"):
        decode_frame(ds)


def test_decoder_without_plugins_names_syntax_uid_and_package() -> None:
    bare = Decoder(JPEGLSLossless)  # a real pydicom decoder with no plugin registered
    with pytest.raises(DecoderMissingError) as info:
        check_decoder(bare)
    assert info.value.message.startswith(
        "JPEG-LS Lossless Image Compression (1.2.840.10008.1.2.4.80) needs python-gdcm or "
        "pylibjpeg-libjpeg: pip install python-gdcm"
    )


def test_unsupported_transfer_syntax_is_a_decoder_missing_error() -> None:
    ds = pydicom.dcmread(sample("CT_small.dcm"))
    ds.file_meta.TransferSyntaxUID = MPEG2MPML
    with pytest.raises(DecoderMissingError, match=r"MPEG2 Main Profile / Main Level \(1\.2"):
        decode_frame(ds)


def test_12_bit_jpeg_extended_asks_for_libjpeg() -> None:
    ds = pydicom.dcmread(sample("JPGExtended.dcm"))
    try:
        decode_frame(ds)
    except DecoderMissingError as exc:
        assert "12-bit" in exc.message and "pip install pylibjpeg-libjpeg" in exc.message
    else:  # pylibjpeg-libjpeg is installed: then it must decode (1024 x 256)
        assert decode_frame(ds).shape == (1024, 256)
