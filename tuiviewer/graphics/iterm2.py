"""iTerm2 inline images (OSC 1337 File=), as iTerm2, WezTerm, mintty and mlterm draw them.

``OSC 1337 ; File = key=value;… : base64 BEL`` with ``inline=1`` shows the file (a PNG here)
at the cursor over ``width`` × ``height`` cells (bare numbers are cells), stretched to them
when ``preserveAspectRatio=0``: the viewer pads the PNG to the cells' aspect, so nothing is
distorted. ``size`` is the byte count of the file (iTerm2 uses it for its progress bar) and
``doNotMoveCursor=1`` (WezTerm, iTerm2 3.5) keeps the cursor; the viewer puts the cursor back
itself for the others. The image lives in the cells like text: text written over a cell
erases it there, so the widget sends it again whenever its cells are repainted.
"""

from __future__ import annotations

import base64


def inline_image(png: bytes, cols: int, rows: int) -> str:
    """The escape sequence that shows ``png`` over ``cols`` × ``rows`` cells at the cursor.

    Raises:
        ValueError: an empty file or a cell count below 1.
    """
    if not png:
        raise ValueError("An inline image needs a file; the PNG is empty.")
    if cols < 1 or rows < 1:
        raise ValueError(f"An inline image needs at least one cell, not {cols}×{rows}.")
    data = base64.standard_b64encode(png).decode("ascii")
    keys = (
        f"inline=1;size={len(png)};width={cols};height={rows};"
        "preserveAspectRatio=0;doNotMoveCursor=1"
    )
    return f"\x1b]1337;File={keys}:{data}\x07"
