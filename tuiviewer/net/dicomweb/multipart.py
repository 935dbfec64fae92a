"""A streaming reader of ``multipart/related`` bodies (RFC 2046 5.1, PS3.18 8.6.1.2).

WADO-RS answers a series as one multipart message of DICOM files. This reader hands out each
part's bytes as they come off the socket, never a whole part (or message) in memory, and says
when the stream ends before the closing delimiter, so a cut connection never passes for a
complete series.
"""

from __future__ import annotations

from collections.abc import Iterator


class MultipartError(ValueError):
    """The body is not a complete multipart message; the message says where it broke off."""


def boundary_of(content_type: str) -> bytes | None:
    """The ``boundary`` parameter of a ``multipart/related`` Content-Type, or None."""
    media, _, params = content_type.partition(";")
    if media.strip().lower() != "multipart/related":
        return None
    for item in params.split(";"):
        name, _, value = item.strip().partition("=")
        if name.strip().lower() == "boundary" and value.strip():
            return value.strip().strip('"').encode("latin-1")
    return None


class Part:
    """One part: its headers, and :meth:`chunks` to read its body once, as it arrives."""

    def __init__(self, reader: MultipartReader, headers: dict[str, str]) -> None:
        self.headers = headers
        self._body = reader._body(self)
        self.done = False

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def chunks(self) -> Iterator[bytes]:
        """The body's bytes in pieces; raises :class:`MultipartError` if the stream is cut.

        Reading may stop early: the reader skips the rest before the next part.
        """
        # Not ``yield from``: closing this generator early must not close the body's, which
        # the reader still drains to reach the next part.
        for chunk in self._body:  # noqa: UP028
            yield chunk
        self.done = True


class MultipartReader:
    """Splits a stream of byte chunks into :class:`Part` objects, one after the other.

    Each part's body must be read (or it is skipped) before the next part is handed out.
    """

    _HEADER_LIMIT = 64 * 1024

    def __init__(self, chunks: Iterator[bytes], boundary: bytes) -> None:
        self._chunks = chunks
        self._marker = b"--" + boundary
        self._delimiter = b"\r\n" + self._marker
        self._data = bytearray()
        self._eof = False
        self.count = 0
        """Parts handed out so far."""
        self.bytes = 0
        """Bytes read from the stream so far."""

    def _fill(self) -> bool:
        if self._eof:
            return False
        for chunk in self._chunks:
            if chunk:
                self._data += chunk
                self.bytes += len(chunk)
                return True
        self._eof = True
        return False

    def _cut(self, where: str) -> MultipartError:
        return MultipartError(f"The multipart stream ended {where} (after {self.count} parts).")

    def parts(self) -> Iterator[Part]:
        """Yield each part; ends at the closing delimiter.

        Raises:
            MultipartError: no opening delimiter, bad part headers, or the stream ended
                before the closing delimiter.
        """
        # The opening delimiter may follow a preamble (RFC 2046 5.1.1), without a CRLF first.
        while True:
            at = self._data.find(self._marker)
            if at >= 0:
                del self._data[: at + len(self._marker)]
                break
            if len(self._data) > self._HEADER_LIMIT:
                raise MultipartError("The multipart body does not start with its boundary.")
            if not self._fill():
                raise self._cut("before its first boundary")
        while True:
            while len(self._data) < 2:
                if not self._fill():
                    raise self._cut("after a boundary")
            if self._data[:2] == b"--":
                return  # the closing delimiter; an epilogue may follow and is ignored
            while True:
                end = self._data.find(b"\r\n\r\n")
                if end >= 0:
                    break
                if len(self._data) > self._HEADER_LIMIT:
                    raise MultipartError(f"The headers of part {self.count + 1} never end.")
                if not self._fill():
                    raise self._cut(f"in the headers of part {self.count + 1}")
            raw = bytes(self._data[:end]).decode("latin-1")
            del self._data[: end + 4]
            headers: dict[str, str] = {}
            for line in raw.split("\r\n"):
                name, sep, value = line.partition(":")
                if sep:
                    headers[name.strip().lower()] = value.strip()
            part = Part(self, headers)
            self.count += 1
            yield part
            for _ in part._body:  # whatever the consumer left unread
                pass

    def _body(self, part: Part) -> Iterator[bytes]:
        length_text = part.headers.get("content-length", "")
        if length_text.isdigit():
            yield from self._counted(int(length_text))
            # The delimiter's CRLF follows the counted bytes.
            while len(self._data) < len(self._delimiter):
                if not self._fill():
                    raise self._cut(f"after part {self.count}")
            if self._data.startswith(self._delimiter):
                del self._data[: len(self._delimiter)]
                return
            # A wrong Content-Length: fall back to looking for the delimiter.
        yield from self._delimited()

    def _counted(self, length: int) -> Iterator[bytes]:
        left = length
        while left > 0:
            if not self._data and not self._fill():
                raise self._cut(f"inside part {self.count}")
            take = min(left, len(self._data))
            piece = bytes(self._data[:take])
            del self._data[:take]
            left -= take
            yield piece

    def _delimited(self) -> Iterator[bytes]:
        keep = len(self._delimiter) - 1
        while True:
            at = self._data.find(self._delimiter)
            if at >= 0:
                if at:
                    yield bytes(self._data[:at])
                del self._data[: at + len(self._delimiter)]
                return
            if len(self._data) > keep:
                safe = len(self._data) - keep
                yield bytes(self._data[:safe])
                del self._data[:safe]
            if not self._fill():
                raise self._cut(f"inside part {self.count}")
