"""DICOM networking over pynetdicom: nodes, typed errors, associations with traces, C-ECHO,
C-FIND and TLS. Headless: nothing here imports Textual."""

from __future__ import annotations

from tuiviewer.config.nodes import (
    Node,
    TlsSettings,
    load_nodes,
    parse_node_spec,
    resolve_node,
    save_nodes,
)
from tuiviewer.dicom.rows import QueryLevel, to_row
from tuiviewer.net.association import associate, check_status
from tuiviewer.net.echo import EchoResult, echo
from tuiviewer.net.errors import (
    AssociationAborted,
    AssociationRejected,
    ConnectionFailed,
    DimseStatusError,
    NetError,
    NetTimeout,
    NoAcceptedContext,
    TlsFailed,
    status_meaning,
)
from tuiviewer.net.find import FindQuery, QueryModel, build_identifier, find
from tuiviewer.net.trace import AssociationTrace

__all__ = [
    "AssociationAborted",
    "AssociationRejected",
    "AssociationTrace",
    "ConnectionFailed",
    "DimseStatusError",
    "EchoResult",
    "FindQuery",
    "NetError",
    "NetTimeout",
    "NoAcceptedContext",
    "Node",
    "QueryLevel",
    "QueryModel",
    "TlsFailed",
    "TlsSettings",
    "associate",
    "build_identifier",
    "check_status",
    "echo",
    "find",
    "load_nodes",
    "parse_node_spec",
    "resolve_node",
    "save_nodes",
    "status_meaning",
    "to_row",
]
