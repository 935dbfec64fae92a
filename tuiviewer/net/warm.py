"""Warm associations: a C-GET association to a PACS opened before it is needed, and handed on.

Why: setting up a pynetdicom association costs 0.1 s on an idle machine and 0.4–0.9 s on a
busy one (more across a WAN), and it used to sit twice on the path from Enter to the first
pixel. So:

* when the reader rests on a worklist row, one C-GET association to that PACS is opened
  (:func:`warm_up`) and held; Enter's retrieve takes it (:func:`held_or_new`) and sends its
  first C-GET at once;
* the lead (:mod:`tuiviewer.net.lead`) gives its association back when the list is whole, and
  the rest of the retrieve takes it instead of opening another.

Rules: at most one warm association per node, and none while another of ours to that node is
in use, so the node's parallel limit is never exceeded; one not taken within :data:`IDLE_S`
is released; one the PACS refuses or drops costs nothing visible (whoever wanted it opens
their own, as before). A consumer binds its C-STORE handler while it holds the association
and sees the negotiation in its own trace.

Each association is owned by a holder thread, which opens it with
:func:`~tuiviewer.net.association.associate` and closes it (release, or abort after a
failure) when its consumer is done or it has idled; consumers only borrow it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any

from pynetdicom.association import Association

from tuiviewer.config.nodes import Node
from tuiviewer.net.association import ON_REJECTED, ContextSpec, associate
from tuiviewer.net.errors import NetError
from tuiviewer.net.sopclasses import UNCOMPRESSED
from tuiviewer.net.trace import AssociationTrace

logger = logging.getLogger(__name__)

#: Seconds a warm association waits for a retrieve before it is released (below the 30 s
#: idle timeout of common PACS, Orthanc's for one).
IDLE_S = 10.0


class _Abort(Exception):
    """Raised inside the holder's ``with`` to abort instead of release."""


@dataclass(eq=False)
class _Held:
    node: Node
    idle_until: float
    taken: bool
    trace: AssociationTrace = field(default_factory=AssociationTrace)
    ready: threading.Event = field(default_factory=threading.Event)
    """Set once the negotiation ended, either way."""
    closed: threading.Event = field(default_factory=threading.Event)
    assoc: Association | None = None
    error: NetError | None = None
    ended: bool = False
    abort: bool = False


_LOCK = threading.Condition()
_HELD: dict[Node, list[_Held]] = {}
_REFUSING: set[Node] = set()
"""Nodes that rejected an association while one of ours idled there: never warmed again."""


def _start(node: Node, contexts: Sequence[ContextSpec], roles: Any, *, taken: bool) -> _Held:
    """A new holder for ``node`` (call with the lock held)."""
    held = _Held(node, time.monotonic() + IDLE_S, taken)
    _HELD.setdefault(node, []).append(held)
    threading.Thread(
        target=_hold, args=(held, list(contexts), list(roles)), name="tuiviewer-warm", daemon=True
    ).start()
    return held


def warm_up(node: Node, contexts: Sequence[ContextSpec], roles: Any = ()) -> bool:
    """Open a C-GET association to ``node`` in the background, unless one of ours to it is
    open or opening (then an idle one is kept :data:`IDLE_S` longer). True when one is warm
    or warming for the next retrieve."""
    if node.kind != "dimse":
        return False
    with _LOCK:
        if node in _REFUSING:
            return False
        held = [h for h in _HELD.get(node, []) if not h.ended]
        if held:
            for each in held:
                if not each.taken:
                    each.idle_until = time.monotonic() + IDLE_S
            return any(not each.taken for each in held)
        _start(node, contexts, roles, taken=False)
        return True


def available(node: Node) -> bool:
    """Whether an association to ``node`` is warm (or warming) and free."""
    with _LOCK:
        return any(not h.taken and not h.ended for h in _HELD.get(node, []))


def _hold(held: _Held, contexts: list[ContextSpec], roles: list[Any]) -> None:
    try:
        with associate(held.node, contexts, trace=held.trace, roles=roles) as assoc:
            with _LOCK:
                held.assoc = assoc
            held.ready.set()
            with _LOCK:
                while not held.ended:
                    if not assoc.is_established:
                        held.ended = True
                    elif not held.taken and time.monotonic() >= held.idle_until:
                        held.ended = True
                    else:
                        _LOCK.wait(0.5)
                abort = held.abort
            if abort:
                raise _Abort
    except _Abort:
        pass
    except NetError as exc:
        held.error = exc
        logger.debug("No warm association to %s: %s", held.node.describe(), exc.message)
    finally:
        with _LOCK:
            held.ended = True
            if held in _HELD.get(held.node, []):
                _HELD[held.node].remove(held)
            _LOCK.notify_all()
        held.ready.set()
        held.closed.set()


def _covers(assoc: Association, classes: Mapping[str, Collection[str]]) -> bool:
    """Whether ``assoc`` can receive every one of ``classes`` by C-GET (SCP role accepted),
    each in every transfer syntax the PACS said it holds it in (where it said)."""
    receivable: dict[str, set[str]] = {}
    for cx in assoc.accepted_contexts:
        if cx.as_scp:
            receivable.setdefault(str(cx.abstract_syntax), set()).update(
                str(ts) for ts in cx.transfer_syntax
            )
    return all(
        uid in receivable and all(_received(ts, receivable[uid]) for ts in syntaxes)
        for uid, syntaxes in classes.items()
    )


def _received(syntax: str, accepted: set[str]) -> bool:
    """Whether an instance held in ``syntax`` comes unchanged, or losslessly re-encoded:
    any PACS turns one uncompressed syntax into another, never a compressed one."""
    return syntax in accepted or (syntax in UNCOMPRESSED and bool(accepted & set(UNCOMPRESSED)))


def _take(node: Node, classes: Mapping[str, Collection[str]]) -> _Held | None:
    with _LOCK:
        held = next((h for h in _HELD.get(node, []) if not h.taken and not h.ended), None)
        if held is None:
            return None
        held.taken = True
    held.ready.wait(node.acse_timeout or 30)
    assoc = held.assoc
    if assoc is not None and assoc.is_established and not held.ended and _covers(assoc, classes):
        return held
    _end(held, abort=False, wait=False)
    return None


def _end(held: _Held, *, abort: bool, wait: bool = True) -> None:
    with _LOCK:
        held.ended = True
        held.abort = abort
        _LOCK.notify_all()
    if wait:
        held.closed.wait(held.node.acse_timeout or 30)


def _give_back(held: _Held) -> None:
    with _LOCK:
        held.taken = False
        held.idle_until = time.monotonic() + IDLE_S
        _LOCK.notify_all()


def _adopt(into: AssociationTrace, source: AssociationTrace) -> None:
    """Show ``source``'s association in ``into`` (its lists shared, so what follows shows)."""
    if into is source:
        return
    for item in fields(AssociationTrace):
        setattr(into, item.name, getattr(source, item.name))


@contextmanager
def held_or_new(
    node: Node,
    contexts: Sequence[ContextSpec],
    *,
    trace: AssociationTrace | None = None,
    roles: Any = (),
    handlers: Sequence[tuple[Any, ...]] = (),
    classes: Mapping[str, Collection[str]] | None = None,
    keep: bool | Callable[[], bool] = False,
) -> Iterator[Association]:
    """An association to ``node``: a warm one that can receive ``classes`` (SOP class ->
    the transfer syntaxes the PACS holds it in, empty when it did not say), else a new one
    proposing ``contexts`` (as :func:`~tuiviewer.net.association.associate`, which raises the
    same errors). ``handlers`` are bound while it is held.

    ``keep`` (or what it returns at the end): when the block ends well, the association is
    given back for the next consumer (released after :data:`IDLE_S` if none comes) instead
    of being released.
    """
    held = _take(node, classes or {})
    if held is None and keep:
        with _LOCK:
            held = _start(node, contexts, roles, taken=True)
        held.ready.wait()
        if held.error is not None:
            raise held.error
    if held is None or held.assoc is None:
        with associate(node, contexts, trace=trace, roles=roles, handlers=handlers) as assoc:
            yield assoc
        return
    assoc = held.assoc
    if trace is not None:
        _adopt(trace, held.trace)
    for event, handler, *args in handlers:
        assoc.bind(event, handler, *args)
    failed = True
    try:
        yield assoc
        failed = False
    finally:
        for event, handler, *_args in handlers:
            assoc.unbind(event, handler)
        if (keep() if callable(keep) else keep) and not failed and assoc.is_established:
            _give_back(held)
        else:
            _end(held, abort=failed)
        if trace is not None:
            _adopt(trace, held.trace)


def _free_for(node: Node) -> bool:
    """``node`` rejected an association: release our idle associations to it (True when
    there was one), and warm none up for it again (it may take only one at a time)."""
    with _LOCK:
        idle = [h for h in _HELD.get(node, []) if not h.taken and not h.ended]
    freed = False
    for held in idle:
        held.ready.wait(node.acse_timeout or 30)  # one still negotiating counts too
        with _LOCK:
            if held.taken:
                continue  # a retrieve took it meanwhile: theirs
            if held.assoc is not None:
                freed = True
                _REFUSING.add(node)
        _end(held, abort=False)
    return freed


ON_REJECTED.append(_free_for)


def release_idle(node: Node | None = None, *, wait_s: float | None = None) -> None:
    """Release every association (to ``node``, or to any) nobody holds, and wait until they
    are closed (each at most ``wait_s`` seconds when given, else its node's ACSE timeout)."""
    with _LOCK:
        idle = [
            h
            for key, items in _HELD.items()
            if node is None or key == node
            for h in items
            if not h.taken
        ]
    for held in idle:
        _end(held, abort=False, wait=wait_s is None)
    if wait_s is not None:
        deadline = time.monotonic() + wait_s
        for held in idle:
            held.closed.wait(max(0.0, deadline - time.monotonic()))
