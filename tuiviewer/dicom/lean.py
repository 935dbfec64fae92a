"""pydicom without its pixel back-ends, for the commands that only print text.

``import pydicom`` loads every optional pixel decoder it finds (numpy, GDCM, pylibjpeg and its
plugins, Pillow, CharLS) and the download helper behind its sample data (requests): most of a
second on a busy machine, against the 120 ms a ``dump`` of one slice may take in all.
"""

from __future__ import annotations

import sys

__all__ = ["import_pydicom_without_pixel_backends"]

PIXEL_BACKENDS = (
    "numpy",
    "gdcm",
    "pylibjpeg",
    "openjpeg",
    "libjpeg",
    "rle",
    "jpeg_ls",
    "PIL",
    "requests",
)


def import_pydicom_without_pixel_backends() -> None:
    """Import pydicom with its optional pixel back-ends out of sight, for a text-only command.

    pydicom treats each of them as optional (a missing one only means that codec is not
    available), so hiding them changes nothing a text command prints. They are visible again
    afterwards: anything that asks for numpy later still gets it, but pydicom itself stays
    without pixel decoders, so call this only in a process that decodes no pixels (the CLI's
    own command line, never a library caller).
    """
    if "pydicom" in sys.modules:
        return
    hidden = [name for name in PIXEL_BACKENDS if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # "import name" now fails
    try:
        import pydicom  # noqa: F401
    finally:
        for name in hidden:
            if sys.modules.get(name, False) is None:
                del sys.modules[name]
