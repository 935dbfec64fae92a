"""The doctor's examination: the environment a support request needs, gathered without PHI.

When images look wrong over SSH or a PACS does not answer, the first questions are always the
same: which versions, which terminal, why this graphics mode, where are the files and are they
private, which nodes answer. This module gathers those facts without touching the terminal
(no escape-sequence probes: over SSH a late answer would become keystrokes of the next
command), without creating or "fixing" any path (a doctor that chmods hides the problem), and
without reading a single DICOM file or draft, so nothing it prints can name a patient.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import importlib.metadata
import os
import platform
import stat
import struct
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from platformdirs import PlatformDirs

from tuiviewer import __version__
from tuiviewer.exceptions import ConfigError, TuiviewerError
from tuiviewer.graphics.probe import (
    QUERY_NAMES,
    GraphicsMode,
    decide_graphics,
    may_probe,
    plan_colors,
    tmux_state,
)

__all__ = ["DoctorReport", "Finding", "check_paths", "examine"]

#: Distributions whose versions matter for support (decoders included: they decide which
#: transfer syntaxes display).
_DISTRIBUTIONS = (
    "textual",
    "rich",
    "pydicom",
    "pynetdicom",
    "numpy",
    "pillow",
    "pylibjpeg",
    "pylibjpeg-libjpeg",
    "pylibjpeg-openjpeg",
    "pylibjpeg-rle",
    "python-gdcm",
    "pyjpegls",
    "platformdirs",
)
#: Seconds for each step of a node's C-ECHO: a doctor must answer quickly even when a PACS
#: is down.
ECHO_TIMEOUT_S = 3.0
#: Files checked per folder tree; the local store can hold hundreds of thousands.
_MAX_FILES = 20_000
_JPEG_EXTENDED = "1.2.840.10008.1.2.4.51"
_PRIVATE_DIR = 0o700
_PRIVATE_FILE = 0o600


@dataclass(frozen=True)
class Finding:
    """Something wrong, said so that the user can fix it."""

    what: str
    """A full sentence quoting the path or value."""
    fix: str = ""
    """The command or setting that fixes it, when there is one."""


class DoctorReport:
    """The report's lines grouped by section, and the findings."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.findings: list[Finding] = []

    def section(self, title: str) -> None:
        self.lines += ["", title]

    def item(self, label: str, value: str) -> None:
        self.lines.append(f"  {label:<22} {value}" if label else f"  {value}")

    def problem(self, finding: Finding, label: str, value: str) -> None:
        self.findings.append(finding)
        self.item(label, f"{value}  <-- PROBLEM")


# -- versions and codecs ------------------------------------------------------------------------


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _codecs() -> Iterator[tuple[str, str]]:
    """(transfer syntax, what decodes it) for every syntax pydicom knows a decoder for."""
    from pydicom.pixels import get_decoder
    from pydicom.pixels.decoders.base import _PIXEL_DATA_DECODERS
    from pydicom.uid import UID

    for uid in _PIXEL_DATA_DECODERS:
        name = UID(uid).name
        try:
            decoder = get_decoder(uid)
        except NotImplementedError:
            yield name, "no decoder"
            continue
        if not decoder.is_encapsulated:
            yield name, "native (numpy)"
        elif decoder.is_available:
            plugins = ", ".join(decoder.available_plugins)
            if uid == _JPEG_EXTENDED and "pylibjpeg" not in decoder.available_plugins:
                # gdcm's wheel and Pillow decode 8-bit JPEG only (tuiviewer.render.decode).
                plugins += " (12-bit samples need pylibjpeg-libjpeg)"
            yield name, plugins
        else:
            yield name, "MISSING: " + "; ".join(decoder.missing_dependencies)


# -- terminal -----------------------------------------------------------------------------------


def _isatty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _window(stream: TextIO) -> tuple[int, int, int, int] | None:
    """(rows, columns, pixel width, pixel height) from TIOCGWINSZ; no escape sequence sent."""
    try:
        import fcntl
        import termios

        raw = fcntl.ioctl(stream.fileno(), termios.TIOCGWINSZ, b"\0" * 8)
    except (ImportError, OSError, ValueError, AttributeError):  # io.UnsupportedOperation too
        return None
    rows, cols, xpixel, ypixel = struct.unpack("HHHH", raw)
    return rows, cols, xpixel, ypixel


def _terminal(report: DoctorReport, env: Mapping[str, str], stdout: TextIO) -> None:
    report.section("Terminal")
    for name in ("TERM", "COLORTERM", "TERM_PROGRAM", "TEXTUAL_COLOR_SYSTEM"):
        report.item(name, env.get(name) or "(not set)")
    # Their values hold socket paths and IP addresses: only whether they are set matters.
    for name in ("TMUX", "SSH_TTY", "SSH_CONNECTION"):
        report.item(name, "set" if env.get(name) else "not set")
    tty = _isatty(stdout)
    report.item("stdout is a terminal", "yes" if tty else "no")
    window = _window(stdout) if tty else None
    if window is not None:
        rows, cols, xpixel, ypixel = window
        report.item("size", f"{cols}×{rows} cells")
        if xpixel and ypixel and rows and cols:
            report.item("cell size", f"{xpixel // cols}×{ypixel // rows} px (TIOCGWINSZ)")
        else:
            report.item("cell size", "unknown: the terminal reports no pixel size")
    else:
        report.item("cell size", "unknown: not a terminal")

    report.section("Graphics")
    colors = plan_colors(env)
    report.item("colours", f"{colors.system}: {colors.reason}")
    if may_probe(GraphicsMode.AUTO, is_tty=tty):
        ssh = " (over SSH too)" if env.get("SSH_TTY") or env.get("SSH_CONNECTION") else ""
        asked = ", ".join(dict.fromkeys(QUERY_NAMES.values()))
        report.item(
            "mode",
            f"decided when the viewer starts by asking the terminal{ssh}: {asked}; "
            "the doctor does not probe",
        )
    else:
        decision = decide_graphics(GraphicsMode.AUTO, env, is_tty=tty, color=colors)
        report.item("mode", f"{decision.mode.value}: {decision.reason}")
    if env.get("TMUX"):
        state = tmux_state(env)
        if state is None or state.passthrough is None:
            report.item("tmux", "could not ask tmux whether allow-passthrough is on")
        elif state.passthrough:
            report.item("tmux", f"tmux {state.version}: allow-passthrough is on")
        else:
            report.item(
                "tmux",
                f"tmux {state.version}: allow-passthrough is off; add "
                "'set -g allow-passthrough on' to ~/.tmux.conf for Kitty, iTerm2 or Sixel",
            )


# -- paths --------------------------------------------------------------------------------------


def _paths(env: Mapping[str, str]) -> list[tuple[str, Path]]:
    """The same locations as :mod:`tuiviewer.locations` and the store, computed without
    creating or chmod-ing anything (those functions make the folders 0700 as a side effect)."""
    dirs = PlatformDirs("tuiviewer", appauthor=False)
    config = Path(env.get("TUIVIEWER_CONFIG_DIR") or dirs.user_config_dir)
    data = Path(env.get("TUIVIEWER_DATA_DIR") or dirs.user_data_dir)
    log = Path(env.get("TUIVIEWER_LOG_DIR") or dirs.user_log_dir)
    cache = Path(env.get("TUIVIEWER_CACHE_DIR") or dirs.user_cache_dir)
    return [("config", config), ("data", data), ("cache", cache), ("log", log)]


def check_paths(folders: list[tuple[str, Path]]) -> tuple[list[str], list[Finding]]:
    """Describe each folder and flag what others could read or that is not ours.

    Folders must be 0700 and files 0600 (drafts and logs hold report text and UIDs; the store
    holds images). A missing folder is fine: it is created, private, when first needed.

    Returns:
        One line per folder (label, path, mode or "missing") and the findings.
    """
    lines: list[str] = []
    findings: list[Finding] = []
    uid = os.getuid() if hasattr(os, "getuid") else None
    for label, folder in folders:
        try:
            st = folder.stat()
        except FileNotFoundError:
            lines.append(f"{label:<8} {folder}  (missing; created 0700 when needed)")
            continue
        except OSError as exc:
            lines.append(f"{label:<8} {folder}  (cannot stat: {exc.strerror})")
            findings.append(Finding(f"The {label} folder {str(folder)!r} cannot be read."))
            continue
        mode = stat.S_IMODE(st.st_mode)
        lines.append(f"{label:<8} {folder}  ({mode:04o})")
        if uid is not None and st.st_uid != uid:
            findings.append(Finding(f"The {label} folder {str(folder)!r} belongs to another user."))
        if mode & 0o077:
            findings.append(
                Finding(
                    f"The {label} folder {str(folder)!r} has mode {mode:04o}; it should be "
                    f"{_PRIVATE_DIR:04o}.",
                    f"chmod 700 {str(folder)!r}",
                )
            )
        findings += _open_files(label, folder)
    return lines, findings


def _open_files(label: str, folder: Path) -> list[Finding]:
    """Files and folders under ``folder`` that group or others can read."""
    found: list[Path] = []
    seen = 0
    for root, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            seen += 1
            path = Path(root) / name
            try:
                st = path.lstat()
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode):
                continue
            if stat.S_IMODE(st.st_mode) & 0o077:
                found.append(path)
        if seen >= _MAX_FILES:
            break
    if not found:
        return []
    modes = {p: stat.S_IMODE(p.lstat().st_mode) for p in found}
    first = found[0]
    more = f" and {len(found) - 1} more" if len(found) > 1 else ""
    return [
        Finding(
            f"In the {label} folder, {str(first)!r} has mode {modes[first]:04o}{more}; files "
            f"should be {_PRIVATE_FILE:04o} and folders {_PRIVATE_DIR:04o}.",
            f"chmod -R go-rwx {str(folder)!r}",
        )
    ]


# -- nodes --------------------------------------------------------------------------------------


def _echo_all(nodes: Mapping[str, object], timeout: float) -> dict[str, str]:
    """C-ECHO every node at once with short timeouts; the outcome text per node name."""
    from tuiviewer.config.nodes import Node
    from tuiviewer.net.transport import echo

    def one(node: Node) -> str:
        quick = dataclasses.replace(
            node,
            connect_timeout=timeout,
            acse_timeout=timeout,
            dimse_timeout=timeout,
            network_timeout=timeout,
        )
        try:
            result = echo(quick)
        except TuiviewerError as exc:
            return f"FAILED: {exc.message}"
        except Exception as exc:  # noqa: BLE001 - the doctor reports, it does not crash
            return f"FAILED: unexpected {type(exc).__name__}"
        return f"ok ({result.rtt_ms:.1f} ms)"

    typed = {name: node for name, node in nodes.items() if isinstance(node, Node)}
    if not typed:
        return {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(8, len(typed))) as pool:
        futures = {name: pool.submit(one, node) for name, node in typed.items()}
        return {name: future.result() for name, future in futures.items()}


def _nodes(report: DoctorReport, config_dir: Path, check: bool, timeout: float) -> None:
    from tuiviewer.config.nodes import NODES_FILE, load_nodes

    report.section("Nodes")
    path = config_dir / NODES_FILE
    if not path.exists():
        report.item(NODES_FILE, f"{path} (missing: no PACS configured)")
        return
    try:
        nodes = load_nodes(path)
    except ConfigError as exc:
        report.problem(Finding(exc.message, f"edit {str(path)!r}"), NODES_FILE, "invalid")
        return
    report.item(NODES_FILE, f"{path} ({len(nodes)} node{'s' if len(nodes) != 1 else ''})")
    outcomes = _echo_all(nodes, timeout) if check else {}
    for name, node in nodes.items():
        tls = ", TLS" if node.tls is not None else ""
        where = f"{node.address} (calling {node.calling_aet}, {node.retrieve}{tls})"
        outcome = outcomes.get(name)
        if outcome is None:
            report.item(name, f"{where}; not checked")
        elif outcome.startswith("ok"):
            report.item(name, f"{where}; C-ECHO {outcome}")
        else:
            report.problem(
                Finding(f"Node {name!r} ({node.address}) does not answer C-ECHO: {outcome[8:]}"),
                name,
                f"{where}; C-ECHO {outcome}",
            )


# -- the examination ----------------------------------------------------------------------------


def examine(
    *,
    terminal: TextIO,
    check_nodes: bool = True,
    env: Mapping[str, str] | None = None,
    echo_timeout: float = ECHO_TIMEOUT_S,
) -> DoctorReport:
    """Gather the environment report: versions, decoders, terminal, paths, configuration, nodes.

    Parameters:
        terminal: the stream whose terminal is described (window size, no escape sequence).
        check_nodes: C-ECHO every node of ``nodes.toml`` (in parallel, ``echo_timeout`` s each).
        env: the environment to describe (default ``os.environ``); for tests.

    Nothing here reads DICOM files, drafts or logs, probes the terminal, or creates a path.
    """
    env = os.environ if env is None else env
    report = DoctorReport()
    report.lines.append(f"tuiviewer {__version__} doctor")

    report.section("Versions")
    report.item("python", f"{platform.python_version()} ({sys.executable})")
    report.item("platform", platform.platform(terse=True))
    report.item("tuiviewer", __version__)
    for name in _DISTRIBUTIONS:
        report.item(name, _version(name))

    report.section("Pixel data decoders (transfer syntax: plugins)")
    for name, how in _codecs():
        report.item("", f"{name}: {how}")

    _terminal(report, env, terminal)

    report.section("Paths (folders 0700, files 0600)")
    folders = _paths(env)
    lines, findings = check_paths(folders)
    for line in lines:
        report.item("", line)
    report.findings += findings

    report.section("Configuration")
    config_dir = dict(folders)["config"]
    config_file = config_dir / "config.toml"
    try:
        from tuiviewer.config.settings import load_config

        config = load_config(config_file)
        where = str(config_file) if config.source else f"{config_file} (missing: defaults)"
        report.item("config.toml", where)
        report.item("log level", config.logging.level)
        report.item("PHI in logs", "ON (logging.phi = true)" if config.logging.phi else "off")
    except ConfigError as exc:
        report.problem(Finding(exc.message, f"edit {str(config_file)!r}"), "config.toml", "invalid")

    _nodes(report, config_dir, check_nodes, echo_timeout)

    report.section("Result")
    if report.findings:
        report.item("", f"{len(report.findings)} problem(s):")
        for finding in report.findings:
            report.item("", f"- {finding.what}" + (f" Fix: {finding.fix}" if finding.fix else ""))
    else:
        report.item("", "all well")
    return report
