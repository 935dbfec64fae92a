"""Streamed results go out in small batches, and what arrived before a failure is not lost."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tuiviewer.services.batches import batched


class Clock:
    """A clock the test moves: each reading advances it by ``step`` seconds."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_a_flood_goes_out_in_batches_of_the_size() -> None:
    out = list(batched(range(120), seconds=10, size=50, clock=Clock(0.0)))
    assert [len(b) for b in out] == [50, 50, 20]
    assert [x for b in out for x in b] == list(range(120))


def test_a_slow_stream_goes_out_as_time_passes() -> None:
    # Every reading of the clock is 0.03 s later: a batch goes out past 0.05 s.
    out = list(batched(range(6), seconds=0.05, size=50, clock=Clock(0.03)))
    assert [len(b) for b in out] == [2, 2, 2]


def test_what_arrived_before_a_failure_comes_out_before_the_failure() -> None:
    def failing() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("the PACS stopped answering")

    out: list[list[int]] = []
    with pytest.raises(ValueError, match="stopped answering"):
        for batch in batched(failing(), seconds=10, size=50, clock=Clock(0.0)):
            out.append(batch)
    assert out == [[1, 2]]
