"""The multipart reader hands each part over as it arrives and never takes a cut stream for a
complete one, whatever the chunk boundaries."""

from __future__ import annotations

import pytest

from tests.support.webfaults import BOUNDARY, multipart
from tuiviewer.net.dicomweb.multipart import MultipartError, MultipartReader, boundary_of

PARTS = [b"first part \r\n--not-the-boundary", b"", b"x" * 5000, b"\r\n--tuiviewer-test"]


def _read(body: bytes, size: int) -> list[bytes]:
    chunks = (body[i : i + size] for i in range(0, len(body), size))
    reader = MultipartReader(chunks, BOUNDARY.encode())
    return [b"".join(part.chunks()) for part in reader.parts()]


@pytest.mark.parametrize("with_length", [True, False])
@pytest.mark.parametrize("size", [1, 7, 64, 100_000])
def test_parts_come_out_whole_whatever_the_chunking(with_length: bool, size: int) -> None:
    body = b"preamble ignored\r\n" + multipart(PARTS, with_length) + b"epilogue"
    assert _read(body, size) == PARTS


@pytest.mark.parametrize("with_length", [True, False])
def test_a_stream_cut_anywhere_is_an_error_not_a_short_series(with_length: bool) -> None:
    body = multipart(PARTS, with_length)
    for cut in range(0, len(body) - 4, 97):
        with pytest.raises(MultipartError, match="ended"):
            _read(body[:cut], 50)


def test_a_part_left_half_read_is_skipped_before_the_next() -> None:
    body = multipart([b"a" * 1000, b"second"])
    chunks = (body[i : i + 10] for i in range(0, len(body), 10))
    reader = MultipartReader(chunks, BOUNDARY.encode())
    got = []
    for part in reader.parts():
        first = next(iter(part.chunks()))
        got.append(first)
    assert len(got) == 2
    assert set(got[0]) == {ord("a")} and b"second".startswith(got[1])


def test_the_boundary_comes_from_the_content_type() -> None:
    assert boundary_of('multipart/related; type="application/dicom"; boundary="abc"') == b"abc"
    assert boundary_of("multipart/related; boundary=xyz; type=application/dicom") == b"xyz"
    assert boundary_of("application/dicom") is None
