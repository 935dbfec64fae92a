"""One exception hierarchy for every layer, so screens can show any failure the same way.

Each error carries a full-sentence ``message`` (quoting the offending value) and a short
``title`` for dialogs and notifications.
"""

from __future__ import annotations


class TuiviewerError(Exception):
    """Base of every error tuiviewer raises on purpose."""

    title: str = "Error"

    def __init__(self, message: str, title: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if title is not None:
            self.title = title

    def __str__(self) -> str:
        return self.message


class DicomReadError(TuiviewerError):
    """A file could not be read as DICOM at all."""

    title = "Cannot read file"


class NotDicomError(DicomReadError):
    """The file is not DICOM (no preamble/prefix and no parsable data elements)."""

    title = "Not DICOM"


class ValueValidationError(TuiviewerError):
    """A value typed by the user does not fit the element's VR; nothing was changed."""

    title = "Invalid value"


class EditError(TuiviewerError):
    """An edit (add, delete, set) cannot be applied to the dataset."""

    title = "Cannot edit"


class SaveError(TuiviewerError):
    """A dataset could not be written; the destination was left untouched."""

    title = "Cannot save"


class ExportError(TuiviewerError):
    """A de-identified export failed."""

    title = "Export failed"


class ConfigError(TuiviewerError):
    """A configuration file is invalid; the message names the file and the key."""

    title = "Configuration error"


class RenderError(TuiviewerError):
    """Pixel data cannot be turned into an image (bad attributes, frame out of range, ...)."""

    title = "Cannot render image"


class DecoderMissingError(RenderError):
    """The pixel data's transfer syntax needs a decoder that is not installed."""

    title = "Decoder missing"
