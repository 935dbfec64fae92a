"""Keys that arrive in one burst land where the focus was at each key.

Over SSH a reader's keys often arrive several to a packet. Textual (8.x, ``App.on_event``) takes
each key from the app's queue, runs the priority bindings and *posts* the key to the focused
widget's queue, then goes straight on with the next key. So when "aaa Tab bbb" arrive together,
all seven keys are queued on the first text box before it has handled the Tab (which it ignores:
the Tab bubbles up to the screen's ``focus_next`` binding), and "bbb" lands in the first box too.
A key that opens a dialog is the same: the dialog's field takes the focus in its ``on_mount``,
after the keys behind it went to the old focus, or to the dialog screen itself and were lost.

:class:`KeyOrder` fixes this once, for every screen: it holds each key (and paste) that arrives
while an earlier one is still being handled, and releases the next only when that one is done
(a widget stopped it, or it bubbled up to the App and its bindings ran) and what it started has
settled (a pushed screen is mounted, a deferred focus applied). Each key then goes to the focus
of its turn. A screen that cannot take typing yet (the report editor while it reads its study)
mixes in :class:`HoldsKeys`: the keys that reach it wait until it is ready, while a dialog it
puts up first (the "resume the draft?" question) gets only the keys typed once it is shown.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from textual import events
from textual.app import App, ScreenError
from textual.dom import DOMNode
from textual.keys import _character_to_key
from textual.screen import Screen
from textual.widgets import Input, TextArea

__all__ = ["HoldsKeys", "KeyOrder", "Opening"]

_LOG = logging.getLogger(__name__)

#: A key still not handled after this long (its handler awaits something else, e.g. a dialog)
#: no longer holds the keys behind it.
STUCK_AFTER = 1.0
#: Keys wait at most this long for a screen that is not ready for them, then go to it anyway.
HOLD_LIMIT = 20.0
#: How often held keys are looked at again while a screen is not ready for them.
RECHECK = 0.05
#: Settling rounds after a key (each lets every widget of the screen handle what it was sent).
MAX_ROUNDS = 8


class HoldsKeys:
    """Mixed into a Screen that cannot take typing at once; it calls :meth:`keys_ready_now`."""

    keys_ready: bool = False
    """False until the screen can take the keys typed into it (set by :meth:`keys_ready_now`)."""

    def keys_ready_now(self) -> None:
        """From now on the keys typed into this screen reach it.

        Takes effect on the App's next turn, after a ``focus()`` the screen has just asked for
        (Textual applies it there), so the first key released goes to that focus.
        """
        assert isinstance(self, Screen), "HoldsKeys is for screens"

        def ready() -> None:
            self.keys_ready = True

        self.app.call_later(ready)


class Opening:
    """A screen on its way from a worker: the keys typed meanwhile wait for it.

    Made on the App's thread by :meth:`KeyOrder.opening` when a command starts the work (the
    report editor's ctrl+o scans the study on disk, then opens the viewer). Until the screen is
    pushed by :meth:`push` and mounted, or :meth:`end` says none will come, the keys typed on
    the screen it was started from wait, so they reach the new screen rather than running the
    old one's commands (or typing into its text). An Esc typed first cancels it: the screen is
    then never shown, and the keys behind the Esc go where they were typed.
    """

    def __init__(self, order: KeyOrder, over: Screen[Any], what: str) -> None:
        self._order = order
        self.what = what
        """What is opening, for the notice when Esc cancels it ("the images")."""
        self.over = over
        """The screen the command was given on."""
        self.started = time.monotonic()
        self.cancelled = False
        """Esc was pressed before the screen came: the worker's result is not shown."""
        self.ended = False
        self._pushed = False

    def push(self, screen: Screen[Any], callback: Callable[[Any], None] | None = None) -> None:
        """On the App's thread (``call_from_thread``): show ``screen`` (``callback`` gets what
        it is dismissed with), unless cancelled or its screen closed meanwhile."""
        if self.ended or not self.over.is_attached:
            return
        self._pushed = True
        mounted = self._order.app.push_screen(screen, callback)

        async def then() -> None:
            await mounted
            self.end()

        self._order.app.call_later(then)

    def worker_done(self) -> None:
        """On the App's thread, the worker's last word (its ``finally``): unless it pushed a
        screen (which ends this once mounted), no screen comes and the keys go on."""
        if not self._pushed:
            self.end()

    def end(self) -> None:
        """On the App's thread: no screen comes (or it is mounted); the keys go on."""
        if self.ended:
            return
        self.ended = True
        self._order._opening_ended(self)


def typed_keys(event: events.Key | events.Paste) -> list[events.Key | events.Paste]:
    """The keys a reader typed, for one key event from Textual's parser.

    Esc and the key typed right behind it, arriving together (one packet over SSH, or read
    late by the input thread of a busy machine), reach the parser as one Alt key: "Esc W" is
    ``alt+shift+w``, which nothing binds, so the Esc was lost and the reader stayed where they
    were. The app binds no Alt key with a character, so such a key is what was typed: Esc,
    then the key. (Alt+Backspace, which text boxes bind, has no printable character.)
    """
    if not isinstance(event, events.Key) or not event.key.startswith("alt+"):
        return [event]
    character = event.character
    if character is None or len(character) != 1 or not character.isprintable():
        return [event]
    return [events.Key("escape", "\x1b"), events.Key(_character_to_key(character), character)]


def _is_escape(item: _Held) -> bool:
    return isinstance(item.event, events.Key) and item.event.key == "escape"


@dataclass
class _Held:
    event: events.Key | events.Paste
    owner: Screen[Any] | None = None
    """The screen that was not ready when this key's turn came; it waits for that screen."""
    parked_at: float = 0.0


class KeyOrder:
    """Serialises the app's keys: each is handled, and its effects settled, before the next."""

    def __init__(self, app: App[Any], dispatch: Callable[[events.Event], Awaitable[None]]) -> None:
        self.app = app
        self._dispatch = dispatch
        """Textual's own ``App.on_event``: priority bindings, then forward to the focus."""
        self._held: deque[_Held] = deque()
        self._busy = False
        self._generation = 0
        self._watchdog: asyncio.TimerHandle | None = None
        self._sent_at = 0.0
        self._recheck_armed = False
        self._opening: Opening | None = None

    def opening(self, what: str, over: Screen[Any] | None = None) -> Opening:
        """Keys wait for a screen that a worker is about to push over ``over`` (default: the
        screen on top) (see :class:`Opening`)."""
        if self._opening is not None:
            self._opening.end()
        self._opening = Opening(self, over or self.app.screen, what)
        return self._opening

    def _opening_ended(self, opening: Opening) -> None:
        if self._opening is opening:
            self._opening = None
            self.app.call_later(self._pump)

    def _waiting_for_a_screen(self) -> bool:
        """True while the keys wait for an :class:`Opening`; an Esc typed first cancels it."""
        opening = self._opening
        if opening is None:
            return False
        if opening.over is not self.app.screen or not opening.over.is_attached:
            return False  # something else came up (a question, a notice screen): its turn
        if time.monotonic() - opening.started > HOLD_LIMIT:
            opening.end()
            return False
        if self._held and _is_escape(self._held[0]):
            self._held.popleft()
            opening.cancelled = True
            opening.end()
            self.app.notify(f"Esc: {opening.what} will not open.", timeout=4)
            return False
        return True

    @property
    def idle(self) -> bool:
        """No key is being handled or waiting."""
        return not self._busy and not self._held

    async def take(self, event: events.Event) -> bool:
        """Called by the App for every event; True when ``event`` is a key it now owns."""
        if not isinstance(event, events.Key | events.Paste) or event.is_forwarded:
            return False
        try:
            _ = self.app.screen
        except ScreenError:
            return False  # starting or closing: Textual's own handling
        self._held.extend(_Held(key) for key in typed_keys(event))
        await self._pump()
        return True

    # ---- releasing ----------------------------------------------------------------------------
    def _ready(self, screen: Screen[Any]) -> bool:
        return not isinstance(screen, HoldsKeys) or screen.keys_ready

    def _next(self) -> _Held | None:
        """The first key whose turn it is, or None while every key waits for its screen."""
        app = self.app
        screen = app.screen
        now = time.monotonic()
        dropped = [item for item in self._held if item.owner and not item.owner.is_attached]
        if dropped:
            for item in dropped:
                self._held.remove(item)
            # Typed into a screen that closed before it could take them (e.g. Esc on the
            # question it asked first): sending them to another screen would run its commands.
            _LOG.info("%d keys dropped: their screen closed before it was ready", len(dropped))
            app.notify(
                f"{len(dropped)} keys typed while the screen was opening were not used: "
                "it closed before it could take them.",
                severity="warning",
            )
        if not self._ready(screen):
            # Every key waiting now was typed into this screen: it keeps them until it is ready,
            # even when it puts up a question first (the question gets the keys typed later).
            for item in self._held:
                if item.owner is None:
                    item.owner = screen
                    item.parked_at = now
        for item in self._held:
            if item.owner is None:
                return item
            if item.owner is screen:
                if self._ready(screen) or now - item.parked_at > HOLD_LIMIT:
                    return item
                return self._leaving(screen)
            # Its screen is covered (by a dialog it put up): the dialog's keys may go first.
        return None

    def _leaving(self, screen: Screen[Any]) -> _Held | None:
        """An Esc that may leave a screen before it is ready: one typed before any other key.

        Esc alone leaves a screen still loading (what it waits for may never come). Behind typed
        keys it keeps its place: the text goes in once the screen is ready, and the Esc then
        leaves it as it would have on a fast link (the report editor keeps the text as a draft).
        """
        for item in self._held:
            if item.owner is not screen:
                continue
            return item if _is_escape(item) else None
        return None

    async def _pump(self) -> None:
        while not self._busy and self._held:
            item = None if self._waiting_for_a_screen() else self._next()
            if item is None:
                self._recheck_later()
                return
            self._held.remove(item)
            await self._send(item.event)

    def _recheck_later(self) -> None:
        if self._recheck_armed:
            return
        self._recheck_armed = True

        def recheck() -> None:
            self._recheck_armed = False
            self.app.call_later(self._pump)

        self.app.set_timer(RECHECK, recheck)

    async def _send(self, event: events.Key | events.Paste) -> None:
        app = self.app
        self._busy = True
        self._generation += 1
        generation = self._generation
        self._sent_at = time.monotonic()
        self._arm(generation)
        before = self._state()
        await self._dispatch(event)
        if event.is_forwarded and self._types_text(event):
            # A character typed into a text box never moves the focus: the box takes the next
            # one in its own queue's order, so there is nothing to wait for.
            await self._finish(generation)
        elif event.is_forwarded:
            target: DOMNode = app.focused or app.screen
            self._follow(target, event, generation, before)
        else:
            self._done(generation, before)  # a priority binding handled it in the App

    # ---- knowing when a key is done -----------------------------------------------------------
    def _types_text(self, event: events.Key | events.Paste) -> bool:
        focused = self.app.focused
        if not isinstance(event, events.Key) or not event.is_printable:
            return False
        if isinstance(focused, TextArea):
            return not focused.read_only
        return isinstance(focused, Input)

    def _state(self) -> tuple[Screen[Any], object, int]:
        app = self.app
        return (app.screen, app.focused, len(app.screen_stack))

    def _follow(
        self,
        node: DOMNode,
        event: events.Event,
        generation: int,
        before: tuple[Screen[Any], object, int],
    ) -> None:
        """Step up the DOM behind the key: done when stopped, or when the App has handled it."""

        def step(here: DOMNode) -> None:
            if generation != self._generation:
                return
            parent = here.parent
            if event._stop_propagation or parent is None:
                self._done(generation, before)
            elif not parent.call_later(step, parent):
                self._done(generation, before)

        if not node.call_later(step, node):
            self._done(generation, before)

    def _done(self, generation: int, before: tuple[Screen[Any], object, int]) -> None:
        """The key was handled. Unless it changed the screens, the next may go."""

        async def check() -> None:
            # One more turn of the App's queue: a focus() in the key's handler is applied there.
            if generation != self._generation:
                return
            screen, _focus, depth = self._state()
            if (screen, depth) == (before[0], before[2]):
                # Same screen: a focus move (Tab) is applied by now, nothing else is pending.
                await self._finish(generation)
            else:
                self._settle(generation)  # a screen was pushed or popped: let it mount

        self.app.call_later(check)

    def _settle(self, generation: int, rounds: int = 0) -> None:
        """Let every widget of the screen handle what it was sent, until nothing moves."""
        if generation != self._generation:
            return
        app = self.app
        before = self._state()
        nodes: list[DOMNode] = [app, *app.screen.walk_children(with_self=True)]
        remaining = 0

        def done() -> None:
            nonlocal remaining
            remaining -= 1
            if remaining == 0:
                app.call_later(self._round_done, generation, before, rounds)

        for node in nodes:
            if node.call_later(done):
                remaining += 1
        if remaining == 0:
            app.call_later(self._round_done, generation, before, rounds)

    async def _round_done(
        self,
        generation: int,
        before: tuple[Screen[Any], object, int],
        rounds: int,
    ) -> None:
        if generation != self._generation:
            return
        if self._state() != before and rounds < MAX_ROUNDS:
            self._settle(generation, rounds + 1)
            return
        await self._finish(generation)

    async def _finish(self, generation: int) -> None:
        if generation != self._generation:
            return
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        self._busy = False
        await self._pump()

    def _arm(self, generation: int) -> None:
        self._armed_at = time.monotonic()
        self._watchdog = asyncio.get_running_loop().call_later(STUCK_AFTER, self._stuck, generation)

    def _still_working(self) -> bool:
        """The app is behind rather than stuck: the watchdog itself ran late (the loop had no
        CPU, as on a loaded server), or widgets of the screen still have messages to handle."""
        if time.monotonic() - self._armed_at > 1.5 * STUCK_AFTER:
            return True
        nodes: list[DOMNode] = [self.app, *self.app.screen.walk_children(with_self=True)]
        return any(not node._message_queue.empty() for node in nodes)

    def _stuck(self, generation: int) -> None:
        if generation != self._generation or not self._busy:
            return
        if self._still_working() and time.monotonic() - self._sent_at < HOLD_LIMIT:
            self._arm(generation)  # a busy machine: keep the order, look again later
            return
        # Its handler waits on something (a dialog, a long await): do not hold the rest.
        _LOG.debug("A key was not handled within %.1f s; releasing the next", STUCK_AFTER)
        self._generation += 1
        self._busy = False
        self._watchdog = None
        self.app.call_later(self._pump)
