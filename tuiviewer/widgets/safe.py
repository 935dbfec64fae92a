"""Rich ``Text`` for values from files and PACS answers: cleaned, and never read as markup.

Textual reads a plain ``str`` given to ``Static``, ``Label`` or a ``DataTable`` cell as markup,
so a patient called ``[link=…]`` would become a hyperlink and an unbalanced ``[/]`` an error;
and neither Rich nor Textual removes ESC, C1 or the other control characters
:mod:`tuiviewer.safetext` escapes. Screens and widgets hand such values over through
:func:`shown` instead.
"""

from __future__ import annotations

from rich.text import Text

from tuiviewer.safetext import clean

__all__ = ["cell", "shown"]


def shown(value: object, style: str = "", *, lines: bool = False) -> Text:
    """``value`` as literal text that cannot drive the terminal (see :func:`safetext.clean`)."""
    return Text(clean(value, lines=lines), style=style)


def cell(value: object, style: str = "") -> Text:
    """A one-line ``DataTable`` cell holding ``value`` literally."""
    return Text(clean(value), style=style, no_wrap=True, end="")
