"""The `echo` provider: a real, deterministic handler that needs no upstream.

It serves every endpoint the gateway does, JSON and stream, with usage counted in words: chat
and completions answer the last user message (or the prompt) prefixed by "echo: " (a stream
sends one chunk per word), the Responses API answers the same as an `output_text` item (a stream
sends OpenAI's `response.*` events), embeddings are vectors derived from a hash of each input
(float lists, or base64 as the openai SDK asks by default). The demo tenant and smoke tests use
it; so can anyone checking that a client is wired right before pointing it at a paid provider.
It returns payloads and event streams only: the pipeline sends, captures and meters them.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from aiohttp import web

from gateway.auth import UserProfile
from gateway.protocols import (
    ChatCompletionPayload,
    HandlerDependencies,
    OpenAICompatibleChatCompletionResponseType,
    Provider,
)

ECHO_MODELS = ("echo-1",)
#: Dimensions of an echo embedding when the request names none.
EMBEDDING_DIMENSIONS = 8


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return " ".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        ).strip()
    return ""


def echo_reply(data: dict[str, Any]) -> str:
    messages = data.get("messages") or []
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return "echo: " + _text_of(message.get("content"))
    return "echo:"


def _prompt_text(data: dict[str, Any], field: str) -> str:
    """The text of a completions `prompt` or a Responses `input` (string, list, or items)."""
    value = data.get(field)
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        texts = []
        for item in value:
            if isinstance(item, str):
                texts.append(item)
            elif isinstance(item, dict) and item.get("role", "user") == "user":
                texts.append(_text_of(item.get("content")))
        return texts[-1] if texts else ""
    return ""


def _words(text: str) -> int:
    return len(text.split())


def _chat_usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _usage(data: dict[str, Any], reply: str) -> dict[str, int]:
    prompt = sum(
        _words(_text_of(m.get("content")))
        for m in data.get("messages") or []
        if isinstance(m, dict)
    )
    return _chat_usage(prompt, _words(reply))


def _id(prefix: str, data: dict[str, Any]) -> str:
    digest = hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return prefix + digest[:24]


def _wants_usage(data: dict[str, Any]) -> bool:
    options = data.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def echo_completion(data: dict[str, Any], created: int) -> ChatCompletionPayload:
    reply = echo_reply(data)
    return {
        "id": _id("chatcmpl-echo-", data),
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
        "id": _id("chatcmpl-echo-", data),
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
    if _wants_usage(data):
        chunks.append({**base, "choices": [], "usage": _usage(data, reply)})
    return chunks


def echo_text_completion(data: dict[str, Any], created: int) -> ChatCompletionPayload:
    prompt = _prompt_text(data, "prompt")
    reply = "echo: " + prompt
    return {
        "id": _id("cmpl-echo-", data),
        "object": "text_completion",
        "created": created,
        "model": data["model"],
        "choices": [{"text": reply, "index": 0, "logprobs": None, "finish_reason": "stop"}],
        "usage": _chat_usage(_words(prompt), _words(reply)),
    }


def echo_text_chunks(data: dict[str, Any], created: int) -> list[dict[str, Any]]:
    whole = echo_text_completion(data, created)
    base = {k: whole[k] for k in ("id", "object", "created", "model")}
    words = whole["choices"][0]["text"].split(" ")
    chunks = [
        {
            **base,
            "choices": [
                {
                    "text": word if i == 0 else " " + word,
                    "index": 0,
                    "logprobs": None,
                    "finish_reason": "stop" if i == len(words) - 1 else None,
                }
            ],
        }
        for i, word in enumerate(words)
    ]
    if _wants_usage(data):
        chunks.append({**base, "choices": [], "usage": whole["usage"]})
    return chunks


def echo_embeddings(data: dict[str, Any]) -> ChatCompletionPayload:
    raw = data.get("input")
    inputs = raw if isinstance(raw, list) else [raw]
    dimensions = data.get("dimensions")
    if not isinstance(dimensions, int) or isinstance(dimensions, bool) or not 0 < dimensions <= 64:
        dimensions = EMBEDDING_DIMENSIONS
    as_base64 = data.get("encoding_format") == "base64"
    items = []
    tokens = 0
    for index, item in enumerate(inputs):
        text = item if isinstance(item, str) else orjson.dumps(item).decode()
        tokens += max(_words(text), 1)
        digest = hashlib.sha256(text.encode()).digest() * 2
        vector = [round((byte - 127.5) / 127.5, 6) for byte in digest[:dimensions]]
        embedding: list[float] | str = vector
        if as_base64:
            embedding = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
        items.append({"object": "embedding", "index": index, "embedding": embedding})
    return {
        "object": "list",
        "data": items,
        "model": data["model"],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def echo_response(data: dict[str, Any], created: int) -> ChatCompletionPayload:
    """A Responses API `response` object with the echo as its output text."""
    prompt = _prompt_text(data, "input")
    reply = "echo: " + prompt
    response_id = _id("resp_echo_", data)
    input_tokens, output_tokens = _words(prompt), _words(reply)
    return {
        "id": response_id,
        "object": "response",
        "created_at": created,
        "status": "completed",
        "model": data["model"],
        "output": [
            {
                "type": "message",
                "id": "msg_" + response_id[len("resp_") :],
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": reply, "annotations": []}],
            }
        ],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        },
    }


def echo_response_events(data: dict[str, Any], created: int) -> list[dict[str, Any]]:
    """The Responses stream: created, one text delta per word, done, completed."""
    final = echo_response(data, created)
    item = final["output"][0]
    pending = {**final, "status": "in_progress", "output": [], "usage": None}
    words = item["content"][0]["text"].split(" ")
    events: list[dict[str, Any]] = [{"type": "response.created", "response": pending}]
    events += [
        {
            "type": "response.output_text.delta",
            "item_id": item["id"],
            "output_index": 0,
            "content_index": 0,
            "delta": word if i == 0 else " " + word,
        }
        for i, word in enumerate(words)
    ]
    events.append(
        {
            "type": "response.output_text.done",
            "item_id": item["id"],
            "output_index": 0,
            "content_index": 0,
            "text": item["content"][0]["text"],
        }
    )
    events.append({"type": "response.completed", "response": final})
    return [{**event, "sequence_number": n} for n, event in enumerate(events)]


async def _stream(events: list[dict[str, Any]]) -> AsyncIterator[dict[str, Any] | bytes]:
    for event in events:
        yield event


class EchoHandler:
    async def chat_completions(
        self, request: web.Request, user_profile: UserProfile, data: dict[str, Any]
    ) -> OpenAICompatibleChatCompletionResponseType:
        created = int(time.time())
        if data.get("stream") is True:
            return _stream(echo_chunks(data, created))
        return echo_completion(data, created)

    async def completions(
        self, request: web.Request, user_profile: UserProfile, data: dict[str, Any]
    ) -> OpenAICompatibleChatCompletionResponseType:
        created = int(time.time())
        if data.get("stream") is True:
            return _stream(echo_text_chunks(data, created))
        return echo_text_completion(data, created)

    async def embeddings(
        self, request: web.Request, user_profile: UserProfile, data: dict[str, Any]
    ) -> OpenAICompatibleChatCompletionResponseType:
        return echo_embeddings(data)

    async def responses(
        self, request: web.Request, user_profile: UserProfile, data: dict[str, Any]
    ) -> OpenAICompatibleChatCompletionResponseType:
        created = int(time.time())
        if data.get("stream") is True:
            return _stream(echo_response_events(data, created))
        return echo_response(data, created)

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
    handler = EchoHandler()
    return Provider(
        name="echo",
        chat_completions=handler.chat_completions,
        models=handler.models,
        completions=handler.completions,
        embeddings=handler.embeddings,
        responses=handler.responses,
    )
