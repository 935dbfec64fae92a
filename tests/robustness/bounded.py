"""Run one call with a deadline, so a hang fails a test instead of stalling the suite."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: Seconds one load, dump or render of a small damaged file may take. They take ~5 ms; the
#: margin covers a loaded CI machine, not a parser that loops.
DEADLINE_S = 2.0


class Hung(AssertionError):
    """The call was still running at its deadline."""


@dataclass
class Outcome:
    """What one bounded call did."""

    value: Any = None
    error: BaseException | None = None
    warnings: list[str] = field(default_factory=list)
    """Warnings that escaped the call (they would be written over the UI)."""


def bounded(
    call: Callable[..., Any], *args: Any, seconds: float = DEADLINE_S, **kw: Any
) -> Outcome:
    """Run ``call(*args, **kw)`` in a daemon thread; raise :class:`Hung` past ``seconds``.

    A thread cannot be killed, so a hung call keeps running in the background; the test fails
    anyway, naming the call. Warning filters are process-wide, so the ones set here also
    catch warnings raised in the thread.
    """
    outcome = Outcome()

    def target() -> None:
        try:
            outcome.value = call(*args, **kw)
        except BaseException as exc:  # handed to the test below
            outcome.error = exc

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        thread = threading.Thread(target=target, name="bounded-call", daemon=True)
        thread.start()
        thread.join(seconds)
    if thread.is_alive():
        raise Hung(f"{getattr(call, '__name__', call)}{args!r} still running after {seconds} s")
    outcome.warnings = [str(w.message) for w in caught]
    return outcome
