"""How much of a DICOM file tuiviewer agrees to read: ``[limits]`` in ``config.toml``.

A file or a PACS answer is untrusted input. A 4 MB deflated data set can inflate to gigabytes,
a 10 MB file can hold a million elements, a few kilobytes can nest sequences ten thousand
levels deep. Every reader (:mod:`tuiviewer.dicom.reading`, :mod:`tuiviewer.dicom.loading`)
stops at these limits with a message that names the file, the limit and the key that raises
it, so memory stays bounded whatever arrives. The limits are set once per process from the
configuration (:func:`configure`) and read by the readers (:func:`current`).
"""

from __future__ import annotations

from dataclasses import dataclass

from tuiviewer.exceptions import ConfigError

__all__ = ["ReadLimits", "configure", "current"]

_MB = 1 << 20
#: Python's recursion limit (1000 frames) must hold pydicom's ~6 frames per nesting level.
MAX_DEPTH_CEILING = 128


@dataclass(frozen=True)
class ReadLimits:
    """The ``[limits]`` table of ``config.toml``."""

    max_inflated_mb: int = 256
    """A deflated data set may inflate to this many MiB, plus the pixel data its header
    declares (Rows × Columns × samples × bits × frames), counted up to this many MiB again."""
    max_elements: int = 1_500_000
    """Data elements in one file, nested ones included (a million-element file loads)."""
    max_depth: int = 64
    """Sequences nested inside sequences; real objects stay below 20."""

    def __post_init__(self) -> None:
        for name in ("max_inflated_mb", "max_elements", "max_depth"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"[limits] {name} must be a positive whole number, not {value!r}."
                )
        if self.max_depth > MAX_DEPTH_CEILING:
            raise ConfigError(
                f"[limits] max_depth {self.max_depth} is more than {MAX_DEPTH_CEILING}, the "
                "deepest nesting the DICOM library can read without running out of stack."
            )

    @property
    def max_inflated_bytes(self) -> int:
        """The base inflation cap in bytes."""
        return self.max_inflated_mb * _MB

    def inflation_cap(self, declared_pixel_bytes: int = 0) -> int:
        """Bytes a deflated data set may inflate to, given the pixel data its header declares.

        The declared size is counted up to the base cap again, so a header that lies about
        its pixel data cannot raise the cap beyond twice the configured value.
        """
        allowance = min(max(declared_pixel_bytes, 0), self.max_inflated_bytes)
        return self.max_inflated_bytes + allowance


_current = ReadLimits()


def configure(limits: ReadLimits) -> None:
    """Use ``limits`` for every read from now on (the CLI and the app call it at start)."""
    global _current
    _current = limits


def current() -> ReadLimits:
    """The limits in force."""
    return _current
