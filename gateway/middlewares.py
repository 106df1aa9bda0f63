"""The request middleware: request id, timing, error rendering, journal and access log.

One middleware does all of it because all of it needs the request's final outcome, and each
middleware layer costs time on the hot path. Every exception becomes an OpenAI-shaped response;
a cancelled request (the client went away) is journaled as `client_disconnected`.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import time

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from gateway import appkeys
from gateway.context import REQUEST_CONTEXT, RequestContext
from gateway.errors import (
    GatewayError,
    InvalidRequestError,
    MethodNotAllowedError,
    NotFoundError,
    PayloadTooLargeError,
)
from gateway.journal.record import build_record

log = structlog.get_logger("gateway.access")

_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

#: Status code to journal outcome when the code path did not name one.
_OUTCOMES = {
    401: "auth_failed",
    403: "auth_failed",
    404: "not_found",
    429: "rate_limited",
    499: "client_disconnected",
}


#: Request ids are a random per-process prefix and a counter: unique across processes and
#: restarts for all practical purposes, and cheaper than fresh randomness per request.
_REQUEST_ID_PREFIX = "req_" + os.urandom(8).hex()
_request_counter = itertools.count(1)


def request_id_for(incoming: str | None) -> str:
    """Keep a caller's id when it is a short safe token; otherwise make one."""
    if incoming and _SAFE_REQUEST_ID.fullmatch(incoming):
        return incoming
    return f"{_REQUEST_ID_PREFIX}{next(_request_counter):08x}"


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


def error_response(error: GatewayError) -> web.Response:
    return web.Response(
        status=error.status,
        body=error.to_bytes(),
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
    ctx = RequestContext(request_id=request_id_for(request.headers.get("X-Request-Id")))
    request[REQUEST_CONTEXT] = ctx
    try:
        response = await handler(request)
    except GatewayError as exc:
        ctx.error = ctx.error or exc.to_body()["error"]
        response = error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        error = from_http_exception(request, exc)
        ctx.error = error.to_body()["error"]
        response = error_response(error)
    except asyncio.CancelledError:
        ctx.outcome = "client_disconnected"
        finish(request, ctx, 499)
        raise
    except ConnectionResetError:
        # The client hung up while we read its body (upstream resets are UpstreamErrors):
        # nothing can be answered, but the request is journaled like any other.
        ctx.outcome = "client_disconnected"
        finish(request, ctx, 499)
        return web.Response(status=499)
    except Exception:
        log.exception("request_failed", request_id=ctx.request_id)
        error = GatewayError("the gateway failed to handle this request")
        ctx.error = error.to_body()["error"]
        response = error_response(error)
    finish(request, ctx, response.status, response)
    return response


def finish(
    request: web.Request,
    ctx: RequestContext,
    status: int,
    response: web.StreamResponse | None = None,
) -> None:
    """Journal the request (the writer also feeds /metrics) and write its access-log line."""
    finished = time.perf_counter()
    if ctx.outcome is None:
        ctx.outcome = outcome_for(status)
    app = request.app
    app[appkeys.JOURNAL].submit(build_record(request, ctx, status, finished, response))
    if app[appkeys.SETTINGS].access_log:
        log.info(
            "request_handled",
            request_id=ctx.request_id,
            method=request.method,
            path=request.path[:200],
            status=status,
            outcome=ctx.outcome,
            latency_ms=round((finished - ctx.started) * 1000.0, 3),
            account=ctx.client.account if ctx.client else None,
            client=ctx.client.name if ctx.client else None,
            key_id=ctx.user.key_id if ctx.user else None,
        )


async def stamp_response(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: request id and CORS headers on every response, streams included."""
    ctx = request.get(REQUEST_CONTEXT)
    if ctx is None:
        return
    response.headers["x-request-id"] = ctx.request_id
    if ctx.extra_headers:
        response.headers.update(ctx.extra_headers)
    origin = request.headers.get("Origin")
    if origin and ctx.client is not None and origin_allowed(origin, ctx.client.cors_origins):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = "x-request-id"
        response.headers["Vary"] = "Origin"


def origin_allowed(origin: str, allowed: tuple[str, ...]) -> bool:
    return "*" in allowed or origin in allowed
