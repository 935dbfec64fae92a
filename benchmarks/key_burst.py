"""What does keeping a burst's keys in order cost? Typing throughput with and without KeyOrder.

Opens the report editor (headless, 120×40) on pydicom's CT_small and sends ``--keys``
characters, then ``--tabs`` groups of "abc" Tab, each time as one burst (every key queued
before the first is handled, as over SSH), and prints the time until the last was handled,
with tuiviewer's KeyOrder and with Textual's own dispatch (which loses the Tab order), and the
ratio. Whether the text landed where it should is printed beside each.

    .venv/bin/python benchmarks/key_burst.py --keys 500 --tabs 5
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from textual import events  # noqa: E402
from textual.widgets import TextArea  # noqa: E402

from tests.conftest import testdata  # noqa: E402
from tests.functional.helpers import burst  # noqa: E402
from tuiviewer.app import make_app  # noqa: E402
from tuiviewer.config.settings import Config  # noqa: E402
from tuiviewer.screens.report import ReportScreen  # noqa: E402
from tuiviewer.store import LocalStore  # noqa: E402


async def run(ordered: bool, keys: int, tabs: int) -> tuple[float, float, bool]:
    base = Path(tempfile.mkdtemp(prefix="key-burst-"))
    try:
        for name in ("CONFIG", "DATA", "LOG"):
            os.environ[f"TUIVIEWER_{name}_DIR"] = str(base / name.lower())
        folder = base / "study"
        folder.mkdir()
        shutil.copy(testdata("CT_small.dcm"), folder / "CT_small.dcm")
        app = make_app(Config(), [folder], store=LocalStore(base / "store"))
        if not ordered:

            async def passthrough(event: events.Event) -> bool:
                return False

            app.key_order.take = passthrough  # type: ignore[method-assign]
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(1)
            await pilot.press("W")
            for _ in range(500):
                await pilot.pause(0.02)
                if isinstance(app.screen, ReportScreen) and app.screen.report is not None:
                    break
            text = ("abcdefghij" * (keys // 10 + 1))[:keys]
            start = time.perf_counter()
            await burst(pilot, *text)
            typing = time.perf_counter() - start
            start = time.perf_counter()
            await burst(pilot, *[key for _ in range(tabs) for key in ("tab", *"abc")])
            tabbing = time.perf_counter() - start
            areas = list(app.screen.query("#sections TextArea").results(TextArea))
            right = areas[0].text.startswith(text) and all(
                area.text.startswith("abc") and "abcabc" not in area.text
                for area in areas[1 : tabs + 1]
            )
        return typing, tabbing, right
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=500)
    parser.add_argument("--tabs", type=int, default=5)
    args = parser.parse_args(argv)
    results = {}
    for ordered in (True, False):
        results[ordered] = asyncio.run(run(ordered, args.keys, args.tabs))
        typing, tabbing, right = results[ordered]
        name = "KeyOrder" if ordered else "Textual "
        print(
            f"{name}: {args.keys} chars {typing * 1000:7.0f} ms, {args.tabs}× 'Tab abc' "
            f"{tabbing * 1000:5.0f} ms, text where it belongs: {'yes' if right else 'NO'}"
        )
    ratio = results[True][0] / results[False][0]
    print(f"typing throughput cost of keeping the order: ×{ratio:.2f} (1.00 = none)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
