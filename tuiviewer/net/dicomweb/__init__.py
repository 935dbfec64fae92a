"""DICOMweb (PS3.18: QIDO-RS, WADO-RS, STOW-RS) as a second transport beside DIMSE.

:mod:`~tuiviewer.config.dicomweb` describes a ``kind = "dicomweb"`` node of nodes.toml and
imports nothing heavy; :mod:`~tuiviewer.net.dicomweb.client` and the modules beside it talk to
the server over dicomweb-client and requests. Callers do not use these directly but go through
:mod:`tuiviewer.net.transport`, which picks DIMSE or DICOMweb by the node's kind and returns the
same typed rows, results and errors either way. Headless: nothing here imports Textual.
"""
