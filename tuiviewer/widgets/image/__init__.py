"""Every way pixels reach a terminal: probing it, and the Kitty, iTerm2, Sixel and half-block
encoders, with the image widget on top (:mod:`tuiviewer.widgets.image.view`).

Nothing is imported here: :mod:`tuiviewer.widgets.image.probe` runs before Textual is imported
(it decides the colour system Textual must read at import), and the encoders are plain numpy.
"""
