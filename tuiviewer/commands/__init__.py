"""One module per sub-command (``tuiviewer dump``, ``render``, ``echo``, ``listen``, ...): the
engines that :mod:`tuiviewer.cli` dispatches to, turning outcomes into text and exit codes for
scripts."""
