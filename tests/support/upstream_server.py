"""A real OpenAI-compatible upstream for the tests, served by aiohttp on a loopback port.

It answers by the request's `model`, so one server covers every behaviour:
- any ordinary name: a chat completion (or an SSE stream when `stream` is true);
- `pause-stream`: sends the first chunk, then waits until the test calls `release()`;
- `slow`: waits `slow_seconds` before answering;
- `error-429` / `error-400`: an OpenAI-shaped error with that status;
- `error-500-html`: an HTML 500 page, which the gateway must not pass off as OpenAI's;
- `html-200`: a 200 HTML page, which is not an API answer either;
- `echo-key-401`: an OpenAI-shaped 401 that quotes the `Authorization` it was sent;
- `echo-headers-500`: a plain-text 500 that echoes every request header (credentials too), as
  some broken proxies do: the gateway must not repeat it to the tenant;
- `break-stream`: sends one chunk, then drops the connection;
- `tool-caller`: calls each offered tool in turn (`tool_caller_reply`), streamed too.
`failures` is a queue of failures for the next POSTs, whatever their model: `429` (with
`Retry-After: retry_after` when set), `500`, `503` (OpenAI-shaped), `html-502`, `slow` (waits
`slow_seconds`), `drop` (closes the connection without answering).
Every request is recorded (method, path, headers, raw body, arrival time) for assertions.
`/v1/completions`, `/v1/embeddings`, `/v1/responses` and Azure's deployment URLs answer too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import orjson
from aiohttp import web

UPSTREAM_KEY = "upstream-secret-key"


@dataclasses.dataclass
class SeenRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = dataclasses.field(default_factory=time.monotonic)
    query: str = ""

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)


def completion(model: str, content: str = "Hello from upstream") -> dict[str, Any]:
    return {
        "id": "chatcmpl-upstream-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model + "-2024",
        "system_fingerprint": "fp_test",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
    }


def stream_chunks(model: str, words: list[str], *, usage: bool = False) -> list[bytes]:
    base = {"id": "chatcmpl-upstream-s", "object": "chat.completion.chunk", "created": 1700000000}
    chunks = [
        {
            **base,
            "model": model,
            "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}],
        }
    ]
    chunks += [
        {
            **base,
            "model": model,
            "choices": [{"index": 0, "delta": {"content": w}, "finish_reason": None}],
        }
        for w in words
    ]
    chunks.append(
        {**base, "model": model, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    )
    if usage:  # stream_options.include_usage: one last chunk with no choices
        counts = {"prompt_tokens": 7, "completion_tokens": len(words)}
        counts["total_tokens"] = counts["prompt_tokens"] + counts["completion_tokens"]
        chunks.append({**base, "model": model, "choices": [], "usage": counts})
    return [b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks] + [b"data: [DONE]\n\n"]


def text_completion(model: str) -> dict[str, Any]:
    return {
        "id": "cmpl-upstream-1",
        "object": "text_completion",
        "created": 1700000000,
        "model": model,
        "choices": [{"text": " world", "index": 0, "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def completion_text_chunks(model: str, *, usage: bool = False) -> list[bytes]:
    whole = text_completion(model)
    chunks = [
        {
            **{k: v for k, v in whole.items() if k != "usage"},
            "choices": [{"text": t, "index": 0, "logprobs": None, "finish_reason": None}],
        }
        for t in (" wor", "ld")
    ]
    if usage:  # stream_options.include_usage: one last chunk with no choices
        chunks.append({**chunks[0], "choices": [], "usage": whole["usage"]})
    return [b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks] + [b"data: [DONE]\n\n"]


def embedding_reply(model: str, data: dict[str, Any]) -> dict[str, Any]:
    inputs = data.get("input")
    count = len(inputs) if isinstance(inputs, list) else 1
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]} for i in range(count)
        ],
        "model": model,
        "usage": {"prompt_tokens": count, "total_tokens": count},
    }


def response_object(model: str, text: str = "Hi from responses") -> dict[str, Any]:
    return {
        "id": "resp_upstream_1",
        "object": "response",
        "created_at": 1700000000,
        "status": "completed",
        "model": model,
        "output": [
            {
                "type": "message",
                "id": "msg_1",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        ],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": 3,
            "output_tokens": 4,
            "total_tokens": 7,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
        },
    }


def response_events(model: str) -> list[bytes]:
    final = response_object(model)
    events = [
        (
            "response.created",
            {
                "type": "response.created",
                "sequence_number": 0,
                "response": {**final, "status": "in_progress", "output": []},
            },
        ),
        (
            "response.output_text.delta",
            {
                "type": "response.output_text.delta",
                "sequence_number": 1,
                "item_id": "msg_1",
                "output_index": 0,
                "content_index": 0,
                "delta": "Hi from responses",
                "logprobs": [],
            },
        ),
        (
            "response.completed",
            {"type": "response.completed", "sequence_number": 2, "response": final},
        ),
    ]
    return [
        b"event: " + name.encode() + b"\ndata: " + orjson.dumps(body) + b"\n\n"
        for name, body in events
    ]


def tool_caller_reply(data: dict[str, Any]) -> dict[str, Any]:
    """Model `tool-caller`: calls each offered tool in turn, one per request (arguments
    `{"city": "Paris"}`), then answers with every tool result joined by " | "."""
    results = [m["content"] for m in data["messages"] if m.get("role") == "tool"]
    tools = data.get("tools") or []
    reply = completion("tool-caller", "answer: " + " | ".join(results))
    if data.get("tool_choice") != "none" and len(results) < len(tools):
        name = tools[len(results)]["function"]["name"]
        call = {
            "id": f"call_{len(results)}",
            "type": "function",
            "function": {"name": name, "arguments": orjson.dumps({"city": "Paris"}).decode()},
        }
        message = {"role": "assistant", "content": None, "tool_calls": [call], "refusal": None}
        reply["choices"] = [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": "tool_calls"}
        ]
    return reply


def tool_caller_chunks(data: dict[str, Any]) -> list[bytes]:
    """`tool-caller` streamed: the role, the content or each call's id and name then its
    arguments in two fragments, the finish reason, and usage when asked for."""
    reply = tool_caller_reply(data)
    message, finish = reply["choices"][0]["message"], reply["choices"][0]["finish_reason"]
    base = {"id": "chatcmpl-tools-s", "object": "chat.completion.chunk", "created": 1700000000}

    def chunk(delta: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": reason}
        return {**base, "model": "tool-caller", "choices": [choice]}

    chunks = [chunk({"role": "assistant", "content": ""})]
    if message["content"]:
        chunks.append(chunk({"content": message["content"]}))
    for index, call in enumerate(message.get("tool_calls") or []):
        arguments = call["function"]["arguments"]
        middle = len(arguments) // 2
        head = {"name": call["function"]["name"], "arguments": arguments[:middle]}
        first = {"index": index, "id": call["id"], "type": "function", "function": head}
        chunks.append(chunk({"tool_calls": [first]}))
        rest = {"index": index, "function": {"arguments": arguments[middle:]}}
        chunks.append(chunk({"tool_calls": [rest]}))
    chunks.append(chunk({}, finish))
    if (data.get("stream_options") or {}).get("include_usage"):
        chunks.append({**base, "model": "tool-caller", "choices": [], "usage": reply["usage"]})
    return [b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks] + [b"data: [DONE]\n\n"]


class UpstreamServer:
    """Holds the behaviour switches and the record of what arrived."""

    def __init__(self) -> None:
        self.seen: list[SeenRequest] = []
        self.slow_seconds = 5.0
        self.released = asyncio.Event()
        self.first_chunk_sent = asyncio.Event()
        self.disconnected = asyncio.Event()
        self.words = ["Hello", " from", " the", " stream"]
        self.failures: list[str] = []
        self.retry_after: str | None = None

    def release(self) -> None:
        self.released.set()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_get("/v1/models", self.models)
        app.router.add_post("/v1/completions", self.other)
        app.router.add_post("/v1/embeddings", self.other)
        app.router.add_post("/v1/responses", self.other)
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self.chat)
        app.router.add_post("/openai/deployments/{deployment}/{kind}", self.other)
        app.router.add_post("/openai/responses", self.other)
        app.router.add_get("/openai/models", self.models)
        return app

    async def _failure(self, request: web.Request) -> web.StreamResponse | None:
        if not self.failures:
            return None
        failure = self.failures.pop(0)
        if failure == "drop":
            assert request.transport is not None
            request.transport.close()
            raise asyncio.CancelledError
        if failure == "slow":
            await asyncio.sleep(self.slow_seconds)
            return None
        if failure == "html-502":
            return web.Response(
                status=502, text="<html>bad gateway</html>", content_type="text/html"
            )
        status = int(failure)
        headers = {"Retry-After": self.retry_after} if status == 429 and self.retry_after else {}
        body = {"error": {"message": f"failure {status}", "type": "t", "param": None, "code": None}}
        return web.json_response(body, status=status, headers=headers)

    async def other(self, request: web.Request) -> web.StreamResponse:
        """Completions, embeddings, responses: a minimal well-formed reply of each kind."""
        seen = await self._record(request)
        failed = await self._failure(request)
        if failed is not None:
            return failed
        data = seen.json
        model = data.get("model", "")
        kind = request.match_info.get("kind") or request.path.rsplit("/", 1)[-1]
        if kind == "embeddings":
            return web.json_response(embedding_reply(model, data))
        if kind == "completions":
            if data.get("stream"):
                options = data.get("stream_options") or {}
                usage = options.get("include_usage") is True
                return await self._stream_events(
                    request, completion_text_chunks(model, usage=usage)
                )
            return web.json_response(text_completion(model))
        if data.get("stream"):
            return await self._stream_events(request, response_events(model))
        return web.json_response(response_object(model))

    async def _stream_events(self, request: web.Request, events: list[bytes]) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for event in events:
            await response.write(event)
        await response.write_eof()
        return response

    async def _record(self, request: web.Request) -> SeenRequest:
        seen = SeenRequest(
            method=request.method,
            path=request.path,
            headers=dict(request.headers),
            body=await request.read(),
            query=request.query_string,
        )
        self.seen.append(seen)
        return seen

    async def models(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        return web.json_response(
            {
                "object": "list",
                "data": [{"id": "gpt-test", "object": "model", "created": 0, "owned_by": "test"}],
            }
        )

    async def chat(self, request: web.Request) -> web.StreamResponse:
        seen = await self._record(request)
        failed = await self._failure(request)
        if failed is not None:
            return failed
        data = seen.json
        model = data.get("model", "")
        if model == "html-200":  # a captive portal or misrouted proxy answering 200
            return web.Response(status=200, text="<html>oops</html>", content_type="text/html")
        if model == "echo-key-401":  # an OpenAI-shaped error that quotes the key it was sent
            said = request.headers.get("Authorization", "")
            error = {"message": f"bad key {said}", "type": "auth", "param": None, "code": None}
            return web.json_response({"error": error}, status=401)
        if model == "echo-headers-500":
            echoed = "\n".join(f"{name}: {value}" for name, value in request.headers.items())
            return web.Response(status=500, text=echoed)
        if model.startswith("error-") and model[6:9].isdigit() and not model.endswith("html"):
            status = int(model[6:9])
            body = {
                "error": {
                    "message": f"upstream says {status}",
                    "type": "test_error",
                    "param": None,
                    "code": f"e{status}",
                }
            }
            return web.json_response(
                body, status=status, headers={"x-request-id": "upstream-req-1"}
            )
        if model == "error-500-html":
            return web.Response(status=500, text="<html>oops</html>", content_type="text/html")
        if model == "tool-caller":
            if data.get("stream"):
                return await self._stream_events(request, tool_caller_chunks(data))
            return web.json_response(tool_caller_reply(data))
        if model == "slow":
            await asyncio.sleep(self.slow_seconds)
        if data.get("stream"):
            options = data.get("stream_options") or {}
            return await self._stream(request, model, usage=options.get("include_usage") is True)
        return web.json_response(completion(model), headers={"x-request-id": "upstream-req-1"})

    async def _stream(
        self, request: web.Request, model: str, *, usage: bool = False
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        chunks = stream_chunks(model, self.words, usage=usage)
        try:
            for index, chunk in enumerate(chunks):
                await response.write(chunk)
                if index == 0:
                    self.first_chunk_sent.set()
                    if model == "pause-stream":
                        await self.released.wait()
                    if model == "break-stream":
                        assert request.transport is not None
                        request.transport.close()
                        return response
                if model == "pause-stream":
                    await asyncio.sleep(0.01)
        except (ConnectionResetError, asyncio.CancelledError):
            self.disconnected.set()
            raise
        await response.write_eof()
        return response
