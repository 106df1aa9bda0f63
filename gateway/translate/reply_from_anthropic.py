"""Anthropic's reply -> OpenAI's: a message as a `chat.completion`, an SSE stream as chunks.

Text blocks become `content`, `tool_use` blocks `tool_calls`, thinking blocks
`reasoning_content` (the field OpenAI-compatible reasoning providers use); `stop_reason` becomes
`finish_reason` and usage is mapped by `gateway.translate.mapping.openai_usage`. A block type the
request translator can never have asked for (server tools) is an `UpstreamError`.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.errors import UpstreamError
from gateway.translate import mapping

#: Blocks with nothing to show an OpenAI caller: the encrypted remains of redacted thinking.
_SKIPPED_BLOCKS = frozenset({"redacted_thinking"})


def _unexpected(what: str) -> UpstreamError:
    return UpstreamError(
        f"the Anthropic upstream sent {what}, which has no OpenAI form",
        code="upstream_untranslatable",
    )


def to_chat_completion(message: dict[str, Any], created: int) -> dict[str, Any]:
    """A `chat.completion` for an Anthropic message."""
    text: list[str] = []
    thinking: list[str] = []
    calls: list[dict[str, Any]] = []
    content = message.get("content")
    if not isinstance(content, list):
        raise _unexpected("a message without content blocks")
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            text.append(str(block.get("text", "")))
        elif kind == "thinking":
            thinking.append(str(block.get("thinking", "")))
        elif kind == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            calls.append(_tool_call(block, arguments))
        elif kind not in _SKIPPED_BLOCKS:
            raise _unexpected(f"a {kind!r} content block")
    reply: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(text) if text or not calls else None,
        "refusal": None,
    }
    if thinking:
        reply["reasoning_content"] = "".join(thinking)
    if calls:
        reply["tool_calls"] = calls
    usage = message.get("usage")
    return {
        "id": str(message.get("id", "")),
        "object": "chat.completion",
        "created": created,
        "model": str(message.get("model", "")),
        "choices": [
            {
                "index": 0,
                "message": reply,
                "logprobs": None,
                "finish_reason": mapping.finish_reason(message.get("stop_reason")) or "stop",
            }
        ],
        "usage": mapping.openai_usage(usage if isinstance(usage, dict) else {}),
    }


def _block_index(event: dict[str, Any]) -> int:
    index = event.get("index", 0)
    if isinstance(index, bool) or not isinstance(index, int):
        raise _unexpected("a content block event without an integer index")
    return index


def _tool_call(block: dict[str, Any], arguments: str) -> dict[str, Any]:
    return {
        "id": str(block.get("id", "")),
        "type": "function",
        "function": {"name": str(block.get("name", "")), "arguments": arguments},
    }


class ChatChunksFromAnthropic:
    """Feeds on Anthropic's stream events, in order, and returns the chat chunks each one makes.

    message_start -> the role chunk; text / input_json / thinking deltas -> content / tool call
    argument / reasoning_content chunks; a tool_use block's start -> the tool call's id and name;
    message_delta -> the finish_reason chunk; message_stop -> the usage chunk when the caller
    asked for it (`include_usage`). `ping`, block stops and signatures make no chunk; an `error`
    event becomes OpenAI's in-stream error object. `usage` is the OpenAI usage so far.
    """

    def __init__(self, created: int, *, include_usage: bool) -> None:
        self.created = created
        self.include_usage = include_usage
        self.id = ""
        self.model = ""
        self.anthropic_usage: dict[str, Any] = {}
        self.finish_reason: str | None = None
        self.done = False
        #: Anthropic content block index -> OpenAI tool call index.
        self._tool_index: dict[int, int] = {}

    @property
    def usage(self) -> dict[str, Any]:
        return mapping.openai_usage(self.anthropic_usage)

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [choice],
        }

    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        kind = event.get("type")
        if kind == "message_start":
            return self._start(event)
        if kind == "content_block_start":
            return self._block_start(event)
        if kind == "content_block_delta":
            return self._delta(event)
        if kind == "message_delta":
            return self._message_delta(event)
        if kind == "message_stop":
            return self._stop()
        if kind == "error":
            error = event.get("error") if isinstance(event.get("error"), dict) else {}
            assert isinstance(error, dict)
            error_type = str(error.get("type", "api_error"))
            message = str(error.get("message", "the upstream stream failed"))
            self.done = True
            return [
                {
                    "error": {
                        "message": message,
                        "type": error_type,
                        "param": None,
                        "code": error_type,
                    }
                }
            ]
        return []  # ping, content_block_stop, and event types added later

    def _start(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        message = event.get("message")
        if not isinstance(message, dict):
            raise _unexpected("message_start without a message")
        self.id = str(message.get("id", ""))
        self.model = str(message.get("model", ""))
        self._add_usage(message.get("usage"))
        return [self._chunk({"role": "assistant", "content": ""})]

    def _block_start(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        block = event.get("content_block")
        kind = block.get("type") if isinstance(block, dict) else None
        assert block is None or isinstance(block, dict)
        if kind == "tool_use" and block is not None:
            index = len(self._tool_index)
            self._tool_index[_block_index(event)] = index
            call = {"index": index, **_tool_call(block, "")}
            return [self._chunk({"tool_calls": [call]})]
        if kind == "text" and block is not None and block.get("text"):
            return [self._chunk({"content": block["text"]})]
        if kind in ("text", "thinking") or kind in _SKIPPED_BLOCKS:
            return []
        raise _unexpected(f"a {kind!r} content block")

    def _delta(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        delta = event.get("delta")
        if not isinstance(delta, dict):
            return []
        kind = delta.get("type")
        if kind == "text_delta":
            return [self._chunk({"content": str(delta.get("text", ""))})]
        if kind == "thinking_delta":
            return [self._chunk({"reasoning_content": str(delta.get("thinking", ""))})]
        if kind == "input_json_delta":
            index = self._tool_index.get(_block_index(event))
            if index is None:
                raise _unexpected("tool input for a block that is not a tool call")
            arguments = str(delta.get("partial_json", ""))
            call = {"index": index, "function": {"arguments": arguments}}
            return [self._chunk({"tool_calls": [call]})]
        return []  # signature_delta: Anthropic's check on thinking, nothing to show

    def _message_delta(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        self._add_usage(event.get("usage"))
        delta = event.get("delta")
        stop = delta.get("stop_reason") if isinstance(delta, dict) else None
        self.finish_reason = mapping.finish_reason(stop) or "stop"
        return [self._chunk({}, self.finish_reason)]

    def _stop(self) -> list[dict[str, Any]]:
        self.done = True
        if not self.include_usage:
            return []
        chunk = self._chunk({})
        chunk["choices"] = []
        chunk["usage"] = self.usage
        return [chunk]

    def _add_usage(self, usage: Any) -> None:
        """Counts in message_delta are cumulative: a later count replaces an earlier one."""
        if isinstance(usage, dict):
            self.anthropic_usage.update(
                (key, value) for key, value in usage.items() if value is not None
            )
