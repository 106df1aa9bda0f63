"""OpenAI's reply -> Anthropic's: a `chat.completion` as a message, chunks as the event sequence.

The events come in the order Anthropic documents: `message_start`, then for each content block
`content_block_start`, its deltas, `content_block_stop` (a `ping` after the first block starts),
then `message_delta` with `stop_reason` and usage, then `message_stop`. OpenAI sends usage only
at the end of a stream, so `message_start` carries zero counts and `message_delta` the real
ones (input, output and cache read tokens; the Anthropic SDK takes them from there).
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.errors import UpstreamError
from gateway.translate import mapping


def _message_shell(id_: str, model: str, usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": id_,
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": model,
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage,
    }


def to_anthropic_message(completion: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic message for a `chat.completion` (its first choice)."""
    choices = completion.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise UpstreamError(
            "the OpenAI upstream answered without a choice", code="upstream_bad_response"
        )
    choice = choices[0]
    reply = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    assert isinstance(reply, dict)
    blocks: list[dict[str, Any]] = []
    if reply.get("reasoning_content"):
        blocks.append(
            {"type": "thinking", "thinking": str(reply["reasoning_content"]), "signature": ""}
        )
    if reply.get("content"):
        blocks.append({"type": "text", "text": str(reply["content"])})
    for call in _list(reply.get("tool_calls")):
        if not isinstance(call, dict):
            continue
        function = call.get("function") if isinstance(call.get("function"), dict) else {}
        assert isinstance(function, dict)
        blocks.append(
            {
                "type": "tool_use",
                "id": str(call.get("id", "")),
                "name": str(function.get("name", "")),
                "input": _arguments(function.get("arguments")),
            }
        )
    usage = completion.get("usage")
    message = _message_shell(
        str(completion.get("id", "")),
        str(completion.get("model", "")),
        mapping.anthropic_usage(usage if isinstance(usage, dict) else {}),
    )
    message["content"] = blocks
    message["stop_reason"] = mapping.stop_reason(choice.get("finish_reason")) or "end_turn"
    return message


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _arguments(arguments: Any) -> dict[str, Any]:
    try:
        parsed = orjson.loads(arguments or "{}")
    except (orjson.JSONDecodeError, TypeError):
        parsed = None
    if not isinstance(parsed, dict):
        raise UpstreamError(
            "the OpenAI upstream sent tool call arguments that are not a JSON object",
            code="upstream_bad_response",
        )
    return parsed


class AnthropicEventsFromChat:
    """Feeds on chat chunks and returns `(event name, data)` pairs in Anthropic's order.

    Call `feed(chunk)` per chunk and `finish()` when the stream ends (`[DONE]`); `finish()`
    closes the open block and sends `message_delta` and `message_stop`. An OpenAI in-stream
    error object becomes Anthropic's `error` event and ends the sequence.
    """

    def __init__(self, model: str) -> None:
        self.model = model
        self.started = False
        self.done = False
        self.usage: dict[str, Any] = {}
        self.stop_reason: str | None = None
        self._block: tuple[str, int] | None = None  # (kind, OpenAI tool index or -1)
        self._blocks = 0
        self._pinged = False
        #: OpenAI tool call index -> Anthropic content block index.
        self._tool_blocks: dict[int, int] = {}

    def feed(self, chunk: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        if self.done:
            return []
        if isinstance(chunk.get("error"), dict):
            return self._error(chunk["error"])
        events = [] if self.started else self._start(chunk)
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        for choice in _list(chunk.get("choices")):
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
            assert isinstance(delta, dict)
            if delta.get("reasoning_content"):
                events += self._open("thinking", -1)
                events.append(
                    self._delta(
                        {"type": "thinking_delta", "thinking": str(delta["reasoning_content"])}
                    )
                )
            if delta.get("content"):
                events += self._open("text", -1)
                events.append(self._delta({"type": "text_delta", "text": str(delta["content"])}))
            for call in _list(delta.get("tool_calls")):
                events += self._tool_call(call)
            if choice.get("finish_reason"):
                self.stop_reason = mapping.stop_reason(choice["finish_reason"])
        return events

    def finish(self) -> list[tuple[str, dict[str, Any]]]:
        if self.done:
            return []
        events = [] if self.started else self._start({})
        events += self._close()
        usage = mapping.anthropic_usage(self.usage)
        delta = {"stop_reason": self.stop_reason or "end_turn", "stop_sequence": None}
        events.append(("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}))
        events.append(("message_stop", {"type": "message_stop"}))
        self.done = True
        return events

    def _start(self, chunk: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        self.started = True
        self.model = str(chunk.get("model") or self.model)
        zero = {"input_tokens": 0, "output_tokens": 0}
        message = _message_shell(str(chunk.get("id", "")), self.model, zero)
        return [("message_start", {"type": "message_start", "message": message})]

    def _delta(self, delta: dict[str, Any], index: int | None = None) -> tuple[str, dict[str, Any]]:
        index = self._blocks - 1 if index is None else index
        return (
            "content_block_delta",
            {"type": "content_block_delta", "index": index, "delta": delta},
        )

    def _close(self) -> list[tuple[str, dict[str, Any]]]:
        if self._block is None:
            return []
        self._block = None
        index = self._blocks - 1
        return [("content_block_stop", {"type": "content_block_stop", "index": index})]

    def _open(
        self, kind: str, tool: int, block: dict[str, Any] | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        """Start a block unless that block is the open one (closing the open one first)."""
        if self._block == (kind, tool):
            return []
        events = self._close()
        if block is None:
            block = (
                {"type": "text", "text": ""}
                if kind == "text"
                else {
                    "type": "thinking",
                    "thinking": "",
                    "signature": "",
                }
            )
        self._block = (kind, tool)
        start = {"type": "content_block_start", "index": self._blocks, "content_block": block}
        self._blocks += 1
        events.append(("content_block_start", start))
        if not self._pinged:
            self._pinged = True
            events.append(("ping", {"type": "ping"}))
        return events

    def _tool_call(self, call: Any) -> list[tuple[str, dict[str, Any]]]:
        """A call's first fragment (with its id) starts a tool_use block; later fragments are
        input_json deltas of that call's block, wherever it stands."""
        if not isinstance(call, dict):
            return []
        tool = call.get("index", 0)
        if isinstance(tool, bool) or not isinstance(tool, int):
            raise UpstreamError(
                "the OpenAI upstream sent a tool call without an integer index",
                code="upstream_bad_response",
            )
        function = call.get("function") if isinstance(call.get("function"), dict) else {}
        assert isinstance(function, dict)
        events: list[tuple[str, dict[str, Any]]] = []
        if tool not in self._tool_blocks:
            block = {
                "type": "tool_use",
                "id": str(call.get("id") or ""),
                "name": str(function.get("name") or ""),
                "input": {},
            }
            events += self._open("tool_use", tool, block)
            self._tool_blocks[tool] = self._blocks - 1
        if function.get("arguments"):
            delta = {"type": "input_json_delta", "partial_json": function["arguments"]}
            events.append(self._delta(delta, self._tool_blocks[tool]))
        return events

    def _error(self, error: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        self.done = True
        message = str(error.get("message", "the upstream stream failed"))
        body = {"type": "error", "error": {"type": "api_error", "message": message}}
        return [("error", body)]
