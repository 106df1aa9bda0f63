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

from gateway.usage import Usage, merge_stream_usage, usage_in_bytes, usage_of_event

#: Bytes of a stream's end kept past the capture limit, and searched for its usage.
TAIL_BYTES = 8192


@dataclasses.dataclass(slots=True)
class StreamCapture:
    """Raw SSE bytes as read from the upstream (or written by a handler), up to `limit`; past
    it, only the last `TAIL_BYTES` are kept, which is where a stream's usage is."""

    limit: int
    parts: list[bytes] = dataclasses.field(default_factory=list)
    size: int = 0
    truncated: bool = False
    #: `data:` lines seen past the limit, so the chunk count stays right for long streams.
    events_past_limit: int = 0
    #: The stream's last bytes once it is past the limit (before that, `parts` has them).
    overflow_tail: bytes = b""

    def add(self, data: bytes) -> None:
        if self.truncated:
            self.events_past_limit += data.count(b"data:")
            self.overflow_tail = (self.overflow_tail + data)[-TAIL_BYTES:]
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
        self.overflow_tail = data[-TAIL_BYTES:]

    def tail(self) -> bytes:
        """The last `TAIL_BYTES` or more of the stream, wherever the limit cut it."""
        if self.truncated:
            return self.overflow_tail
        tail: list[bytes] = []
        size = 0
        for part in reversed(self.parts):
            tail.append(part)
            size += len(part)
            if size >= TAIL_BYTES:
                break
        return b"".join(reversed(tail))

    def head(self) -> bytes:
        return self.parts[0][:TAIL_BYTES] if self.parts else b""

    def events(self) -> int:
        """`data:` events seen so far (framing included: an estimate for metering)."""
        return sum(part.count(b"data:") for part in self.parts) + self.events_past_limit


@dataclasses.dataclass(frozen=True, slots=True)
class AssembledStream:
    text: str
    tool_calls: list[dict[str, Any]]
    chunks: int
    usage: Usage | None
    model: str | None
    finish_reason: str | None


def is_usage_only(event: dict[str, Any]) -> bool:
    """The usage-only chunk of a chat or completions stream (`"choices": []`)."""
    return event.get("choices") == [] and isinstance(event.get("usage"), dict)


def _events(raw: bytes) -> list[Any]:
    """The JSON payloads of the complete `data:` events (a cut final event is skipped)."""
    out: list[Any] = []
    loads, error = orjson.loads, orjson.JSONDecodeError
    if b"\r" in raw:
        raw = raw.replace(b"\r\n", b"\n")
    for block in raw.split(b"\n\n"):
        if b"\n" not in block:  # one line, the usual shape: no list of lines to build
            if not block.startswith(b"data:"):
                continue
            payload = block[5:].strip()
        else:
            lines = [line[5:].strip() for line in block.split(b"\n") if line.startswith(b"data:")]
            payload = b"\n".join(lines)
        if not payload or payload == b"[DONE]":
            continue
        try:
            out.append(loads(payload))
        except error:
            continue
    return out


def _merge_tool_call(calls: dict[int, dict[str, Any]], delta: dict[str, Any]) -> None:
    index = delta.get("index", 0)
    if not isinstance(index, int):
        return
    call = calls.setdefault(
        index,
        {"index": index, "id": None, "type": "function", "function": {"name": "", "arguments": ""}},
    )
    if isinstance(delta.get("id"), str):
        call["id"] = delta["id"]
    if isinstance(delta.get("type"), str):
        call["type"] = delta["type"]
    function = delta.get("function")
    if isinstance(function, dict):
        if isinstance(function.get("name"), str):
            call["function"]["name"] += function["name"]
        if isinstance(function.get("arguments"), str):
            call["function"]["arguments"] += function["arguments"]


class _Assembler:
    """Folds the events of any stream shape: chat chunks, completions chunks, the Responses
    API's typed events, and Anthropic's Messages events."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.usage: Usage | None = None
        self.model: str | None = None
        self.finish: str | None = None

    def add(self, event: dict[str, Any]) -> None:
        if "usage" in event or "response" in event or "message" in event:  # where usage is
            self.usage = merge_stream_usage(self.usage, usage_of_event(event))
        model = event.get("model")
        if isinstance(model, str):
            self.model = model
        kind = event.get("type")
        if isinstance(kind, str):
            self._typed(kind, event)
            return
        for choice in event.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            if isinstance(delta, dict):
                if isinstance(delta.get("content"), str):
                    self.text.append(delta["content"])
                for call in delta.get("tool_calls") or ():
                    if isinstance(call, dict):
                        _merge_tool_call(self.calls, call)
            elif isinstance(choice.get("text"), str):  # completions
                self.text.append(choice["text"])
            if isinstance(choice.get("finish_reason"), str):
                self.finish = choice["finish_reason"]

    def _typed(self, kind: str, event: dict[str, Any]) -> None:
        if kind == "response.output_text.delta" and isinstance(event.get("delta"), str):
            self.text.append(event["delta"])
        if kind.startswith(("message_", "content_block_")):
            self._anthropic(kind, event)
            return
        response = event.get("response")
        if isinstance(response, dict):
            if isinstance(response.get("model"), str):
                self.model = response["model"]
            if kind in ("response.completed", "response.incomplete", "response.failed"):
                status = response.get("status")
                self.finish = status if isinstance(status, str) else self.finish

    def _anthropic(self, kind: str, event: dict[str, Any]) -> None:
        """Anthropic's events: text and tool-input deltas by block index, the stop reason."""
        index = event.get("index")
        message = event.get("message")
        if kind == "message_start" and isinstance(message, dict):
            if isinstance(message.get("model"), str):
                self.model = message["model"]
        elif kind == "content_block_start" and isinstance(index, int):
            block = event.get("content_block")
            if isinstance(block, dict) and block.get("type") == "tool_use":
                call = {"index": index, "id": block.get("id"), "type": "function"}
                function = {"name": block.get("name"), "arguments": ""}
                _merge_tool_call(self.calls, {**call, "function": function})
        elif kind == "content_block_delta" and isinstance(index, int):
            delta = event.get("delta")
            if not isinstance(delta, dict):
                return
            if delta.get("type") == "text_delta" and isinstance(delta.get("text"), str):
                self.text.append(delta["text"])
            elif delta.get("type") == "input_json_delta" and index in self.calls:
                arguments = delta.get("partial_json")
                _merge_tool_call(self.calls, {"index": index, "function": {"arguments": arguments}})
        elif kind == "message_delta" and isinstance(event.get("delta"), dict):
            stop = event["delta"].get("stop_reason")
            self.finish = stop if isinstance(stop, str) else self.finish


def assemble_stream(capture: StreamCapture, usage_hidden: bool = False) -> AssembledStream:
    """Put the events together: text, tool calls, usage, model and the chunks the client got."""
    assembler = _Assembler()
    chunks = 0
    for event in _events(b"".join(capture.parts)):
        if not isinstance(event, dict):
            continue
        assembler.add(event)
        if usage_hidden and is_usage_only(event):
            continue  # the client never saw this one
        chunks += 1
    usage = assembler.usage
    if capture.truncated:
        chunks += capture.events_past_limit
        usage = merge_stream_usage(usage, usage_in_bytes(capture.tail()))
    return AssembledStream(
        text="".join(assembler.text),
        tool_calls=[assembler.calls[i] for i in sorted(assembler.calls)],
        chunks=chunks,
        usage=usage,
        model=assembler.model,
        finish_reason=assembler.finish,
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
        return isinstance(event, dict) and is_usage_only(event)
