"""Layouts of the volume screen without a terminal: grids, what panes show, hanging rules,
linked scrolling by patient position, W/L shared or per pane, zoom and pan, the memory budget.

Volumes are generated spheres (r 12 mm, 100 HU in -1000 HU): the study in view has 40 axial
slices 1 mm apart, its prior 20 slices 2 mm apart in the same frame of reference, and a third
series lies in another frame of reference.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.support import imagegen
from tuiviewer.config.hanging import HangingRule, PaneRule
from tuiviewer.dicom.scanning import InstanceRecord, scan
from tuiviewer.render.lut import Window
from tuiviewer.render.presets import presets_for
from tuiviewer.render.volume import Volume, load_volume
from tuiviewer.services.viewer import hanging as hr
from tuiviewer.services.viewer import layout_texts as lt
from tuiviewer.services.viewer import layouts as ls
from tuiviewer.services.viewer import volume_view as vv
from tuiviewer.services.viewer.layouts import Grid, Hanging, PaneSpec
from tuiviewer.services.viewer.volume_view import VolumeView

FRAME = pydicom.uid.generate_uid()


def write_series(
    folder: Path,
    *,
    study: str,
    date: str,
    description: str,
    frame: str,
    slices: int,
    spacing: float,
    number: int | None = None,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    series = imagegen.sphere_series(slices=slices, slice_spacing=spacing)
    uid = pydicom.uid.generate_uid()
    for n, ds in enumerate(series):
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, uid, frame
        ds.PatientName, ds.PatientID, ds.StudyDate = "Sphere^Phantom", "SPH1", date
        ds.StudyDescription, ds.SeriesDescription = "CT Thorax", description
        if number is not None:
            ds.SeriesNumber = number
        imagegen.save(ds, folder / f"{n:03}.dcm")
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("layouts")
    now, before = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
    return {
        "current": write_series(
            root / "a", study=now, date="20240102", description="thorax 1mm", frame=FRAME,
            slices=40, spacing=1.0,
        ),
        "prior": write_series(
            root / "b", study=before, date="20230102", description="thorax 2mm", frame=FRAME,
            slices=20, spacing=2.0,
        ),
        "other": write_series(
            root / "c", study=now, date="20240102", description="scout", frame="1.2.3.4",
            slices=10, spacing=4.0,
        ),
    }  # fmt: skip


def records_of(folder: Path) -> list[InstanceRecord]:
    return [r for batch in scan([folder]) for r in batch]


@pytest.fixture(scope="module")
def sources(folders: dict[str, Path]) -> list[ls.Source]:
    return ls.sources_of(
        records_of(folders["current"]),
        [records_of(folders["current"]), records_of(folders["other"])],
        [records_of(folders["prior"])],
    )


@pytest.fixture(scope="module")
def volumes(sources: list[ls.Source]) -> dict[int, Volume]:
    return {n: load_volume([r.path for r in s.records])[0] for n, s in enumerate(sources)}


def test_sources_are_the_series_in_view_the_study_then_priors(sources: list[ls.Source]) -> None:
    assert [(s.first.series_description, s.prior) for s in sources] == [
        ("thorax 1mm", False),
        ("scout", False),
        ("thorax 2mm", True),
    ]
    assert sources[2].label.startswith("prior 2023-01-02: #")


def test_grids_start_from_the_active_pane_and_put_a_prior_beside_it(
    sources: list[ls.Source],
) -> None:
    state = replace(Hanging(), active=1)  # MPR, coronal active
    one = ls.with_grid(state, Grid.ONE, sources)
    assert [(p.source, p.plane) for p in one.panes] == [(0, 1)]
    two = ls.with_grid(state, Grid.TWO, sources)
    assert [(p.source, p.plane) for p in two.panes] == [(0, 1), (2, 1)]  # prior, same plane
    four = ls.with_grid(state, Grid.FOUR, sources)
    assert [(p.source, p.plane) for p in four.panes] == [(0, 1), (0, 2), (2, 1), (2, 2)]
    # Back to MPR: the active pane's series in its three planes, its plane still active.
    back = ls.with_grid(replace(four, active=2), Grid.MPR, sources)
    assert [(p.source, p.plane) for p in back.panes] == [(2, 0), (2, 1), (2, 2)]
    assert back.active == 1
    assert [ls.next_grid(Hanging(), n, sources).grid for n in (1, 2, 3, 4)] == [
        Grid.ONE, Grid.TWO, Grid.FOUR, Grid.MPR,
    ]  # fmt: skip
    # A pane alone in the study, without priors: 1×2 shows its next plane.
    only = ls.with_grid(Hanging(), Grid.TWO, sources[:1])
    assert [(p.source, p.plane) for p in only.panes] == [(0, 0), (0, 1)]


def test_a_pane_changes_series_and_plane(sources: list[ls.Source]) -> None:
    two = ls.with_grid(Hanging(), Grid.TWO, sources)
    moved = ls.with_plane(ls.with_source(replace(two, active=1), 1), 2)
    assert [(p.source, p.plane) for p in moved.panes] == [(0, 0), (1, 2)]
    # In the MPR layout the three planes go together, and a plane key picks its pane.
    mpr = ls.with_source(Hanging(), 2)
    assert [(p.source, p.plane) for p in mpr.panes] == [(2, 0), (2, 1), (2, 2)]
    assert ls.with_plane(mpr, 2).active == 2


def rule(*panes: PaneRule, layout: str = "1x2", **match: str) -> HangingRule:
    return HangingRule("CT chest", layout=layout, panes=panes, **match)


def test_a_hanging_rule_lays_out_current_and_prior(sources: list[ls.Source]) -> None:
    facts = hr.facts_of(sources[0].records, "CHEST")
    rules = [
        rule(PaneRule(plane="sagittal"), modality="MR"),  # not this study
        rule(
            PaneRule(plane="axial", preset="lung"),
            PaneRule(study="prior", plane="axial", preset="mediastinum"),
            modality="CT",
            body_part="chest",
            description="thorax",
        ),
    ]
    state, notes = hr.hang(rules, facts, sources)
    assert notes == []
    assert state.rule == "CT chest" and state.grid is Grid.TWO
    assert [(p.source, p.plane, p.preset) for p in state.panes] == [
        (0, 0, "lung"),
        (2, 0, "mediastinum"),
    ]
    assert not state.shared_window  # two presets: per pane
    # The windows come when the series' presets are known; an unknown name is said.
    presets = presets_for("CT")
    state, said = ls.resolve_presets(state, 0, presets)
    assert state.panes[0].window == Window(-600, 1500, explanation="lung")
    assert state.panes[1].window is None  # the prior is not read yet
    wrong = replace(state, panes=(state.panes[0], replace(state.panes[1], preset="lungs")))
    state, said = ls.resolve_presets(wrong, 2, presets)
    assert said and "'lungs' is not one of this series'" in said[0]
    # No rule matches: the default MPR, no rule named.
    assert hr.hang(rules[:1], facts, sources) == (Hanging(), [])


def test_a_rule_asking_for_what_is_not_there_says_so(sources: list[ls.Source]) -> None:
    facts = hr.facts_of(sources[0].records)
    state, notes = hr.hang(
        [rule(PaneRule(), PaneRule(study="prior", series="venous"))], facts, sources
    )
    assert [p.source for p in state.panes] == [0, 0]
    assert notes == ["no prior with series 'venous' for pane 2: it shows the series in view"]
    # A glob on the series of this study.
    state, _ = hr.hang([rule(PaneRule(), PaneRule(series="sc*"))], facts, sources)
    assert [p.source for p in state.panes] == [0, 1]


def test_linked_scrolling_goes_to_the_nearest_position_of_the_same_frame(
    sources: list[ls.Source], volumes: dict[int, Volume]
) -> None:
    views = {n: VolumeView(at=v.geometry.centre()) for n, v in volumes.items()}
    start = vv.start_point(volumes[0], None)
    views[0] = VolumeView(at=(start[0], start[1], -19.5))  # the first slice
    for steps, z_prior in ((0, -19.0), (5, -15.0), (12, -7.0), (39, 19.0)):
        moved = {**views, 0: vv.moved_through(volumes[0], views[0], steps)}
        linked, alone = ls.linked_views(volumes, moved, 0)
        z = moved[0].at[2]
        assert z == pytest.approx(-19.5 + steps)
        # The prior (2 mm apart) goes to its slice nearest the same z; the scout (another
        # frame of reference) stays where it was.
        assert linked[2].at[2] == pytest.approx(z_prior)
        assert abs(linked[2].at[2] - z) <= 1.0 + 1e-6
        assert linked[1] == views[1]
        assert alone == {1}
    state = replace(ls.with_grid(Hanging(), Grid.FOUR, sources), panes=(
        PaneSpec(0, 0), PaneSpec(2, 0), PaneSpec(1, 0), PaneSpec(0, 1)))  # fmt: skip
    assert lt.alone(state, volumes) == {1}
    badge = ls.badge_of(state, 2, "MPR", {1}, sources)
    assert badge == "MPR · not linked"
    assert lt.layout_text(state, (), volumes) == "2×2 · pane 3 not linked: other frame of reference"
    assert lt.layout_text(replace(state, linked=False), (), volumes) == "2×2 · scrolling unlinked"
    assert ls.badge_of(state, 1, "", {1}, sources) == "prior"
    # A volume averaged for the memory budget says why, whether the pane shows it reduced
    # further or magnified.
    assert ls.badge_of(state, 1, "MPR · ↓2.0× · gaps", set(), sources, averaged=2) == (
        "prior · MPR · ↓2.0× memory · gaps"
    )
    assert ls.badge_of(state, 1, "", set(), sources, averaged=2) == "prior · ↓2× memory"


def test_windows_shared_or_per_pane(sources: list[ls.Source]) -> None:
    lung, bone = Window(-600, 1500), Window(400, 1800)
    two = ls.with_grid(Hanging(), Grid.TWO, sources)
    shared = ls.windowed(two, lung, "lung")
    assert [p.window for p in shared.panes] == [lung, lung]
    apart = ls.toggled_shared(shared)
    one = ls.windowed(replace(apart, active=1), bone, "bone")
    assert [p.preset for p in one.panes] == ["lung", "bone"]
    assert [p.invert for p in ls.inverted(one).panes] == [False, True]
    # Shared again: every pane takes the active pane's window.
    again = ls.toggled_shared(one)
    assert [p.window for p in again.panes] == [bone, bone] and again.shared_window


def test_zoom_steps_and_pan_clamps_to_the_image() -> None:
    state = Hanging()
    size = (48, 48)
    assert ls.panned(state, 1, 0, size).spec.pan == (0.0, 0.0)  # at fit nothing to pan
    zoomed = ls.zoomed(ls.zoomed(state, 1, size), 1, size)
    assert zoomed.spec.zoom == 2.0
    assert ls.zoom_text(zoomed.spec) == "zoom 2×"
    far = zoomed
    for _ in range(20):
        far = ls.panned(far, 1, -1, size)
    assert far.spec.pan == (-24.0, 24.0)  # half the magnified excess: 48 · (2 - 1) / 2
    assert ls.zoomed(far, -1, size).spec.pan == (-12.0, 12.0)  # 1.5×: the limit shrinks
    assert ls.zoomed(far, 0, size).spec == PaneSpec()  # = fits again
    top = ls.zoomed(state, 20, size)
    assert top.spec.zoom == ls.ZOOMS[-1]


def test_a_zoomed_pane_shows_the_same_point_magnified(
    sources: list[ls.Source], volumes: dict[int, Volume]
) -> None:
    views = {0: VolumeView(at=volumes[0].geometry.centre())}
    state = ls.with_grid(Hanging(), Grid.ONE, sources)
    fit = ls.render_layout(volumes, state, views, {0: (96, 96)})
    assert fit is not None
    state = ls.zoomed(state, 1, (96, 96))
    state = ls.zoomed(state, 1, (96, 96))
    near = ls.render_layout(volumes, state, views, {0: (96, 96)})
    assert near is not None
    assert near[0].image.pixel_mm == pytest.approx(fit[0].image.pixel_mm / 2)

    # The sphere (24 mm across) spans twice the pixels, about the same centre.
    def width(frame: vv.PaneFrame) -> int:
        values = frame.image.values
        return int(np.count_nonzero(values[values.shape[0] // 2] > 0))

    assert width(near[0]) == pytest.approx(2 * width(fit[0]), abs=2)
    # Panned to the right edge: the point under the centre moved left by the pan.
    panned = ls.panned(state, 20, 0, (96, 96))
    shifted = ls.render_layout(volumes, panned, views, {0: (96, 96)})
    assert shifted is not None
    assert shifted[0].image.patient_at(48, 48)[0] > near[0].image.patient_at(48, 48)[0]


def test_zoom_about_a_pixel_keeps_the_point_under_it(
    sources: list[ls.Source], volumes: dict[int, Volume]
) -> None:
    """The wheel zooms about the pointer: the patient point under it stays under it, step
    after step, in and out, while a zoom about nothing keeps the middle."""
    views = {0: VolumeView(at=volumes[0].geometry.centre())}
    state = ls.with_grid(Hanging(), Grid.ONE, sources)
    frames = ls.render_layout(volumes, state, views, {0: (96, 96)})
    assert frames is not None
    size = frames[0].image.pixels.shape[1::-1]
    pointer = (70.0, 30.0)
    under = np.asarray(frames[0].image.patient_at(*pointer))
    middle = ((size[0] - 1) / 2, (size[1] - 1) / 2)
    for direction in (1, 1, 1, -1):
        state = ls.zoomed(state, direction, size, pointer)
        frames = ls.render_layout(volumes, state, views, {0: (96, 96)})
        assert frames is not None and frames[0].image.pixels.shape[1::-1] == size
        np.testing.assert_allclose(frames[0].image.patient_at(*pointer), under, atol=1e-6)
    assert state.spec.zoom == 2.0 and state.spec.pan != (0.0, 0.0)
    centre = np.asarray(frames[0].image.patient_at(*middle))
    state = ls.zoomed(state, 1, size)  # a key: about the middle
    frames = ls.render_layout(volumes, state, views, {0: (96, 96)})
    assert frames is not None
    np.testing.assert_allclose(frames[0].image.patient_at(*middle), centre, atol=1e-6)


def test_a_zoomed_pane_pans_to_keep_the_crosshair_in_view(
    sources: list[ls.Source], volumes: dict[int, Volume]
) -> None:
    """At 4× a 96-pixel picture shows a quarter of the section: walking the crosshair to the
    section's right edge, the pane follows it, never losing it, up to the pan's clamp."""
    volume = volumes[0]
    view = VolumeView(at=volume.geometry.centre())
    state = ls.with_grid(Hanging(), Grid.ONE, sources)
    box = (96, 96)
    fit = ls.render_layout(volumes, state, {0: view}, {0: box})
    assert fit is not None
    size = fit[0].image.pixels.shape[1::-1]
    for _ in range(4):
        state = ls.zoomed(state, 1, size)
    assert state.spec.zoom == 4.0
    lost_without = False
    for _ in range(40):
        view = vv.moved_in_plane(volume, view, 1, 0)
        frames = ls.render_layout(volumes, state, {0: view}, {0: box})
        assert frames is not None
        x, y = frames[0].image.pixel_of(view.at)
        lost_without |= not 0 <= x < size[0]
        state = ls.followed(state, {0: ((x, y), size)})
        frames = ls.render_layout(volumes, state, {0: view}, {0: box})
        assert frames is not None
        x, y = frames[0].image.pixel_of(view.at)
        assert 0 <= x < size[0] and 0 <= y < size[1]
    assert lost_without or state.spec.pan[0] < 0  # it did have to follow
    assert state.spec.pan == ls.clamp_pan(state.spec.pan, 4.0, size)
    # At fit nothing pans.
    fit = ls.zoomed(state, 0, size)
    assert ls.followed(fit, {0: ((200.0, 5.0), size)}) == fit


def test_two_volumes_share_the_budget_or_the_second_is_refused() -> None:
    total = 64 * 2**20
    assert ls.budget_for(total, {}, [0, 2]) == (32 * 2**20, None)
    assert ls.budget_for(total, {0: 40 * 2**20}, [2]) == (24 * 2**20, None)
    budget, reason = ls.budget_for(total, {0: 62 * 2**20}, [2])
    assert budget == 0
    assert reason == "not read: the 1 volume on screen uses 62 MiB of the 64 MiB volume budget"
    # At the start, the study in view keeps its resolution when the prior still fits
    # averaged 2×2 in what is left; else both get half.
    assert ls.start_budget(total, [40 * 2**20, 40 * 2**20]) == 54 * 2**20
    assert ls.start_budget(total, [60 * 2**20, 40 * 2**20]) == 32 * 2**20
    assert ls.start_budget(total, [60 * 2**20]) == total


def test_a_pixel_of_one_zoom_and_pan_regridded_is_its_pixel_at_another(
    sources: list[ls.Source], volumes: dict[int, Volume]
) -> None:
    """The crosshair's pixel in a frame drawn at one zoom and pan, carried to another, is where
    the frame drawn at that one puts it (the follow reads the frame on screen, keys in a burst
    change the zoom before the next frame is drawn)."""
    volume = volumes[0]
    view = vv.moved_in_plane(volume, VolumeView(at=volume.geometry.centre()), 9, -5)
    state = ls.with_grid(Hanging(), Grid.ONE, sources)
    frames = ls.render_layout(volumes, state, {0: view}, {0: (96, 96)})
    assert frames is not None
    size = frames[0].image.pixels.shape[1::-1]
    for step in [(1, None), (1, (70.0, 30.0)), (1, None), (-1, (10.0, 80.0))]:
        drawn, at = state.spec, frames[0].image.pixel_of(view.at)
        state = ls.panned(ls.zoomed(state, step[0], size, step[1]), 1, -1, size)
        frames = ls.render_layout(volumes, state, {0: view}, {0: (96, 96)})
        assert frames is not None
        moved = ls.regridded(at, drawn, state.spec, size)
        assert moved == pytest.approx(frames[0].image.pixel_of(view.at), abs=1e-6)
