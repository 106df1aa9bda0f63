"""Talking to upstream providers: the pooled session, header hygiene, error mapping, relay.

`upstream_errors()` is the one place where aiohttp's client exceptions become gateway errors:
an unreachable or misbehaving upstream is a 502, a slow one a 504. `relay()` copies an upstream
reply to the client: JSON as one body, SSE chunk by chunk as the bytes arrive.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Iterable, Mapping

import aiohttp
import orjson
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from gateway import appkeys
from gateway.config import Settings
from gateway.context import RequestContext
from gateway.errors import UpstreamError, UpstreamTimeoutError
from gateway.journal.capture import StreamCapture, UsageChunkFilter

#: Never copied in either direction (RFC 9110 §7.6.1, plus what aiohttp recomputes).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "content-encoding",
        "host",
    }
)

#: Request headers the tenant sends that must not reach the upstream: its own credentials,
#: cookies, and settings that belong to the gateway's upstream account.
REQUEST_ONLY = frozenset(
    {
        "authorization",
        "api-key",
        "x-api-key",
        "cookie",
        "accept-encoding",
        "openai-organization",
        "openai-project",
        "x-request-id",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "forwarded",
    }
)
_DROP_REQUEST = HOP_BY_HOP | REQUEST_ONLY
_DROP_RESPONSE = HOP_BY_HOP | {"set-cookie", "x-request-id", "date", "server"}

#: Most bytes of a non-OpenAI upstream error quoted in the gateway's 502 message.
_ERROR_SNIPPET = 200


def create_upstream_session(settings: Settings) -> aiohttp.ClientSession:
    """One pooled session per process. `upstream_timeout` bounds every wait for the upstream
    (its headers, and each gap between body bytes), not a whole long stream."""
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=300)
    timeout = aiohttp.ClientTimeout(
        total=None,
        sock_connect=settings.upstream_connect_timeout,
        sock_read=settings.upstream_timeout,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        auto_decompress=True,
        skip_auto_headers=("User-Agent",),
        json_serialize=lambda obj: orjson.dumps(obj).decode(),
    )


def forward_request_headers(
    incoming: Mapping[str, str], extra: Iterable[tuple[str, str]] = ()
) -> CIMultiDict[str]:
    headers: CIMultiDict[str] = CIMultiDict(
        (name, value) for name, value in incoming.items() if name.lower() not in _DROP_REQUEST
    )
    for name, value in extra:
        headers[name] = value
    return headers


def forward_response_headers(upstream: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    headers: CIMultiDict[str] = CIMultiDict(
        (name, value) for name, value in upstream.items() if name.lower() not in _DROP_RESPONSE
    )
    upstream_id = upstream.get("x-request-id")
    if upstream_id:
        headers["x-upstream-request-id"] = upstream_id
    return headers


@contextlib.asynccontextmanager
async def upstream_errors(url: str) -> AsyncIterator[None]:
    """Map the client library's failures while talking to `url` to 502 / 504."""
    try:
        yield
    except TimeoutError as exc:
        raise UpstreamTimeoutError("the upstream provider did not answer in time") from exc
    except aiohttp.ClientConnectorError as exc:
        raise UpstreamError(
            f"cannot connect to the upstream provider ({exc.host}:{exc.port})",
            code="upstream_unreachable",
        ) from exc
    except aiohttp.ClientPayloadError as exc:
        raise UpstreamError("the upstream provider sent a broken body") from exc
    except aiohttp.ClientError as exc:
        raise UpstreamError(f"upstream request failed: {type(exc).__name__}") from exc


def is_openai_error(body: bytes) -> bool:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return (
        isinstance(data, dict)
        and isinstance(data.get("error"), dict)
        and "message" in data["error"]
    )


async def relay(
    request: web.Request, upstream: aiohttp.ClientResponse, ctx: RequestContext
) -> web.StreamResponse:
    """Copy the upstream's reply to the client (the caller maps client-library errors)."""
    ctx.upstream_started = ctx.upstream_started or time.perf_counter()
    headers = forward_response_headers(upstream.headers)
    if upstream.status >= 400:
        return await _relay_error(upstream, headers, ctx)
    if upstream.content_type == "text/event-stream":
        return await _relay_stream(request, upstream, headers, ctx)
    body = await upstream.read()
    ctx.upstream_finished = time.perf_counter()
    ctx.first_byte_at = ctx.upstream_finished
    return web.Response(status=upstream.status, body=body, headers=headers)


async def _relay_error(
    upstream: aiohttp.ClientResponse, headers: CIMultiDict[str], ctx: RequestContext
) -> web.StreamResponse:
    body = await upstream.read()
    ctx.upstream_finished = time.perf_counter()
    if is_openai_error(body):
        ctx.outcome = "upstream_error"
        ctx.first_byte_at = ctx.upstream_finished
        return web.Response(status=upstream.status, body=body, headers=headers)
    snippet = body[:_ERROR_SNIPPET].decode("utf-8", "replace")
    raise UpstreamError(
        f"the upstream provider answered {upstream.status} without an OpenAI error body: "
        f"{snippet!r}",
        code="upstream_bad_response",
    )


async def _relay_stream(
    request: web.Request,
    upstream: aiohttp.ClientResponse,
    headers: CIMultiDict[str],
    ctx: RequestContext,
) -> web.StreamResponse:
    ctx.stream = True
    headers["Cache-Control"] = "no-cache"
    response = web.StreamResponse(status=upstream.status, headers=headers)
    response.content_type = "text/event-stream"
    await response.prepare(request)
    if ctx.capture is None:
        ctx.capture = StreamCapture(request.app[appkeys.SETTINGS].journal_capture_bytes)
    capture = ctx.capture
    hide = UsageChunkFilter() if capture.usage_hidden else None
    chunks = upstream.content.iter_any()
    while True:
        try:
            data = await anext(chunks)
        except StopAsyncIteration:
            break
        except (TimeoutError, aiohttp.ClientError) as exc:
            await _end_broken_stream(response, ctx, exc)
            break
        if ctx.first_byte_at is None:
            ctx.first_byte_at = time.perf_counter()
        ctx.chunks += 1
        capture.add(data)
        if hide is not None:
            data = hide.feed(data)
            if not data:
                continue
        try:
            await response.write(data)
        except ConnectionResetError:  # aiohttp's ClientConnectionResetError included
            ctx.outcome = "client_disconnected"
            upstream.close()
            return response
    ctx.upstream_finished = time.perf_counter()
    with contextlib.suppress(ConnectionResetError):
        if hide is not None and (rest := hide.flush()):
            await response.write(rest)
        await response.write_eof()
    return response


async def _end_broken_stream(
    response: web.StreamResponse, ctx: RequestContext, exc: BaseException
) -> None:
    """Headers are gone, so the status cannot change: end the stream with an error event."""
    ctx.outcome = "upstream_timeout" if isinstance(exc, TimeoutError) else "upstream_error"
    ctx.error = {"message": f"the upstream stream broke off: {type(exc).__name__}"}
    event = orjson.dumps({"error": {**ctx.error, "type": "api_error", "code": ctx.outcome}})
    with contextlib.suppress(ConnectionResetError):
        await response.write(b"data: " + event + b"\n\n")
