"""What the viewer writes beside its images: corner texts and the side-by-side caption (the badge
under an image says what the terminal shows: :func:`tuiviewer.widgets.image.view.badge_text`).

Pure functions of what is shown, so they are tested without a terminal and every pane words
things the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

from tuiviewer.dicom.display import display_date
from tuiviewer.dicom.scanning import InstanceRecord
from tuiviewer.render.pipeline import RenderedImage
from tuiviewer.services.viewer.geometry import StackGeometry
from tuiviewer.services.viewer.slices import SliceInfo, SliceRef, ViewState, slices_of


def slice_text(
    slices: Sequence[SliceRef], index: int, shown_index: int | None, stack_pos: int, stacks: int
) -> str:
    """``slice 3/40`` (``…`` while it is on its way), the frame of a multi-frame object, and
    which series of the study it is."""
    ref = slices[index]
    text = f"slice {index + 1}/{len(slices)}"
    if shown_index is not None and shown_index != index:
        text += " …"
    if ref.frames > 1:
        text += f"\nframe {ref.frame + 1}/{ref.frames}"
    if stacks > 1:
        text += f"\nseries {stack_pos + 1}/{stacks}"
    return text


def patient_text(info: SliceInfo) -> str:
    """Patient, study and series, one line each."""
    return f"{info.patient}\n{info.study}\n{info.series}"


def pane_title(info: SliceInfo) -> str:
    """Two lines over a pane when the column of texts is hidden (tags, side by side): the
    patient with the ID, then the study date and the series."""
    return f"{info.patient}\n{' · '.join(p for p in (info.study_date, info.series) if p)}"


def position_text(info: SliceInfo) -> str:
    """Where the slice lies (patient coordinates, LPS, mm) and how thick it is."""
    lines = []
    if info.position is not None:
        x, y, z = info.position
        lines += [f"x {x:.1f} y {y:.1f}", f"z {z:.1f}"]
    elif info.slice_location is not None:
        lines.append(f"loc {info.slice_location:.1f}")
    if info.thickness is not None:
        lines.append(f"thick {info.thickness:g} mm")
    return "\n".join(lines)


def window_text(state: ViewState, image: RenderedImage) -> str:
    """The window of what is shown, with its name (``W 1500 L -600 lung``), or why there is
    none (a colour image)."""
    window = image.window
    if window is not None:
        name = state.preset or window.explanation or ("file" if state.window is None else "")
        return f"W {window.width:g} L {window.center:g}" + (f" {name}" if name else "")
    return image.notes[0] if image.notes else ""


def view_text(state: ViewState, cine_fps: int | None) -> str:
    """Zoom, inversion and cine speed of what is shown."""
    lines = [f"zoom {state.zoom:.2f}×"]
    if state.invert:
        lines.append("inverted")
    if cine_fps is not None:
        lines.append(f"cine {cine_fps} fps")
    return "\n".join(lines)


def series_label(records: Sequence[InstanceRecord], *, prior: bool) -> str:
    """``#3 CT Thorax · 40 images · 2.5 mm apart`` (``prior 2019-03-01: …`` for a prior)."""
    first = records[0]
    number = first.series_number if first.series_number is not None else "?"
    label = f"#{number} {first.modality} {first.series_description}".rstrip()
    if prior:
        label = f"prior {display_date(first.study_date) or '?'}: {label}"
    slices = slices_of(records)
    label += f" · {len(slices)} {'image' if len(slices) == 1 else 'images'}"
    spacing = StackGeometry.of(slices).spacing
    if spacing is not None:
        label += f" · {spacing:g} mm apart"
    return label


def link_caption(
    records: Sequence[InstanceRecord],
    index: int,
    count: int,
    shown_index: int | None,
    location: float | None,
    left: float | None,
) -> str:
    """The caption under a side-by-side: where the right slice is, and how far from the left."""
    first = records[0]
    number = first.series_number if first.series_number is not None else "?"
    series = f"#{number} {first.modality} {first.series_description}".rstrip()
    text = f"right: slice {index + 1}/{count}"
    if shown_index != index:
        text += " …"
    if location is None or left is None:
        text += " · not linked: no slice position"
    else:
        text += f" at {location:.1f} mm (left {left:.1f}, Δ {location - left:+.1f})"
    return f"{text} · {series} · view shared"
