"""What a study holds before any pixel moves: its image-level C-FIND as a typed inventory.

Its own module because three parts read it without retrieving anything themselves: the C-GET
(which storage contexts to propose; a class not offered is silently lost), the viewer (one
slot per listed instance, by Instance Number, before the instances land), and a resume (what
is missing). A rest on a worklist row asks for it alone, ahead of Enter.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pydicom.dataset import Dataset

from tuiviewer.config.nodes import Node
from tuiviewer.net.errors import DimseStatusError, NoAcceptedContext
from tuiviewer.net.find import FindQuery, QueryLevel, find
from tuiviewer.net.trace import AssociationTrace


@dataclass(frozen=True)
class InstanceInfo:
    """One instance as the image-level C-FIND describes it."""

    sop_uid: str
    sop_class_uid: str
    """"" when the PACS does not return SOP Class UID (pynetdicom's qrscp does not)."""
    transfer_syntaxes: tuple[str, ...] = ()
    """Available Transfer Syntax UID (0008,3002), when the PACS fills it in."""
    number: int | None = None
    """Instance Number, when the PACS returns it: where the instance lies before it arrives."""


@dataclass(frozen=True)
class StudyInventory:
    """The study's series, in the order the PACS listed them, with their instances."""

    study_uid: str
    series: dict[str, list[InstanceInfo]]

    @property
    def count(self) -> int:
        return sum(len(items) for items in self.series.values())

    def classes(self, series_uids: Sequence[str]) -> tuple[dict[str, set[str]], bool]:
        """SOP classes (with known transfer syntaxes) of ``series_uids``, and whether every
        instance's class is known."""
        classes: dict[str, set[str]] = {}
        complete = True
        for uid in series_uids:
            for item in self.series.get(uid, []):
                if not item.sop_class_uid:
                    complete = False
                    continue
                classes.setdefault(item.sop_class_uid, set()).update(item.transfer_syntaxes)
        return classes, complete


def _values(ds: Dataset, keyword: str) -> tuple[str, ...]:
    value = ds.get(keyword)
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return tuple(v for v in value.split("\\") if v)
    return tuple(str(v) for v in value if str(v))


def instance_number(ds: Dataset) -> int | None:
    """A C-FIND answer's Instance Number, None when absent or not a number."""
    try:
        value = ds.get("InstanceNumber")
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def study_inventory(
    node: Node,
    study_uid: str,
    *,
    cancel: threading.Event | None = None,
    trace: AssociationTrace | None = None,
    on_match: Callable[[str, InstanceInfo], None] | None = None,
) -> StudyInventory:
    """List a study's instances with an image-level C-FIND (Study Root); ``on_match`` is
    called with each instance (and its series' UID) as its answer comes.

    Raises:
        NetError: any C-FIND failure (see :func:`tuiviewer.net.find.find`).
    """
    query = FindQuery(
        level=QueryLevel.IMAGE,
        study_uid=study_uid,
        extra={"AvailableTransferSyntaxUID": ""},
    )
    series: dict[str, list[InstanceInfo]] = {}
    seen: set[str] = set()
    for match in find(node, query, cancel=cancel, trace=trace):
        sop = str(match.get("SOPInstanceUID", "") or "")
        series_uid = str(match.get("SeriesInstanceUID", "") or "")
        if not sop or not series_uid or sop in seen:
            continue
        seen.add(sop)
        info = InstanceInfo(
            sop_uid=sop,
            sop_class_uid=str(match.get("SOPClassUID", "") or ""),
            transfer_syntaxes=_values(match, "AvailableTransferSyntaxUID"),
            number=instance_number(match),
        )
        series.setdefault(series_uid, []).append(info)
        if on_match is not None:
            on_match(series_uid, info)
    return StudyInventory(study_uid=study_uid, series=series)


def _inventory_or_none(
    node: Node,
    study_uid: str,
    cancel: threading.Event | None,
    trace: AssociationTrace | None,
    on_match: Callable[[str, InstanceInfo], None] | None = None,
) -> StudyInventory | None:
    """The inventory, or None when the PACS will not answer an image-level C-FIND (or finds
    nothing: some PACS answer image-level queries only within a series).

    Connection-level failures are raised: the retrieve would fail the same way.
    """
    try:
        return study_inventory(node, study_uid, cancel=cancel, trace=trace, on_match=on_match)
    except (DimseStatusError, NoAcceptedContext):
        return None
