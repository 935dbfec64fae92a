"""Layouts of the volume screen below Textual: which series and plane each pane shows, with its
window, zoom and pan; hanging rules; scrolling linked by patient position.

The screen (:mod:`tuiviewer.screens.volume`) holds one :class:`Hanging` (the panes) and one
:class:`~tuiviewer.services.viewer.volume_view.VolumeView` per series it has read into a volume
(its crosshair, slab, tilts and the measurement being drawn). A pane is a
:class:`PaneSpec`: a source (a series of the study in view, or of a prior of the patient in
the local store), a plane, a window and a zoom. :func:`pane_view` turns a pane into the view
that :func:`~tuiviewer.services.viewer.volume_view.render_panes` draws, so the three-pane MPR
is simply the layout whose three panes are one source's three planes.

Linked scrolling is by patient position, not by slice number: moving the crosshair of one
source puts the crosshair of every other source that shares its Frame of Reference on the voxel
nearest the same point (:func:`linked_views`); a source of another frame of reference is left
where it is and its panes say so.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import Enum

from tuiviewer.config.hanging import PANE_COUNT
from tuiviewer.dicom.scanning import InstanceRecord
from tuiviewer.render.lut import Window
from tuiviewer.render.mpr import PlaneImage
from tuiviewer.render.presets import Preset
from tuiviewer.render.volume import Volume
from tuiviewer.services.viewer import volume_view as vv
from tuiviewer.services.viewer.texts import series_label
from tuiviewer.services.viewer.volume_view import PANES, VolumeView


class Grid(Enum):
    """How the panes are laid out (the value is the name used in config and on screen)."""

    MPR = "mpr"
    """One series' axial, coronal and sagittal side by side."""
    ONE = "1x1"
    TWO = "1x2"
    FOUR = "2x2"

    @property
    def count(self) -> int:
        return PANE_COUNT[self.value]

    @property
    def columns(self) -> int:
        return {Grid.MPR: 3, Grid.ONE: 1, Grid.TWO: 2, Grid.FOUR: 2}[self]

    @property
    def label(self) -> str:
        return "MPR" if self is Grid.MPR else self.value.replace("x", "×")


GRIDS = (Grid.MPR, Grid.ONE, Grid.TWO, Grid.FOUR)
"""The order ``g`` goes through."""

ZOOMS = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)
"""Zoom steps of a pane (1: the whole section fits the pane)."""

PAN_STEPS = 8
"""A pan key moves the picture by 1/PAN_STEPS of the pane."""

NOT_LINKED = "not linked: other frame of reference"


@dataclass(frozen=True)
class Source:
    """A series that panes can show: of the study in view, or of a prior."""

    records: tuple[InstanceRecord, ...]
    prior: bool = False

    @property
    def label(self) -> str:
        return series_label(self.records, prior=self.prior)

    @property
    def first(self) -> InstanceRecord:
        return self.records[0]


def sources_of(
    current: Sequence[InstanceRecord],
    stacks: Sequence[Sequence[InstanceRecord]] = (),
    priors: Sequence[Sequence[InstanceRecord]] = (),
) -> list[Source]:
    """The series in view first, the study's other stacks, then the priors (newest study
    first); stacks that cannot be a volume at all are left out."""
    own = [r.sop_instance_uid for r in current]
    found = [Source(tuple(current))]
    for stack in stacks:
        if stack and [r.sop_instance_uid for r in stack] != own:
            if vv.why_not_a_volume(stack) is None:
                found.append(Source(tuple(stack)))
    dated = sorted((s for s in priors if s), key=lambda s: s[0].study_date, reverse=True)
    found += [Source(tuple(s), prior=True) for s in dated if vv.why_not_a_volume(s) is None]
    return found


@dataclass(frozen=True)
class PaneSpec:
    """What one pane shows."""

    source: int = 0
    """Index in the screen's list of :class:`Source`."""
    plane: int = 0
    """Index in :data:`~tuiviewer.services.viewer.volume_view.PANES`."""
    window: Window | None = None
    """None: the series' own window (or, with :attr:`preset` set, that preset once the
    series' presets are known)."""
    preset: str = ""
    invert: bool = False
    zoom: float = 1.0
    pan: tuple[float, float] = (0.0, 0.0)
    """Shift of the picture in pane pixels (x right, y down); clamped to the image."""


def _mpr(source: int, like: PaneSpec | None = None) -> tuple[PaneSpec, ...]:
    base = like or PaneSpec()
    return tuple(replace(base, source=source, plane=p, zoom=1.0, pan=(0.0, 0.0)) for p in range(3))


@dataclass(frozen=True)
class Hanging:
    """The panes of the volume screen and what they share."""

    grid: Grid = Grid.MPR
    panes: tuple[PaneSpec, ...] = _mpr(0)
    active: int = 0
    """Index in :attr:`panes` of the pane the keys act on."""
    full: bool = False
    """The active pane alone, full size (``f``)."""
    linked: bool = True
    """Scrolling linked by position across sources of one frame of reference."""
    shared_window: bool = True
    """One window for every pane; off: window keys and presets change the active pane only."""
    rule: str = ""
    """The hanging rule that laid this out ("": the default)."""

    @property
    def spec(self) -> PaneSpec:
        return self.panes[self.active]

    @property
    def visible(self) -> tuple[int, ...]:
        return (self.active,) if self.full else tuple(range(len(self.panes)))

    def sources(self) -> tuple[int, ...]:
        """The sources the visible panes show, in pane order, each once."""
        return tuple(dict.fromkeys(self.panes[p].source for p in self.visible))


def _companion(spec: PaneSpec, sources: Sequence[Source]) -> PaneSpec:
    """The pane beside ``spec`` by default: the same plane of a prior (else of another series
    of the study), else the next plane of the same series."""
    others = [n for n in range(len(sources)) if n != spec.source]
    others.sort(key=lambda n: not sources[n].prior)
    if others:
        return replace(spec, source=others[0], zoom=1.0, pan=(0.0, 0.0))
    return replace(spec, plane=(spec.plane + 1) % len(PANES), zoom=1.0, pan=(0.0, 0.0))


def with_grid(state: Hanging, grid: Grid, sources: Sequence[Source]) -> Hanging:
    """``state`` laid out as ``grid``, starting from the active pane: the three-pane MPR shows
    its series; 1×2 puts its companion (a prior first) beside it; 2×2 adds a second plane of
    each."""
    a = state.spec
    if grid is Grid.MPR:
        return replace(state, grid=grid, panes=_mpr(a.source, a), active=a.plane, full=False)
    if grid is Grid.ONE:
        panes: tuple[PaneSpec, ...] = (a,)
    elif grid is Grid.TWO:
        panes = (a, _companion(a, sources))
    else:
        c = _companion(a, sources)
        if c.source == a.source:
            panes = (*_mpr(a.source, a), replace(a, zoom=1.0, pan=(0.0, 0.0)))
        else:
            second = (a.plane + 1) % len(PANES)
            panes = (a, replace(a, plane=second), c, replace(c, plane=second))
    return replace(state, grid=grid, panes=panes, active=0, full=False)


def next_grid(state: Hanging, delta: int, sources: Sequence[Source]) -> Hanging:
    index = GRIDS.index(state.grid)
    return with_grid(state, GRIDS[(index + delta) % len(GRIDS)], sources)


def _set_spec(state: Hanging, spec: PaneSpec) -> Hanging:
    panes = list(state.panes)
    panes[state.active] = spec
    return replace(state, panes=tuple(panes))


def with_source(state: Hanging, source: int) -> Hanging:
    """The active pane on another series (its plane, window and zoom kept; pan reset). In the
    MPR layout all three panes go together."""
    if state.grid is Grid.MPR:
        return replace(state, panes=_mpr(source, state.spec))
    return _set_spec(state, replace(state.spec, source=source, pan=(0.0, 0.0)))


def with_plane(state: Hanging, plane: int) -> Hanging:
    """The active pane on another plane (in the MPR layout: the pane showing it is made active,
    as the three planes are always all there)."""
    if state.grid is Grid.MPR:
        return replace(state, active=plane % len(PANES))
    return _set_spec(state, replace(state.spec, plane=plane % len(PANES), pan=(0.0, 0.0)))


# ---- windows ---------------------------------------------------------------------------------
def _windows_to(state: Hanging, **changes: object) -> Hanging:
    """``changes`` (window, preset, invert) on every pane when shared, else the active one."""
    if state.shared_window:
        return replace(state, panes=tuple(replace(p, **changes) for p in state.panes))  # type: ignore[arg-type]
    return _set_spec(state, replace(state.spec, **changes))  # type: ignore[arg-type]


def windowed(state: Hanging, window: Window | None, preset: str = "") -> Hanging:
    return _windows_to(state, window=window, preset=preset)


def inverted(state: Hanging) -> Hanging:
    return _windows_to(state, invert=not state.spec.invert)


def toggled_shared(state: Hanging) -> Hanging:
    """W/L shared ↔ per pane; going shared gives every pane the active pane's window."""
    if state.shared_window:
        return replace(state, shared_window=False)
    a = state.spec
    shared = replace(state, shared_window=True)
    return _windows_to(shared, window=a.window, preset=a.preset, invert=a.invert)


def resolve_presets(
    state: Hanging, source: int, presets: Sequence[Preset]
) -> tuple[Hanging, list[str]]:
    """Panes of ``source`` that name a preset (from a hanging rule) get its window, now that
    the series' presets are known; a name that is not one of them is said and dropped."""
    by_name = {p.name.casefold(): p for p in presets}
    notes: list[str] = []
    panes = []
    for spec in state.panes:
        if spec.source == source and spec.preset and spec.window is None:
            found = by_name.get(spec.preset.casefold())
            if found is None:
                names = ", ".join(p.name for p in presets) or "none"
                notes.append(f"preset {spec.preset!r} is not one of this series' ({names})")
                spec = replace(spec, preset="")
            else:
                spec = replace(spec, window=found.window, preset=found.name)
        panes.append(spec)
    return replace(state, panes=tuple(panes)), notes


# ---- zoom and pan ----------------------------------------------------------------------------
def clamp_pan(
    pan: tuple[float, float], zoom: float, size: tuple[int, int] | None
) -> tuple[float, float]:
    """``pan`` kept so the zoomed picture still covers its pane's picture: at most half the
    magnified excess each way (nothing at zoom 1). ``size``: the picture (width, height)."""
    if size is None:
        return (0.0, 0.0)
    limits = (size[0] * (zoom - 1.0) / 2.0, size[1] * (zoom - 1.0) / 2.0)
    return tuple(  # type: ignore[return-value]
        float(min(max(p, -lim), lim)) + 0.0 for p, lim in zip(pan, limits, strict=True)
    )


def zoomed(
    state: Hanging,
    direction: int,
    size: tuple[int, int] | None,
    about: tuple[float, float] | None = None,
) -> Hanging:
    """The active pane one zoom step in (``direction`` > 0) or out; 0: back to fit, no pan.
    ``about``: the pixel of the picture (x, y from its top left, the picture ``size``) that
    stays where it is, as under a mouse pointer; None: the middle of the pane."""
    spec = state.spec
    if direction == 0:
        return _set_spec(state, replace(spec, zoom=1.0, pan=(0.0, 0.0)))
    index = min(range(len(ZOOMS)), key=lambda n: abs(ZOOMS[n] - spec.zoom))
    zoom = ZOOMS[min(max(index + direction, 0), len(ZOOMS) - 1)]
    # Pixel x of the picture shows what lies (x - centre - pan) / zoom pixels of the fitted
    # picture from its middle: that stays under ``about`` (the middle: the pan scales).
    ratio = zoom / spec.zoom
    dx = dy = 0.0
    if about is not None and size is not None:
        dx, dy = about[0] - (size[0] - 1) / 2.0, about[1] - (size[1] - 1) / 2.0
    pan = (dx + (spec.pan[0] - dx) * ratio, dy + (spec.pan[1] - dy) * ratio)
    return _set_spec(state, replace(spec, zoom=zoom, pan=clamp_pan(pan, zoom, size)))


def panned(state: Hanging, dx: int, dy: int, size: tuple[int, int] | None) -> Hanging:
    """The active pane's picture moved ``dx`` steps right and ``dy`` down (the view travels
    the other way), clamped to the image."""
    spec = state.spec
    if size is None:
        return state
    step_x, step_y = max(1.0, size[0] / PAN_STEPS), max(1.0, size[1] / PAN_STEPS)
    pan = (spec.pan[0] - dx * step_x, spec.pan[1] - dy * step_y)
    return _set_spec(state, replace(spec, pan=clamp_pan(pan, spec.zoom, size)))


def regridded(
    at: tuple[float, float], drawn: PaneSpec, spec: PaneSpec, size: tuple[int, int]
) -> tuple[float, float]:
    """Pixel ``at`` (x, y) of a picture ``size`` drawn with ``drawn``'s zoom and pan: the same
    point's pixel in the picture drawn with ``spec``'s (see :func:`zoomed`: pixel x shows what
    lies (x - centre - pan) / zoom pixels of the fitted picture from its middle)."""
    out = []
    for value, length, old_pan, new_pan in zip(at, size, drawn.pan, spec.pan, strict=True):
        centre = (length - 1) / 2.0
        fitted = (value - centre - old_pan) / drawn.zoom
        out.append(centre + new_pan + fitted * spec.zoom)
    return (out[0], out[1])


FOLLOW_MARGIN = 0.1
"""A zoomed pane pans when the crosshair comes nearer its edge than this part of its size."""


def followed(
    state: Hanging,
    crosshairs: Mapping[int, tuple[tuple[float, float], tuple[int, int]]],
) -> Hanging:
    """The zoomed panes panned so the crosshair stays in view: ``crosshairs`` gives, per pane,
    where the crosshair falls in its picture (x, y, pixels) and the picture's size; a pane
    whose crosshair comes within :data:`FOLLOW_MARGIN` of an edge (or beyond it) moves just
    enough to bring it back inside, as far as the pan's clamp allows."""
    panes = list(state.panes)
    for pane, ((x, y), size) in crosshairs.items():
        spec = panes[pane]
        if spec.zoom <= 1.0:
            continue
        shift = []
        for at, length in ((x, size[0]), (y, size[1])):
            low, high = FOLLOW_MARGIN * length, (1.0 - FOLLOW_MARGIN) * (length - 1)
            # A picture pixel moves with the pan: +d of pan, +d of position.
            shift.append(low - at if at < low else high - at if at > high else 0.0)
        if shift != [0.0, 0.0]:
            pan = (spec.pan[0] + shift[0], spec.pan[1] + shift[1])
            panes[pane] = replace(spec, pan=clamp_pan(pan, spec.zoom, size))
    return replace(state, panes=tuple(panes))


def zoom_text(spec: PaneSpec) -> str:
    return f"zoom {spec.zoom:g}×" if abs(spec.zoom - 1.0) > 1e-6 else ""


# ---- what a pane draws -----------------------------------------------------------------------
def pane_view(state: Hanging, views: Mapping[int, VolumeView], pane: int) -> VolumeView:
    """The view that draws pane ``pane``: its source's crosshair, slab and tilts, its own plane,
    window and zoom; the active pane's crosshair in yellow and its drawing."""
    spec = state.panes[pane]
    view = views[spec.source]
    active = pane == state.active
    return replace(
        view,
        active=spec.plane if active else -1,
        window=spec.window,
        preset=spec.preset,
        invert=spec.invert,
        drawing=view.drawing if active else None,
        zoom=spec.zoom,
        pan=spec.pan,
    )


def active_view(state: Hanging, views: Mapping[int, VolumeView]) -> VolumeView | None:
    """The view the keys change: the active pane's source, with that pane's plane active."""
    spec = state.spec
    view = views.get(spec.source)
    if view is None:
        return None
    return replace(view, active=spec.plane)


def same_frame(a: Volume, b: Volume) -> bool:
    """Whether two volumes share a (named) Frame of Reference, so one patient point is one
    place in both."""
    return bool(a.frame_of_reference_uid) and a.frame_of_reference_uid == b.frame_of_reference_uid


def linked_views(
    volumes: Mapping[int, Volume],
    views: Mapping[int, VolumeView],
    moved: int,
) -> tuple[dict[int, VolumeView], set[int]]:
    """Every other source sharing source ``moved``'s frame of reference with its crosshair on
    the voxel nearest ``moved``'s crosshair; and the sources left alone (another frame)."""
    out = dict(views)
    alone: set[int] = set()
    here = volumes.get(moved)
    if here is None or moved not in views:
        return out, alone
    point = views[moved].at
    for source, view in views.items():
        volume = volumes.get(source)
        if source == moved or volume is None:
            continue
        if not same_frame(here, volume):
            alone.add(source)
            continue
        out[source] = replace(vv.pointed(volume, view, view.active, point), active=view.active)
    return out, alone


def badge_of(
    state: Hanging,
    pane: int,
    fidelity: str,
    alone: set[int],
    sources: Sequence[Source],
    averaged: int = 1,
) -> str:
    """The bottom-right badge of a pane: fidelity, zoom, prior, whether it is linked, and a
    volume averaged ``averaged``×``averaged`` for the memory budget (even when the pane shows
    it magnified)."""
    spec = state.panes[pane]
    if averaged > 1:  # the reason beside the ratio: "↓2.0× memory"
        marked = re.sub(r"(↓[\d.]+×)", r"\1 memory", fidelity)
        fidelity = (
            marked
            if marked != fidelity
            else " · ".join(p for p in (fidelity, f"↓{averaged}× memory") if p)
        )
    parts = [fidelity, zoom_text(spec)]
    if len(state.sources()) > 1:
        if spec.source < len(sources) and sources[spec.source].prior:
            parts.insert(0, "prior")
        if state.linked and spec.source in alone:
            parts.append("not linked")
    return " · ".join(p for p in parts if p)


# ---- memory ----------------------------------------------------------------------------------
MIN_SHARE = 1 / 16
"""A series is not read when less than this part of the budget is left for it."""


def _mib(size: int) -> str:
    mib = size / 2**20
    return f"{mib:.0f} MiB" if mib >= 10 else f"{mib:.2f} MiB"


def budget_for(
    total: int, held: Mapping[int, int], wanted: Sequence[int]
) -> tuple[int, str | None]:
    """Bytes a new volume may take, given the bytes ``held`` by the volumes read so far and
    the sources ``wanted`` on screen that are not read yet; with a sentence when too little
    is left to read it at all."""
    free = total - sum(held.values())
    share = free // max(len(wanted), 1)
    if share < total * MIN_SHARE:
        return 0, (
            f"not read: the {len(held)} volume{'s' if len(held) != 1 else ''} on screen "
            f"{'use' if len(held) != 1 else 'uses'} {_mib(sum(held.values()))} of the "
            f"{_mib(total)} volume budget"
        )
    return share, None


def expected_bytes(records: Sequence[InstanceRecord]) -> int:
    """What a series' volume takes at full size, stored as 16-bit values (as CT and MR are)."""
    return sum((r.rows or 0) * (r.columns or 0) * max(r.frames, 1) * 2 for r in records)


def start_budget(total: int, sizes: Sequence[int]) -> int:
    """The budget of the series in view (``sizes[0]`` bytes at full size) when the layout also
    shows series of ``sizes[1:]``: all it needs when what is left still holds the others
    averaged 2×2 (a quarter of their bytes), so the study being read keeps its resolution and
    a prior is the one averaged; else an equal share."""
    others = sum(max(size // 4, 1) for size in sizes[1:])
    if sizes and sizes[0] + others <= total:
        return total - others
    return max(1, math.floor(total / max(len(sizes), 1)))


def render_layout(
    volumes: Mapping[int, Volume],
    state: Hanging,
    views: Mapping[int, VolumeView],
    boxes: Mapping[int, tuple[int, int]],
    *,
    aspect: float = 1.0,
    drawn: Mapping[int, Sequence[vv.Drawn]] | None = None,
    previous: Sequence[PlaneImage] = (),
    shown: Sequence[vv.PaneFrame] = (),
    cancel: threading.Event | None = None,
) -> list[vv.PaneFrame] | None:
    """The panes in ``boxes`` (pane index → pixel box) drawn from their sources' volumes;
    panes of a source not read (yet) are left out; ``previous`` and ``shown`` as
    :func:`~tuiviewer.services.viewer.volume_view.render_panes` takes them. None when
    cancelled.

    Raises:
        RenderError: as :func:`~tuiviewer.services.viewer.volume_view.render_panes`.
    """
    frames: list[vv.PaneFrame] = []
    for pane, box in boxes.items():
        spec = state.panes[pane]
        volume, view = volumes.get(spec.source), views.get(spec.source)
        if volume is None or view is None:
            continue
        got = vv.render_panes(
            volume,
            pane_view(state, views, pane),
            {spec.plane: box},
            aspect=aspect,
            drawn=(drawn or {}).get(spec.source, ()),
            previous=previous,
            shown=shown,
            cancel=cancel,
        )
        if got is None:
            return None
        frames += [replace(frame, pane=pane) for frame in got]
    return frames
