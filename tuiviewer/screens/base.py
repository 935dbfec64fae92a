"""How screens and widgets reach the workstation: typed, never through ``getattr``."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.dom import DOMNode

if TYPE_CHECKING:
    from tuiviewer.workstation import Workstation


def workstation(node: DOMNode) -> Workstation:
    """The workstation (the app) that ``node`` runs in: its services and moves, typed."""
    return cast("Workstation", node.app)
