"""Modality LUT and VOI stages against values worked out by hand from PS3.3 C.11."""

from __future__ import annotations

import math

import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_modality_lut, apply_windowing

from tests.conftest import testdata as sample
from tests.support import imagegen
from tuiviewer.exceptions import RenderError
from tuiviewer.render.decode import decode_frame
from tuiviewer.render.lut import (
    VoiFunction,
    Window,
    apply_voi_lut_sequence,
    apply_window,
    full_range_window,
    modality_lut,
    modality_params,
    voi_luts_from_dataset,
    windows_from_dataset,
)


def test_linear_window_c40_w400_matches_the_standard_by_hand() -> None:
    # C.11.2.1.2.1 with c=40, w=400: lower edge c-0.5-(w-1)/2 = -160, upper c-0.5+(w-1)/2 = 239.
    x = np.array([-1000, -160, -159, 40, 239, 239.5, 3000], dtype=np.float32)
    y = apply_window(x, Window(40, 400))
    assert y.dtype == np.uint8
    # x=-159: ((-159-39.5)/399+0.5)*255 = 0.639 → 1; x=40: (0.5/399+0.5)*255 = 127.82 → 128;
    # x=239: (199.5/399+0.5)*255 = 255.
    assert y.tolist() == [0, 0, 1, 128, 255, 255, 255]


def test_linear_exact_and_sigmoid_by_hand() -> None:
    x = np.array([-161.0, -160.0, 0.0, 40.0, 240.0, 241.0])
    exact = apply_window(x, Window(40, 400, VoiFunction.LINEAR_EXACT))
    # C.11.2.1.3.1: x <= c-w/2 = -160 → 0; x=0: ((0-40)/400+0.5)*255 = 102; x > 240 → 255.
    assert exact.tolist() == [0, 0, 102, 128, 255, 255]
    sig = apply_window(np.array([40.0, 140.0, -60.0]), Window(40, 400, VoiFunction.SIGMOID))
    # C.11.2.1.3.2: 255 / (1 + exp(-4 (x - c) / w)); at x = c + 100: 255 / (1 + e^-1) = 186.4.
    expected = [round(255 / (1 + math.exp(-4 * (v - 40) / 400))) for v in (40.0, 140.0, -60.0)]
    assert sig.tolist() == expected == [128, 186, 69]


@pytest.mark.parametrize(
    ("function", "width"),
    [(VoiFunction.LINEAR, 0.5), (VoiFunction.LINEAR_EXACT, 0.0), (VoiFunction.SIGMOID, -1.0)],
)
def test_window_width_outside_the_standard_is_refused(function: VoiFunction, width: float) -> None:
    with pytest.raises(RenderError, match=f"{width:g}"):
        Window(40, width, function)


def test_pydicom_apply_windowing_keeps_the_input_range_so_we_do_not_use_it() -> None:
    ds = pydicom.dcmread(sample("MR_small.dcm"))
    arr = decode_frame(ds)
    theirs = apply_windowing(arr.astype(np.float64), ds)
    ours = apply_window(arr, windows_from_dataset(ds)[0])
    assert theirs.max() > 255  # the trap: their output spans the input's range
    assert ours.dtype == np.uint8 and ours.max() == 255  # display values, whatever the input


def test_multi_valued_window_center_and_width_give_one_window_per_pair() -> None:
    ds = pydicom.dcmread(sample("J2K_pixelrep_mismatch.dcm"), stop_before_pixels=True)
    windows = windows_from_dataset(ds)
    assert [(w.center, w.width) for w in windows] == [(40, 100), (40, 100), (40, 200)]
    ct = imagegen.ct_slice()
    assert [(w.center, w.width, w.explanation) for w in windows_from_dataset(ct)] == [
        (40.0, 400.0, "SOFT"),
        (-600.0, 1500.0, "LUNG"),
    ]


def test_voi_lut_function_from_the_file_is_carried_by_its_windows() -> None:
    (window,) = windows_from_dataset(imagegen.sigmoid())
    assert window.function is VoiFunction.SIGMOID


def test_enhanced_ct_uses_per_frame_rescale_and_frame_voi() -> None:
    ds = imagegen.enhanced_ct(frames=4)
    hu = imagegen.enhanced_ct_hu(ds)
    for k in range(4):
        stored = decode_frame(ds, k)
        values = modality_lut(stored, modality_params(ds, k))
        np.testing.assert_array_equal(values, hu)
        assert windows_from_dataset(ds, k)[0].center == 40 + 10 * k
    # The trap: pydicom's helper reads only top-level Rescale attributes, absent here.
    np.testing.assert_array_equal(apply_modality_lut(decode_frame(ds, 3), ds), decode_frame(ds, 3))


def test_shared_functional_groups_apply_when_per_frame_has_none() -> None:
    ds = imagegen.enhanced_ct(frames=2)
    shared = ds.SharedFunctionalGroupsSequence[0]
    shared.PixelValueTransformationSequence = ds.PerFrameFunctionalGroupsSequence[1][
        "PixelValueTransformationSequence"
    ].value
    del ds.PerFrameFunctionalGroupsSequence[0].PixelValueTransformationSequence
    params = modality_params(ds, 0)
    assert (params.slope, params.intercept) == (2.0, -1120.0)


def test_ct_rescale_intercept_gives_hounsfield_units() -> None:
    ds = pydicom.dcmread(sample("CT_small.dcm"))
    stored = decode_frame(ds)
    values = modality_lut(stored, modality_params(ds))
    assert values.dtype == np.float32
    assert values[0, 0] == float(stored[0, 0]) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


def test_32_bit_values_keep_float64_precision() -> None:
    ds = imagegen.unsigned32()
    values = modality_lut(decode_frame(ds), modality_params(ds))
    assert values.dtype == np.float64
    assert values[-1, -1] == pytest.approx(3000.0)


def test_modality_lut_sequence_maps_stored_values_by_the_table() -> None:
    ds = imagegen.modality_lut_sequence()
    stored = decode_frame(ds)
    values = modality_lut(stored, modality_params(ds))
    np.testing.assert_array_equal(values, 4 * stored.astype(np.int64) + 100)


def test_voi_lut_sequence_clamps_below_and_above_and_scales_12_bits_to_8() -> None:
    ds = imagegen.voi_lut_sequence()
    (lut,) = voi_luts_from_dataset(ds)
    x = np.array([0, 255, 256, 257, 511, 767, 768, 1023])
    y = apply_voi_lut_sequence(x, lut)
    # entry i = 8 i over 12 bits → 255 * 8 i / 4095; first mapped value 256, 512 entries.
    idx = np.clip(x - 256, 0, 511)
    assert y.tolist() == [round(255 * 8 * i / 4095) for i in idx]
    assert y[0] == 0 and y[-1] == round(255 * 8 * 511 / 4095)


def test_full_range_window_maps_min_to_0_and_max_to_255() -> None:
    values = np.array([-37.0, 0.0, 12.5, 1001.0])
    window = full_range_window(values)
    out = apply_window(values, window)
    assert out[0] == 0 and out[-1] == 255
    # 0 HU sits 37/1038 of the way up: ((0 - (-37)) / 1038) * 255 = 9.09.
    assert out[1] == 9


def test_full_range_window_of_empty_input_is_an_error() -> None:
    with pytest.raises(RenderError, match="empty"):
        full_range_window(np.array([]))
