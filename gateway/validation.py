"""Reading and checking request bodies: every problem is a clear 4xx, never a 500."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from gateway.errors import (
    InvalidRequestError,
    PayloadTooLargeError,
    RequestTimeoutError,
    UnsupportedMediaTypeError,
)


def is_json_content_type(value: str | None) -> bool:
    """`application/json`, `application/*+json`, with parameters; absent counts as JSON."""
    if not value:
        return True
    media = value.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(f"request body is larger than the limit of {limit} bytes")


def unreadable_body(encoding: str | None) -> InvalidRequestError:
    """A body aiohttp could not read: it does not decode as its Content-Encoding says, or its
    chunked framing is broken. The message names no byte the client sent."""
    named = (encoding or "").strip().lower()
    if named in ("gzip", "x-gzip", "deflate"):
        return InvalidRequestError(
            f"request body is not valid {named} data, as its Content-Encoding says it is",
            code="invalid_content_encoding",
        )
    return InvalidRequestError(
        "request body could not be read: its chunked encoding or its length is invalid",
        code="invalid_body",
    )


#: Deepest JSON nesting accepted: orjson reads 1024 levels but writes only 255, and the gateway
#: writes bodies again (a policy rewrite, the journal, a provider's translation).
MAX_NESTING = 128


def nesting_depth(value: Any) -> int:
    """How deep arrays and objects nest in `value` (a scalar is 0)."""
    deepest, level = 0, [(value, 1)]
    while level:
        item, depth = level.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        level.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


def check_nesting(raw: bytes, data: Any) -> None:
    """400 for a body nested deeper than `MAX_NESTING`; bodies with fewer brackets than that
    (nearly all) are not walked."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_NESTING:
        return
    if nesting_depth(data) > MAX_NESTING:
        raise InvalidRequestError(
            f"request body nests arrays and objects deeper than {MAX_NESTING} levels",
            code="too_deeply_nested",
        )


async def read_json_object(
    request: web.Request, limit: int, received: Callable[[bytes], None], timeout: float
) -> dict[str, Any]:
    """The parsed JSON object of the body; `received` gets the raw bytes first (the journal
    keeps them even when they turn out not to be valid). A body that does not arrive whole
    within `timeout` seconds is a 408: a slow sender cannot hold a connection and its buffer."""
    content_type = request.headers.get("Content-Type")
    if not is_json_content_type(content_type):
        raise UnsupportedMediaTypeError(
            f"unsupported Content-Type {content_type!r}: send 'application/json'"
        )
    if request.content_length is not None and request.content_length > limit:
        raise too_large(limit)
    try:
        async with asyncio.timeout(timeout):
            raw = await request.read()
    except TimeoutError as exc:
        raise RequestTimeoutError(
            f"the request body did not arrive within {timeout:g} seconds"
        ) from exc
    except web.HTTPRequestEntityTooLarge as exc:
        raise too_large(limit) from exc
    except web.RequestPayloadError as exc:
        raise unreadable_body(request.headers.get("Content-Encoding")) from exc
    received(raw)
    if not raw.strip():
        raise InvalidRequestError("request body is empty: expected a JSON object")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidRequestError(f"request body must be a JSON object, not {type(data).__name__}")
    check_nesting(raw, data)
    return data


def _require_string(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if value is None:
        raise InvalidRequestError(f"you must provide a {name} parameter", param=name)
    if not isinstance(value, str) or not value:
        raise InvalidRequestError(f"'{name}' must be a non-empty string", param=name)
    return value


def validate_chat_request(data: dict[str, Any]) -> tuple[str, bool]:
    """Check what the gateway relies on; return (model, stream). The upstream checks the rest."""
    model = _require_string(data, "model")
    messages = data.get("messages")
    if messages is None:
        raise InvalidRequestError("you must provide a messages parameter", param="messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequestError("'messages' must be a non-empty array", param="messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise InvalidRequestError(
                f"'messages[{index}]' must be an object", param=f"messages[{index}]"
            )
        if not isinstance(message.get("role"), str):
            raise InvalidRequestError(
                f"'messages[{index}].role' must be a string", param=f"messages[{index}].role"
            )
    stream = data.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequestError("'stream' must be a boolean", param="stream")
    return model, stream is True


def validate_model_request(data: dict[str, Any], required: tuple[str, ...]) -> tuple[str, bool]:
    """`/v1/completions`, `/v1/embeddings`, `/v1/responses`: a model, the endpoint's required
    fields, and a boolean `stream`; return (model, stream). The upstream checks the rest."""
    model = _require_string(data, "model")
    for name in required:
        if data.get(name) is None:
            raise InvalidRequestError(f"you must provide a {name} parameter", param=name)
    stream = data.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequestError("'stream' must be a boolean", param="stream")
    return model, stream is True


def validate_messages_request(data: dict[str, Any], *, max_tokens: bool = True) -> tuple[str, bool]:
    """Anthropic's `/v1/messages` (and `count_tokens`, which takes no `max_tokens`): a model, a
    non-empty `messages` array of objects with a role, and a boolean `stream`."""
    model, stream = validate_chat_request(data)
    if max_tokens and data.get("max_tokens") is None:
        raise InvalidRequestError("max_tokens: Field required", param="max_tokens")
    return model, stream
