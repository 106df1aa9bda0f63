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
    InvalidRequestError,
    MethodNotAllowedError,
    NotFoundError,
    PermissionDeniedError,
    ServiceUnavailableError,
)
from gateway.handlers.managed import managed_chat
from gateway.middlewares import origin_allowed
from gateway.policy import Endpoint, alias_listing, apply_policy
from gateway.protocols import OpenAICompatibleChatCompletionResponseType, Provider
from gateway.store.records import ClientRecord
from gateway.validation import read_json_object, validate_chat_request, validate_model_request

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


def apply_client_policy(
    ctx: RequestContext, endpoint: Endpoint, data: dict[str, Any]
) -> dict[str, Any]:
    """The client's policy on this body; the raw bytes go upstream only when nothing changed."""
    assert ctx.client is not None
    rewritten = apply_policy(ctx.client.policy, endpoint, data)
    if rewritten is None:
        return data
    ctx.raw_body = b""  # the handler serialises the rewritten `data` instead
    return rewritten


async def chat_completions(request: web.Request) -> web.StreamResponse:
    ctx, provider = await identify(request)
    raw, data = await read_json_object(request, request.app[appkeys.SETTINGS].max_body_bytes)
    ctx.raw_body = raw
    ctx.model, ctx.stream = validate_chat_request(data)
    data = apply_client_policy(ctx, "chat", data)
    assert ctx.user is not None
    if ctx.client is not None and ctx.client.policy.mode == "managed":
        return render(await managed_chat(request, data))
    return render(await provider.chat_completions(request, ctx.user, data))


async def _model_endpoint(
    request: web.Request, endpoint: Endpoint, required: tuple[str, ...]
) -> web.StreamResponse:
    """The endpoints beyond chat: same tenancy, auth, policy and journal, own handler."""
    ctx, provider = await identify(request)
    handler = getattr(provider, endpoint)
    if handler is None:
        raise InvalidRequestError(
            f"{request.path} is not served for this client (provider {provider.name!r})",
            code="endpoint_not_supported",
        )
    raw, data = await read_json_object(request, request.app[appkeys.SETTINGS].max_body_bytes)
    ctx.raw_body = raw
    ctx.model, ctx.stream = validate_model_request(data, required)
    data = apply_client_policy(ctx, endpoint, data)
    assert ctx.user is not None
    return render(await handler(request, ctx.user, data))


async def completions(request: web.Request) -> web.StreamResponse:
    return await _model_endpoint(request, "completions", ("prompt",))


async def embeddings(request: web.Request) -> web.StreamResponse:
    return await _model_endpoint(request, "embeddings", ("input",))


async def responses(request: web.Request) -> web.StreamResponse:
    return await _model_endpoint(request, "responses", ())


async def models(request: web.Request) -> web.StreamResponse:
    ctx, provider = await identify(request)
    assert ctx.user is not None
    assert ctx.client is not None
    if ctx.client.policy.aliases:
        return render(alias_listing(ctx.client.policy))
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


async def fallback(request: web.Request) -> web.StreamResponse:
    """Everything under /v1 that no other route takes: CORS preflights, wrong methods, 404s."""
    if request.method == "OPTIONS":
        return await preflight(request)
    own = request.match_info.route.resource
    allowed = sorted(
        route.method
        for resource in request.app.router.resources()
        if resource is not own and resource.canonical == request.path
        for route in resource
    )
    if allowed:
        raise MethodNotAllowedError(
            f"method {request.method} is not allowed on {request.path}; use {', '.join(allowed)}",
            headers={"Allow": ", ".join(allowed)},
        )
    raise NotFoundError(
        f"unknown request URL: {request.method} {request.path[:200]}", code="unknown_url"
    )


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
    for path, view in (
        ("/v1/completions", completions),
        ("/v1/embeddings", embeddings),
        ("/v1/responses", responses),
    ):
        router.add_post(path, view)
        router.add_get(path, use_post, allow_head=False)
    router.add_get("/v1/models", models)
    router.add_get("/healthz", healthz)
    router.add_get("/readyz", readyz)
    router.add_route("*", "/v1/{tail:.*}", fallback)  # last: only what nothing else matched
