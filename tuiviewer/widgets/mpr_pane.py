"""One pane of the volume screen: a plane's picture with its orientation letters and title.

The screen renders every pane in one worker (the crosshair moves all of them at once) and
hands each its :class:`~tuiviewer.services.viewer.volume_view.PaneFrame`; the pane shows it in
its :class:`~tuiviewer.widgets.image.view.ImageView` (the viewer's, so every graphics mode and
its badge behave as in the slice viewer) and writes the texts around it: the plane, slice and
position on the title line, the patient-direction letter at each edge and the fidelity badge
(reformatted, slab, downsampled) at the right of the bottom line, where a narrow pane still has
room for it. The texts sit beside the image, never on it.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static

from tuiviewer.graphics.probe import GraphicsDecision
from tuiviewer.render.volume import Vec3
from tuiviewer.services.viewer.volume_view import PaneFrame
from tuiviewer.widgets.image.view import ImageView


class MprPane(Widget):
    """A plane of the volume: title, edge letters and the image."""

    DEFAULT_CSS = """
    MprPane {
        width: 1fr;
        height: 1fr;
        layout: vertical;
    }
    MprPane > .mpr-title {
        height: 1;
        width: 1fr;
        text-wrap: nowrap;
        text-overflow: ellipsis;
        color: $text-muted;
    }
    MprPane.-active > .mpr-title {
        color: $text;
        text-style: bold;
        background: $accent 30%;
    }
    MprPane .mpr-edge-h {
        height: 1;
        width: 1fr;
        text-align: center;
        text-wrap: nowrap;
        color: $text-muted;
    }
    MprPane .mpr-bottom {
        text-align: left;
    }
    MprPane > Horizontal {
        height: 1fr;
    }
    MprPane .mpr-edge-v {
        width: 2;
        height: 1fr;
        content-align: center middle;
        color: $text-muted;
    }
    """

    @dataclass
    class Pointed(Message):
        """A click on the image of pane ``pane`` (an index) at patient point ``at``."""

        pane: int
        at: Vec3

    @dataclass
    class Scrolled(Message):
        """The wheel turned over pane ``pane``: ``step`` slices through it."""

        pane: int
        step: int

    @dataclass
    class Zoomed(Message):
        """Ctrl (or Alt) and the wheel over pane ``pane``: ``direction`` zoom steps in (+1, the
        wheel turned up) or out, about ``at`` (pixels of the plane image, None: its centre)."""

        pane: int
        direction: int
        at: tuple[float, float] | None

    def __init__(
        self,
        decision: GraphicsDecision,
        pane: int,
        *,
        low_bandwidth: bool = False,
        id: str | None = None,  # noqa: A002
    ) -> None:
        super().__init__(id=id)
        self.decision = decision
        self.pane = pane
        """Index in :data:`~tuiviewer.services.viewer.volume_view.PANES`."""
        self.low_bandwidth = low_bandwidth
        self.frame: PaneFrame | None = None
        """What the pane shows now."""
        self.badge = ""
        self._bottom = ""
        self._edges: tuple[str, str, str, str] | None = None

    def compose(self) -> ComposeResult:
        yield Static("", classes="mpr-title", markup=False)
        yield Static("", classes="mpr-edge-h mpr-top")
        with Horizontal():
            yield Static("", classes="mpr-edge-v mpr-left")
            yield ImageView(
                self.decision, low_bandwidth=self.low_bandwidth, id=f"mpr-image-{self.pane}"
            )
            yield Static("", classes="mpr-edge-v mpr-right")
        yield Static("", classes="mpr-edge-h mpr-bottom", markup=False)

    @property
    def image_view(self) -> ImageView:
        return self.query_one(ImageView)

    def pixel_box(self) -> tuple[int, int] | None:
        """The pixel size a frame is rendered for (None before layout)."""
        return self.image_view.pixel_box()

    def set_edges(self, left: str, right: str, top: str, bottom: str) -> None:
        """The patient-direction letters at the four edges."""
        edges = (left, right, top, bottom)
        if edges == self._edges:
            return
        self._edges = edges
        for selector, letter in ((".mpr-left", left), (".mpr-right", right), (".mpr-top", top)):
            self.query_one(selector, Static).update(letter)
        self._bottom = bottom
        self._bottom_line()

    def set_badge(self, badge: str) -> None:
        """The fidelity badge (``"MPR · MIP 10 mm · ↓1.3×"``), "" for an acquired slice."""
        if badge != self.badge:
            self.badge = badge
            self._bottom_line()

    def on_resize(self) -> None:
        self._bottom_line()

    def _bottom_line(self) -> None:
        """The bottom letter centred and the badge flush right (cut before the letter)."""
        width = max(self.size.width, len(self._bottom))
        centre = (width - len(self._bottom)) // 2
        line = " " * centre + self._bottom
        room = width - len(line) - 1
        badge = self.badge if len(self.badge) <= room else self.badge[: max(room - 1, 0)] + "…"
        if room > 1 and badge:
            line += " " * (width - len(line) - len(badge)) + badge
        bottom = self.query_one(".mpr-bottom", Static)
        if str(bottom.content) != line:
            bottom.update(line, layout=False)

    def set_title(self, text: str) -> None:
        title = self.query_one(".mpr-title", Static)
        if str(title.content) != text:
            title.update(text, layout=False)

    @property
    def title_text(self) -> str:
        return str(self.query_one(".mpr-title", Static).content)

    def set_active(self, active: bool) -> None:
        self.set_class(active, "-active")

    def show(self, frame: PaneFrame, *, hurry: bool = False) -> None:
        """Send ``frame``'s picture (nothing is sent when it is the one on screen)."""
        self.frame = frame
        self.image_view.show(frame.pixels, frame.key, hurry=hurry)

    def on_image_view_clicked(self, message: ImageView.Clicked) -> None:
        message.stop()
        if self.frame is not None:
            self.post_message(self.Pointed(self.pane, self.frame.patient_at(message.x, message.y)))

    def on_image_view_wheeled(self, message: ImageView.Wheeled) -> None:
        message.stop()
        if not (message.ctrl or message.meta):
            self.post_message(self.Scrolled(self.pane, message.step))
            return
        at = None
        if message.at is not None and self.frame is not None:
            at = (message.at[0], message.at[1] * self.frame.aspect)  # stretched rows undone
        self.post_message(self.Zoomed(self.pane, -message.step, at))
