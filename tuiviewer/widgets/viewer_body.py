"""The body of the viewer: the panes with the texts around them, laid out for the terminal.

Left of the images a column with patient, study and series (top) and where the slice lies
(bottom); right of them which slice (top) and the zoom, inversion and cine (bottom); the
orientation letters on the four edges; the side-by-side caption under both panes; the tag panel
on the right. The body decides what is visible at which width: with the tag panel or a second
pane the left column gives way: the tag panel's title then says patient ID, study date and
series, and side by side each pane carries patient, ID, study date and series on a title line.
It also links the second pane to the first (by position along the normal).
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from tuiviewer.graphics.probe import GraphicsDecision
from tuiviewer.messages import FrameRendered
from tuiviewer.services.viewer import texts
from tuiviewer.services.viewer.geometry import edge_labels
from tuiviewer.services.viewer.slices import ViewState
from tuiviewer.services.viewer.stack import Stack
from tuiviewer.widgets.corner_texts import CornerTexts
from tuiviewer.widgets.safe import shown
from tuiviewer.widgets.stack_pane import StackPane
from tuiviewer.widgets.tag_panel import TagPanel

WIDE = 110
"""From this many columns on, the texts and the tag panel get their full widths."""


class ViewerBody(Horizontal):
    """The panes (``#pane``, ``#pane-link``), the corner texts, the edges and the tag panel."""

    def __init__(
        self,
        decision: GraphicsDecision,
        stack: Stack,
        *,
        low_bandwidth: bool,
        id: str | None = None,  # noqa: A002
    ) -> None:
        super().__init__(id=id)
        self.decision = decision
        self.stack = stack
        self.low_bandwidth = low_bandwidth

    def compose(self) -> ComposeResult:
        lean = self.low_bandwidth
        yield CornerTexts("left", id="info-left", classes="info")
        with Vertical(id="centre"):
            yield Static("", id="edge-top", classes="edge")
            with Horizontal(id="middle"):
                yield Static("", id="edge-left", classes="edge side")
                yield StackPane(
                    self.decision, stack=self.stack, low_bandwidth=lean, view_id="image",
                    id="pane",
                )  # fmt: skip
                yield StackPane(
                    self.decision, low_bandwidth=lean, linked=True, view_id="image-link",
                    id="pane-link",
                )  # fmt: skip
                yield Static("", id="edge-right", classes="edge side")
            yield Static("", id="edge-bottom", classes="edge")
            yield Static("", id="link-info")
        yield CornerTexts("right", id="info-right", classes="info")
        yield TagPanel(id="tags-panel")

    @property
    def pane(self) -> StackPane:
        return self.query_one("#pane", StackPane)

    @property
    def link_pane(self) -> StackPane:
        return self.query_one("#pane-link", StackPane)

    @property
    def link(self) -> Stack | None:
        """The stack shown beside the first, if any."""
        return self.link_pane.stack

    def open_link(self, stack: Stack, view: ViewState) -> bool:
        """Show ``stack`` beside the first pane, at the plane nearest the first's slice; False
        when it cannot be placed by position (it stays on its first slice)."""
        pane = self.link_pane
        pane.set_stack(stack)
        pane.view = view
        placed = stack.follow(self.pane.position())
        self.update_link_text()
        return placed

    def close_link(self) -> None:
        self.link_pane.set_stack(None)

    def follow(self, view: ViewState) -> None:
        """Move the stack beside to the plane nearest the first pane's slice."""
        if self.link is not None:
            self.link_pane.view = view
            self.link_pane.follow(self.pane.position())
            self.update_link_text()

    def update_link_text(self) -> None:
        """The caption under the panes: where the slice beside lies, how far from the first."""
        caption = self.link_pane.caption(self.pane.position()) if self.link else None
        if caption is not None:
            self.set("#link-info", caption)

    def relayout(self, width: int, *, texts_visible: bool, tags: bool, linked: bool) -> None:
        """Column widths and what is visible (each pane re-renders on its own resize)."""
        wide = width >= WIDE
        # Narrow terminals give the image the room: the texts wrap in slimmer columns.
        for info in self.query(".info"):
            info.styles.width = 24 if wide else 16
        # The tag panel's title says whose tags they are (patient ID, study date, series);
        # side by side, each pane says it on its own title line.
        self.query_one("#info-left").display = texts_visible and not (tags or linked)
        self.query_one("#info-right").display = texts_visible
        for pane in (self.pane, self.link_pane):
            pane.show_title(texts_visible and linked)
        panel = self.query_one(TagPanel)
        panel.display = tags
        panel.styles.width = 44 if wide else 30
        self.link_pane.display = linked
        self.link_pane.image_view.display = linked
        self.query_one("#link-info").display = linked

    def set(self, selector: str, content: str | Text) -> None:
        """Update a text only when it changed, without a layout pass (their sizes are fixed).
        Plain strings hold names and descriptions from the file: shown literally, cleaned."""
        widget = self.query_one(selector, Static)
        text = shown(content, lines=True) if isinstance(content, str) else content
        if widget.content != text:
            widget.update(text, layout=False)

    def set_slice_text(self, text: str) -> None:
        self.query_one("#info-right", CornerTexts).set_top(text)

    def show(self, now: FrameRendered, cine_fps: int | None) -> None:
        """The texts of the frame on the left pane: who, where, how it is shown, edges."""
        info = now.loaded.info
        left = self.query_one("#info-left", CornerTexts)
        left.set_top(texts.patient_text(info))
        left.set_bottom(texts.position_text(info))
        right = self.query_one("#info-right", CornerTexts)
        state = now.job.state
        shows = (texts.window_text(state, now.image), texts.view_text(state, cine_fps))
        right.set_bottom("\n".join(line for line in shows if line))
        labels = edge_labels(info.orientation)
        for side in ("top", "bottom", "left", "right"):
            self.set(f"#edge-{side}", getattr(labels, side) if labels else "")
