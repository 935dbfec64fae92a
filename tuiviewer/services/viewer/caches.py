"""Caches bounded in bytes and render coalescing: what keeps a held key fast and memory flat.

A decoded 512² CT slice weighs half a megabyte, so caches are bounded by the bytes they hold,
not by a count; and while one render runs, requests made meanwhile collapse to the latest, so
holding a key skips slices instead of queueing renders that lag behind it."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
T = TypeVar("T")


class ByteLRU(Generic[K, V]):
    """A least-recently-used cache bounded by the bytes its values hold, thread-safe."""

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"A cache budget of {max_bytes} bytes is negative.")
        self.max_bytes = max_bytes
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.evictions = 0

    @property
    def total_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def get(self, key: K) -> V | None:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return None
            self._items.move_to_end(key)
            return found[0]

    def put(self, key: K, value: V, nbytes: int) -> bool:
        """Store ``value``; evict the oldest until it fits. False when it alone is too big."""
        if nbytes < 0:
            raise ValueError(f"An item cannot weigh {nbytes} bytes.")
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            if nbytes > self.max_bytes:
                return False
            while self._items and self._bytes + nbytes > self.max_bytes:
                _, (_, dropped) = self._items.popitem(last=False)
                self._bytes -= dropped
                self.evictions += 1
            self._items[key] = (value, nbytes)
            self._bytes += nbytes
            return True

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def limit(self, max_bytes: int) -> None:
        """Change the budget, evicting the oldest items at once if it shrank."""
        if max_bytes < 0:
            raise ValueError(f"A cache budget of {max_bytes} bytes is negative.")
        with self._lock:
            self.max_bytes = max_bytes
            while self._items and self._bytes > max_bytes:
                _, (_, dropped) = self._items.popitem(last=False)
                self._bytes -= dropped
                self.evictions += 1


class RenderCoalescer(Generic[T]):
    """At most one job in flight; what is asked meanwhile collapses to the latest request.

    A held key posts a step per repeat; each step asks for a new slice. While one render runs,
    later requests overwrite each other, and when it finishes only the newest is started, so the
    intermediate slices are skipped rather than rendered in a queue that lags behind the key.
    """

    def __init__(self) -> None:
        self.in_flight: T | None = None
        self.pending: T | None = None
        self.started = 0
        """Jobs started so far (what a test counts)."""

    def request(self, job: T) -> T | None:
        """Ask for ``job``; returns it when it should start now, None when it must wait."""
        if self.in_flight is None:
            self.in_flight = job
            self.started += 1
            return job
        self.pending = job
        return None

    def finished(self) -> T | None:
        """The running job ended; returns the job to start next, if one is waiting."""
        self.in_flight = None
        job, self.pending = self.pending, None
        if job is None:
            return None
        self.in_flight = job
        self.started += 1
        return job

    @property
    def busy(self) -> bool:
        return self.in_flight is not None
