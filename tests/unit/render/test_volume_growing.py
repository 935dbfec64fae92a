"""A volume built while its files land (the volume screen on a series still arriving): each
snapshot holds what came, with the slices not there yet as gaps, inside the memory budget all
along, and once every file is in it is the volume a fresh read of the files builds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.support import imagegen
from tuiviewer.render.mpr import Plane, PlaneRequest, extract_plane
from tuiviewer.render.volume import Volume, VolumeBuilder, VolumeError, load_volume

SLICES = 30


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("growing")
    series = imagegen.sphere_series(slices=SLICES, rows=64, cols=64, radius=16.0)
    return [imagegen.save(ds, folder / f"{n:03}.dcm") for n, ds in enumerate(series)]


def in_order(volume: Volume) -> np.ndarray:
    return np.asarray(volume.data[volume.slots])


def test_a_volume_grows_in_budget_and_ends_as_the_fresh_one(files: list[Path]) -> None:
    budget = SLICES * 64 * 64 * 2 // 3  # full resolution does not fit: averaged 2×2
    builder = VolumeBuilder(budget_bytes=budget, expected=SLICES)
    builder.add_files([files[12]])
    assert builder.too_few  # one slice: wait for the next, not a failure
    with pytest.raises(VolumeError):
        builder.volume()

    # They come from where the reader is, then a block further on: a gap in between.
    builder.add_files(files[13:18])
    builder.add_files(files[24:27])
    partial = builder.volume()
    assert not builder.too_few and partial.geometry.slices == 9
    (gap,) = partial.geometry.gaps
    assert gap.missing == 6
    assert any("6 slices missing" in note for note in partial.notes())
    coronal = extract_plane(partial, PlaneRequest(Plane.standard("coronal")))
    assert coronal is not None and coronal.fidelity.holes
    assert np.isnan(coronal.values).all(axis=1).sum() == 6  # the gap is black, not guessed
    assert partial.downsample == 2 and partial.data.nbytes <= budget

    # The rest, in any order: one store all along, never over the budget.
    rest = [f for f in files if f not in (files[12], *files[13:18], *files[24:27])]
    for chunk in (rest[::2], rest[1::2]):
        builder.add_files(chunk)
        grown = builder.volume()
        assert grown.data is partial.data and grown.data.nbytes <= budget
    done = builder.volume()
    fresh, rejected = load_volume(files, budget_bytes=budget)
    assert done.complete and rejected == ()
    assert done.geometry == fresh.geometry and done.downsample == fresh.downsample
    np.testing.assert_array_equal(in_order(done), in_order(fresh))
    np.testing.assert_array_equal(done.slope, fresh.slope)
    np.testing.assert_array_equal(done.intercept, fresh.intercept)


def test_without_a_count_growing_stays_in_budget(files: list[Path]) -> None:
    budget = SLICES * 64 * 64 * 2 // 3
    builder = VolumeBuilder(budget_bytes=budget)  # the PACS did not list the series
    for start in range(0, SLICES, 7):
        builder.add_files(files[start : start + 7])
        assert builder.volume().data.nbytes <= budget
    assert builder.volume().complete


def test_a_known_spacing_makes_far_apart_slices_a_gap(files: list[Path]) -> None:
    builder = VolumeBuilder(expected=SLICES)
    builder.add_files([files[3], files[20]])
    alone = builder.volume().geometry
    assert alone.gaps == ()  # two slices alone: nothing says anything is between them
    builder.expect_spacing(1.0)  # the series' spacing, known from its slots
    (gap,) = builder.volume().geometry.gaps
    assert gap.missing == 16
    builder.expect_spacing(None)
    assert builder.volume().geometry == alone
