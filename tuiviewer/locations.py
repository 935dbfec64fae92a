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
