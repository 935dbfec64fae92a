"""The slice spacing of a series still arriving, from the slots of what came: two slices
``k`` slots apart have ``k - 1`` to come between them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuiviewer.dicom.datagen import write_ct_series
from tuiviewer.dicom.scanning import read_record
from tuiviewer.services.viewer.arrival import ArrivingSeries
from tuiviewer.services.viewer.volume_view import arriving_spacing


def test_spacing_comes_from_the_slots_of_what_arrived(tmp_path: Path) -> None:
    paths = write_ct_series(tmp_path, slices=10, rows=16, cols=16, seed=3)
    records = sorted(map(read_record, paths), key=lambda r: r.instance_number or 0)
    listed = [(r.sop_instance_uid, r.instance_number) for r in records]
    series = ArrivingSeries(records[0].study_uid, records[0].series_uid, listed)
    assert arriving_spacing(series) is None
    series.add([records[1], records[7]])  # six slots apart: 15 mm is 2.5 mm a slot
    assert arriving_spacing(series) == pytest.approx(2.5)
    unlisted = ArrivingSeries(records[0].study_uid, records[0].series_uid)
    unlisted.add([records[1], records[7]])
    assert arriving_spacing(unlisted) is None  # no list: nothing says what lies between
