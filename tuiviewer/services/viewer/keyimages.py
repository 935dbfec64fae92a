"""Key images as the viewer sees them: which slice a key image is, which of a study's images
are marked in its saved draft, unmarking one, and where each marked image lies among the stacks
on show (for the list that jumps to it).

Headless: the workstation decides whether the open report editor or the saved draft holds the
marks; these functions read and write the draft.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from tuiviewer.dicom.scanning import InstanceRecord
from tuiviewer.reports.drafts import DraftStore
from tuiviewer.reports.model import KeyImage
from tuiviewer.services.reporting import key_image_of
from tuiviewer.services.viewer.slices import SliceRef, slices_of
from tuiviewer.services.viewer.texts import series_label


def key_of(ref: SliceRef) -> KeyImage:
    """The key image for a slice: a frame number only for multi-frame objects (dciodvfy
    rejects it otherwise)."""
    return key_image_of(ref.record, ref.frame + 1 if ref.frames > 1 else None)


def marked_in_draft(drafts: DraftStore, study_uid: str) -> tuple[KeyImage, ...]:
    """The key images of the saved draft of ``study_uid`` (none without a draft).

    Raises:
        DraftError: the draft cannot be read (it is left as it is).
    """
    draft = drafts.load(study_uid)
    return draft.report.key_images if draft is not None else ()


def unmark_in_draft(drafts: DraftStore, image: KeyImage) -> int:
    """Take ``image`` out of the saved draft of its study; how many key images remain.

    Raises:
        DraftError: the draft cannot be read or written; what was on disk is unchanged.
    """
    draft = drafts.load(image.study_uid)
    if draft is None:
        return 0
    kept = tuple(k for k in draft.report.key_images if k != image)
    if len(kept) != len(draft.report.key_images):
        draft = drafts.save(replace(draft, report=replace(draft.report, key_images=kept)))
    return len(kept)


@dataclass(frozen=True)
class KeyImagePlace:
    """Where a key image is among the viewer's stacks (``stack`` None: not among them)."""

    image: KeyImage
    label: str
    stack: int | None = None
    index: int = 0


def key_image_places(
    images: Sequence[KeyImage], stacks: Sequence[Sequence[InstanceRecord]]
) -> list[KeyImagePlace]:
    """Each key image with a label (series, slice n/N, frame) and its stack and slice."""
    where: dict[KeyImage, tuple[int, int, int]] = {}
    labels: dict[int, str] = {}
    for position, records in enumerate(stacks):
        slices = slices_of(records)
        for index, ref in enumerate(slices):
            where.setdefault(key_of(ref), (position, index, len(slices)))
        if records:
            labels[position] = series_label(records, prior=False).split(" · ")[0]
    places = []
    for image in images:
        found = where.get(image)
        if found is None:
            label = f"{image.sop_instance_uid} (not among the images on show)"
            places.append(KeyImagePlace(image, label))
            continue
        position, index, count = found
        label = f"{labels[position]} · slice {index + 1}/{count}"
        if image.frame is not None:
            label += f" (frame {image.frame})"
        places.append(KeyImagePlace(image, label, position, index))
    return places
