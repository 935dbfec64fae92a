"""A series shown while it arrives: fixed slots for the instances the PACS listed, filled as
their files land, so the reader can page through the slices that are there and wait on one that
is not.

The image-level C-FIND before a retrieve lists every instance of the series with its Instance
Number; that fixes where each slice will lie before any file exists, so an index means the same
slice from the first arrival to the last and nothing jumps under the reader. Slots follow
Instance Number, turned round once two arrived slices show that the numbers run against the
slice normal (the finished stack is sorted along the normal, see
:mod:`tuiviewer.dicom.index`). Without a list (a PACS that will not answer the C-FIND), the
slices that arrived are kept in order of position and there is no empty slot. Multi-frame
instances are one slot each (their first frame) until the series is complete.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tuiviewer.dicom.index import slice_location
from tuiviewer.dicom.scanning import InstanceRecord
from tuiviewer.net.retrieve import StudyInventory


def listing(inventory: StudyInventory | None, series_uid: str) -> list[tuple[str, int | None]]:
    """What the PACS listed of ``series_uid`` so far, as (SOP Instance UID, Instance Number)."""
    if inventory is None or not series_uid:
        return []
    return [(item.sop_uid, item.number) for item in inventory.series.get(series_uid, [])]


def placeholder(sop_uid: str, series_uid: str, study_uid: str) -> InstanceRecord:
    """The record of a slot whose instance has not arrived: no file, no pixels, no place."""
    return InstanceRecord(
        path=Path(),
        sop_instance_uid=sop_uid,
        sop_class_uid="",
        patient_name="",
        patient_id="",
        patient_birth_date="",
        patient_sex="",
        study_uid=study_uid,
        study_date="",
        study_time="",
        study_description="",
        accession_number="",
        series_uid=series_uid,
        series_number=None,
        series_description="",
        modality="",
        instance_number=None,
        acquisition_number=None,
        echo_number=None,
        image_position=None,
        image_orientation=None,
        rows=None,
        columns=None,
        frames=1,
    )


class ArrivingSeries:
    """One series being retrieved: which slot holds which instance, and which have arrived."""

    def __init__(
        self,
        study_uid: str,
        series_uid: str,
        expected: Sequence[tuple[str, int | None]] = (),
    ) -> None:
        """Args:
        series_uid: the series; "" for the first image series that arrives (a viewer opened
            before the retrieve knows which series it brings first).
        expected: the instances the PACS listed, as (SOP Instance UID, Instance Number), in
            the order it listed them; empty when unknown. A longer list may come later
            (:meth:`relist`): the C-FIND is still answering while the first slices land.
        """
        self.study_uid = study_uid
        self.series_uid = series_uid
        self.records: dict[str, InstanceRecord] = {}
        self._expected: list[tuple[str, int | None]] = []
        self.order: list[str] = []
        """SOP Instance UIDs, slot by slot."""
        self._slot: dict[str, int] = {}
        self.turned = False
        """Slots run against Instance Number (it decreases along the slice normal)."""
        self.relist(expected)

    @property
    def listed(self) -> bool:
        """Whether the PACS listed the series (else there are only arrived slots)."""
        return bool(self._expected)

    def relist(self, expected: Sequence[tuple[str, int | None]]) -> bool:
        """Take the PACS's list of the series (as for the constructor) when it lists more than
        before; True when the slots moved: the stack must be built again (the slice on show
        keeps its SOP Instance UID, not its index)."""
        if len(expected) <= len(self._expected):
            return False
        self._expected = list(expected)
        listed = list(dict.fromkeys(sop for sop, _ in expected))
        numbers = dict(expected)
        rank = {sop: k for k, sop in enumerate(listed)}
        order = sorted(
            listed,
            key=lambda sop: (numbers[sop] is None, numbers[sop] or 0, rank[sop]),
        )
        if self.turned:
            order.reverse()
        known = set(order)
        order += [sop for sop in self.order if sop not in known]  # arrived, never listed
        moved = order != self.order
        self.order = order
        self._slot = {sop: k for k, sop in enumerate(order)}
        return moved

    @property
    def total(self) -> int:
        """Slots: the instances listed, and any that arrived without being listed."""
        return len(self.order)

    @property
    def count(self) -> int:
        """Instances arrived so far."""
        return len(self.records)

    @property
    def complete(self) -> bool:
        return self.count >= self.total

    def add(self, records: Sequence[InstanceRecord]) -> bool:
        """Take the arrived ``records`` (those of other series are ignored); True when the slots
        moved (a new order, not just filled): the stack must be built again."""
        moved = False
        for record in records:
            if not self.series_uid and record.study_uid == self.study_uid and record.rows:
                self.series_uid = record.series_uid  # the first image series to arrive
            if record.series_uid != self.series_uid or record.study_uid != self.study_uid:
                continue
            sop = record.sop_instance_uid
            self.records[sop] = record
            if sop not in self._slot:
                moved = True
                self.order.append(sop)
                self._slot[sop] = len(self.order) - 1
        if not self.listed:
            moved |= self._sort_by_position()
        elif not self.turned and self._runs_backwards():
            self.turned = moved = True
            self.order.reverse()
        if moved:
            self._slot = {sop: k for k, sop in enumerate(self.order)}
        return moved

    def _sort_by_position(self) -> bool:
        def key(sop: str) -> tuple[bool, float, int, str]:
            record = self.records[sop]
            location = slice_location(record)
            number = record.instance_number
            return (location is None, location or 0.0, number or 0, sop)

        order = sorted(self.order, key=key)
        if order == self.order:
            return False
        self.order = order
        return True

    def _runs_backwards(self) -> bool:
        """Two arrived slices with a position say whether the slots run down the normal."""
        placed = [
            (self._slot[sop], location)
            for sop, record in self.records.items()
            if (location := slice_location(record)) is not None
        ]
        if len(placed) < 2:
            return False
        placed.sort()
        (_, first), (_, last) = placed[0], placed[-1]
        return last < first

    def slot(self, sop_uid: str) -> int | None:
        return self._slot.get(sop_uid)

    def records_by_slot(self) -> list[InstanceRecord]:
        """Each slot's record: the arrived instance, else a :func:`placeholder`."""
        return [
            self.records.get(sop) or placeholder(sop, self.series_uid, self.study_uid)
            for sop in self.order
        ]

    def arrived(self, slot: int) -> bool:
        return 0 <= slot < len(self.order) and self.order[slot] in self.records

    def nearest(self, slot: int) -> str | None:
        """The arrived instance nearest ``slot`` (SOP Instance UID), None before any arrived."""
        arrived = [k for k, sop in enumerate(self.order) if sop in self.records]
        if not arrived:
            return None
        return self.order[min(arrived, key=lambda k: (abs(k - slot), k))]

    def waiting_text(self, slot: int) -> str:
        """What the reader sees on a slot that has not arrived."""
        return f"slice {slot + 1} of {self.total} not yet arrived"

    def progress_text(self) -> str:
        """``37 of 300 arrived`` (``37 arrived`` when the PACS did not list the series)."""
        if not self.listed:
            return f"{self.count} arrived"
        return f"{self.count} of {self.total} arrived"


class ArrivingStudy:
    """Every series of a study being retrieved, each an :class:`ArrivingSeries` from the
    PACS's list (or as its instances come), so that the series besides the one on show appear
    and grow too, and the reader can switch to one still arriving."""

    def __init__(self, opened: ArrivingSeries) -> None:
        self.opened = opened
        """The series the viewer opened on (its UID may come with its first image)."""
        self.others: dict[str, ArrivingSeries] = {}

    def series_for(self, series_uid: str) -> ArrivingSeries | None:
        if series_uid and series_uid == self.opened.series_uid:
            return self.opened
        return self.others.get(series_uid)

    def take(
        self,
        records: Sequence[InstanceRecord],
        inventory: StudyInventory | None,
        skip: ArrivingSeries | None = None,
    ) -> list[ArrivingSeries]:
        """Put the arrived image ``records`` into their series (``skip``, the one on show,
        is filled by the viewer itself); the series that grew, in the order they came."""
        grew: dict[str, ArrivingSeries] = {}
        for record in records:
            uid = record.series_uid
            if not record.rows or record.study_uid != self.opened.study_uid:
                continue  # not an image: a report, a key object…
            series = self.series_for(uid)
            if series is None:
                series = self.others[uid] = ArrivingSeries(record.study_uid, uid)
            if series is skip:
                continue
            series.relist(listing(inventory, uid))
            series.add([record])
            grew[uid] = series
        return list(grew.values())

    @staticmethod
    def arrived(series: ArrivingSeries) -> list[InstanceRecord]:
        """The instances of ``series`` that arrived, slot by slot."""
        return [series.records[sop] for sop in series.order if sop in series.records]


@dataclass(frozen=True)
class Settled:
    """Where the reader goes when the stacks on disk replace a series that was arriving."""

    position: int
    """The stack (of the study's stacks) holding the slice on show."""
    index: int
    """That slice's index in it (of its slices, frames counted)."""
    same: bool
    """The stack is the slots, complete and in their order: nothing needs to move."""


def settled(
    series: ArrivingSeries, slot: int, stacks: Sequence[Sequence[InstanceRecord]]
) -> Settled | None:
    """Where slot ``slot`` of ``series`` (or the nearest slice that arrived) is among
    ``stacks``; None when none of them holds it (nothing arrived)."""
    sop = series.order[slot] if series.arrived(slot) else series.nearest(slot)
    for position, stack in enumerate(stacks):
        uids = [r.sop_instance_uid for r in stack]
        if sop in uids:
            same = uids == series.order and all(r.frames <= 1 for r in stack)
            index = sum(max(1, r.frames) for r in stack[: uids.index(sop)])
            return Settled(position, index, same)
    return None
