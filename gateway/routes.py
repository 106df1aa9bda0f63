"""The gateway's URL table: every tenant route served by the pipeline, plus what is not a tenant
route (CORS preflights, wrong methods, unknown URLs, health checks).

Tenant routes come from `gateway.pipeline.TENANT_ROUTES`, each under `/v1/...` (the tenant named
by Host) and, with `path_routing` on, under `/tenants/{client}.{account}/v1/...`.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from redis.exceptions import RedisError

from gateway import appkeys
from gateway.errors import (
    MethodNotAllowedError,
    NotFoundError,
    PermissionDeniedError,
    ServiceUnavailableError,
)
from gateway.exchange import exchange_of
from gateway.middlewares import origin_allowed
from gateway.pipeline import TENANT_ROUTES, pipeline_view, resolve_client

_PREFLIGHT_MAX_AGE = "600"
#: The prefix of path addressing; `{tenant}` is `{client}.{account}`.
TENANT_PREFIX = "/tenants/{tenant}"


async def use_post(request: web.Request) -> web.StreamResponse:
    raise MethodNotAllowedError(
        f"{request.path} accepts POST only: send the request body as JSON with POST",
        headers={"Allow": "POST, OPTIONS"},
    )


async def preflight(request: web.Request) -> web.StreamResponse:
    """CORS preflight: allowed for the client's configured origins only; no key needed."""
    client, _ = await resolve_client(request, exchange_of(request))
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
        if resource is not own and resource.canonical == own_canonical(request)
        for route in resource
    )
    if allowed:
        raise MethodNotAllowedError(
            f"method {request.method} is not allowed on {request.path[:200]}; use "
            f"{', '.join(allowed)}",
            headers={"Allow": ", ".join(allowed)},
        )
    raise NotFoundError(
        f"unknown request URL: {request.method} {request.path[:200]}", code="unknown_url"
    )


def own_canonical(request: web.Request) -> str:
    """The route pattern this path would have (path addressing folds the tenant back in)."""
    if "tenant" in request.match_info:
        return TENANT_PREFIX + "/v1/" + request.match_info["tail"]
    return request.path


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
    prefixes = ["", TENANT_PREFIX] if app[appkeys.SETTINGS].path_routing else [""]
    for prefix in prefixes:
        for route in TENANT_ROUTES:
            router.add_route(route.method, prefix + route.path, pipeline_view(route))
            if route.method == "POST":
                router.add_get(prefix + route.path, use_post, allow_head=False)
    router.add_get("/healthz", healthz)
    router.add_get("/readyz", readyz)
    for prefix in prefixes:  # last: only what nothing else matched
        router.add_route("*", prefix + "/v1/{tail:.*}", fallback)
