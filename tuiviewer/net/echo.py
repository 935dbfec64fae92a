"""C-ECHO ("DICOM ping"): is the node there, does it accept us, and how fast does it answer."""

from __future__ import annotations

import time
from dataclasses import dataclass

from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from tuiviewer.config.nodes import Node
from tuiviewer.net.association import associate, check_status
from tuiviewer.net.trace import AssociationTrace

#: Verification SOP Class (PS3.4 A.4).
VERIFICATION = "1.2.840.10008.1.1"


@dataclass(frozen=True)
class EchoResult:
    """Outcome of a successful C-ECHO."""

    node: Node
    status: int
    """DIMSE status of the C-ECHO response (0x0000 on success)."""
    rtt_ms: float
    """Round trip of the C-ECHO request alone, association set-up excluded."""
    trace: AssociationTrace


def echo(node: Node, *, trace: AssociationTrace | None = None) -> EchoResult:
    """Associate with ``node``, send one C-ECHO and release.

    Raises:
        NetError: any typed error of :mod:`tuiviewer.net.errors` (refused, rejected, TLS,
            timeout, failure status...).
    """
    trace = trace if trace is not None else AssociationTrace()
    contexts = [(VERIFICATION, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])]
    with associate(node, contexts, trace=trace) as assoc:
        started = time.perf_counter()
        status = assoc.send_c_echo()
        rtt_ms = (time.perf_counter() - started) * 1000
        code = check_status("C-ECHO", status, assoc)
    return EchoResult(node=node, status=code, rtt_ms=rtt_ms, trace=trace)
