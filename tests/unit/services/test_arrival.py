"""The slots of a series while it arrives: where each instance will be before it exists."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tuiviewer.dicom.scanning import InstanceRecord
from tuiviewer.services.viewer.arrival import ArrivingSeries, placeholder, settled
from tuiviewer.services.viewer.stack import Stack

STUDY, SERIES = "1.2.3", "1.2.3.4"


def record(k: int, z: float | None, number: int | None = None) -> InstanceRecord:
    base = placeholder(f"1.2.3.4.{k}", SERIES, STUDY)
    return replace(
        base,
        path=Path(f"/x/{k}.dcm"),
        instance_number=number if number is not None else k,
        image_position=(0.0, 0.0, z) if z is not None else None,
        image_orientation=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0) if z is not None else None,
        rows=8,
        columns=8,
    )


def listed(count: int) -> list[tuple[str, int | None]]:
    # The PACS lists them out of order; Instance Number says where each lies.
    return [(f"1.2.3.4.{k}", k) for k in reversed(range(1, count + 1))]


def test_slots_follow_instance_number_and_fill_as_instances_land() -> None:
    series = ArrivingSeries(STUDY, SERIES, listed(5))
    assert series.total == 5 and series.count == 0
    assert series.order == [f"1.2.3.4.{k}" for k in range(1, 6)]
    assert not series.add([record(3, 7.5)])  # filled, nothing moved
    assert series.arrived(2) and not series.arrived(0)
    assert series.progress_text() == "1 of 5 arrived"
    assert series.waiting_text(4) == "slice 5 of 5 not yet arrived"
    assert series.nearest(4) == "1.2.3.4.3"
    series.add([record(k, 2.5 * (k - 1)) for k in (1, 2, 4, 5)])
    assert series.complete and not series.turned


def test_slots_turn_round_when_numbers_run_down_the_normal() -> None:
    series = ArrivingSeries(STUDY, SERIES, listed(4))
    assert not series.add([record(1, 10.0)])  # one position says nothing yet
    assert series.add([record(4, 0.0)])  # number 4 lies below number 1: turn round
    assert series.turned
    assert series.order == [f"1.2.3.4.{k}" for k in (4, 3, 2, 1)]
    assert series.slot("1.2.3.4.1") == 3


def test_without_a_list_the_arrived_slices_are_kept_in_position_order() -> None:
    series = ArrivingSeries(STUDY, SERIES)
    series.add([record(2, 5.0), record(1, 0.0)])
    assert series.add([record(3, 2.5)])
    assert series.order == ["1.2.3.4.1", "1.2.3.4.3", "1.2.3.4.2"]
    assert series.progress_text() == "3 arrived" and series.complete


def test_other_series_and_unlisted_instances() -> None:
    series = ArrivingSeries(STUDY, SERIES, listed(2))
    other = replace(record(9, 0.0), series_uid="9.9")
    assert not series.add([other]) and series.count == 0
    assert series.add([record(7, 1.0)])  # not listed: a slot of its own at the end
    assert series.total == 3 and series.order[-1] == "1.2.3.4.7"


def test_a_stack_fills_its_slots_in_place() -> None:
    series = ArrivingSeries(STUDY, SERIES, listed(3))
    series.add([record(1, 0.0)])
    stack = Stack(series.records_by_slot(), stack=0, arriving=series)
    assert len(stack) == 3 and stack.waiting(2) and not stack.waiting(0)
    series.add([record(3, 5.0)])
    assert stack.fill() == [2]
    assert stack.slices[2].path == Path("/x/3.dcm") and not stack.waiting(2)
    assert stack.geometry.locations == (0.0, None, 5.0)


def test_settling_finds_the_slice_on_show_or_the_nearest_that_arrived() -> None:
    series = ArrivingSeries(STUDY, SERIES, listed(4))
    series.add([record(1, 0.0), record(2, 2.5)])
    other = [replace(record(9, 0.0), series_uid="9.9")]
    arrived = [series.records[sop] for sop in series.order if sop in series.records]
    # Cancelled with two of four: the reader waited on slot 4, the nearest arrived is slot 2.
    where = settled(series, 3, [other, arrived])
    assert where is not None and (where.position, where.index, where.same) == (1, 1, False)
    series.add([record(3, 5.0), record(4, 7.5)])
    complete = series.records_by_slot()
    where = settled(series, 2, [complete])
    assert where is not None and (where.position, where.index, where.same) == (0, 2, True)
    assert settled(ArrivingSeries(STUDY, SERIES, listed(2)), 0, [complete]) is None
