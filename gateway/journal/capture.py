"""What the journal keeps of a streamed (SSE) reply, captured cheaply on the hot path.

The relay only appends the raw bytes it read, up to the capture limit, and counts what goes past
it; parsing (assembled text, tool calls, usage, chunk count) happens later, off the request path,
in `assemble_stream`. `UsageChunkFilter` hides the usage chunk the gateway asked the upstream for
on the client's behalf (see docs/journal.md, "Streams").
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson


@dataclasses.dataclass(slots=True)
class StreamCapture:
    """Raw SSE bytes as read from the upstream (or written by a handler), up to `limit`."""

    limit: int
    parts: list[bytes] = dataclasses.field(default_factory=list)
    size: int = 0
    truncated: bool = False
    #: `data:` lines seen past the limit, so the chunk count stays right for long streams.
    events_past_limit: int = 0
    #: True when the gateway added `stream_options.include_usage` for the journal's sake.
    usage_hidden: bool = False

    def add(self, data: bytes) -> None:
        if self.truncated:
            self.events_past_limit += data.count(b"data:")
            return
        room = self.limit - self.size
        if len(data) <= room:
            self.parts.append(data)
            self.size += len(data)
            return
        self.parts.append(data[:room])
        self.size += room
        self.truncated = True
        self.events_past_limit += data[room:].count(b"data:")


@dataclasses.dataclass(frozen=True, slots=True)
class AssembledStream:
    text: str
    tool_calls: list[dict[str, Any]]
    chunks: int
    usage: dict[str, Any] | None
    model: str | None
    finish_reason: str | None


def wants_usage(data: dict[str, Any]) -> bool:
    """Did the client ask for the stream's usage chunk (`stream_options.include_usage`)?"""
    options = data.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def _is_usage_only(event: dict[str, Any]) -> bool:
    return event.get("choices") == [] and isinstance(event.get("usage"), dict)


def _events(raw: bytes) -> list[Any]:
    """The JSON payloads of the complete `data:` events (a cut final event is skipped)."""
    out: list[Any] = []
    for block in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
        lines = [line[5:].strip() for line in block.split(b"\n") if line.startswith(b"data:")]
        payload = b"\n".join(lines)
        if not payload or payload == b"[DONE]":
            continue
        try:
            out.append(orjson.loads(payload))
        except orjson.JSONDecodeError:
            continue
    return out


def _merge_tool_call(calls: dict[int, dict[str, Any]], delta: dict[str, Any]) -> None:
    index = delta.get("index", 0)
    call = calls.setdefault(
        index,
        {"index": index, "id": None, "type": "function", "function": {"name": "", "arguments": ""}},
    )
    if delta.get("id"):
        call["id"] = delta["id"]
    if delta.get("type"):
        call["type"] = delta["type"]
    function = delta.get("function") or {}
    call["function"]["name"] += function.get("name") or ""
    call["function"]["arguments"] += function.get("arguments") or ""


def assemble_stream(capture: StreamCapture) -> AssembledStream:
    """Put the deltas together: content text, tool calls, usage, model and chunk count."""
    text: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    usage: dict[str, Any] | None = None
    model: str | None = None
    finish: str | None = None
    chunks = 0
    for event in _events(b"".join(capture.parts)):
        if not isinstance(event, dict):
            continue
        if isinstance(event.get("usage"), dict):
            usage = event["usage"]
        if capture.usage_hidden and _is_usage_only(event):
            continue  # the client never saw this one
        chunks += 1
        model = event.get("model") or model
        for choice in event.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str):
                text.append(delta["content"])
            for call in delta.get("tool_calls") or ():
                if isinstance(call, dict):
                    _merge_tool_call(calls, call)
            finish = choice.get("finish_reason") or finish
    if capture.truncated:
        chunks += capture.events_past_limit
    return AssembledStream(
        text="".join(text),
        tool_calls=[calls[i] for i in sorted(calls)],
        chunks=chunks,
        usage=usage,
        model=model,
        finish_reason=finish,
    )


class UsageChunkFilter:
    """Relays SSE event by event and drops the usage-only chunk the client did not ask for.

    Only events that can be that chunk (`"choices":[]`) are parsed; others pass untouched.
    """

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> bytes:
        buffer = self._pending + data
        end = buffer.rfind(b"\n\n")
        if end < 0:
            self._pending = buffer
            return b""
        complete, self._pending = buffer[: end + 2], buffer[end + 2 :]
        if b'"choices":[]' not in complete and b'"choices": []' not in complete:
            return complete
        kept = [block for block in complete[:-2].split(b"\n\n") if not self._hidden(block)]
        return b"".join(block + b"\n\n" for block in kept)

    def flush(self) -> bytes:
        rest, self._pending = self._pending, b""
        return rest

    @staticmethod
    def _hidden(block: bytes) -> bool:
        if b'"choices"' not in block or not block.lstrip().startswith(b"data:"):
            return False
        try:
            event = orjson.loads(block.lstrip()[5:].strip())
        except orjson.JSONDecodeError:
            return False
        return isinstance(event, dict) and _is_usage_only(event)
