"""The Textual application: configuration, theme, global bindings and the first screen."""

from __future__ import annotations

from pathlib import Path

from textual.app import App
from textual.binding import Binding

from tuiviewer.config import Config
from tuiviewer.screens.browser import BrowserScreen
from tuiviewer.screens.dialogs.common import ConfirmDialog


class TuiviewerApp(App[None]):
    """The workstation."""

    TITLE = "tuiviewer"
    CSS_PATH = "app.tcss"
    BINDINGS = [Binding("q", "quit", "Quit"), Binding("ctrl+c", "quit", "Quit", show=False)]

    def __init__(self, config: Config, paths: list[Path]) -> None:
        super().__init__()
        self.config = config
        self.paths = paths
        self.export_dir = Path(config.ui.export_dir or Path.home() / "tuiviewer-export")

    def on_mount(self) -> None:
        self.theme = self.config.ui.theme
        self.push_screen(BrowserScreen(self.paths))

    def unsaved(self) -> list[Path]:
        """Files edited in any browser screen and not saved."""
        paths: list[Path] = []
        for screen in self.screen_stack:
            if isinstance(screen, BrowserScreen):
                paths.extend(screen.edited)
        return paths

    async def action_quit(self) -> None:
        unsaved = self.unsaved()
        if not unsaved:
            self.exit()
            return
        names = ", ".join(p.name for p in unsaved[:3]) + (" …" if len(unsaved) > 3 else "")

        def answer(yes: bool | None) -> None:
            if yes:
                self.exit()

        self.push_screen(
            ConfirmDialog(f"Quit and lose the unsaved edits to {names}?", yes="Quit"), answer
        )


def make_app(config: Config, paths: list[Path]) -> TuiviewerApp:
    """The one factory the CLI and the tests use."""
    return TuiviewerApp(config, paths)
