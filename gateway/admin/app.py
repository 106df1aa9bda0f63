"""`create_admin_app`: the admin port's application (wiring only; views in `views.py`).

It runs beside the tenant-facing site, on `admin_host:admin_port` (127.0.0.1 by default), and
only when `admin_token` is set: every API route and `/metrics` want `Authorization: Bearer
<token>`. The dashboard's HTML, script and style hold no data and are served without it; the page
asks for the token and sends it with each call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from gateway import appkeys
from gateway.admin.views import add_admin_routes, admin_auth_middleware
from gateway.config import Settings
from gateway.limits.admin import add_usage_routes
from gateway.metrics import GatewayMetrics
from gateway.store.redis import create_redis


def create_admin_app(settings: Settings, metrics: GatewayMetrics) -> web.Application:
    """`metrics` is the gateway app's (its journal writer feeds it)."""
    app = web.Application(middlewares=[admin_auth_middleware])
    app[appkeys.SETTINGS] = settings
    app[appkeys.ADMIN_TOKEN] = settings.admin_token
    app[appkeys.METRICS] = metrics
    app.cleanup_ctx.append(_redis_ctx)
    add_admin_routes(app)
    add_usage_routes(app)
    return app


async def _redis_ctx(app: web.Application) -> AsyncIterator[None]:
    redis = create_redis(app[appkeys.SETTINGS].redis_url)
    app[appkeys.ADMIN_REDIS] = redis
    yield
    await redis.aclose()
