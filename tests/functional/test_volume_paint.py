"""The volume screen's updates in separate boxes: a crosshair step that changes one pane and
the readout line under all the panes is painted as two boxes, not as the screen."""

from __future__ import annotations

from textual.geometry import Region

from tuiviewer.screens.volume_paint import boxes


def test_a_pane_and_the_readout_line_are_painted_apart_and_a_panes_lines_together() -> None:
    pane_lines = [Region(82, y, 24 + y % 5, 1) for y in range(2, 36)]
    readout, title = Region(0, 37, 120, 1), Region(80, 0, 40, 1)
    groups = boxes([*pane_lines, readout, title])
    assert [readout] in groups, "the readout line alone"
    (pane,) = [g for g in groups if pane_lines[0] in g]
    assert set(pane_lines) <= set(pane), "the pane's lines in one box"
    assert Region.from_union(pane).right <= 120 and Region.from_union(pane).x >= 80
    assert sorted(r for g in groups for r in g) == sorted([*pane_lines, readout, title])


def test_regions_that_fill_their_box_stay_one_box() -> None:
    quarters = [Region(0, 0, 60, 20), Region(60, 0, 60, 20), Region(0, 20, 120, 18)]
    assert len(boxes(quarters)) == 1
