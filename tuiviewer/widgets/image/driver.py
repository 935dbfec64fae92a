"""Textual's Linux driver, keeping the keys typed during the terminal probe, dropping late replies.

:func:`tuiviewer.graphics.probe.probe_terminal` reads the terminal's answers before the
app starts. Two things must not be lost or misread after it:

- keys typed while it waited (over SSH a reader often types ahead): they are fed to Textual's
  parser first, in order, as if they had just arrived;
- answers that arrive after its timeout (a slow link): Textual would read ``ESC P >|kitty…``
  as the keys P, >, |, k, i… (it re-issues sequences it does not know as keys). For a while
  after a timed-out probe every chunk of input goes through a
  :class:`~tuiviewer.graphics.probe.ReplyScanner` first, and only what is not a reply
  reaches the parser; a tail that might still become a reply is held for at most
  :data:`HOLD_S`, so a lone Escape is late by that much at worst.

The input loop is Textual's own (select, read, decode, feed, tick), with the scanner in front.
"""

from __future__ import annotations

import logging
import os
import selectors
import time
from codecs import getincrementaldecoder

from textual.driver import Driver

from tuiviewer.graphics.probe import LATE_REPLY_GRACE, ReplyScanner, TerminalProbe

log = logging.getLogger(__name__)

HOLD_S = 0.1
"""Longest wait for the rest of something that may be a reply before it is passed on as keys."""


def driver_for(probe: TerminalProbe | None) -> type[Driver] | None:
    """A driver class that replays ``probe``'s typeahead and filters late replies; None when
    Textual's own driver will do (no probe, nothing typed, nothing outstanding, not Linux)."""
    if probe is None or (probe.completed and not probe.typeahead) or not probe.asked:
        return None
    try:
        from textual.drivers.linux_driver import LinuxDriver
    except ImportError:  # pragma: no cover - Windows
        return None

    from textual._xterm_parser import XTermParser

    typeahead = probe.typeahead
    filter_until = 0.0 if probe.completed else time.monotonic() + LATE_REPLY_GRACE

    class ProbedDriver(LinuxDriver):
        """Textual's Linux driver with the probe's typeahead first and late replies filtered."""

        def run_input_thread(self) -> None:
            selector = selectors.SelectSelector()
            selector.register(self.fileno, selectors.EVENT_READ)
            parser = XTermParser(self._debug)
            decode = getincrementaldecoder("utf-8")().decode
            scanner = ReplyScanner()
            held_at = 0.0

            def deliver(data: bytes, final: bool = False) -> None:
                text = decode(data, final=final)
                if text:
                    for event in parser.feed(text):
                        self.process_message(event)

            deliver(typeahead)
            try:
                while not self.exit_event.is_set():
                    for _key, mask in selector.select(0.1 if not scanner.holding else HOLD_S):
                        if not mask & selectors.EVENT_READ:
                            continue
                        data = os.read(self.fileno, 4096)
                        if not data:
                            break
                        if time.monotonic() < filter_until or scanner.holding:
                            replies, data = scanner.feed(data)
                            for reply in replies:
                                log.info("Dropped a late terminal reply (%s).", reply.kind)
                            held_at = time.monotonic() if scanner.holding else 0.0
                        deliver(data)
                    if scanner.holding and time.monotonic() - held_at >= HOLD_S:
                        deliver(scanner.flush())
                    for event in parser.tick():
                        self.process_message(event)
                selector.unregister(self.fileno)
            finally:
                selector.close()
                try:
                    deliver(scanner.flush(), final=True)
                    for _event in parser.feed(""):
                        pass
                except Exception:  # as Textual's own loop: the parser is finished anyway
                    pass

    return ProbedDriver
