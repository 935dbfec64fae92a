"""The whole pipeline: order of stages, what RenderedImage reports, presets and PNG output."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from PIL import Image

from tests.conftest import testdata as sample
from tests.support import imagegen
from tuiviewer.exceptions import ConfigError, RenderError
from tuiviewer.render.lut import VoiFunction, Window
from tuiviewer.render.pipeline import RenderRequest, render
from tuiviewer.render.png import encode_png
from tuiviewer.render.presets import CT_PRESETS, parse_overrides, presets_for


def _linear(x: np.ndarray, c: float, w: float) -> np.ndarray:
    """C.11.2.1.2.1 restated independently, rounded to nearest."""
    y = ((x - (c - 0.5)) / (w - 1) + 0.5) * 255
    y = np.where(x <= c - 0.5 - (w - 1) / 2, 0, np.where(x > c - 0.5 + (w - 1) / 2, 255, y))
    return np.rint(y).astype(int)


def test_ct_uses_the_first_file_window_on_hounsfield_units() -> None:
    ds = imagegen.ct_slice()
    image = render(ds, RenderRequest())
    hu = imagegen.ramp(64, 64, 0, 3024) - 1024
    assert image.mode == "L" and image.pixels.dtype == np.uint8
    assert image.window is not None and (image.window.center, image.window.width) == (40, 400)
    np.testing.assert_array_equal(image.pixels, _linear(hu, 40, 400))


def test_monochrome1_is_inverted_after_voi() -> None:
    ds = imagegen.monochrome1()
    image = render(ds, RenderRequest(window=Window(1000, 500)))
    stored = imagegen.ramp(64, 80, 0, 4095)
    # Inverting before VOI would window 4095 - x instead: a different image.
    np.testing.assert_array_equal(image.pixels, 255 - _linear(stored, 1000, 500))
    inverted_again = render(ds, RenderRequest(window=Window(1000, 500), invert=True))
    np.testing.assert_array_equal(inverted_again.pixels, _linear(stored, 1000, 500))


def test_enhanced_frames_render_identically_because_per_frame_rescale_is_applied() -> None:
    ds = imagegen.enhanced_ct(frames=3)
    hu = imagegen.enhanced_ct_hu(ds)
    for k in range(3):
        image = render(ds, RenderRequest(frame=k, window=Window(40, 400)))
        np.testing.assert_array_equal(image.pixels, _linear(hu, 40, 400))
    default = render(ds, RenderRequest(frame=2))
    assert default.window is not None and default.window.center == 60  # Frame VOI LUT


def test_sigmoid_from_the_file_is_applied() -> None:
    image = render(imagegen.sigmoid(), RenderRequest())
    x = imagegen.ramp(16, 64, 0, 1000).astype(float)
    expected = np.rint(255 / (1 + np.exp(-4 * (x - 500) / 200)))
    np.testing.assert_array_equal(image.pixels, expected)


def test_voi_lut_sequence_is_used_when_the_file_has_no_window() -> None:
    image = render(imagegen.voi_lut_sequence(), RenderRequest())
    assert image.window is None and any("VOI LUT TEST LUT" in n for n in image.notes)
    x = imagegen.ramp(16, 64, 0, 1023)
    np.testing.assert_array_equal(image.pixels, np.rint(np.clip(x - 256, 0, 511) * 8 * 255 / 4095))


def test_full_range_is_used_when_the_file_proposes_nothing() -> None:
    ds = pydicom.dcmread(sample("CT_small.dcm"))
    image = render(ds, RenderRequest())
    assert image.pixels.min() == 0 and image.pixels.max() == 255
    assert any("full-range" in n for n in image.notes)


def test_size_fits_the_box_and_reports_the_downsampling_ratio() -> None:
    ds = imagegen.ct_slice(rows=64, cols=64)
    image = render(ds, RenderRequest(size=(40, 16)))
    assert image.pixels.shape == (16, 16)
    assert image.source_size == (64, 64)
    assert image.downsampled == pytest.approx(4.0)
    native = render(ds, RenderRequest())
    assert native.pixels.shape == (64, 64) and native.downsampled == 1.0


def test_zoom_and_pan_show_the_right_source_pixels() -> None:
    ds = imagegen.rgb(rows=8, cols=12)
    expected = imagegen.rgb_expected(8, 12)
    zoomed = render(ds, RenderRequest(zoom=2.0))
    assert zoomed.pixels.shape == (8, 12, 3)
    # Zoom 2 about the centre: output (0, 0) shows source (2, 3).
    np.testing.assert_array_equal(zoomed.pixels[0, 0], expected[2, 3])
    panned = render(ds, RenderRequest(zoom=2.0, pan=(4.0, 0.0)))
    # Panning 4 output pixels right moves the view 2 source pixels left.
    np.testing.assert_array_equal(panned.pixels[0, 0], expected[2, 1])
    far = render(ds, RenderRequest(zoom=1.0, pan=(100.0, 0.0)))
    assert (far.pixels == 0).all()  # panned out of view: black, not wrapped


def test_lossy_jpeg_source_is_flagged() -> None:
    lossy = render(pydicom.dcmread(sample("SC_rgb_jpeg_dcmtk.dcm")), RenderRequest())
    lossless = render(pydicom.dcmread(sample("SC_rgb_rle.dcm")), RenderRequest())
    assert lossy.lossy and "lossy compressed source" in lossy.notes
    assert not lossless.lossy


def test_frame_beyond_the_end_is_refused() -> None:
    with pytest.raises(RenderError, match="Frame 5 does not exist"):
        render(imagegen.enhanced_ct(frames=4), RenderRequest(frame=4))


def test_ct_presets_cover_the_usual_windows() -> None:
    names = [p.name for p in presets_for("CT")]
    assert names == [p.name for p in CT_PRESETS]
    lung = next(p for p in presets_for("CT") if p.name == "lung")
    assert (lung.window.center, lung.window.width) == (-600, 1500)
    assert "radiopaedia" in lung.source.lower()


def test_mr_presets_are_file_windows_then_full_range() -> None:
    ds = imagegen.ct_slice()
    ds.Modality = "MR"
    values = np.array([-5.0, 5.0])
    presets = presets_for("MR", ds, values)
    assert [p.name for p in presets] == ["SOFT", "LUNG", "full range"]
    assert presets[-1].window.center == 0.5 and presets[-1].window.width == 11


def test_user_presets_replace_and_extend() -> None:
    overrides = parse_overrides(
        {"ct": {"brain": [35, 90], "posterior fossa": {"center": 45, "width": 120}}}
    )
    presets = presets_for("CT", overrides=overrides)
    brain = next(p for p in presets if p.name == "brain")
    assert (brain.window.center, brain.window.width, brain.source) == (35, 90, "config")
    assert presets[-1].name == "posterior fossa"


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"CT": {"brain": "wide"}}, "presets.CT.brain = 'wide'"),
        ({"CT": {"brain": [40, 0]}}, "presets.CT.brain"),
        ({"CT": {"x": {"center": 1, "width": 2, "function": "CUBIC"}}}, "'CUBIC'"),
    ],
)
def test_bad_user_presets_name_the_key(data: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment.replace(".", r"\.").replace("'", "'")):
        parse_overrides(data, where="config.toml")


def test_sigmoid_user_preset_keeps_its_function() -> None:
    overrides = parse_overrides({"MR": {"soft": {"center": 1, "width": 2, "function": "sigmoid"}}})
    assert overrides["MR"][0].window.function is VoiFunction.SIGMOID


@pytest.mark.parametrize("shape", [(5, 7), (5, 7, 3)])
def test_png_encoder_round_trips_through_pillow(shape: tuple) -> None:
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, size=shape, dtype=np.uint8)
    decoded = Image.open(io.BytesIO(encode_png(pixels)))
    assert decoded.mode == ("L" if len(shape) == 2 else "RGB")
    np.testing.assert_array_equal(np.asarray(decoded), pixels)
