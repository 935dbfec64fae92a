"""Warnings recorded or silenced for one thread only.

``warnings.catch_warnings`` swaps process-wide state (the filter list and ``showwarning``). When
two threads use it at once — the browser loading one file in a worker while another worker
reads the next, or the viewer's prefetch beside the tag pane — each receives the other's
warnings, so one file's banner counted another file's problems (seen as "+272 more problems"
for a file that has 146), and a "silence warnings" context leaving in the wrong order left the
process ignoring warnings for good.

Here the process-wide part is installed once while any thread uses it (a counted hook): an
``always`` filter at the front and a ``showwarning`` that looks at the calling thread. A thread
inside :func:`recording` gets every warning it raises in its own list; a thread inside
:func:`quiet` drops its own; every other thread is treated as the filters it would have had
say (ignore, once per location, error, always), so nothing changes for it.
"""

from __future__ import annotations

import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

_QUIET = "quiet"

_local = threading.local()
_lock = threading.Lock()
_users = 0
_previous: Callable[..., Any] | None = None
_shown: set[tuple[str, type[Warning], str, int]] = set()
_FILTER: tuple[str, None, type[Warning], None, int] = ("always", None, Warning, None, 0)


def _others_action(message: Warning, category: type[Warning], filename: str, lineno: int) -> str:
    """What the filters, without ours, say for a warning of a thread that is not ours."""
    text = str(message)
    module = _module_of(filename)
    for entry in list(warnings.filters):
        if entry is _FILTER:
            continue
        action, pattern, kind, mod, line = entry
        if (
            (pattern is None or pattern.match(text) is not None)
            and issubclass(category, kind)
            and (mod is None or mod.match(module) is not None)
            and (line == 0 or line == lineno)
        ):
            return str(action)
    return str(getattr(warnings, "defaultaction", "default"))


_modules: dict[str, str] = {}


def _module_of(filename: str) -> str:
    """The module name a filter is matched against (``warnings.warn`` uses the caller's
    ``__name__``; ``showwarning`` only gets the file, so look the module up by its file)."""
    name = _modules.get(filename)
    if name is None:
        name = next(
            (
                module_name
                for module_name, module in list(sys.modules.items())
                if getattr(module, "__file__", None) == filename
            ),
            filename[:-3] if filename.endswith(".py") else filename,
        )
        _modules[filename] = name
    return name


def _show(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    mode = getattr(_local, "mode", None)
    if isinstance(mode, list):
        mode.append(warnings.WarningMessage(message, category, filename, lineno, file, line))
        return
    if mode == _QUIET:
        return
    warning = message if isinstance(message, Warning) else category(message)
    action = _others_action(warning, category, filename, lineno)
    if action == "ignore":
        return
    if action == "error":
        raise warning
    if action in ("default", "module", "once"):
        key = (
            str(warning),
            category,
            "" if action == "once" else filename,
            lineno if action == "default" else 0,
        )
        with _lock:
            if key in _shown:
                return
            _shown.add(key)
    forward = _previous if _previous is not None else warnings._showwarning_orig  # type: ignore[attr-defined]
    forward(message, category, filename, lineno, file, line)


def _filters() -> list[Any]:
    """The live filter list (typeshed calls it a Sequence; it is the module's list)."""
    filters: list[Any] = warnings.filters  # type: ignore[assignment]
    return filters


def _acquire() -> None:
    global _users, _previous
    with _lock:
        if warnings.showwarning is not _show:  # first user, or a test harness put its own back
            _previous = warnings.showwarning
            warnings.showwarning = _show
        if not any(entry is _FILTER for entry in warnings.filters):
            _filters().insert(0, _FILTER)
            warnings._filters_mutated()  # type: ignore[attr-defined]
        _users += 1


def _release() -> None:
    global _users, _previous
    with _lock:
        _users -= 1
        if _users > 0:
            return
        _filters()[:] = [entry for entry in warnings.filters if entry is not _FILTER]
        warnings._filters_mutated()  # type: ignore[attr-defined]
        if warnings.showwarning is _show and _previous is not None:
            warnings.showwarning = _previous
        _previous = None


@contextmanager
def _mode(mode: list[warnings.WarningMessage] | str) -> Iterator[None]:
    outer = getattr(_local, "mode", None)
    _acquire()
    _local.mode = mode
    try:
        yield
    finally:
        _local.mode = outer
        _release()


@contextmanager
def recording() -> Iterator[list[warnings.WarningMessage]]:
    """Every warning this thread raises inside the block, in order; other threads' are not."""
    caught: list[warnings.WarningMessage] = []
    with _mode(caught):
        yield caught


@contextmanager
def quiet() -> Iterator[None]:
    """Drop the warnings this thread raises inside the block (e.g. while the UI owns the
    terminal and the problems were already reported); other threads' are untouched."""
    with _mode(_QUIET):
        yield
