"""Hanging rules applied: the first ``[[hanging]]`` rule of the config that matches the series
in view (see :mod:`tuiviewer.config.hanging`) gives the volume screen's layout and, per pane,
the series (of this study or of the patient's newest prior in the local store), the plane and
the window preset; a study no rule matches gets the three-pane MPR.

Applied when the volume screen opens, not when the viewer does: the layouts are the volume
screen's, and a study opened to scroll through its slices should not pay for reading priors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from tuiviewer.config.hanging import HangingRule, PaneRule, text_matches
from tuiviewer.dicom.scanning import InstanceRecord
from tuiviewer.services.viewer.layouts import Grid, Hanging, PaneSpec, Source
from tuiviewer.services.viewer.volume_view import PANES


@dataclass(frozen=True)
class StudyFacts:
    """What a hanging rule matches on, of the series in view."""

    modality: str
    body_part: str
    study_description: str
    series_description: str


def facts_of(records: Sequence[InstanceRecord], body_part: str = "") -> StudyFacts:
    first = records[0]
    return StudyFacts(first.modality, body_part, first.study_description, first.series_description)


def _series_for(rule: PaneRule, sources: Sequence[Source]) -> int | None:
    """The source a pane rule asks for, None when there is none."""
    current = sources[0].first
    if rule.study == "current":
        if not rule.series:
            return 0
        pool = [n for n, s in enumerate(sources) if not s.prior]
    else:
        pool = [n for n, s in enumerate(sources) if s.prior]
        if pool and not rule.series:
            # The prior series most like the one in view: same description, else modality.
            def likeness(n: int) -> tuple[bool, bool]:
                first = sources[n].first
                return (
                    first.series_description.casefold() != current.series_description.casefold(),
                    first.modality != current.modality,
                )

            newest = sources[pool[0]].first.study_uid
            pool = [n for n in pool if sources[n].first.study_uid == newest]
            return min(pool, key=likeness)
    for n in pool:
        if text_matches(rule.series, sources[n].first.series_description):
            return n
    return None


def hang(
    rules: Sequence[HangingRule], facts: StudyFacts, sources: Sequence[Source]
) -> tuple[Hanging, list[str]]:
    """The layout of the first rule that matches ``facts`` (the default MPR when none does),
    and what could not be done as the rule says (a prior that is not there, ...)."""
    for rule in rules:
        if not rule.matches(
            facts.modality, facts.body_part, facts.study_description, facts.series_description
        ):
            continue
        grid = Grid(rule.layout)
        notes: list[str] = []
        wanted = list(rule.panes) + [
            PaneRule(plane=PANES[n % 3]) for n in range(len(rule.panes), grid.count)
        ]
        if grid is Grid.MPR:
            wanted = [replace(w, plane=PANES[n]) for n, w in enumerate(wanted)]
        panes = []
        for n, pane_rule in enumerate(wanted):
            source = _series_for(pane_rule, sources)
            if source is None:
                what = "prior" if pane_rule.study == "prior" else "series of this study"
                series = f" with series {pane_rule.series!r}" if pane_rule.series else ""
                notes.append(f"no {what}{series} for pane {n + 1}: it shows the series in view")
                source = 0
            panes.append(
                PaneSpec(source=source, plane=PANES.index(pane_rule.plane), preset=pane_rule.preset)
            )
        presets = {p.preset.casefold() for p in panes}
        state = Hanging(
            grid=grid, panes=tuple(panes), shared_window=len(presets) <= 1, rule=rule.name
        )
        return state, notes
    return Hanging(), []
