"""The `echo` provider: a real, deterministic handler that needs no upstream.

It answers a chat completion with the last user message, prefixed by "echo: ", as JSON or as an
SSE stream (one chunk per word), with usage counted in words. The demo tenant and smoke tests use
it; so can anyone checking that a client is wired right before pointing it at a paid provider.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import orjson
from aiohttp import web

from gateway.auth import UserProfile
from gateway.context import context_of
from gateway.handlers.registry import HandlerDependencies
from gateway.journal.capture import StreamCapture, wants_usage
from gateway.protocols import (
    ChatCompletionPayload,
    OpenAICompatibleChatCompletionResponseType,
    Provider,
)

ECHO_MODELS = ("echo-1",)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        texts = (part.get("text") for part in content if isinstance(part, dict))
        return " ".join(text for text in texts if isinstance(text, str)).strip()
    return ""


def echo_reply(data: dict[str, Any]) -> str:
    messages = data.get("messages") or []
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return "echo: " + _text_of(message.get("content"))
    return "echo:"


def _words(text: str) -> int:
    return len(text.split())


def _usage(data: dict[str, Any], reply: str) -> dict[str, int]:
    prompt = sum(
        _words(_text_of(m.get("content")))
        for m in data.get("messages") or []
        if isinstance(m, dict)
    )
    completion = _words(reply)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _completion_id(data: dict[str, Any]) -> str:
    digest = hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return "chatcmpl-echo-" + digest[:24]


def echo_completion(data: dict[str, Any], created: int) -> ChatCompletionPayload:
    reply = echo_reply(data)
    return {
        "id": _completion_id(data),
        "object": "chat.completion",
        "created": created,
        "model": data["model"],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": _usage(data, reply),
    }


def echo_chunks(data: dict[str, Any], created: int) -> list[dict[str, Any]]:
    """The stream's chunks: role, one per word, finish, and usage when asked for."""
    reply = echo_reply(data)
    base = {
        "id": _completion_id(data),
        "object": "chat.completion.chunk",
        "created": created,
        "model": data["model"],
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    words = reply.split(" ")
    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"content": word if i == 0 else " " + word}) for i, word in enumerate(words)]
    chunks.append(chunk({}, "stop"))
    options = data.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage"):
        chunks.append({**base, "choices": [], "usage": _usage(data, reply)})
    return chunks


class EchoHandler:
    def __init__(self, capture_limit: int) -> None:
        self.capture_limit = capture_limit

    async def chat_completions(
        self, request: web.Request, user_profile: UserProfile, data: dict[str, Any]
    ) -> OpenAICompatibleChatCompletionResponseType:
        created = int(time.time())
        if data.get("stream") is not True:
            return echo_completion(data, created)
        ctx = context_of(request)
        capture = ctx.capture = StreamCapture(self.capture_limit)
        response = web.StreamResponse(headers={"Cache-Control": "no-cache"})
        response.content_type = "text/event-stream"
        await response.prepare(request)
        for chunk in echo_chunks(data, created):
            if ctx.first_byte_at is None:
                ctx.first_byte_at = time.perf_counter()
            ctx.chunks += 1
            event = b"data: " + orjson.dumps(chunk) + b"\n\n"
            capture.add(event)
            await response.write(event)
        if not wants_usage(data):  # the journal keeps usage the client did not ask for
            capture.usage_hidden = True
            hidden = {"choices": [], "usage": _usage(data, echo_reply(data))}
            capture.add(b"data: " + orjson.dumps(hidden) + b"\n\n")
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def models(
        self, request: web.Request, user_profile: UserProfile
    ) -> OpenAICompatibleChatCompletionResponseType:
        return {
            "object": "list",
            "data": [
                {"id": model, "object": "model", "created": 0, "owned_by": "gateway"}
                for model in ECHO_MODELS
            ],
        }


def create_echo_handler(deps: HandlerDependencies) -> Provider:
    handler = EchoHandler(deps.settings.journal_capture_bytes)
    return Provider(name="echo", chat_completions=handler.chat_completions, models=handler.models)
