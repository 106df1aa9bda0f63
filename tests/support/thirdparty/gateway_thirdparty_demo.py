"""A third-party provider, written the way an outside package would write one.

It knows nothing of the gateway's internals: it answers chat completions (JSON, or a stream of
chunk events from an async generator) with the documented handler signature, and returns a
`Provider` from its entry-point factory. Capture, time to first byte, usage, limits and the
journal are the gateway's business. It serves chat only, so its other endpoints answer 400.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from gateway.auth import UserProfile
from gateway.protocols import HandlerDependencies, Provider

PROMPT_TOKENS = 11
WORDS = ("third", "party", "says", "hello")


def _usage() -> dict[str, int]:
    return {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": len(WORDS),
        "total_tokens": PROMPT_TOKENS + len(WORDS),
    }


def _base(data: dict[str, Any], kind: str) -> dict[str, Any]:
    return {"id": "tp-1", "object": kind, "created": 1700000000, "model": data.get("model")}


async def _chunks(data: dict[str, Any]) -> AsyncIterator[dict[str, Any] | bytes]:
    base = _base(data, "chat.completion.chunk")
    yield {**base, "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]}
    for i, word in enumerate(WORDS):
        text = word if i == 0 else " " + word
        yield {**base, "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
    yield {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    options = data.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage"):
        yield {**base, "choices": [], "usage": _usage()}


async def chat_completions(
    request: web.Request, user_profile: UserProfile, data: dict[str, Any]
) -> dict[str, Any] | AsyncIterator[dict[str, Any] | bytes]:
    if data.get("stream") is True:
        return _chunks(data)
    message = {"role": "assistant", "content": " ".join(WORDS)}
    return {
        **_base(data, "chat.completion"),
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": _usage(),
    }


async def models(request: web.Request, user_profile: UserProfile) -> dict[str, Any]:
    return {"object": "list", "data": [{"id": "tp-1", "object": "model", "owned_by": "tp"}]}


def create_provider(deps: HandlerDependencies) -> Provider:
    return Provider(name="thirdparty-demo", chat_completions=chat_completions, models=models)
