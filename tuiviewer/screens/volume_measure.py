"""The measurement keys of the volume screen (``m`` ruler, ``v`` angle, ``e`` ellipse, ``r``
rectangle, ``l`` list), apart from the screen that lays out and paints the panes.

A measurement starts at the crosshair in the active pane, the arrows move its other end and the
same key ends it; it is kept in the study's
:class:`~tuiviewer.reports.measurements.MeasurementStore` at once (a dropped link loses
nothing), where the report picks it up. Only panes of the study being read take measurements:
a prior's belong to its own report.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from textual.screen import Screen

from tuiviewer.dicom.scanning import InstanceRecord
from tuiviewer.exceptions import TuiviewerError
from tuiviewer.render.volume import Volume
from tuiviewer.reports.measurements import Measurement, MeasurementKind
from tuiviewer.screens.base import workstation
from tuiviewer.screens.dialogs.choose import ChooseDialog
from tuiviewer.screens.volume_keys import KINDS
from tuiviewer.services.viewer import volume_view as vv
from tuiviewer.services.viewer.layouts import Hanging, Source
from tuiviewer.services.viewer.volume_view import Drawing, Drawn, VolumeView


class MeasureActions(Screen[None]):
    """Drawing, saving, listing and removing measurements (mixed into the volume screen)."""

    records: list[InstanceRecord]
    sources: list[Source]
    hanging: Hanging
    volumes: dict[int, Volume]
    drawn: dict[int, dict[str, Drawn]]
    """Per source: measurements to draw on its panes, by UID."""

    @property
    def study_uid(self) -> str:
        return self.records[0].study_uid if self.records else ""

    @property
    def view(self) -> VolumeView | None:  # the screen's
        raise NotImplementedError

    def _set(self, view: VolumeView) -> None:  # the screen's
        raise NotImplementedError

    def _update(self, shown_view: VolumeView | None = None) -> None:  # the screen's
        raise NotImplementedError

    def request_render(self) -> None:  # the screen's
        raise NotImplementedError

    _saved_cache: tuple[object, list[Measurement]] | None = None
    _saved_path: tuple[str, Path] | None = None

    def _saved(self) -> list[Measurement]:
        """The study's kept measurements, read again only when their file changed (the
        readout counts them on every crosshair step)."""
        store = workstation(self).measurements
        try:
            known = self._saved_path
            if known is None or known[0] != self.study_uid:
                known = self._saved_path = (self.study_uid, store.path_for(self.study_uid))
            path = known[1]
            try:
                stat = path.stat()
                stamp: object = (str(path), stat.st_mtime_ns, stat.st_size, stat.st_ino)
            except OSError:
                stamp = (str(path), None)
            cached = self._saved_cache
            if cached is not None and cached[0] == stamp:
                return list(cached[1])
            saved = store.load(self.study_uid)
        except TuiviewerError:
            return []
        self._saved_cache = (stamp, saved)
        return list(saved)

    def _reload_drawn(self, source: int) -> None:
        """Saved measurements on images of ``source``'s volume, to draw on its panes."""
        volume = self.volumes.get(source)
        if volume is None:
            return
        try:
            saved = workstation(self).measurements.load(self.study_uid)
        except TuiviewerError as exc:
            self.notify(exc.message, severity="error")
            return
        mine = self.drawn.setdefault(source, {})
        for m in saved:
            drawn = vv.drawn_of(m, volume)
            if drawn is not None:
                mine.setdefault(m.uid, drawn)

    def action_draw(self, kind: str) -> None:
        view = self.view
        source = self.hanging.spec.source
        volume = self.volumes.get(source)
        if volume is None or view is None:
            return
        if self.sources[source].prior:
            self.notify(
                "Measurements are kept with the study being read: make them on a pane of this "
                "study, not of the prior.",
                severity="warning",
            )
            return
        wanted = KINDS[kind]
        drawing = view.drawing
        if drawing is None or drawing.kind is not wanted:
            self._set(replace(view, drawing=Drawing(wanted, view.active, view.at, view.plane)))
            return
        if wanted is MeasurementKind.ANGLE and drawing.vertex is None:
            self._set(replace(view, drawing=replace(drawing, vertex=view.at)))
            return
        count = len(self._saved()) + 1
        try:
            measurement = vv.measure(
                volume,
                drawing,
                view.at,
                view,
                self.sources[source].records,
                label=f"{wanted.value.capitalize()} {count}",
            )
        except TuiviewerError as exc:
            self.notify(exc.message, severity="warning")
            return
        try:
            workstation(self).measurements.add(self.study_uid, measurement)
        except TuiviewerError as exc:
            self.notify(exc.message, title="Not saved", severity="error")
            return
        self.drawn.setdefault(source, {})[measurement.uid] = Drawn(
            wanted, drawing.pane, drawing.start, view.at, drawing.vertex
        )
        self.notify(f"{measurement.name}: {measurement.summary}", title="Measured", timeout=6)
        self._set(replace(view, drawing=None))

    def action_list(self) -> None:
        saved = self._saved()
        if not saved:
            self.notify("No measurement in this study yet: m, e or r draws one.")
            return
        labels = [f"{m.name}: {m.summary}" + (f" ({m.where})" if m.where else "") for m in saved]

        def chosen(choice: int | None) -> None:
            if choice is None:
                return
            target = saved[choice]
            try:
                workstation(self).measurements.remove(self.study_uid, target.uid)
            except TuiviewerError as exc:
                self.notify(exc.message, severity="error")
                return
            for marks in self.drawn.values():
                marks.pop(target.uid, None)
            self.notify(f"{target.name} removed.")
            self._update()
            self.request_render()

        self.app.push_screen(
            ChooseDialog(
                f"Measurements of this study ({len(saved)})",
                labels,
                hint="Enter removes the chosen one; Esc keeps them all.",
            ),
            chosen,
        )
