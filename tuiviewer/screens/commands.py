"""Every action by name in Textual's command palette (ctrl+p).

Over SSH some function keys never arrive (terminal multiplexers and some terminals eat F1-F5),
and nobody remembers every key of every screen. The palette lists the app's own actions (the
modes, quitting) and every binding active on the screen it was opened from, each under its
footer description, so typing "ret" finds Retrieve wherever the key for it is.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from functools import partial
from typing import Any

from textual.app import App
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.dom import DOMNode

#: App-level actions, reachable from any screen (even a dialog that hides the app's bindings).
APP_COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("Worklist", "mode('worklist')", "Studies to read on the PACS, with their report state"),
    ("PACS query", "mode('pacs')", "Search the PACS and retrieve studies"),
    ("Local studies", "mode('local')", "Browse the files and studies on this computer"),
    ("Retrieve jobs", "mode('jobs')", "The retrieve queue: progress, cancel, retry"),
    ("Nodes", "mode('nodes')", "Add, edit and test the PACS nodes"),
    ("Inbox", "mode('inbox')", "Studies senders pushed to us, and their reports sent back"),
    ("Listener on/off", "toggle_listener", "Receive pushed studies while the app runs"),
    ("Report", "report", "The report of the study on show (F9), from every screen"),
    ("Unfinished drafts", "drafts", "Report drafts not signed or sent yet, of any date: open one"),
    ("Help", "help", "The keys of this screen (?)"),
    ("Quit", "quit", "Leave tuiviewer (asks first if something would be lost)"),
)


async def _run(app: App[Any], action: str, namespace: DOMNode) -> None:
    await app.run_action(action, namespace)


Command = tuple[str, str, Callable[[], Coroutine[Any, Any, None]]]


class TuiviewerCommands(Provider):
    """The app's and the current screen's actions for the command palette."""

    def commands(self) -> Iterator[Command]:
        """``(name, help, callback)`` for each action, app-level first, without duplicates."""
        seen: set[str] = set()
        app = self.app
        for name, action, help_text in APP_COMMANDS:
            seen.add(name.lower())
            seen.add(action)
            yield name, help_text, partial(_run, app, action, app)
        screen = self.screen
        for active in screen.active_bindings.values():
            binding = active.binding
            description = binding.description or binding.tooltip
            if not description or not active.enabled or binding.system:
                continue
            # Textual's own widgets bind cursor moves and editing keys: not worth a name here.
            if not type(active.node).__module__.startswith("tuiviewer"):
                continue
            if description.lower() in seen or binding.action in seen:
                continue
            seen.add(description.lower())
            seen.add(binding.action)
            where = screen.sub_title or type(screen).__name__
            help_text = f"{app.get_key_display(binding)}  ·  {where}"
            yield description, help_text, partial(_run, app, binding.action, active.node)

    async def discover(self) -> Hits:
        for name, help_text, callback in self.commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in self.commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, text=name, help=help_text)
