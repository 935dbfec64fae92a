"""A small DICOMweb server in the test process that fails on purpose.

Each path answers as the test says: an HTTP status (401, 404, 413, 500...), a good multipart
series, or a multipart series that breaks off mid-way (the connection closes inside a part), so
the failure paths of the DICOMweb client meet a real socket and a real HTTP stack rather than a
mock. QIDO-RS answers come from the DICOM JSON the test hands in.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.support.ports import LOOPBACK


@dataclass
class Answer:
    """What one path answers."""

    status: int = 200
    json_body: Any = None
    """A JSON document (QIDO-RS results, a STOW-RS response)."""
    parts: list[bytes] = field(default_factory=list)
    """Bodies of a multipart/related application/dicom answer."""
    cut_after: int | None = None
    """Close the connection after this many bytes of the multipart body (a cut stream)."""
    content_length_parts: bool = True
    """Send a Content-Length header in each part (Orthanc does; not every server)."""


@dataclass
class Seen:
    """A request the server got."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


BOUNDARY = "tuiviewer-test-boundary"


def multipart(parts: list[bytes], with_length: bool = True) -> bytes:
    """A multipart/related body of DICOM parts."""
    out = bytearray()
    for part in parts:
        out += f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n".encode()
        if with_length:
            out += f"Content-Length: {len(part)}\r\n".encode()
        out += b"\r\n" + part + b"\r\n"
    out += f"--{BOUNDARY}--\r\n".encode()
    return bytes(out)


class FaultServer:
    """``with FaultServer() as server: server.answers["/dicom-web/studies"] = Answer(401)``.

    Paths are matched without their query; a path with no answer gets 404.
    """

    def __init__(self) -> None:
        self.answers: dict[str, Answer | Callable[[Seen], Answer]] = {}
        self.seen: list[Seen] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The DICOMweb base URL (``/dicom-web`` on the server)."""
        assert self._server is not None
        return f"http://{LOOPBACK}:{self._server.server_address[1]}/dicom-web"

    def answer(self, path: str, answer: Answer | Callable[[Seen], Answer]) -> None:
        """Set what ``/dicom-web{path}`` answers."""
        self.answers[f"/dicom-web{path}"] = answer

    def __enter__(self) -> FaultServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                seen = Seen(self.command, self.path, dict(self.headers.items()), body)
                owner.seen.append(seen)
                answer = owner.answers.get(self.path.split("?", 1)[0], Answer(404))
                if callable(answer):
                    answer = answer(seen)
                if answer.parts or answer.cut_after is not None:
                    payload = multipart(answer.parts, answer.content_length_parts)
                    self.send_response(answer.status)
                    self.send_header(
                        "Content-Type",
                        f'multipart/related; type="application/dicom"; boundary={BOUNDARY}',
                    )
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if answer.cut_after is not None:
                        self.wfile.write(payload[: answer.cut_after])
                        self.wfile.flush()
                        self.close_connection = True
                        return
                    self.wfile.write(payload)
                    return
                text = json.dumps(answer.json_body if answer.json_body is not None else {})
                data = text.encode() if answer.status != 204 else b""
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/dicom+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = _serve  # noqa: N815
            do_POST = _serve  # noqa: N815

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)


def qido_instance(study: str, series: str, sop: str, sop_class: str) -> dict[str, Any]:
    """One QIDO-RS instance result (DICOM JSON)."""
    return {
        "0020000D": {"vr": "UI", "Value": [study]},
        "0020000E": {"vr": "UI", "Value": [series]},
        "00080018": {"vr": "UI", "Value": [sop]},
        "00080016": {"vr": "UI", "Value": [sop_class]},
    }


def file_bytes(path: Path) -> bytes:
    return Path(path).read_bytes()
