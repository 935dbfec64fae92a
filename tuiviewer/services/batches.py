"""Results streamed to a screen in small batches: the first ones show at once, a flood stays
cheap (one message per batch, not per row). The one batching loop of every streaming query."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

#: A batch goes out when this much time has passed since the last one...
BATCH_S = 0.05
#: ...or when it holds this many items.
BATCH_ITEMS = 50


def batched(
    items: Iterable[T],
    *,
    seconds: float = BATCH_S,
    size: int = BATCH_ITEMS,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[list[T]]:
    """``items`` in lists: each one as soon as ``seconds`` have passed since the previous list
    or it holds ``size`` items, the rest at the end.

    When ``items`` raises, the items collected so far are yielded first, then the error
    propagates: what arrived before a failure is never lost.
    """
    batch: list[T] = []
    last = clock()
    try:
        for item in items:
            batch.append(item)
            if clock() - last > seconds or len(batch) >= size:
                yield batch
                batch, last = [], clock()
    except Exception:
        if batch:
            yield batch
        raise
    if batch:
        yield batch
