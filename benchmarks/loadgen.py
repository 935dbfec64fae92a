"""A machine kept busy on every core, for benchmarks that report figures "idle and loaded".

Readers run the workstation on shared servers; a figure measured on an idle machine says little
about the key presses of a busy afternoon. ``busy_machine(True)`` starts one busy-loop process per
core for the duration of the block.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from contextlib import contextmanager


def _burn() -> None:  # pragma: no cover - a busy loop in a child process
    while True:
        pass


@contextmanager
def busy_machine(load: bool) -> Iterator[str]:
    """Yield a line describing the machine's state; with ``load``, every core is kept busy."""
    burners: list[multiprocessing.Process] = []
    if load:
        for _ in range(os.cpu_count() or 1):
            burner = multiprocessing.Process(target=_burn, daemon=True)
            burner.start()
            burners.append(burner)
    try:
        yield f"loaded: {len(burners)} busy processes" if load else "idle"
    finally:
        for burner in burners:
            burner.terminate()
            burner.join()
