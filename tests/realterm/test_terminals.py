"""The viewer in real terminals: what reaches the screen is the slice, at the size and window
``tuiviewer render`` gives, and nothing of a previous frame outlives a layout change, a dialog
or a resize.

Each test runs the workstation in a real terminal under Xvfb (xterm as a VT340 with 256 colour
registers, mlterm, kitty 0.26.5 with Mesa's software renderer), presses keys with xdotool and
photographs the screen. The image on screen is compared with ``tuiviewer render`` of the same
file: mean |difference| of at most one grey level at the protocol's depth (Sixel colours are
whole percents, 2.55 levels apart; PNG and truecolour cells have all 256).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pydicom.uid import generate_uid

from tests.conftest import require_tool
from tests.realterm.conftest import SLICES, keep, open_viewer, viewer_command
from tests.support.realterm import Display, Terminal
from tests.support.screenshots import (
    Rect,
    block_means,
    find_image,
    grey,
    half_cells,
    leftovers,
    mean_difference,
    render_reference,
    ring_is_dark,
)
from tests.support.sshd import Sshd, sshd_available
from tuiviewer.reports.drafts import Draft, DraftStore
from tuiviewer.reports.model import Report

SIXEL_LEVEL = 255 / 100
"""One grey level at Sixel's depth (whole percents)."""
CARD = 384


def shot_rows_below(shot: np.ndarray, fraction: float) -> np.ndarray:
    """A mask of the rows below ``fraction`` of the screen's height."""
    mask = np.zeros(shot.shape[:2], dtype=bool)
    mask[int(shot.shape[0] * fraction) :] = True
    return mask


class Viewing:
    """A terminal running the viewer on the test cards, and what its screen shows."""

    def __init__(self, terminal: Terminal, cards: Path, tmp_path: Path) -> None:
        self.terminal = terminal
        self.cards = cards
        self.tmp_path = tmp_path
        self.slice = 1

    def look(self, name: str, timeout: float = 20) -> tuple[np.ndarray, Rect]:
        """A settled screenshot that shows an image (a slow link or a loaded machine may
        still be drawing the frame when the screen first stops changing)."""
        deadline = time.monotonic() + timeout
        while True:
            shot = self.terminal.settled()
            keep(self.terminal, shot, name)
            try:
                return shot, find_image(shot)
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

    def reference(
        self, size: tuple[int, int] | None = None, slice_no: int | None = None
    ) -> np.ndarray:
        number = slice_no or self.slice
        out = self.tmp_path / f"ref-{number}-{size}.png"
        return render_reference(self.cards / f"IM{number:05d}.dcm", out, size)

    def step(self) -> None:
        self.slice += 1
        mark = self.terminal.mark()
        self.terminal.keys("Down")
        self.terminal.wait_for_text(rf"slice {self.slice}/{SLICES}", since=mark)


def start(display: Display, kind: str, cards: Path, tmp_path: Path, *options: str,
          font: float = 12, cols: int = 120, rows: int = 40,
          badge: bool = True) -> Viewing:  # fmt: skip
    terminal = Terminal(
        display, kind, viewer_command(cards, *options), tmp_path, cols=cols, rows=rows,
        font_size=font,
    )  # fmt: skip
    try:
        terminal.start()
        open_viewer(terminal, SLICES, SLICES, badge)
    except BaseException:
        terminal.close()  # the terminal and the viewer in it must not outlive a failed start
        raise
    return Viewing(terminal, cards, tmp_path)


def check_pixels_1_to_1(view: Viewing, name: str, tolerance: float) -> tuple[np.ndarray, Rect]:
    shot, rect = view.look(name)
    assert (rect.width, rect.height) == (CARD, CARD), f"{rect} is not the 384² slice 1:1"
    difference = mean_difference(rect.crop(shot), view.reference())
    assert difference <= tolerance, f"{name}: mean |diff| {difference:.2f} > {tolerance:.2f}"
    return shot, rect


def fitted_then_1_to_1(view: Viewing, protocol: str) -> tuple[np.ndarray, Rect]:
    """The terminal enlarges the fitted image without distorting it; ``=`` shows it 1:1,
    exactly the slice."""
    shot, rect = view.look("fit")
    assert min(rect.width, rect.height) > CARD, f"{rect}: not enlarged to the pane"
    assert abs(rect.width - rect.height) <= 2, f"{rect}: distorted"
    view.terminal.keys("equal")
    view.terminal.wait_for_text(rf"{protocol} 384×384 px · 1:1")
    return check_pixels_1_to_1(view, "1to1", 1.0)


def check_layout_changes(view: Viewing, shot: np.ndarray, rect: Rect, tolerance: float) -> None:
    """``t`` (tag panel), ``t`` again, ``?`` then Esc: the image moves, is redrawn, and no
    pixel of the old frame stays where it was."""
    terminal = view.terminal
    terminal.keys("t")
    terminal.wait_for_text(r"Tags · slice")
    after, moved = view.look("tags")
    assert moved.x != rect.x, "the tag panel moves the image"
    assert leftovers(shot, rect, after, moved) == 0, "the old frame stays beside the tag panel"
    assert mean_difference(moved.crop(after), view.reference()) <= tolerance
    terminal.keys("t")
    back, rect_back = view.look("tags-closed")
    assert leftovers(after, moved, back, rect_back) == 0, "a strip of the frame beside the panel"
    terminal.keys("question")
    terminal.wait_for_text("Viewer keys")
    terminal.keys("Escape")
    closed, rect_closed = view.look("help-closed")
    assert rect_closed == rect_back, "the image is drawn again where it was"
    assert mean_difference(rect_closed.crop(closed), view.reference()) <= tolerance


def why_line(terminal: Terminal) -> str:
    found = re.findall(
        r"(?:sixel|kitty|iterm2|halfcell): [^\n\r]* · cell [^\n\r]*", terminal.text()
    )
    assert found, "the line that says why this mode is on screen"
    return found[-1]


def test_xterm_sixel_is_the_slice_1_to_1_and_no_frame_outlives_a_change(
    display: Display, cards: Path, tmp_path: Path
) -> None:
    view = start(display, "xterm", cards, tmp_path)
    try:
        line = why_line(view.terminal)
        assert line.startswith("sixel: DA1 lists Sixel · cell 10×20 px (TIOCGWINSZ)")
        assert "answered XTerm(379), no Kitty answer, Sixel, 256 registers" in line
        shot, rect = check_pixels_1_to_1(view, "first", SIXEL_LEVEL)
        # The cells around the image are black: no glyph fragment, no unpainted strip.
        assert ring_is_dark(shot, rect, 20)
        assert re.search(r"Sixel 384×384 px · 1:1 · \d+ of \d+ grey levels", view.terminal.text())
        view.step()
        shot, rect = check_pixels_1_to_1(view, "step", SIXEL_LEVEL)
        check_layout_changes(view, shot, rect, SIXEL_LEVEL)
        # A smaller window: the slice no longer fits 1:1 and is rendered for the new pane.
        before, old = view.look("before-resize")
        view.terminal.resize(800, 440)
        after, rect = view.look("resized")
        assert rect.height < CARD
        assert leftovers(before, old, after, rect) == 0, "the old frame outlives the resize"
        difference = mean_difference(rect.crop(after), view.reference((rect.width, rect.height)))
        assert difference <= SIXEL_LEVEL, f"resized: mean |diff| {difference:.2f}"
    finally:
        view.terminal.close()


def note_showing(shot: np.ndarray, rows: int = 40) -> bool:
    """A notification's grey box is on the viewer's two status lines, above the footer."""
    height, width = shot.shape[:2]
    cell = height / rows
    band = grey(shot[int(cell * (rows - 3)) + 2 : int(cell * (rows - 1)) - 2, 40 : width // 2])
    return bool(np.median(band) > 60)


def test_xterm_sixel_frames_reach_the_screen_while_a_notification_shows(
    display: Display, cards: Path, tmp_path: Path
) -> None:
    # An unfinished draft from an earlier session: the app notes it for 15 s (in the viewer on
    # the status lines under the image, over the badge). Frames once rode the pane's last
    # line and were dropped while anything covered part of it: the image came only when the
    # note went.
    DraftStore().save(Draft(generate_uid(), Report(sections=()), patient_name="Earlier^Session"))
    view = start(display, "xterm", cards, tmp_path, badge=False)
    try:
        view.terminal.wait_for_text("Unfinished report drafts")
        shot, _ = check_pixels_1_to_1(view, "under-note", SIXEL_LEVEL)
        assert note_showing(shot), "the frame was there while the note showed"
        view.step()
        check_pixels_1_to_1(view, "step-under-note", SIXEL_LEVEL)
    finally:
        view.terminal.close()


def test_xterm_sixel_ultrasound_keeps_its_greys_and_says_how_many(
    display: Display, ultrasound: Path, tmp_path: Path
) -> None:
    terminal = Terminal(display, "xterm", viewer_command(ultrasound), tmp_path)
    terminal.start()
    try:
        open_viewer(terminal, 1, 1)
        shot = terminal.settled()
        keep(terminal, shot, "ultrasound")
        rect = find_image(shot, grey_only=False)
        reference = render_reference(ultrasound / "us.dcm", tmp_path / "us.png")
        shown = rect.crop(shot).astype(np.int64)
        assert shown.shape == reference.shape, f"{rect} is not the 320×240 frame 1:1"
        wide = reference.astype(np.int64)
        greys = wide.max(axis=2) - wide.min(axis=2) <= 3
        grey_error = np.abs(grey(shown)[greys] - grey(wide)[greys]).mean()
        assert grey_error <= SIXEL_LEVEL, f"greys off by {grey_error:.2f} (a 6-level cube: ~10)"
        colour_error = np.abs(shown[~greys] - wide[~greys]).mean()
        assert colour_error <= 3 * SIXEL_LEVEL, f"the Doppler patch is off by {colour_error:.1f}"
        claim = re.findall(r"(\d+) of (\d+) grey levels", terminal.text())
        assert claim, "the badge counts the grey levels"
        shown_levels = len(np.unique(grey(shown)[greys].round()))
        assert int(claim[-1][0]) == shown_levels, f"badge {claim[-1]}, screen {shown_levels}"
        assert int(claim[-1][0]) > 60, "far more than a 6×6×6 cube's 6 greys"
    finally:
        terminal.close()


def test_mlterm_sixel_and_nothing_left_after_a_dialog(
    display: Display, cards: Path, tmp_path: Path
) -> None:
    view = start(display, "mlterm", cards, tmp_path, font=16)
    try:
        assert why_line(view.terminal).startswith("sixel: DA1 lists Sixel")
        shot, rect = check_pixels_1_to_1(view, "first", SIXEL_LEVEL)
        assert ring_is_dark(shot, rect, 16), "no white bar under the image"
        check_layout_changes(view, shot, rect, SIXEL_LEVEL)
    finally:
        view.terminal.close()


def test_mlterm_iterm2_inline_images_fill_the_pane_and_are_exact_at_1_to_1(
    display: Display, cards: Path, tmp_path: Path
) -> None:
    view = start(display, "mlterm", cards, tmp_path, "--graphics", "iterm2", font=16)
    try:
        shot, rect = fitted_then_1_to_1(view, "iTerm2")
        check_layout_changes(view, shot, rect, 1.0)
    finally:
        view.terminal.close()


def test_kitty_0_26_places_images_it_can_parse_and_removes_them(
    display: Display, cards: Path, tmp_path: Path
) -> None:
    view = start(display, "kitty", cards, tmp_path)
    try:
        line = why_line(view.terminal)
        assert "kitty 0.26.5 has no Unicode placeholders (0.28+)" in line
        shot, rect = fitted_then_1_to_1(view, "Kitty")
        check_layout_changes(view, shot, rect, 1.0)
        view.step()
        check_pixels_1_to_1(view, "step", 1.0)
        errors = [
            line
            for line in view.terminal.log_tail().splitlines()
            if "PARSE ERROR" in line and "OSC code: 22" not in line  # 22: Textual's pointer
        ]
        assert not errors, f"kitty could not parse what it was sent: {errors[:3]}"
    finally:
        view.terminal.close()


def test_kitty_half_blocks_keep_the_aspect_of_its_tall_cells(
    display: Display, cards: Path, tmp_path: Path
) -> None:
    view = start(display, "kitty", cards, tmp_path, "--graphics", "halfcell", font=12)
    try:
        shot, rect = view.look("halfcell")
        cell = (10, 19)  # kitty's DejaVu Sans Mono at 12 pt, as it answers CSI 16 t
        # Square source pixels stay square on screen: 19/2 px rows, 10 px columns.
        assert abs(rect.width - rect.height) <= cell[1], f"{rect}: stretched"
        cells = half_cells(shot, rect, cell)
        reference = view.reference((rect.width, rect.height))
        expected = block_means(reference, *cells.shape[:2])
        difference = float(np.abs(grey(cells) - expected).mean())
        assert difference <= 1.5, f"half-cells differ from the slice by {difference:.2f}"
    finally:
        view.terminal.close()


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    require_tool("OpenSSH server", sshd_available())
    server = Sshd(tmp_path / "sshd")
    server.start()
    yield server
    server.stop()


def test_over_ssh_the_terminal_is_asked_and_8x16_cells_put_the_image_in_place(
    display: Display, cards: Path, tmp_path: Path, sshd: Sshd
) -> None:
    """xterm with 8×16-px cells, the viewer on the far side of ``ssh -t``: the probe goes over
    the link, the cell size comes from the window size SSH forwards, and the image lands
    exactly where it belongs (not over the L and P labels)."""
    exports = " ".join(
        f"{key}={os.environ[key]}" for key in os.environ if key.startswith("TUIVIEWER_")
    )
    remote = f"exec env {exports} {shlex.join(viewer_command(cards))}"
    command = [*sshd.ssh_command(tty=True), remote]
    terminal = Terminal(display, "xterm", command, tmp_path, cols=100, rows=30, font_size=9.3)
    terminal.start()
    view = Viewing(terminal, cards, tmp_path)
    try:
        open_viewer(terminal, SLICES, SLICES)
        line = why_line(terminal)
        # Half-blocks were the rule over SSH; now the terminal is asked through the link.
        assert line.startswith("sixel: DA1 lists Sixel · cell 8×16 px (TIOCGWINSZ)"), line
        shot, rect = check_pixels_1_to_1(view, "ssh", SIXEL_LEVEL)
        # The orientation labels (A, P, R, L: red text) all show, none under the image.
        wide = shot.astype(np.int16)
        red = (wide[..., 0] > 150) & (wide[..., 1] < 100) & (wide[..., 2] < 100)
        red &= ~shot_rows_below(shot, 0.9)  # the badge line is red too
        assert not red[rect.mask(shot.shape)].any(), "the image covers a label"
        above, below = red[: rect.y].any(), red[rect.bottom :].any()
        left, right = red[:, : rect.x].any(), red[:, rect.right :].any()
        assert above and below and left and right, "a label is missing around the image"
        check_layout_changes(view, shot, rect, SIXEL_LEVEL)
    finally:
        terminal.close()


def tmux_viewer(tmp_path: Path, cards: Path, passthrough: str) -> list[str]:
    """A private tmux server whose only pane runs the viewer (see :func:`end_tmux`)."""
    conf = tmp_path / "tmux.conf"
    conf.write_text(f"set -g allow-passthrough {passthrough}\nset -g status off\n")
    socket = str(tmp_path / "tmux.sock")
    inner = shlex.join(viewer_command(cards))
    return ["tmux", "-S", socket, "-f", str(conf), "new-session", f"exec {inner}"]


def test_inside_tmux_sixel_passes_through_and_is_the_slice(
    display: Display, cards: Path, tmp_path: Path
) -> None:
    require_tool("tmux", shutil.which("tmux") is not None)
    terminal = Terminal(display, "xterm", tmux_viewer(tmp_path, cards, "on"), tmp_path)
    terminal.start()
    view = Viewing(terminal, cards, tmp_path)
    try:
        open_viewer(terminal, SLICES, SLICES)
        line = why_line(terminal)
        assert line.startswith("sixel: DA1 lists Sixel"), line
        assert "tmux repaints erase it: Ctrl+L redraws" in line, "said, as it may vanish"
        shot, rect = check_pixels_1_to_1(view, "tmux", SIXEL_LEVEL)
        view.step()
        check_pixels_1_to_1(view, "tmux-step", SIXEL_LEVEL)
    finally:
        terminal.close()
        end_tmux(tmp_path)


def test_inside_tmux_without_passthrough_the_pane_says_the_line_to_add(
    display: Display, cards: Path, tmp_path: Path
) -> None:
    require_tool("tmux", shutil.which("tmux") is not None)
    command = tmux_viewer(tmp_path, cards, "off")
    command[-1] = command[-1].replace("open", "open --graphics sixel", 1)
    terminal = Terminal(display, "xterm", command, tmp_path)
    terminal.start()
    try:
        open_viewer(terminal, SLICES, SLICES)
        # Forced Sixel wins, but is never a blank pane without a word: the warning says why.
        terminal.wait_for_text(r"tmux swallows these images")
        terminal.wait_for_text(r"set -g allow-passthrough on")
    finally:
        terminal.close()
        end_tmux(tmp_path)


def end_tmux(tmp_path: Path) -> None:
    """The tmux server outlives its client (it is a daemon): end it."""
    socket = str(tmp_path / "tmux.sock")
    subprocess.run(["tmux", "-S", socket, "kill-server"], capture_output=True, check=False)


def test_xterm_a_notification_leaves_the_sixel_image_and_the_readouts_alone(
    display: Display, cards: Path, tmp_path: Path
) -> None:
    """At 80×24 a notification (``9``: no such preset) appears on the status lines under the
    image: no pixel of the Sixel frame or of the readouts beside it (slice, W/L) changes
    while it is up, and when it goes the screen is exactly as before."""
    rows = 24
    view = start(display, "xterm", cards, tmp_path, cols=80, rows=rows)
    terminal = view.terminal
    try:
        cell = re.search(r"cell (\d+)×(\d+) px", why_line(terminal))
        assert cell, "the why line gives the cell size"
        cell_h = int(cell.group(2))
        before, rect = view.look("before-toast")
        reference = view.reference((rect.width, rect.height))
        assert mean_difference(rect.crop(before), reference) <= SIXEL_LEVEL
        top = (before.shape[0] - rows * cell_h) // 2  # xterm's inner border, give or take 1 px
        slack = cell_h // 2
        status = (top + (rows - 3) * cell_h - slack, top + (rows - 1) * cell_h + slack)
        mark = terminal.mark()
        terminal.keys("9")
        terminal.wait_for_text(r"No preset 9", since=mark)
        during = terminal.settled(quiet=0.3)
        keep(terminal, during, "toast")
        changed = np.flatnonzero((during != before).any(axis=(1, 2)))
        assert changed.size, "the notification is on screen"
        assert changed.min() >= status[0] and changed.max() < status[1], (
            f"pixel rows {changed.min()}–{changed.max()} changed; only the status lines "
            f"(badge and why, about {status[0]}–{status[1] - 1}) may"
        )
        assert changed.max() - changed.min() < 2 * cell_h, "two text rows at most"
        assert np.array_equal(rect.crop(during), rect.crop(before)), "the image was touched"
        # The toast goes (6 s): the status lines come back, the image is still the slice.
        deadline = time.monotonic() + 20
        after = terminal.settled()
        while not np.array_equal(after, before) and time.monotonic() < deadline:
            time.sleep(0.5)
            after = terminal.settled()
        keep(terminal, after, "toast-gone")
        assert np.array_equal(after, before), "the screen is as it was once the toast is gone"
    finally:
        terminal.close()
