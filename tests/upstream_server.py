"""A real OpenAI-compatible upstream for the tests, served by aiohttp on a loopback port.

It answers by the request's `model`, so one server covers every behaviour:
- any ordinary name: a chat completion (or an SSE stream when `stream` is true);
- `pause-stream`: sends the first chunk, then waits until the test calls `release()`;
- `slow`: waits `slow_seconds` before answering;
- `error-429` / `error-400`: an OpenAI-shaped error with that status;
- `error-500-html`: an HTML 500 page, which the gateway must not pass off as OpenAI's;
- `break-stream`: sends one chunk, then drops the connection.
Every request is recorded (method, path, headers, raw body) for assertions.
"""

from __future__ import annotations

import asyncio
import dataclasses
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


def stream_chunks(model: str, words: list[str]) -> list[bytes]:
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

    def release(self) -> None:
        self.released.set()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_get("/v1/models", self.models)
        return app

    async def _record(self, request: web.Request) -> SeenRequest:
        seen = SeenRequest(
            method=request.method,
            path=request.path,
            headers=dict(request.headers),
            body=await request.read(),
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
        data = seen.json
        model = data.get("model", "")
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
        if model == "slow":
            await asyncio.sleep(self.slow_seconds)
        if data.get("stream"):
            return await self._stream(request, model)
        return web.json_response(completion(model), headers={"x-request-id": "upstream-req-1"})

    async def _stream(self, request: web.Request, model: str) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        chunks = stream_chunks(model, self.words)
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
