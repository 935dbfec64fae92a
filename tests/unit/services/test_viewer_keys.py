"""What the viewer's keys do, headless: window steps, zoom, pan, the slice nearest a position,
key images in a draft (mark, unmark, where each lies) and the title a pane keeps."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuiviewer.dicom.datagen import write_ct_series
from tuiviewer.dicom.scanning import InstanceRecord, scan
from tuiviewer.render.lut import Window
from tuiviewer.reports.drafts import DraftStore
from tuiviewer.services.reporting import mark_in_draft
from tuiviewer.services.viewer.keyimages import (
    key_image_places,
    key_of,
    marked_in_draft,
    unmark_in_draft,
)
from tuiviewer.services.viewer.slices import ViewState, slices_of
from tuiviewer.services.viewer.texts import pane_title
from tuiviewer.services.viewer.view import nearest_slice, panned, stepped_window, zoomed


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> list[InstanceRecord]:
    folder = tmp_path_factory.mktemp("keys-ct")
    write_ct_series(folder, slices=6, rows=16, cols=16, seed=3)
    records = [r for batch in scan([folder]) for r in batch]
    return sorted(records, key=lambda r: r.image_position[2] if r.image_position else 0.0)


def test_window_steps_fine_and_coarse() -> None:
    window = Window(40, 400)
    assert stepped_window(window, 1, 0).center == pytest.approx(40 + 0.02 * 400)
    assert stepped_window(window, 10, 0).center == pytest.approx(40 + 0.2 * 400)
    assert stepped_window(window, 0, 1).width == pytest.approx(400 * 1.05, rel=0.01)
    assert stepped_window(window, -1, 0).width == 400, "a level step keeps the width"


def test_zoom_is_kept_between_a_quarter_and_32_and_snaps_back_to_1() -> None:
    view = ViewState()
    assert zoomed(zoomed(view, 1), -1).zoom == 1.0
    for _ in range(40):
        view = zoomed(view, 1)
    assert view.zoom == 32.0
    for _ in range(80):
        view = zoomed(view, -1)
    assert view.zoom == 0.25


def test_pan_left_shows_what_lies_to_the_right_a_tenth_of_the_pane_a_step() -> None:
    assert panned(ViewState(), -1, 0, (200, 100)).pan == (20, 0)
    assert panned(ViewState(), 0, 1, (200, 100)).pan == (0, -10)


def test_the_nearest_slice_to_a_position(stack: list[InstanceRecord]) -> None:
    slices = slices_of(stack)
    target = stack[4].image_position
    assert nearest_slice(slices, target) == 4
    assert nearest_slice(slices, None) == 0


def test_key_images_marked_unmarked_and_placed(stack: list[InstanceRecord], tmp_path: Path) -> None:
    drafts = DraftStore(tmp_path / "drafts")
    study = stack[0].study_uid
    assert marked_in_draft(drafts, study) == ()
    mark_in_draft(drafts, stack[1], None)
    mark_in_draft(drafts, stack[3], None)
    slices = slices_of(stack)
    assert marked_in_draft(drafts, study) == (key_of(slices[1]), key_of(slices[3]))
    places = key_image_places(marked_in_draft(drafts, study), [stack])
    assert [(p.stack, p.index) for p in places] == [(0, 1), (0, 3)]
    assert places[1].label.endswith("slice 4/6")
    assert unmark_in_draft(drafts, key_of(slices[1])) == 1
    assert marked_in_draft(drafts, study) == (key_of(slices[3]),)
    elsewhere = key_image_places(marked_in_draft(drafts, study), [])
    assert elsewhere[0].stack is None and "not among the images on show" in elsewhere[0].label


def test_a_pane_title_keeps_patient_id_date_and_series(stack: list[InstanceRecord]) -> None:
    from tuiviewer.services.viewer.slices import SliceSource

    loaded = SliceSource(slices_of(stack)).load(0)
    assert loaded is not None
    title = pane_title(loaded.info)
    record = stack[0]
    assert record.patient_id in title
    assert f"#{record.series_number} CT" in title
    date = record.study_date
    assert f"{date[:4]}-{date[4:6]}-{date[6:]}" in title
