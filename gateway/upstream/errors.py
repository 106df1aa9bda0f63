"""The one place where the client library's failures become gateway errors.

    aiohttp.ClientConnectorError  -> UpstreamError 502 `upstream_unreachable`
    aiohttp.ClientPayloadError    -> UpstreamError 502 `upstream_bad_response`
    other aiohttp.ClientError     -> UpstreamError 502 `upstream_error` (dropped, reset, ...)
    TimeoutError                  -> UpstreamTimeoutError 504 `upstream_timeout`

Used around every upstream send, every body read and every stream chunk, by the transport and
by tool plugins alike. Messages name the failure, never a URL's credentials or a body.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import aiohttp
import orjson

from gateway.errors import UpstreamError, UpstreamTimeoutError


def map_upstream_error(exc: BaseException, what: str = "the upstream provider") -> UpstreamError:
    """The gateway error for a client-library failure (see the table above)."""
    if isinstance(exc, TimeoutError):
        return UpstreamTimeoutError(f"{what} did not answer in time")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return UpstreamError(
            f"cannot connect to {what} ({exc.host}:{exc.port})", code="upstream_unreachable"
        )
    if isinstance(exc, aiohttp.ClientPayloadError):
        return UpstreamError(f"{what} sent a broken body", code="upstream_bad_response")
    return UpstreamError(
        f"the request to {what} failed: {type(exc).__name__}", code="upstream_error"
    )


#: What `map_upstream_error` maps: everything else passes through.
UPSTREAM_FAILURES = (TimeoutError, aiohttp.ClientError)


@contextlib.contextmanager
def upstream_errors(what: str = "the upstream provider") -> Iterator[None]:
    """Map aiohttp's exceptions and timeouts raised inside the block (`raise ... from exc`)."""
    try:
        yield
    except UPSTREAM_FAILURES as exc:
        raise map_upstream_error(exc, what) from exc


def is_api_error(body: bytes) -> bool:
    """Is `body` an API error the caller's SDK understands? OpenAI's `{"error": {"message"}}`
    and Anthropic's `{"type": "error", "error": {"type", "message"}}` both pass."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return (
        isinstance(data, dict)
        and isinstance(data.get("error"), dict)
        and isinstance(data["error"].get("message"), str)
    )
