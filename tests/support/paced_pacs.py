"""A PACS that sends slowly: :class:`~tuiviewer.net.minipacs.MiniPacs` pacing its C-STOREs.

Either at a byte rate (a link of so many MB/s: each instance waits its size over the rate) or
one instance per release of a gate (a test lets the slices through one by one and looks at
what the viewer shows in between). ``find_pace`` spaces its image-level C-FIND answers (a PACS
slow to list a big study). Everything else is the mini PACS: study, series and image
C-FIND with the counts a worklist needs, C-GET and C-MOVE.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

from tuiviewer.config.nodes import Node
from tuiviewer.net.minipacs import MiniPacs


class PacedPacs(MiniPacs):
    """A mini PACS whose C-STORE sub-operations come at ``rate`` bytes/s or through ``gate``."""

    def __init__(
        self,
        store: Path,
        *,
        rate: float | None = None,
        gate: threading.Semaphore | None = None,
        ae_title: str = "PACED",
        overrides: Mapping[str, Mapping[str, str]] | None = None,
        destinations: Mapping[str, tuple[str, int]] | None = None,
        find_pace: float = 0.0,
    ) -> None:
        super().__init__(store, ae_title=ae_title, overrides=overrides, destinations=destinations)
        self.find_pace = find_pace
        self.image_finds = 0
        """Image-level C-FINDs answered."""
        self.find_done: float | None = None
        """``time.monotonic()`` of the last image-level C-FIND's last answer."""
        self.rate = rate
        self.gate = gate
        self.sent = 0
        self._next = 0.0

    def _on_find(self, event: Any) -> Iterator[tuple[int, Dataset | None]]:
        image = str(event.identifier.get("QueryRetrieveLevel", "")) == "IMAGE"
        self.image_finds += image
        for status, answer in super()._on_find(event):
            if image and answer is not None and self.find_pace:
                time.sleep(self.find_pace)
            if image and answer is None:  # the final status: pynetdicom asks for no more
                self.find_done = time.monotonic()
            yield status, answer

    def _dataset(self, instance: Any, accepted: Any) -> Dataset:
        if self.gate is not None and not self.gate.acquire(timeout=60):
            raise RuntimeError("the test never let this instance through")
        ds = super()._dataset(instance, accepted)
        if self.rate:
            # A link of ``rate`` bytes/s: this instance leaves when the last one has gone.
            now = time.monotonic()
            self._next = max(self._next, now) + instance.path.stat().st_size / self.rate
            time.sleep(max(0.0, self._next - now))
        self.sent += 1
        return ds


@contextmanager
def gated_study(
    folder: Path, files: Sequence[Path], study: str
) -> Iterator[tuple[PacedPacs, Node, threading.Semaphore]]:
    """A paced PACS holding ``files`` as today's study ``study``, sending an instance only for
    each ``gate.release()``; at the end the gate opens so nothing stays blocked in its threads."""
    gate = threading.Semaphore(0)
    today = dt.date.today().strftime("%Y%m%d")
    pacs = PacedPacs(folder, ae_title="SLOW", gate=gate, overrides={study: {"StudyDate": today}})
    pacs.add(files)
    port = pacs.start()
    try:
        yield pacs, Node("slow", "SLOW", "127.0.0.1", port, dimse_timeout=60), gate
    finally:
        gate.release(10_000)
        pacs.stop()
