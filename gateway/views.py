"""The HTTP endpoints a tenant calls, plus health checks.

Each tenant view resolves the Host to a client, authenticates the key, and hands the request to
the handler registered for the client's provider.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import orjson
from aiohttp import web
from redis.exceptions import RedisError

from gateway import appkeys
from gateway.auth import presented_key
from gateway.context import RequestContext, context_of
from gateway.errors import (
    MethodNotAllowedError,
    PermissionDeniedError,
    ServiceUnavailableError,
)
from gateway.middlewares import origin_allowed
from gateway.protocols import OpenAICompatibleChatCompletionResponseType, Provider
from gateway.store.records import ClientRecord
from gateway.validation import read_json_object, validate_chat_request

_PREFLIGHT_MAX_AGE = "600"


def effective_host(request: web.Request) -> str:
    """The Host header, or X-Forwarded-Host when the peer is a trusted proxy."""
    forwarded = request.headers.get("X-Forwarded-Host")
    proxies = request.app[appkeys.TRUSTED_PROXIES]
    if forwarded and proxies and request.remote:
        try:
            peer = ipaddress.ip_address(request.remote)
        except ValueError:
            peer = None
        if peer is not None and any(peer in net for net in proxies):
            return forwarded.split(",", 1)[0].strip()
    return request.headers.get("Host", "")


async def resolve_client(request: web.Request, ctx: RequestContext) -> ClientRecord:
    try:
        client = await request.app[appkeys.RESOLVER].resolve(effective_host(request))
    except RedisError as exc:
        raise ServiceUnavailableError("the gateway's store is unavailable; retry shortly") from exc
    ctx.client = client
    return client


async def identify(request: web.Request) -> tuple[RequestContext, Provider]:
    """Host to client, key to user profile, provider to handlers; all recorded on the context."""
    ctx = context_of(request)
    client = await resolve_client(request, ctx)
    try:
        ctx.user = await request.app[appkeys.VERIFIER].authenticate(
            presented_key(request.headers), client
        )
    except RedisError as exc:
        raise ServiceUnavailableError("the gateway's store is unavailable; retry shortly") from exc
    provider = request.app[appkeys.PROVIDERS].get(client.provider)
    if provider is None:
        raise ServiceUnavailableError(
            f"provider {client.provider!r} is not installed on this gateway",
            code="provider_unavailable",
        )
    return ctx, provider


def render(result: OpenAICompatibleChatCompletionResponseType) -> web.StreamResponse:
    if isinstance(result, web.StreamResponse):
        return result
    return web.Response(body=orjson.dumps(result), content_type="application/json")


async def chat_completions(request: web.Request) -> web.StreamResponse:
    ctx, provider = await identify(request)
    raw, data = await read_json_object(request, request.app[appkeys.SETTINGS].max_body_bytes)
    ctx.raw_body = raw
    ctx.model, ctx.stream = validate_chat_request(data)
    assert ctx.user is not None
    return render(await provider.chat_completions(request, ctx.user, data))


async def models(request: web.Request) -> web.StreamResponse:
    ctx, provider = await identify(request)
    assert ctx.user is not None
    return render(await provider.models(request, ctx.user))


async def use_post(request: web.Request) -> web.StreamResponse:
    raise MethodNotAllowedError(
        f"{request.path} accepts POST only: send the request body as JSON with POST",
        headers={"Allow": "POST, OPTIONS"},
    )


async def preflight(request: web.Request) -> web.StreamResponse:
    """CORS preflight: allowed for the client's configured origins only; no key needed."""
    ctx = context_of(request)
    client = await resolve_client(request, ctx)
    origin = request.headers.get("Origin")
    if not origin or not origin_allowed(origin, client.cors_origins):
        raise PermissionDeniedError(
            f"origin {origin!r} may not call this client from a browser", code="origin_not_allowed"
        )
    headers = {
        "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
        "Access-Control-Allow-Headers": request.headers.get(
            "Access-Control-Request-Headers", "authorization, content-type"
        ),
        "Access-Control-Max-Age": _PREFLIGHT_MAX_AGE,
    }
    return web.Response(status=204, headers=headers)


async def healthz(request: web.Request) -> web.StreamResponse:
    return web.json_response({"status": "ok"}, dumps=_dumps)


async def readyz(request: web.Request) -> web.StreamResponse:
    try:
        await request.app[appkeys.REDIS].ping()
    except (RedisError, OSError) as exc:
        raise ServiceUnavailableError(f"redis is not answering: {type(exc).__name__}") from exc
    return web.json_response({"status": "ready"}, dumps=_dumps)


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


def add_routes(app: web.Application) -> None:
    router = app.router
    router.add_post("/v1/chat/completions", chat_completions)
    router.add_get("/v1/chat/completions", use_post, allow_head=False)
    router.add_get("/v1/models", models)
    router.add_route("OPTIONS", "/v1/{tail:.*}", preflight)
    router.add_get("/healthz", healthz)
    router.add_get("/readyz", readyz)
