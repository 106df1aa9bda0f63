"""Sending a handler's result to the client, and recording what was sent.

One function, `deliver`, takes whatever the handler returned (see `gateway.protocols`):
- a JSON payload: sent as one body;
- an `UpstreamReply`: relayed, JSON as one body or SSE chunk by chunk as the bytes arrive, an
  upstream API error passed through with its status, anything else a 502;
- an `EventStream`: written by the one SSE writer, framed for the route's API;
- a `web.Response`: sent as it is.
Every way records the same facts on the `Exchange`: the status sent, time to first byte, the
body or the stream capture (for the journal and usage), the upstream's end, a client that left.
A usage-only chunk the gateway asked for on the caller's behalf is captured but not sent.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
from aiohttp import web

from gateway.errors import GatewayError, UpstreamError, UpstreamTimeoutError
from gateway.exchange import Exchange
from gateway.journal.capture import StreamCapture, UsageChunkFilter, is_usage_only
from gateway.protocols import OpenAICompatibleChatCompletionResponseType
from gateway.translate.anthropic_errors import anthropic_error_body, error_type_for
from gateway.upstream.errors import is_api_error
from gateway.upstream.headers import forward_response_headers
from gateway.upstream.reply import UpstreamReply

_SSE_HEADERS = {"Cache-Control": "no-cache"}


async def deliver(
    request: web.Request,
    exchange: Exchange,
    result: OpenAICompatibleChatCompletionResponseType,
    capture_limit: int,
) -> web.StreamResponse:
    if isinstance(result, dict):
        body = orjson.dumps(result)
        exchange.body_sent(body)
        exchange.first_byte()
        return web.Response(body=body, content_type="application/json")
    if isinstance(result, UpstreamReply):
        return await _relay(request, exchange, result, capture_limit)
    if isinstance(result, web.Response):
        exchange.body_sent(result.body if isinstance(result.body, bytes) else None)
        exchange.first_byte()
        return result
    if isinstance(result, web.StreamResponse):
        return result  # prepared and written by the handler itself: nothing left to capture
    return await write_events(request, exchange, result, capture_limit)


async def _relay(
    request: web.Request, exchange: Exchange, reply: UpstreamReply, capture_limit: int
) -> web.StreamResponse:
    try:
        headers = forward_response_headers(reply.headers)
        if reply.status >= 400:
            body = await reply.read()
            exchange.upstream_finished()
            if not is_api_error(body):
                raise UpstreamError(
                    f"the upstream provider answered {reply.status} without an API error body "
                    f"({len(body)} bytes of {reply.content_type or 'no content type'})",
                    code="upstream_bad_response",
                )
            for secret in reply.secrets:  # an upstream that quotes the key it was sent
                body = body.replace(secret.encode(), b"[REDACTED]")
            exchange.ended("upstream_error")
            exchange.body_sent(body)
            exchange.first_byte()
            return web.Response(status=reply.status, body=body, headers=headers)
        if reply.is_event_stream:
            return await _relay_stream(request, exchange, reply, headers, capture_limit)
        if reply.content_type.startswith("text/"):  # an HTML page or plain text: not the API
            raise UpstreamError(
                f"the upstream provider answered {reply.status} with {reply.content_type}, "
                "not JSON or an event stream",
                code="upstream_bad_response",
            )
        body = await reply.read()
        exchange.upstream_finished()
        exchange.body_sent(body)
        exchange.first_byte()
        return web.Response(status=reply.status, body=body, headers=headers)
    finally:
        reply.close()


async def _relay_stream(
    request: web.Request,
    exchange: Exchange,
    reply: UpstreamReply,
    headers: Any,
    capture_limit: int,
) -> web.StreamResponse:
    headers.update(_SSE_HEADERS)
    response = web.StreamResponse(status=reply.status, headers=headers)
    response.content_type = "text/event-stream"
    capture = StreamCapture(capture_limit)
    exchange.stream_started(capture)
    await _start(request, exchange, response)
    hide = UsageChunkFilter() if exchange.usage_hidden else None
    try:
        async for data in reply.chunks():
            capture.add(data)
            if hide is not None:
                data = hide.feed(data)
                if not data:
                    continue
            exchange.first_byte()
            await response.write(data)
        exchange.upstream_finished()
        if hide is not None and (rest := hide.flush()):
            await response.write(rest)
        await response.write_eof()
    except GatewayError as exc:  # the upstream broke off: headers are gone, say so in-stream
        exchange.upstream_finished()
        await _end_broken_stream(response, exchange, exc)
    except ConnectionResetError:  # aiohttp's ClientConnectionResetError included
        exchange.ended("client_disconnected")
    return response


def frame(event: dict[str, Any], typed: bool) -> bytes:
    """One SSE event: `data:` only, or with the event's `type` as its `event:` line."""
    data = orjson.dumps(event)
    kind = event.get("type")
    if typed and isinstance(kind, str):
        return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"
    return b"data: " + data + b"\n\n"


def typed_events(exchange: Exchange) -> bool:
    """Does this route's stream name its events (Responses, Anthropic) or end with [DONE]?"""
    return exchange.api == "anthropic" or exchange.endpoint == "responses"


async def write_events(
    request: web.Request,
    exchange: Exchange,
    events: AsyncIterator[dict[str, Any] | bytes],
    capture_limit: int,
) -> web.StreamResponse:
    """The one SSE writer: every handler that renders its own stream goes through here."""
    typed = typed_events(exchange)
    response = web.StreamResponse(headers=_SSE_HEADERS)
    response.content_type = "text/event-stream"
    capture = StreamCapture(capture_limit)
    exchange.stream_started(capture)
    try:
        await _start(request, exchange, response)
        async for event in events:
            data = event if isinstance(event, bytes) else frame(event, typed)
            capture.add(data)
            if exchange.usage_hidden and isinstance(event, dict) and is_usage_only(event):
                continue
            exchange.first_byte()
            await response.write(data)
        if not typed:
            await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
    except GatewayError as exc:  # the handler failed mid-stream
        await _end_broken_stream(response, exchange, exc)
    except ConnectionResetError:
        exchange.ended("client_disconnected")
    finally:
        with contextlib.suppress(Exception):
            await events.aclose()  # type: ignore[attr-defined]
    return response


async def _start(request: web.Request, exchange: Exchange, response: web.StreamResponse) -> None:
    await response.prepare(request)
    exchange.response_started(response.status)


async def _end_broken_stream(
    response: web.StreamResponse, exchange: Exchange, exc: GatewayError
) -> None:
    """Headers are gone, so the status cannot change: end the stream with an error event."""
    if isinstance(exc, UpstreamError):
        timeout = isinstance(exc, UpstreamTimeoutError)
        outcome = "upstream_timeout" if timeout else "upstream_error"
    else:
        outcome = "internal_error" if exc.status >= 500 else "bad_request"
    error = {
        "message": f"the stream broke off: {exc.message}",
        "type": exc.error_type,
        "param": None,
        "code": outcome,
    }
    exchange.ended(outcome, error)
    event = b"data: " + orjson.dumps({"error": error}) + b"\n\n"
    if exchange.api == "anthropic":  # Anthropic's in-stream `error` event
        body = anthropic_error_body(error_type_for(exc.status), str(error["message"]))
        event = b"event: error\ndata: " + orjson.dumps(body) + b"\n\n"
    with contextlib.suppress(ConnectionResetError):
        await response.write(event)
        await response.write_eof()
