"""C-FIND queries at patient, study, series and image level, streamed as matches arrive.

:func:`find` yields each match the moment its pending response arrives, so the UI shows the
first rows while the PACS is still searching, and a ``cancel`` event sends C-CANCEL.
Identifiers go out as UTF-8 (Specific Character Set ``ISO_IR 192``) and each answer is
decoded with the character set the PACS declares in it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from tuiviewer.config.nodes import Node
from tuiviewer.dicom.rows import QueryLevel
from tuiviewer.net.association import associate, check_status, require_context
from tuiviewer.net.errors import status_meaning
from tuiviewer.net.findquery import (
    QUERY_CHARSET,
    RETURN_KEYS,
    FindQuery,
    QueryModel,
    check_key,
    identifier_keys,
    validate_date_range,
)
from tuiviewer.net.trace import AssociationTrace

# What callers import from here; it lives in findquery.py so that the lean client needs no pydicom.
__all__ = [
    "QUERY_CHARSET",
    "RETURN_KEYS",
    "FindQuery",
    "FindSession",
    "QueryModel",
    "build_identifier",
    "find",
    "find_session",
    "validate_date_range",
]

_TS = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]


def _set(ds: Dataset, keyword: str, value: str) -> None:
    tag = tag_for_keyword(keyword)
    vr = dictionary_VR(tag) if tag is not None else ""
    ds.add_new(check_key(keyword, tag, vr, value), vr, value if value else None)


def build_identifier(query: FindQuery, model: QueryModel = QueryModel.STUDY_ROOT) -> Dataset:
    """The C-FIND identifier for ``query``: its matching keys plus the level's return keys.

    Raises:
        ValueError: invalid date, unknown or unusable ``extra`` keyword, or PATIENT level with
            the Study Root model.
    """
    keys = identifier_keys(query, model)
    ds = Dataset()
    ds.SpecificCharacterSet = QUERY_CHARSET
    ds.QueryRetrieveLevel = QueryLevel(query.level).value
    for keyword, value in keys:
        _set(ds, keyword, value)
    return ds


def _declare_charset(ds: Dataset) -> None:
    """Give answers that name no character set the one their bytes fit (UTF-8, else Latin-1).

    Such answers break PS3.5 6.1.2.3 (non-ASCII needs a declared set), but real PACS send them;
    pydicom would otherwise decode them as ASCII and mangle the names.
    """
    if "SpecificCharacterSet" in ds:
        return
    non_ascii = False
    for elem in ds.elements():
        raw = getattr(elem, "value", None)
        if isinstance(raw, bytes) and not raw.isascii():
            non_ascii = True
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                ds.SpecificCharacterSet = "ISO_IR 100"
                return
    if non_ascii:
        ds.SpecificCharacterSet = QUERY_CHARSET


def find(
    node: Node,
    query: FindQuery,
    *,
    model: QueryModel = QueryModel.STUDY_ROOT,
    cancel: threading.Event | None = None,
    trace: AssociationTrace | None = None,
) -> Iterator[Dataset]:
    """Send one C-FIND and yield each matching identifier as its pending response arrives.

    Setting ``cancel`` sends C-CANCEL at once (even while waiting for the next match); the
    generator then drains the remaining responses and ends without yielding them. Closing
    the generator early releases the association.

    Raises:
        ValueError: the query is invalid (see :func:`build_identifier`).
        NoAcceptedContext: the node does not offer the query model.
        DimseStatusError: a failure status (e.g. 0xA700 out of resources).
        NetError: connection, association, TLS and timeout errors.
    """
    identifier = build_identifier(query, model)
    with associate(node, [(model.value, _TS)], trace=trace) as assoc:
        require_context(assoc, [model.value])
        yield from _matches(assoc, model, identifier, 1, cancel)


class FindSession:
    """Several C-FINDs one after the other on one association (see :func:`find_session`).

    Setting up an association costs more than a small query on a fast PACS; a caller with
    hundreds of small queries (the worklist's report states) asks them all on one.
    """

    def __init__(self, assoc: Any, model: QueryModel) -> None:
        self._assoc = assoc
        self._model = model
        self._msg_id = 0

    def find(
        self,
        query: FindQuery | Dataset,
        *,
        cancel: threading.Event | None = None,
    ) -> Iterator[Dataset]:
        """Yield the matches of one C-FIND on this association (as :func:`find` does).

        ``query`` may also be a ready identifier, for keys :class:`FindQuery` cannot say
        (a list of Study Instance UIDs, PS3.4 C.2.2.2.2).

        Raises:
            ValueError, DimseStatusError, NetError: as :func:`find`.
        """
        identifier = query if isinstance(query, Dataset) else build_identifier(query, self._model)
        self._msg_id += 1
        return _matches(self._assoc, self._model, identifier, self._msg_id, cancel)


@contextmanager
def find_session(
    node: Node,
    *,
    model: QueryModel = QueryModel.STUDY_ROOT,
    trace: AssociationTrace | None = None,
) -> Iterator[FindSession]:
    """Open one association with ``node`` for several C-FINDs; release it on exit.

    Raises:
        NoAcceptedContext: the node does not offer the query model.
        NetError: connection, association, TLS and timeout errors.
    """
    with associate(node, [(model.value, _TS)], trace=trace) as assoc:
        require_context(assoc, [model.value])
        yield FindSession(assoc, model)


def _matches(
    assoc: Any,
    model: QueryModel,
    identifier: Dataset,
    msg_id: int,
    cancel: threading.Event | None,
) -> Iterator[Dataset]:
    """The matches of one C-FIND on an open association, C-CANCEL on ``cancel``."""
    responses = assoc.send_c_find(identifier, model.value, msg_id=msg_id)
    watcher = _CancelWatcher(assoc, model.value, msg_id, cancel)
    try:
        for status, match in responses:
            if watcher.sent:
                if status and "Status" in status:
                    category, _ = status_meaning("C-FIND", int(status.Status))
                    if category != "Pending":
                        break
                    continue
            code = check_status("C-FIND", status, assoc)
            category, _ = status_meaning("C-FIND", code)
            if category != "Pending":
                break
            if match is None:
                continue
            # Values are decoded with the answer's character set when first read (pydicom
            # converts raw elements on access): a caller printing five keys of a 10,000-match
            # answer does not pay for decoding every element of every match.
            _declare_charset(match)
            yield match
            watcher.poll()
    finally:
        watcher.stop()


class _CancelWatcher:
    """Sends C-CANCEL as soon as ``cancel`` is set, from a helper thread.

    The consumer is usually blocked waiting for the next response when the user cancels, so
    checking the event only between responses would wait for the PACS's next match.
    """

    def __init__(
        self, assoc: Any, model_uid: str, msg_id: int, cancel: threading.Event | None
    ) -> None:
        self._assoc = assoc
        self._model = model_uid
        self._msg_id = msg_id
        self._cancel = cancel
        self._done = threading.Event()
        self._lock = threading.Lock()
        self.sent = False
        self._thread: threading.Thread | None = None
        if cancel is not None:
            self._thread = threading.Thread(target=self._run, name="find-cancel", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        assert self._cancel is not None
        while not self._done.is_set():
            if self._cancel.wait(0.05):
                self.poll()
                return

    def poll(self) -> None:
        """Send C-CANCEL once if cancellation was requested."""
        if self._cancel is None or not self._cancel.is_set():
            return
        with self._lock:
            if self.sent or self._done.is_set() or not self._assoc.is_established:
                return
            self.sent = True
            self._assoc.send_c_cancel(self._msg_id, query_model=self._model)

    def stop(self) -> None:
        with self._lock:
            self._done.set()
