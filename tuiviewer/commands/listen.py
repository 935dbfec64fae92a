"""``tuiviewer listen``: receive the studies senders push (C-STORE) into the local store.

One line per study received goes to stdout (time, Study Instance UID, series and instance
counts, the sender's AE title and address; never patient data), for a terminal or for the
journal of a systemd service (``--service``: log lines to stderr as well, stop cleanly on
SIGTERM). Exit codes: 0 stopped cleanly, 1 could not start, 2 usage error (bad AE title or
port, nobody allowed to send).
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import TextIO

from tuiviewer.commands.common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from tuiviewer.config.listen import ListenConfig, listen_config
from tuiviewer.exceptions import ConfigError, TuiviewerError
from tuiviewer.net.listen import Listener, Received


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """The parsed ``tuiviewer listen`` command line."""
    return run_listen(
        ae_title=args.aet,
        port=args.port,
        allow=args.allow,
        service=args.service,
        config_path=args.config,
        stdout=stdout,
        stderr=stderr,
    )


def run_listen(
    *,
    ae_title: str | None,
    port: int | None,
    allow: str | None,
    service: bool,
    config_path: Path | None,
    stdout: TextIO,
    stderr: TextIO,
    stop: threading.Event | None = None,
    ready: threading.Event | None = None,
) -> int:
    """Run the listener until SIGINT/SIGTERM (or ``stop``, for tests) and return the exit code.

    ``ready`` is set once the port is bound.
    """
    from tuiviewer.config.settings import load_config
    from tuiviewer.store import LocalStore

    try:
        config = load_config(config_path)
        base = config.listen or ListenConfig()
        settings = listen_config(base, ae_title=ae_title, port=port, allow=allow)
    except ConfigError as exc:
        print(f"tuiviewer listen: {exc.message}", file=stderr)
        return EXIT_USAGE
    except ValueError as exc:
        print(f"tuiviewer listen: {exc}", file=stderr)
        return EXIT_USAGE
    if service:
        _log_to(stderr)
    lock = threading.Lock()

    def on_study(record: Received) -> None:
        with lock:
            print(record.line(), file=stdout, flush=True)

    def on_rejected(text: str) -> None:
        with lock:
            print(f"tuiviewer listen: {text}", file=stderr, flush=True)

    try:
        store = LocalStore()
        listener = Listener(settings, store, on_study=on_study, on_rejected=on_rejected)
        listener.start()
    except ConfigError as exc:
        print(f"tuiviewer listen: {exc.message}", file=stderr)
        return EXIT_USAGE
    except TuiviewerError as exc:
        print(f"tuiviewer listen: {exc.message}", file=stderr)
        return EXIT_FAILURE
    who = ", ".join(settings.allow) or "any AE title"
    hosts = f" from {', '.join(settings.allow_hosts)}" if settings.allow_hosts else ""
    security = "DICOM TLS" if settings.tls is not None else "plain TCP"
    print(
        f"tuiviewer listen: listening as {listener.where} ({security}) for {who}{hosts}; "
        f"storing into {str(store.root)!r}. Ctrl-C stops.",
        file=stderr,
        flush=True,
    )
    stop = stop if stop is not None else threading.Event()
    previous = _on_signals(stop)
    if ready is not None:
        ready.set()
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        listener.stop()
        _restore(previous)
    print(
        f"tuiviewer listen: stopped after {listener.instances} instances "
        f"({listener.rejected} associations rejected).",
        file=stderr,
        flush=True,
    )
    return EXIT_OK


def _log_to(stream: TextIO) -> None:
    """Under systemd, log lines (no PHI: the log filter of logsetup applies) go to the journal."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger("tuiviewer")
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)


def _on_signals(stop: threading.Event) -> dict[int, object]:
    if threading.current_thread() is not threading.main_thread():
        return {}

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous: dict[int, object] = {}
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        previous[signum] = signal.signal(signum, handler)
    return previous


def _restore(previous: dict[int, object]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)  # type: ignore[arg-type]
