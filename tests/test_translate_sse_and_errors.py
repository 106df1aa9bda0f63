"""Server-sent event framing, and Anthropic's error shape and status table."""

from __future__ import annotations

import orjson
import pytest

from gateway import errors
from gateway.translate.anthropic_errors import (
    anthropic_error_from_openai,
    error_type_for,
    gateway_error_body,
    is_anthropic_error,
    openai_error_from_anthropic,
)
from gateway.translate.sse import SSEParser, encode_event
from tests.support.anthropic_upstream import message_events
from tests.test_translate_replies import TEXT, claude_message


def test_sse_parser_takes_any_split() -> None:
    stream = b": comment\r\n" + b"".join(
        encode_event(n, d) for n, d in message_events(claude_message([TEXT]))
    )
    stream += b"data: line one\ndata: line two\n\n" + b"data: [DONE]"
    whole = SSEParser()
    expected = whole.feed(stream) + whole.flush()
    assert [e.event for e in expected][:2] == ["message_start", "content_block_start"]
    assert expected[-2].data == "line one\nline two"
    assert expected[-1].event == "message"
    assert expected[-1].data == "[DONE]"
    bytewise = SSEParser()
    got = [
        e for i in range(len(stream)) for e in bytewise.feed(stream[i : i + 1])
    ] + bytewise.flush()
    assert got == expected
    assert expected[0].json()["type"] == "message_start"


@pytest.mark.parametrize(
    ("exc", "status", "kind"),
    [
        (errors.InvalidRequestError("bad"), 400, "invalid_request_error"),
        (errors.AuthenticationError("who"), 401, "authentication_error"),
        (errors.PermissionDeniedError("no"), 403, "permission_error"),
        (errors.NotFoundError("where"), 404, "not_found_error"),
        (errors.MethodNotAllowedError("how"), 405, "invalid_request_error"),
        (errors.PayloadTooLargeError("big"), 413, "request_too_large"),
        (errors.UnsupportedMediaTypeError("type"), 415, "invalid_request_error"),
        (errors.RateLimitError("slow", kind="tokens"), 429, "rate_limit_error"),
        (errors.QuotaExceededError("spent"), 429, "rate_limit_error"),
        (errors.GatewayError("oops"), 500, "api_error"),
        (errors.UpstreamError("down"), 502, "api_error"),
        (errors.ServiceUnavailableError("redis"), 503, "api_error"),
        (errors.UpstreamTimeoutError("slow"), 504, "timeout_error"),
    ],
)
def test_gateway_errors_in_anthropic_shape(
    exc: errors.GatewayError, status: int, kind: str
) -> None:
    assert exc.status == status
    body = gateway_error_body(exc, "req_1")
    assert body == {
        "type": "error",
        "error": {"type": kind, "message": exc.message},
        "request_id": "req_1",
    }
    assert is_anthropic_error(orjson.dumps(body))


def test_error_types_by_status_and_conversions() -> None:
    assert error_type_for(529) == "overloaded_error"
    assert error_type_for(402) == "billing_error"
    assert error_type_for(418) == "invalid_request_error"
    assert error_type_for(599) == "api_error"
    openai_body = orjson.dumps(
        {"error": {"message": "slow down", "type": "requests", "code": None}}
    )
    assert anthropic_error_from_openai(429, openai_body) == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "slow down"},
    }
    assert anthropic_error_from_openai(502, b"<html>") is None
    claude = orjson.dumps(
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    )
    assert openai_error_from_anthropic(claude) == {
        "error": {
            "message": "Overloaded",
            "type": "overloaded_error",
            "param": None,
            "code": "overloaded_error",
        }
    }
    for bad in (b"[1]", b"{}", b"nope", b'{"type": "error", "error": "x"}'):
        assert not is_anthropic_error(bad)
        assert openai_error_from_anthropic(bad) is None
