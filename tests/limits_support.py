"""Helpers for the limit tests: an upstream that reports stream usage, and waiting on Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from redis.asyncio import Redis

from gateway.store import keys
from tests.upstream_server import UpstreamServer, stream_chunks

#: The usage the upstream reports for a stream: 7 prompt tokens, one token per word.
STREAM_PROMPT_TOKENS = 7


class UsageUpstream(UpstreamServer):
    """The suite's upstream, plus OpenAI's final usage chunk when a stream asks for it."""

    async def _stream(self, request: web.Request, model: str) -> web.StreamResponse:
        data = orjson.loads(await request.read())
        options = data.get("stream_options") or {}
        if not options.get("include_usage") or model.endswith("-stream"):
            return await super()._stream(request, model)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        chunks = stream_chunks(model, self.words)
        usage = {
            "id": "chatcmpl-upstream-s",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": model,
            "choices": [],
            "usage": {
                "prompt_tokens": STREAM_PROMPT_TOKENS,
                "completion_tokens": len(self.words),
                "total_tokens": STREAM_PROMPT_TOKENS + len(self.words),
            },
        }
        for chunk in chunks[:-1]:
            await response.write(chunk)
        await response.write(b"data: " + orjson.dumps(usage) + b"\n\n")
        await response.write(chunks[-1])
        await response.write_eof()
        return response


async def wait_until(
    condition: Callable[[], Awaitable[bool]], within: float = 5.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def tokens_in_window(redis: Redis, account: str, scope: str) -> int:
    value: Any = await redis.hget(keys.limit_token_amounts(account, scope), "_sum")
    return int(value or 0)


async def in_flight(redis: Redis, account: str, scope: str) -> int:
    return int(await redis.zcard(keys.limit_in_flight(account, scope)))
