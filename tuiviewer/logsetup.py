"""Logging to a private file, never to the terminal the UI owns, and without PHI by default."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, TextIO

from tuiviewer import locations
from tuiviewer.safetext import clean

if TYPE_CHECKING:
    from importlib.abc import Loader as _Loader
    from importlib.abc import MetaPathFinder as _Finder
    from importlib.machinery import ModuleSpec
else:
    # The import machinery needs only the methods; importlib.abc costs 40 ms to import
    # (importlib.resources behind it), more than a third of a `dump`'s budget.
    _Loader = _Finder = object


class _CleanFormatter(logging.Formatter):
    """Log lines quote AE titles, UIDs and error comments from peers: a log read with ``cat``
    or ``tail -f`` must not drive the terminal either, so the line is cleaned."""

    def format(self, record: logging.LogRecord) -> str:
        return clean(super().format(record), lines=True)


def _withhold_pydicom_values(record: logging.LogRecord) -> bool:
    """pydicom logs (and warns) with the offending value quoted, e.g. a patient's name read with
    the wrong VR: keep the message, drop the quoted values."""
    if record.name.startswith(("pydicom", "py.warnings")):
        from tuiviewer.dicom.loading import withhold_values

        record.msg = withhold_values(record.getMessage())
        record.args = ()
    return True


def _without_pending_responses(record: logging.LogRecord) -> bool:
    """pynetdicom logs one line per pending C-FIND/C-GET/C-MOVE response: for a 1,000-study
    query that is 1,000 "Find SCP Response: N - 0xFF00 (Pending)" lines, each one written and
    flushed while the answers wait, and saying nothing the final status line does not."""
    if record.name != "pynetdicom.association" or record.levelno > logging.INFO:
        return True
    message = record.msg if isinstance(record.msg, str) else ""
    return not (message.endswith("(Pending)") and " SCP Response: " in message)


def setup_logging(level: str = "INFO", *, phi: bool = False) -> Path:
    """Send tuiviewer's and pynetdicom's logs to ``tuiviewer.log`` (mode 0600) in the log dir.

    pynetdicom logs C-FIND/C-GET identifiers (patient names) at INFO level unless told not to; that
    is switched off here unless ``phi`` is true.
    """
    path = locations.log_dir() / "tuiviewer.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(_CleanFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_without_pending_responses)
    # The same filter on pynetdicom's logger drops those lines before any handler is asked
    # (4 µs a line instead of 20). Our format has no file, line, thread or process fields, so
    # the records need not look them up either (the logging HOWTO's "Optimization").
    pending = logging.getLogger("pynetdicom.association")
    if _without_pending_responses not in pending.filters:
        pending.addFilter(_without_pending_responses)
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    if not phi:
        handler.addFilter(_withhold_pydicom_values)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # pydicom warns about odd values while reading; on the terminal those warnings would be
    # written over the UI, so they go to the log like everything else.
    logging.captureWarnings(True)

    def identifiers(config: ModuleType) -> None:
        config.LOG_REQUEST_IDENTIFIERS = phi  # type: ignore[attr-defined]
        config.LOG_RESPONSE_IDENTIFIERS = phi  # type: ignore[attr-defined]

    # Importing pynetdicom costs a fifth of a second that `dump` and `render` do not need, so its
    # switches are set now if it is loaded, else the moment it is.
    when_imported("pynetdicom._config", identifiers)
    return path


class _RunAfter(_Loader):
    """A loader that runs the real one, then ``action`` on the fresh module."""

    def __init__(self, loader: _Loader, action: Callable[[ModuleType], None]):
        self._loader = loader
        self._action = action

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        self._action(module)


class _WhenImported(_Finder):
    """Finds nothing itself: wraps the loader of one module so ``action`` runs once it is loaded."""

    def __init__(self, name: str, action: Callable[[ModuleType], None]):
        self.name = name
        self.action = action

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        for finder in sys.meta_path:
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _RunAfter(spec.loader, self.action)
                return spec
        return None


def when_imported(name: str, action: Callable[[ModuleType], None]) -> None:
    """Run ``action(module)`` now if ``name`` is imported, else right after it is first imported.

    A later call for the same module replaces an earlier one that has not run yet.
    """
    module = sys.modules.get(name)
    if module is not None:
        action(module)
        return
    for finder in list(sys.meta_path):
        if isinstance(finder, _WhenImported) and finder.name == name:
            sys.meta_path.remove(finder)
    sys.meta_path.insert(0, _WhenImported(name, action))


@contextmanager
def native_stderr_to(log_path: Path) -> Iterator[None]:
    """While the UI runs, send what C libraries write to file descriptor 2 to the log.

    gdcm and openjpeg print warnings about damaged pixel data straight to fd 2, which is the
    terminal Textual draws on: one corrupt JPEG frame would scribble over the screen. Textual
    writes through ``sys.__stderr__``, so that gets its own duplicate of the terminal and fd 2
    goes to the log file for as long as the block runs.
    """
    original = sys.__stderr__
    if original is None:
        yield
        return
    original.flush()
    terminal_fd = os.dup(2)
    terminal = os.fdopen(
        terminal_fd, "w", buffering=1, encoding=original.encoding, errors=original.errors
    )
    log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    _set_stderr(terminal)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    try:
        yield
    finally:
        terminal.flush()
        os.dup2(terminal_fd, 2)
        _set_stderr(original)
        terminal.close()


def _set_stderr(stream: TextIO) -> None:
    # typeshed marks sys.__stderr__ final; Textual reads it when the app and driver are made.
    setattr(sys, "__stderr__", stream)  # noqa: B010
    sys.stderr = stream
