"""A real Anthropic Messages API upstream for the tests, served by aiohttp on a loopback port.

It speaks the API as Anthropic documents it: a key (`x-api-key`, or `Authorization: Bearer`, which
the SDK sends since 2.x) and `anthropic-version` are required (401 `authentication_error`, 400
`invalid_request_error`), `model`, `messages` and `max_tokens`
too; replies are a `message`, or with `stream: true` the exact event sequence (`message_start`
with input usage, `content_block_start`, `ping`, `content_block_delta`s, `content_block_stop`,
`message_delta` with `stop_reason` and cumulative usage, `message_stop`); errors are
`{"type": "error", "error": {"type", "message"}, "request_id"}` with a `request-id` header.
It answers by the request's `model`:
- any ordinary name: `TEXT` (one text delta per word when streamed);
- `tool-caller`: calls each offered tool in turn (input `{"city": "Paris"}`, streamed as two
  input_json_delta fragments), then answers with every tool result joined by " | ";
- `thinker`: a thinking block (thinking_delta, signature_delta), then the text;
- `max-tokens` / `stop-sequence`: stops for that reason;
- `error-NNN`: an Anthropic error with status NNN and its documented type;
- `stream-error`: a stream that sends message_start, then an `overloaded_error` event;
- `pause-stream`: sends message_start, then waits until the test calls `release()`;
- `break-stream`: sends message_start, then drops the connection.
`POST /v1/messages/count_tokens` answers `{"input_tokens": N}` (N: words in system + messages);
`GET /v1/models` lists `claude-test`.
`failures` queues error statuses for the next messages requests, whatever their model. Every
request is recorded (`seen`) for assertions.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import orjson
from aiohttp import web

from tests.support.upstream_server import UPSTREAM_KEY, SeenRequest

REQUEST_ID = "req_upstream_anthropic_1"
TEXT = "Hello from Claude"
THOUGHT = "Let me think about it."
SIGNATURE = "sig-abc123"
#: Usage every reply reports: 11 new input tokens, 5 written to and 3 read from the cache.
USAGE = {"input_tokens": 11, "cache_creation_input_tokens": 5, "cache_read_input_tokens": 3}
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}

Event = tuple[str, dict[str, Any]]


def error_response(status: int, message: str) -> web.Response:
    body = {
        "type": "error",
        "error": {"type": ERROR_TYPES.get(status, "api_error"), "message": message},
        "request_id": REQUEST_ID,
    }
    return web.json_response(body, status=status, headers={"request-id": REQUEST_ID})


def words_in(data: dict[str, Any]) -> int:
    """A stand-in tokenizer: the words of every text in system and messages."""
    texts: list[str] = []

    def collect(content: Any) -> None:
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            for block in content:
                if isinstance(block, dict):
                    collect(block.get("text"))
                    collect(block.get("content"))

    collect(data.get("system"))
    for message in data.get("messages") or []:
        collect(message.get("content") if isinstance(message, dict) else None)
    return sum(len(text.split()) for text in texts)


def tool_results(data: dict[str, Any]) -> list[str]:
    results = []
    for message in data.get("messages") or []:
        for block in message.get("content") if isinstance(message.get("content"), list) else []:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                content = block.get("content")
                if isinstance(content, list):
                    content = "".join(part.get("text", "") for part in content)
                results.append(str(content))
    return results


def reply_blocks(data: dict[str, Any]) -> tuple[list[dict[str, Any]], str, str | None]:
    """(content blocks, stop_reason, stop_sequence) for a request."""
    model = data["model"]
    if model == "tool-caller":
        results = tool_results(data)
        tools = data.get("tools") or []
        choice = (data.get("tool_choice") or {}).get("type")
        if choice != "none" and len(results) < len(tools):
            name = tools[len(results)]["name"]
            call = {"type": "tool_use", "id": f"toolu_{len(results)}", "name": name}
            return [{**call, "input": {"city": "Paris"}}], "tool_use", None
        return [{"type": "text", "text": "answer: " + " | ".join(results)}], "end_turn", None
    text = {"type": "text", "text": TEXT}
    if model == "thinker":
        thinking = {"type": "thinking", "thinking": THOUGHT, "signature": SIGNATURE}
        return [thinking, text], "end_turn", None
    if model == "max-tokens":
        return [text], "max_tokens", None
    if model == "stop-sequence":
        return [text], "stop_sequence", (data.get("stop_sequences") or ["STOP"])[0]
    return [text], "end_turn", None


def block_events(index: int, block: dict[str, Any]) -> list[Event]:
    """content_block_start, the deltas Anthropic streams for this kind of block, and stop."""
    kind = block["type"]
    start: dict[str, Any]
    if kind == "text":
        start = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": word} for word in pieces(block["text"])]
    elif kind == "thinking":
        start = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [
            {"type": "thinking_delta", "thinking": block["thinking"]},
            {"type": "signature_delta", "signature": block["signature"]},
        ]
    else:
        start = {**block, "input": {}}
        arguments = orjson.dumps(block["input"]).decode()
        middle = len(arguments) // 2
        deltas = [
            {"type": "input_json_delta", "partial_json": arguments[:middle]},
            {"type": "input_json_delta", "partial_json": arguments[middle:]},
        ]
    events: list[Event] = [
        (
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": start},
        )
    ]
    events += [
        ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
        for d in deltas
    ]
    events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    return events


def pieces(text: str) -> list[str]:
    """Text as Anthropic streams it: a few words per delta (here, one word and its space)."""
    return re.findall(r"\S+\s*|\s+", text) or [""]


def message_events(message: dict[str, Any]) -> list[Event]:
    """The whole documented sequence for a finished message."""
    start = {
        **message,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**USAGE, "output_tokens": 1},
    }
    events: list[Event] = [("message_start", {"type": "message_start", "message": start})]
    for index, block in enumerate(message["content"]):
        blocks = block_events(index, block)
        events += blocks[:1] + ([("ping", {"type": "ping"})] if index == 0 else []) + blocks[1:]
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]}
    events.append(
        ("message_delta", {"type": "message_delta", "delta": delta, "usage": message["usage"]})
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def encode(event: Event) -> bytes:
    return b"event: " + event[0].encode() + b"\ndata: " + orjson.dumps(event[1]) + b"\n\n"


class AnthropicUpstream:
    """The behaviour switches and the record of what arrived."""

    def __init__(self) -> None:
        self.seen: list[SeenRequest] = []
        self.released = asyncio.Event()
        self.first_event_sent = asyncio.Event()
        #: Statuses the next `/v1/messages` requests answer with (an Anthropic error each).
        self.failures: list[int] = []

    def release(self) -> None:
        self.released.set()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/messages", self.messages)
        app.router.add_post("/v1/messages/count_tokens", self.count_tokens)
        app.router.add_get("/v1/models", self.models)
        return app

    async def models(self, request: web.Request) -> web.StreamResponse:
        """Anthropic's model list (one page)."""
        self.seen.append(SeenRequest(request.method, request.path, dict(request.headers), b""))
        model = {
            "type": "model",
            "id": "claude-test",
            "display_name": "Claude Test",
            "created_at": "2025-01-01T00:00:00Z",
        }
        listing = {
            "data": [model],
            "has_more": False,
            "first_id": "claude-test",
            "last_id": "claude-test",
        }
        return web.json_response(listing, headers={"request-id": REQUEST_ID})

    async def _accept(self, request: web.Request) -> dict[str, Any] | web.Response:
        """The recorded, checked request body, or the error Anthropic would answer."""
        seen = SeenRequest(
            request.method, request.path, dict(request.headers), await request.read()
        )
        self.seen.append(seen)
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if UPSTREAM_KEY not in (request.headers.get("x-api-key"), bearer):
            return error_response(401, "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return error_response(400, "anthropic-version: header is required")
        try:
            data = seen.json
        except orjson.JSONDecodeError:
            return error_response(400, "The request body is not valid JSON.")
        if not isinstance(data, dict):
            return error_response(400, "The request body must be an object.")
        required = ["model", "messages"] + (
            ["max_tokens"] if request.path == "/v1/messages" else []
        )
        for name in required:
            if name not in data:
                return error_response(400, f"{name}: Field required")
        if not isinstance(data["model"], str) or not isinstance(data["messages"], list):
            return error_response(400, "model: must be a string; messages: must be a list")
        return data

    async def count_tokens(self, request: web.Request) -> web.StreamResponse:
        data = await self._accept(request)
        if isinstance(data, web.Response):
            return data
        return web.json_response(
            {"input_tokens": words_in(data)}, headers={"request-id": REQUEST_ID}
        )

    async def messages(self, request: web.Request) -> web.StreamResponse:
        data = await self._accept(request)
        if isinstance(data, web.Response):
            return data
        model = data["model"]
        if self.failures:
            return error_response(self.failures.pop(0), "failing as the test asked")
        if model.startswith("error-") and model[6:].isdigit():
            return error_response(int(model[6:]), f"upstream says {model[6:]}")
        blocks, stop, sequence = reply_blocks(data)
        output = sum(len(str(b.get("text", b.get("thinking", ""))).split()) for b in blocks) + 1
        message = {
            "id": "msg_upstream_1",
            "type": "message",
            "role": "assistant",
            "content": blocks,
            "model": model + "-20250101",
            "stop_reason": stop,
            "stop_sequence": sequence,
            "usage": {**USAGE, "output_tokens": output},
        }
        if data.get("stream") is not True:
            return web.json_response(message, headers={"request-id": REQUEST_ID})
        return await self._stream(request, model, message_events(message))

    async def _stream(
        self, request: web.Request, model: str, events: list[Event]
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "request-id": REQUEST_ID}
        )
        await response.prepare(request)
        if model == "stream-error":
            error = {"type": "overloaded_error", "message": "Overloaded"}
            events = [*events[:1], ("error", {"type": "error", "error": error})]
        for index, event in enumerate(events):
            await response.write(encode(event))
            if index == 0:
                self.first_event_sent.set()
                if model == "pause-stream":
                    await self.released.wait()
                if model == "break-stream":
                    assert request.transport is not None
                    request.transport.close()
                    return response
        await response.write_eof()
        return response
