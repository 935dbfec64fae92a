"""DICOM networking over pynetdicom: nodes, typed errors, associations with traces, C-ECHO,
C-FIND and TLS. Headless: nothing here imports Textual."""

from __future__ import annotations

import sys
from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

#: Where each name of ``__all__`` lives. They are imported when first asked for (PEP 562):
#: importing one module of the package (``tuiviewer.net.errors`` for the command line's lean
#: C-FIND, which must not load pynetdicom) would otherwise import them all.
_HOMES = {
    **dict.fromkeys(
        ("Node", "TlsSettings", "load_nodes", "parse_node_spec", "resolve_node", "save_nodes"),
        "tuiviewer.config.nodes",
    ),
    **dict.fromkeys(("QueryLevel", "to_row"), "tuiviewer.dicom.rows"),
    **dict.fromkeys(("associate", "check_status"), "tuiviewer.net.association"),
    **dict.fromkeys(("EchoResult", "echo"), "tuiviewer.net.echo"),
    **dict.fromkeys(
        (
            "AssociationAborted",
            "AssociationRejected",
            "ConnectionFailed",
            "DimseStatusError",
            "NetError",
            "NetTimeout",
            "NoAcceptedContext",
            "TlsFailed",
            "status_meaning",
        ),
        "tuiviewer.net.errors",
    ),
    **dict.fromkeys(("FindQuery", "QueryModel", "build_identifier", "find"), "tuiviewer.net.find"),
    "AssociationTrace": "tuiviewer.net.trace",
}


class _Package(ModuleType):
    """This package, but ``find`` and ``echo`` stay the functions of those names.

    Importing a submodule binds it on its package: the first import of ``tuiviewer.net.find``
    would make ``tuiviewer.net.find`` the module, where callers expect the function (as when
    this package imported everything at once, which bound the functions last).
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("find", "echo") and isinstance(value, ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(home), name)
    globals()[name] = value
    return value


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
