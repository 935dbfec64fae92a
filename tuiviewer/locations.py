"""Where tuiviewer keeps its files (platformdirs), created private to the user (0700)."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import PlatformDirs

APP_NAME = "tuiviewer"

_dirs = PlatformDirs(APP_NAME, appauthor=False)


def _private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if needed and make it readable by the owner only."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def config_dir() -> Path:
    """User configuration (``config.toml``, later ``nodes.toml``)."""
    return _private_dir(Path(os.environ.get("TUIVIEWER_CONFIG_DIR") or _dirs.user_config_dir))


def data_dir() -> Path:
    """User data: report drafts and the local study store."""
    return _private_dir(Path(os.environ.get("TUIVIEWER_DATA_DIR") or _dirs.user_data_dir))


def log_dir() -> Path:
    """Log files (0600, no PHI by default)."""
    return _private_dir(Path(os.environ.get("TUIVIEWER_LOG_DIR") or _dirs.user_log_dir))


def write_private(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically, readable by the owner only (0600).

    A temporary file beside it, fsync, rename over it: a crash leaves the old file or the new
    one, never half of one. Raises OSError (nothing is left behind).
    """
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
