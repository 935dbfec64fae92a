"""How pixels reach a terminal, below the UI: asking the terminal what it can show and deciding
the protocol (:mod:`.probe`), and the Kitty, iTerm2 and Sixel encoders (plain numpy to bytes).
The image widget that sends them is :mod:`tuiviewer.widgets.image.view`.

Nothing is imported here and nothing here imports Textual: :mod:`.probe` runs before Textual is
imported (it decides the colour system Textual reads at import), and the doctor and
``tuiviewer open`` use it without a UI.
"""
