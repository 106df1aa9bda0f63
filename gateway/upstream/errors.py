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


@contextlib.contextmanager
def upstream_errors(what: str = "the upstream provider") -> Iterator[None]:
    """Map aiohttp's exceptions and timeouts raised inside the block (`raise ... from exc`)."""
    try:
        yield
    except TimeoutError as exc:
        raise UpstreamTimeoutError(f"{what} did not answer in time") from exc
    except aiohttp.ClientConnectorError as exc:
        raise UpstreamError(
            f"cannot connect to {what} ({exc.host}:{exc.port})", code="upstream_unreachable"
        ) from exc
    except aiohttp.ClientPayloadError as exc:
        raise UpstreamError(f"{what} sent a broken body", code="upstream_bad_response") from exc
    except aiohttp.ClientError as exc:
        raise UpstreamError(
            f"the request to {what} failed: {type(exc).__name__}", code="upstream_error"
        ) from exc


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
