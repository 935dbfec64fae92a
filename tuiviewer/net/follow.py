"""Retrieval that follows the reader: the order of a series' image-level requests.

The viewer says where the reader is (:class:`ReaderFocus`); each next request starts at that
slice and goes the way they scroll, so a reader who jumps ahead does not wait for everything
before it. Kept apart from the associations that send the requests: this is the order only,
shared (locked) by one association or several (:class:`_Source`).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Collection, Sequence

from tuiviewer.net.inventory import InstanceInfo, StudyInventory
from tuiviewer.net.request import _Request

#: Instances per image-level request while a series follows the reader: small enough that
#: the reader's next move is served within a second at a few MB/s, large enough that the
#: request's round trip is a small part of its time.
FOLLOW_PER_REQUEST = 16


class ReaderFocus:
    """Where the reader is in the series being retrieved: each next image-level request starts
    at the slice they look at and goes the way they scroll. Set from the viewer's thread,
    read by the retrieving thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._where: tuple[str, str, int] | None = None

    def set(self, series_uid: str, sop_uid: str, direction: int = 1) -> None:
        """The reader is on ``sop_uid`` of ``series_uid``, moving towards higher Instance
        Numbers (``direction`` 1) or lower (-1)."""
        with self._lock:
            self._where = (series_uid, sop_uid, 1 if direction >= 0 else -1)

    @property
    def placed(self) -> bool:
        """Whether the reader is anywhere yet (a viewer set where)."""
        with self._lock:
            return self._where is not None

    def at(self, series_uid: str) -> str | None:
        """The SOP Instance UID the reader is on in ``series_uid``; None when elsewhere."""
        with self._lock:
            where = self._where
        return where[1] if where is not None and where[0] == series_uid else None

    def order(self, series_uid: str, items: Sequence[InstanceInfo]) -> list[str]:
        """``items`` (SOP Instance UIDs) in the order to fetch them: by Instance Number from
        the reader's slice, first the way they scroll, then the other way."""
        ordered = sorted(
            enumerate(items), key=lambda e: (e[1].number is None, e[1].number or 0, e[0])
        )
        uids = [item.sop_uid for _, item in ordered]
        with self._lock:
            where = self._where
        if where is None or where[0] != series_uid or where[1] not in uids:
            return uids
        at, direction = uids.index(where[1]), where[2]
        if direction > 0:
            return uids[at:] + uids[:at][::-1]
        return uids[at::-1] + uids[at + 1 :]


class _Follower:
    """The image-level requests of one series, each chosen when it is sent."""

    def __init__(
        self,
        series_uid: str,
        items: Sequence[InstanceInfo],
        focus: ReaderFocus,
        have: Collection[str] = (),
    ):
        self.series_uid = series_uid
        self.items = list(items)
        self.left = {item.sop_uid for item in items} - set(have)
        """Not asked for yet (``have``: already in, brought while the C-FIND answered)."""
        self.focus = focus

    def next(self) -> _Request | None:
        if not self.left:
            return None
        order = self.focus.order(self.series_uid, self.items)
        chunk = tuple([sop for sop in order if sop in self.left][:FOLLOW_PER_REQUEST])
        self.left.difference_update(chunk)
        return _Request(self.series_uid, chunk, ends_series=not self.left, follow_chunk=True)


class _Source:
    """The requests of one retrieve, handed out to one association or several (locked): the
    plan in order, a series that follows the reader one image-level request at a time."""

    def __init__(
        self,
        plan: list[_Request],
        inventory: StudyInventory | None,
        focus: ReaderFocus | None,
        have: Collection[str] = (),
    ) -> None:
        self.have = set(have)
        """Instances already in (the lead's): a follower does not ask for them again."""
        self.queue = deque(plan)
        self.inventory = inventory
        self.focus = focus
        self.follower: _Follower | None = None
        self.out: dict[str, int] = {}
        """Requests handed out and not finished, per series."""
        self.series_done: list[str] = []
        self.notes: list[str] = []
        self._lock = threading.Lock()

    def take(self) -> _Request | None:
        """The next request to send; None when everything was handed out."""
        with self._lock:
            while True:
                if self.follower is not None:
                    request = self.follower.next()
                    if request is None:
                        self.follower = None
                        continue
                elif self.queue:
                    request = self.queue.popleft()
                    if request.follow and self.focus is not None and self.inventory is not None:
                        items = self.inventory.series.get(request.series_uid or "", [])
                        self.follower = _Follower(
                            request.series_uid or "", items, self.focus, self.have
                        )
                        continue
                else:
                    return None
                key = request.series_uid or ""
                self.out[key] = self.out.get(key, 0) + 1
                return request

    def finished(self, request: _Request) -> bool:
        """``request`` ended well; True (once) when that was the last of its series."""
        series = request.series_uid
        with self._lock:
            self.out[series or ""] -= 1
            following = self.follower
            more = bool(following and following.series_uid == series and following.left)
            more = more or any(r.series_uid == series for r in self.queue)
            if not series or more or self.out[series] or series in self.series_done:
                return False
            self.series_done.append(series)
            return True

    def fall_back(self, request: _Request, note: str) -> None:
        """The PACS would not retrieve ``request`` by instance: the rest of its series (and
        what it missed) at series level."""
        with self._lock:
            self.out[request.series_uid or ""] -= 1
            if self.follower is not None and self.follower.series_uid == request.series_uid:
                self.follower = None
                self.queue.appendleft(_Request(request.series_uid))
                self.notes.append(note)
