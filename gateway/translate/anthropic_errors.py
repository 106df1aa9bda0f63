"""Anthropic's error shape, and the table from HTTP status to Anthropic's error type.

    {"type": "error", "error": {"type": "not_found_error", "message": "..."}, "request_id": "..."}

The Anthropic SDK picks its exception class by status (400 `BadRequestError`, 401
`AuthenticationError`, 404 `NotFoundError`, 429 `RateLimitError`, 529 `OverloadedError`, ...),
so a gateway error keeps its status and gets the type Anthropic documents for it.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.errors import GatewayError

#: Anthropic's documented error types by status ("HTTP errors" in its API reference).
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_type_for(status: int) -> str:
    """Other 4xx are `invalid_request_error` (as Anthropic does), other 5xx `api_error`."""
    if status in ERROR_TYPES:
        return ERROR_TYPES[status]
    return "invalid_request_error" if status < 500 else "api_error"


def anthropic_error_body(
    error_type: str, message: str, request_id: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "error", "error": {"type": error_type, "message": message}}
    if request_id:
        body["request_id"] = request_id
    return body


def gateway_error_body(exc: GatewayError, request_id: str | None = None) -> dict[str, Any]:
    """A gateway error (auth, limits, bad input, upstream) in Anthropic's shape."""
    return anthropic_error_body(error_type_for(exc.status), exc.message, request_id)


def gateway_error_bytes(exc: GatewayError) -> bytes:
    """The error middleware's renderer for Anthropic routes (the id goes in `request-id`)."""
    return orjson.dumps(gateway_error_body(exc))


def is_anthropic_error(body: bytes) -> bool:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(data, dict) or data.get("type") != "error":
        return False
    error = data.get("error")
    return (
        isinstance(error, dict)
        and isinstance(error.get("type"), str)
        and isinstance(error.get("message"), str)
    )


def anthropic_error_from_openai(status: int, body: bytes) -> dict[str, Any] | None:
    """An upstream's OpenAI-shaped error as Anthropic's (same status), else None."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return None
    return anthropic_error_body(error_type_for(status), error["message"])


def openai_error_from_anthropic(body: bytes) -> dict[str, Any] | None:
    """An upstream's Anthropic-shaped error as OpenAI's; its type becomes `type` and `code`."""
    if not is_anthropic_error(body):
        return None
    error = orjson.loads(body)["error"]
    kind = error["type"]
    return {"error": {"message": error["message"], "type": kind, "param": None, "code": kind}}
