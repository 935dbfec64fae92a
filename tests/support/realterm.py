"""Real terminal emulators under Xvfb, driven with xdotool and photographed with ImageMagick.

What a reader sees is what a terminal draws from our bytes, not what our pipeline computed, so
these helpers run the workstation inside xterm (VT340 Sixel), mlterm (Sixel) and kitty (its
graphics protocol) on a private X server, send real key events, and take screenshots of the
screen. One :class:`Display` serves a test session; each test starts its own :class:`Terminal`.

Every terminal runs its command under ``script`` (util-linux), which copies what the program
writes to a typescript file: tests wait for a text to appear there (the program has written
it), then for the screen to stop changing (the terminal has drawn it), then look at pixels.
``script`` keeps the window size, pixel size included, and forwards SIGWINCH, so the program
sees the terminal as it is.
"""

from __future__ import annotations

import io
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from tests.support.processes import stop_process

TOOLS = {
    "Xvfb": "xvfb",
    "xdotool": "xdotool",
    "import": "imagemagick",
    "script": "util-linux",
}
"""Programs the harness needs, with the Debian package that has each."""

TERMINALS = {"xterm": "xterm", "mlterm": "mlterm", "kitty": "kitty"}
"""Terminal programs and their Debian packages."""

FONT = "DejaVu Sans Mono"
"""An Xft font with fixed metrics (fonts-dejavu-core), so cell sizes are known."""

_ANSI = re.compile(
    r"\x1b(?:\[[0-9;?<>=:]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[PX^_].*?\x1b\\)"
)


def missing_tools(names: Sequence[str] = ()) -> list[str]:
    """Debian packages to install for the harness (and the named terminals) to work."""
    wanted = {**TOOLS, **{name: TERMINALS[name] for name in names}}
    return sorted({package for tool, package in wanted.items() if shutil.which(tool) is None})


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children first), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Display:
    """A private Xvfb server (its display number chosen by Xvfb itself)."""

    def __init__(self, width: int = 1600, height: int = 1000) -> None:
        self.width, self.height = width, height
        self.name = ""
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10) -> None:
        read, write = os.pipe()
        self._process = subprocess.Popen(
            [
                "Xvfb",
                "-displayfd",
                str(write),
                "-screen",
                "0",
                f"{self.width}x{self.height}x24",
                "-nolisten",
                "tcp",
                "-noreset",
            ],
            pass_fds=(write,),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(write)
        deadline = time.monotonic() + timeout
        number = b""
        while time.monotonic() < deadline and not number.endswith(b"\n"):
            chunk = os.read(read, 16)
            if not chunk:
                break
            number += chunk
        os.close(read)
        if not number.strip().isdigit():
            self.stop()
            raise RuntimeError(f"Xvfb did not report a display number (got {number!r}).")
        self.name = f":{number.decode().strip()}"

    @property
    def env(self) -> dict[str, str]:
        return {"DISPLAY": self.name}

    def run(self, *args: str, timeout: float = 20) -> str:
        """Run an X client (xdotool, import) on this display; its stdout."""
        env = {**os.environ, **self.env}
        result = subprocess.run(
            list(args), capture_output=True, env=env, timeout=timeout, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{shlex.join(args)} failed ({result.returncode}): "
                f"{result.stderr.decode(errors='replace').strip()}"
            )
        return result.stdout.decode(errors="replace")

    def screenshot(self) -> np.ndarray:
        """The whole screen as uint8 RGB ``(H, W, 3)``."""
        env = {**os.environ, **self.env}
        data = subprocess.run(
            ["import", "-window", "root", "png:-"],
            capture_output=True,
            env=env,
            timeout=20,
            check=True,
        ).stdout
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))

    def stop(self) -> None:
        process, self._process = self._process, None
        stop_process(process)


@dataclass(frozen=True)
class Geometry:
    """Where a window is on the screen, in pixels."""

    x: int
    y: int
    width: int
    height: int


def terminal_argv(
    kind: str, title: str, cols: int, rows: int, font_size: float, command: list[str]
) -> tuple[list[str], dict[str, str]]:
    """The command line (and extra environment) that starts terminal ``kind``.

    xterm is a VT340 with 256 colour registers (its default is 16), so Sixel images get a full
    palette; no window manager runs, so every window opens at the top-left corner.
    """
    geometry = f"{cols}x{rows}+0+0"
    if kind == "xterm":
        argv = [
            "xterm",
            "-ti",
            "vt340",
            "-xrm",
            "XTerm*numColorRegisters: 256",
            "-xrm",
            "XTerm*sixelScrolling: true",
            "-xrm",
            "XTerm*bellIsUrgent: false",
            "-bg",
            "black",
            "-fg",
            "white",
            "-fa",
            FONT,
            "-fs",
            f"{font_size:g}",
            "-T",
            title,
            "-geometry",
            geometry,
            "-e",
            *command,
        ]
        return argv, {}
    if kind == "mlterm":
        argv = [
            "mlterm",
            "--sb=false",
            "-b",
            "black",
            "-f",
            "white",
            "-w",
            f"{font_size:g}",
            "--title",
            title,
            "-g",
            geometry,
            "-e",
            *command,
        ]
        return argv, {}
    if kind == "kitty":
        argv = [
            "kitty",
            "--title",
            title,
            "-o",
            f"font_family={FONT}",
            "-o",
            f"font_size={font_size:g}",
            "-o",
            "remember_window_size=no",
            "-o",
            f"initial_window_width={cols}c",
            "-o",
            f"initial_window_height={rows}c",
            "-o",
            "window_padding_width=0",
            "-o",
            "placement_strategy=top-left",
            "-o",
            "background=#000000",
            "-o",
            "foreground=#ffffff",
            "-o",
            "cursor_blink_interval=0",
            # No display to sync to under Xvfb: render every frame as soon as it is ready.
            "-o",
            "sync_to_monitor=no",
            "-o",
            "enable_audio_bell=no",
            "-o",
            "update_check_interval=0",
            "-o",
            "confirm_os_window_close=0",
            *command,
        ]
        # No GPU under Xvfb: Mesa's software renderer.
        return argv, {"LIBGL_ALWAYS_SOFTWARE": "1"}
    raise ValueError(f"Unknown terminal {kind!r}: use one of {sorted(TERMINALS)}.")


class Terminal:
    """One terminal window on ``display`` running ``command`` (recorded by ``script``)."""

    def __init__(
        self,
        display: Display,
        kind: str,
        command: Sequence[str],
        workdir: Path,
        *,
        cols: int = 120,
        rows: int = 40,
        font_size: float = 12,
        env: dict[str, str] | None = None,
    ) -> None:
        self.display = display
        self.kind = kind
        self.command = list(command)
        self.workdir = workdir
        self.cols, self.rows = cols, rows
        self.font_size = font_size
        self.env = dict(env or {})
        self.title = f"tuiviewer-{kind}-{uuid.uuid4().hex[:8]}"
        self.typescript = workdir / f"{self.title}.typescript"
        self.log = workdir / f"{self.title}.log"
        self.window = ""
        self._process: subprocess.Popen[bytes] | None = None

    # ---- life ---------------------------------------------------------------------------------
    def start(self, timeout: float = 30) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        inner = shlex.join(self.command)
        # -f: flush after every write, -e: the command's exit status, -q: no banner.
        wrapped = ["script", "-qfec", inner, str(self.typescript)]
        argv, extra = terminal_argv(
            self.kind, self.title, self.cols, self.rows, self.font_size, wrapped
        )
        env = {**os.environ, **self.env, **extra, **self.display.env}
        log = open(self.log, "wb")  # noqa: SIM115 - owned by the process
        self._process = subprocess.Popen(
            argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        try:
            self._find_window(timeout)
        except BaseException:
            self.close()  # a terminal that did not come up must not outlive the test
            raise

    def _find_window(self, timeout: float) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"{self.kind} exited at start: {self.log_tail()}")
            try:
                found = self.display.run(
                    "xdotool", "search", "--onlyvisible", "--name", f"^{self.title}$"
                )
            except RuntimeError:
                found = ""
            if found.split():
                self.window = found.split()[0]
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"{self.kind} opened no window within {timeout} s.")
        # Keys go to the window under focus (XTEST events; xterm ignores synthetic ones).
        while True:
            try:
                self.display.run("xdotool", "windowfocus", "--sync", self.window)
                break
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def close(self) -> None:
        """End the terminal and everything below it. ``script`` starts the program in a session
        of its own, so a signal to the terminal's group would leave both running."""
        process, self._process = self._process, None
        if process is None:
            return
        below = descendants(process.pid)
        for pid in [*reversed(below), process.pid]:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(_alive(pid) for pid in [*below, process.pid]):
            time.sleep(0.05)
        for pid in [*below, process.pid]:
            _signal(pid, signal.SIGKILL)
        process.wait(timeout=5)

    def log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return "(no log)"

    # ---- what the program wrote ----------------------------------------------------------------
    def output(self) -> str:
        """Everything the program wrote so far, as text."""
        try:
            return self.typescript.read_bytes().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def text(self) -> str:
        """What the program wrote, with escape sequences (and graphics) removed."""
        return _ANSI.sub("", self.output())

    def wait_for_text(self, pattern: str, timeout: float = 30, since: int = 0) -> int:
        """Wait until regex ``pattern`` appears in the written text after offset ``since``
        (of :meth:`text`); returns the offset where the match ends."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = regex.search(self.text(), since)
            if found:
                return found.end()
            if self._process is not None and self._process.poll() is not None:
                break
            time.sleep(0.1)
        tail = self.text()[-1500:]
        raise AssertionError(f"{pattern!r} was never written; the last output was:\n{tail}")

    def mark(self) -> int:
        """An offset into :meth:`text`: text written after it is new."""
        return len(self.text())

    # ---- input ----------------------------------------------------------------------------------
    def keys(self, *names: str) -> None:
        """Press X keys (``Down``, ``t``, ``question``, ``Escape``...) in one burst."""
        self.display.run("xdotool", "key", "--delay", "15", *names)

    def type(self, text: str) -> None:
        self.display.run("xdotool", "type", "--delay", "15", text)

    def resize(self, width: int, height: int) -> None:
        """Resize the window to ``width`` × ``height`` pixels (the program gets SIGWINCH)."""
        self.display.run("xdotool", "windowsize", "--sync", self.window, str(width), str(height))

    # ---- pixels -------------------------------------------------------------------------------
    def geometry(self) -> Geometry:
        text = self.display.run("xdotool", "getwindowgeometry", "--shell", self.window)
        values = dict(line.split("=", 1) for line in text.split() if "=" in line)
        return Geometry(
            int(values["X"]), int(values["Y"]), int(values["WIDTH"]), int(values["HEIGHT"])
        )

    def screenshot(self) -> np.ndarray:
        """This window's pixels (uint8 RGB)."""
        where = self.geometry()
        screen = self.display.screenshot()
        return screen[where.y : where.y + where.height, where.x : where.x + where.width]

    def settled(self, quiet: float = 0.4, timeout: float = 20) -> np.ndarray:
        """A screenshot once two taken ``quiet`` seconds apart are the same."""
        deadline = time.monotonic() + timeout
        before = self.screenshot()
        while time.monotonic() < deadline:
            time.sleep(quiet)
            after = self.screenshot()
            if after.shape == before.shape and np.array_equal(after, before):
                return after
            before = after
        raise AssertionError(f"The {self.kind} window kept changing for {timeout} s.")

    def save(self, image: np.ndarray, name: str) -> Path:
        path = self.workdir / f"{self.kind}-{name}.png"
        Image.fromarray(image).save(path)
        return path
