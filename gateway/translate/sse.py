"""Server-sent events (the WHATWG event-stream format), as both APIs stream them.

`SSEParser` is incremental: feed it bytes as they arrive, in any split, and it returns the
complete events so far. Anthropic names its events (`event: message_start`); OpenAI sends bare
`data:` lines and ends with `data: [DONE]`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson


@dataclasses.dataclass(frozen=True, slots=True)
class ServerSentEvent:
    event: str
    data: str

    def json(self) -> Any:
        """The data as JSON (raises `orjson.JSONDecodeError` when it is not)."""
        return orjson.loads(self.data)


class SSEParser:
    """Splits a byte stream into events; comments (`: ...`) and `id:` / `retry:` are skipped."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[ServerSentEvent]:
        self._buffer += data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        events = []
        while (end := self._buffer.find(b"\n\n")) != -1:
            block, self._buffer = self._buffer[:end], self._buffer[end + 2 :]
            event = _parse_block(block)
            if event is not None:
                events.append(event)
        return events

    def flush(self) -> list[ServerSentEvent]:
        """An event the stream ended without its blank line, if any."""
        block, self._buffer = self._buffer.strip(b"\n"), b""
        event = _parse_block(block) if block else None
        return [event] if event is not None else []


def _parse_block(block: bytes) -> ServerSentEvent | None:
    name = "message"
    data: list[str] = []
    for raw in block.split(b"\n"):
        line = raw.decode("utf-8", "replace")
        if not line or line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
    if not data:
        return None
    return ServerSentEvent(name, "\n".join(data))


def encode_event(event: str, data: dict[str, Any]) -> bytes:
    """One named event, as Anthropic sends them."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def encode_data(data: dict[str, Any]) -> bytes:
    """One unnamed `data:` event, as OpenAI sends its chunks."""
    return b"data: " + orjson.dumps(data) + b"\n\n"


#: The line that ends an OpenAI stream.
DONE = b"data: [DONE]\n\n"
