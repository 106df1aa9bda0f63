"""Raw HTTP/1.1 over a blocking socket: send exact bytes, read back every response.

For what an HTTP client library refuses to send (NUL or non-UTF-8 bytes in headers, bad
framing, pipelined junk). The reader parses responses properly (Content-Length or chunked), so
text inside a body is never mistaken for a status line.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket


@dataclasses.dataclass(frozen=True, slots=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


class _Buffer:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def line(self) -> bytes | None:
        end = self.data.find(b"\r\n", self.at)
        if end < 0:
            return None
        line = self.data[self.at : end]
        self.at = end + 2
        return line

    def take(self, size: int) -> bytes:
        chunk = self.data[self.at : self.at + size]
        self.at += size
        return chunk


def parse_responses(data: bytes) -> list[RawResponse]:
    """Every complete response in `data`, in order."""
    buffer = _Buffer(data)
    responses = []
    while buffer.at < len(data):
        status_line = buffer.line()
        if status_line is None or not status_line.startswith(b"HTTP/1."):
            break
        headers: dict[str, str] = {}
        while (line := buffer.line()) not in (None, b""):
            assert line is not None
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = buffer.take(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while (size_line := buffer.line()) is not None:
                size = int(size_line.split(b";")[0] or b"0", 16)
                parts.append(buffer.take(size))
                buffer.line()
                if size == 0:
                    break
            body = b"".join(parts)
        else:
            body = buffer.take(len(data))
        responses.append(RawResponse(int(status_line.split()[1]), headers, body))
    return responses


def exchange(port: int, data: bytes, *, timeout: float = 5.0) -> list[RawResponse]:
    """Send `data` to 127.0.0.1:`port`, read until the server closes, parse the responses."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(OSError):  # refused early and closed: read what it said
            sock.sendall(data)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (ConnectionResetError, TimeoutError):
            pass
    return parse_responses(b"".join(chunks))
