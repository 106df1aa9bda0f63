"""The request middleware: the pipeline's first and last stage.

It gives the request its id and its `Exchange`, renders every exception in the caller's API error
shape, and, whatever happened, hands the request to the journal and writes its access line. One
middleware does all of it because all of it needs the request's final outcome, and each
middleware layer costs time on the hot path.

Request ids are the gateway's own, 96 random bits (`req_` + 24 hex digits): unguessable, so no
caller can aim a record at another request's id. Only a configured trusted proxy's
`X-Request-Id` is kept. A caller's `X-Client-Request-Id` is kept in the record as
`client_request_id` and echoed back. A client that goes away is journaled with the status that
was sent (499 when nothing was) and outcome `client_disconnected`.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Callable

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from gateway import appkeys
from gateway.errors import (
    GatewayError,
    InvalidRequestError,
    MethodNotAllowedError,
    NotFoundError,
    PayloadTooLargeError,
)
from gateway.exchange import EXCHANGE, ApiFormat, Exchange
from gateway.journal.record import build_record
from gateway.pipeline import peer_is_trusted
from gateway.spans import finish_request_span, start_request_span
from gateway.translate.anthropic_errors import gateway_error_bytes

log = structlog.get_logger("gateway.access")

_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
#: Bytes of randomness in a request id (96 bits).
_REQUEST_ID_BYTES = 12

#: Status code to journal outcome when the code path did not name one.
_OUTCOMES = {
    401: "auth_failed",
    403: "auth_failed",
    404: "not_found",
    429: "rate_limited",
    499: "client_disconnected",
}

#: How each API renders a gateway error (a provider route registers its own shape here).
ERROR_RENDERERS: dict[ApiFormat, Callable[[GatewayError], bytes]] = {
    "openai": GatewayError.to_bytes,
    "anthropic": gateway_error_bytes,
}


def new_request_id() -> str:
    return "req_" + os.urandom(_REQUEST_ID_BYTES).hex()


def request_ids(request: web.Request) -> tuple[str, str | None]:
    """(the request id, the caller's own id when it sent a safe one)."""
    headers = request.headers
    client_id = headers.get("X-Client-Request-Id")
    if client_id is not None and not _SAFE_ID.fullmatch(client_id):
        client_id = None
    incoming = headers.get("X-Request-Id")
    if incoming and _SAFE_ID.fullmatch(incoming) and peer_is_trusted(request):
        return incoming, client_id
    return new_request_id(), client_id


def outcome_for(status: int) -> str:
    if status < 400:
        return "ok"
    if status in _OUTCOMES:
        return _OUTCOMES[status]
    if status == 504:
        return "upstream_timeout"
    if status in (502, 503):
        return "upstream_error" if status == 502 else "unavailable"
    return "bad_request" if status < 500 else "internal_error"


def error_response(error: GatewayError, api: ApiFormat) -> web.Response:
    render = ERROR_RENDERERS.get(api, GatewayError.to_bytes)
    return web.Response(
        status=error.status,
        body=render(error),
        content_type="application/json",
        headers=error.headers,
    )


def from_http_exception(request: web.Request, exc: web.HTTPException) -> GatewayError:
    """aiohttp's own errors (no route, wrong method, body too large) in the gateway's shape."""
    if isinstance(exc, web.HTTPNotFound):
        return NotFoundError(
            f"unknown request URL: {request.method} {request.path[:200]}", code="unknown_url"
        )
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        return MethodNotAllowedError(
            f"method {request.method} is not allowed here; use {allowed}",
            headers={"Allow": allowed},
        )
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return PayloadTooLargeError("request body is larger than the configured limit")
    kind = InvalidRequestError if exc.status < 500 else GatewayError
    error = kind(exc.reason or "request failed", code="http_error")
    error.status = exc.status
    return error


@web.middleware
async def request_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id, client_request_id = request_ids(request)
    exchange = Exchange(request_id, client_request_id)
    request[EXCHANGE] = exchange
    start_request_span(request.app[appkeys.TRACING], request, exchange)
    try:
        response = await handler(request)
    except GatewayError as exc:
        response = _failed(exchange, exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = _failed(exchange, from_http_exception(request, exc))
    except asyncio.CancelledError:
        exchange.ended("client_disconnected")
        finish(request, exchange, exchange.sent_status or 499)
        raise
    except ConnectionResetError:
        # The client hung up while we read its body (upstream resets are UpstreamErrors):
        # nothing can be answered, but the request is journaled like any other.
        exchange.ended("client_disconnected")
        finish(request, exchange, exchange.sent_status or 499)
        return web.Response(status=499)
    except Exception:
        log.exception("request_failed", request_id=exchange.request_id)
        response = _failed(exchange, GatewayError("the gateway failed to handle this request"))
    finish(request, exchange, response.status, response)
    return response


def _failed(exchange: Exchange, error: GatewayError) -> web.Response:
    if exchange.error is None:
        exchange.error = error.to_body()["error"]
    return error_response(error, exchange.api)


def finish(
    request: web.Request,
    exchange: Exchange,
    status: int,
    response: web.StreamResponse | None = None,
) -> None:
    """Journal the request (the writer also feeds /metrics) and write its access-log line."""
    finished = time.perf_counter()
    if exchange.outcome is None:
        exchange.outcome = outcome_for(status)
    app = request.app
    finish_request_span(exchange, status)
    app[appkeys.JOURNAL].submit(build_record(request, exchange, status, finished, response))
    if app[appkeys.SETTINGS].access_log:
        client = exchange.client
        log.info(
            "request_handled",
            request_id=exchange.request_id,
            method=request.method,
            path=request.path[:200],
            status=status,
            outcome=exchange.outcome,
            latency_ms=round((finished - exchange.started) * 1000.0, 3),
            account=client.account if client else None,
            client=client.name if client else None,
            key_id=exchange.identity.user.key_id if exchange.identity else None,
        )


async def stamp_response(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: request ids and CORS headers on every response, streams included."""
    exchange = request.get(EXCHANGE)
    if exchange is None:
        return
    headers = response.headers
    headers["x-request-id"] = exchange.request_id
    if exchange.api == "anthropic":  # where Anthropic's SDK reads it (`error.request_id`)
        headers["request-id"] = exchange.request_id
    if exchange.client_request_id is not None:
        headers["x-client-request-id"] = exchange.client_request_id
    if exchange.extra_headers:
        headers.update(exchange.extra_headers)
    origin = request.headers.get("Origin")
    client = exchange.client
    if origin and client is not None and origin_allowed(origin, client.cors_origins):
        headers["Access-Control-Allow-Origin"] = origin
        exposed = "x-request-id, x-client-request-id"
        headers["Access-Control-Expose-Headers"] = (
            exposed + ", request-id" if exchange.api == "anthropic" else exposed
        )
        headers["Vary"] = "Origin"


def origin_allowed(origin: str, allowed: tuple[str, ...]) -> bool:
    return "*" in allowed or origin in allowed
