"""The image widget (:mod:`.view`), the app driver that keeps the keys typed while the terminal
was asked (:mod:`.driver`), and the encoders the widget needs beyond :mod:`tuiviewer.graphics`:
half-blocks as Rich segments (:mod:`.halfcell`) and PNG for Kitty and iTerm2 (:mod:`.png`).

Nothing is imported here.
"""
