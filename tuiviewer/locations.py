"""Where tuiviewer keeps its files (platformdirs), created private to the user (0700)."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import PlatformDirs

APP_NAME = "tuiviewer"

_dirs = PlatformDirs(APP_NAME, appauthor=False)


DIR_MODE = 0o700


def private_dirs(path: Path) -> Path:
    """Create ``path`` and any missing parents 0700, then force ``path`` itself to 0700.

    ``mkdir(mode=...)`` is filtered by the umask, hence the explicit ``chmod``; parents that
    already existed are not ours to change.
    """
    missing: list[Path] = []
    probe = path
    while not probe.exists() and not probe.is_symlink():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)
        except FileExistsError:
            pass  # another process made it between our check and now
        os.chmod(directory, DIR_MODE)
    os.chmod(path, DIR_MODE)
    return path


def _private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) 0700 if needed and make it readable by the owner only.

    The folder named after the app above it (``~/.local/state/tuiviewer`` above its ``log``)
    is ours as well, and made 0700 even if an earlier version created it open.
    """
    private_dirs(path)
    for parent in path.parents:
        if parent.name == APP_NAME and parent.is_dir() and not parent.is_symlink():
            if parent.stat().st_uid == os.getuid():
                os.chmod(parent, DIR_MODE)
            break
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


def cache_dir() -> Path:
    """Files that can be made again (pydicom's dictionaries as a quick-loading table)."""
    return _private_dir(Path(os.environ.get("TUIVIEWER_CACHE_DIR") or _dirs.user_cache_dir))
