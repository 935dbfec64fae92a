"""What the panes and the lines under them say in a layout of the volume screen: each pane's
title, edge letters and badge (fidelity, zoom, prior, not linked), the readout of the active
pane and the layout line ("1×2 · hung by 'CT chest' · W/L per pane").

Pure functions of the state (:mod:`tuiviewer.services.viewer.layouts`), so what a reader sees
of a layout is tested without a terminal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tuiviewer.render.lut import Window
from tuiviewer.render.mpr import Plane
from tuiviewer.render.volume import Volume
from tuiviewer.reports.measurements import MeasurementKind
from tuiviewer.services.viewer import layouts as ls
from tuiviewer.services.viewer import volume_view as vv
from tuiviewer.services.viewer.layouts import Grid, Hanging, Source
from tuiviewer.services.viewer.volume_view import VolumeView


@dataclass(frozen=True)
class PaneTexts:
    title: str
    edges: tuple[str, str, str, str]
    badge: str


def alone(state: Hanging, volumes: Mapping[int, Volume]) -> set[int]:
    """Visible sources of another frame of reference than the active pane's."""
    here = volumes.get(state.spec.source)
    if here is None:
        return set()
    return {s for s in state.sources() if s in volumes and not ls.same_frame(here, volumes[s])}


def pane_texts(
    state: Hanging,
    pane: int,
    sources: Sequence[Source],
    volumes: Mapping[int, Volume],
    views: Mapping[int, VolumeView],
    refused: Mapping[int, str],
    fidelity: str,
) -> PaneTexts:
    """Title, edge letters and badge of pane ``pane``; a series not read (yet) says why."""
    spec = state.panes[pane]
    view = views.get(spec.source)
    plane = view.plane_of(spec.plane) if view is not None else Plane.standard(vv.PANES[spec.plane])
    edges = vv.pane_edges(plane)
    volume = volumes.get(spec.source)
    if volume is None or view is None:
        why = refused.get(spec.source, "reading…")
        return PaneTexts(
            f"{vv.PANES[spec.plane].capitalize()} · {why}", edges, sources[spec.source].label
        )
    title = vv.pane_title(volume, ls.pane_view(state, views, pane), spec.plane, None)
    badge = ls.badge_of(
        state, pane, fidelity, alone(state, volumes), sources, averaged=volume.downsample
    )
    return PaneTexts(title, edges, badge)


def info_text(
    state: Hanging,
    sources: Sequence[Source],
    volume: Volume,
    view: VolumeView,
    window: Window | None,
    saved: int,
) -> str:
    """``"Axial · (0.5, 0.5, -19.5) mm · -1000 HU · W 400 L 40 · slab thin"``, then linking
    (with more than one series on screen), the drawing under way or the measurement count."""
    spec = state.spec
    wl = f"W {window.width:g} L {window.center:g}" if window is not None else "W/L file"
    preset = f" {spec.preset}" if spec.preset else ""
    name = vv.PANES[spec.plane].capitalize()
    if sources[spec.source].prior:
        name += " (prior)"
    parts = [
        name,
        vv.crosshair_text(volume, view),
        wl + preset + (" inverted" if spec.invert else ""),
        f"slab {vv.slab_text(view)}",
    ]
    if len(state.sources()) > 1:
        parts.append("linked" if state.linked else "unlinked")
    drawing = view.drawing
    if drawing is not None:
        key = {"length": "m", "angle": "v", "ellipse": "e", "rectangle": "r"}[drawing.kind.value]
        step = "places the vertex" if drawing.kind is MeasurementKind.ANGLE else "ends"
        if drawing.vertex is not None:
            step = "ends"
        parts.append(f"drawing {drawing.kind.value}: arrows, {key} {step}, Esc drops")
    elif saved:
        parts.append(f"{saved} measurement{'s' if saved != 1 else ''} (l)")
    return " · ".join(parts)


def layout_text(
    state: Hanging, notes: Sequence[str] = (), volumes: Mapping[int, Volume] | None = None
) -> str:
    """``"1×2 · hung by 'CT chest' · W/L per pane"``, the panes that do not follow the active
    one (another frame of reference) and what of the rule could not be done; "" for the
    default three-pane MPR."""
    parts = []
    away = alone(state, volumes or {})
    if state.linked and away:
        panes = [str(n + 1) for n in state.visible if state.panes[n].source in away]
        parts.append(f"pane{'s' if len(panes) > 1 else ''} {', '.join(panes)} {ls.NOT_LINKED}")
    if state.grid is not Grid.MPR or state.rule:
        parts.insert(0, state.grid.label)
    if state.rule:
        parts.append(f"hung by {state.rule!r}")
    if not state.shared_window:
        parts.append("W/L per pane")
    if len(state.sources()) > 1 and not state.linked:
        parts.append("scrolling unlinked")
    return " · ".join([*parts, *notes]) if parts else ""
