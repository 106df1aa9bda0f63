"""Admin HTTP endpoints for usage and limiter counters, behind the `admin_token` setting.

    GET /admin/v1/usage?account=A&client=C&since=7d   usage rows by day, and their totals
    GET /admin/v1/limits/stats                         the limiter's counters (unchecked, ...)

`Authorization: Bearer <admin_token>`; with no token configured the admin API does not exist (404).
"""

from __future__ import annotations

import hmac
import re
from typing import Any

import orjson
from aiohttp import web

from gateway import appkeys
from gateway.errors import AuthenticationError, InvalidRequestError, NotFoundError
from gateway.limits.usage import days_back, read_usage, totals
from gateway.store import keys
from gateway.tenancy import is_account_number, is_client_name

_SINCE = re.compile(r"^(\d{1,4})d$")


def require_admin(request: web.Request) -> None:
    token = request.app[appkeys.SETTINGS].admin_token
    if not token:
        raise NotFoundError(
            f"unknown request URL: {request.method} {request.path[:200]}", code="unknown_url"
        )
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip(), token):
        raise AuthenticationError("this endpoint needs the admin token", code="invalid_admin_token")


def since_days(value: str) -> int:
    match = _SINCE.match(value.strip())
    if not match or not 1 <= int(match.group(1)) <= 1000:
        raise InvalidRequestError(
            f"since: {value!r} is not a number of days like 7d (1d to 1000d)", param="since"
        )
    return int(match.group(1))


async def accounts_of(redis: Any, account: str | None) -> list[str]:
    if account is not None:
        return [account]
    members = await redis.smembers(keys.ACCOUNTS)
    return sorted(m.decode() if isinstance(m, bytes) else m for m in members)


async def usage(request: web.Request) -> web.StreamResponse:
    require_admin(request)
    query = request.query
    account, client = query.get("account"), query.get("client")
    if account is not None and not is_account_number(account):
        raise InvalidRequestError(f"account: {account!r} is not an account number", param="account")
    if client is not None and not is_client_name(client):
        raise InvalidRequestError(f"client: {client!r} is not a client name", param="client")
    days = days_back(
        request.app[appkeys.METERING].usage.clock(), since_days(query.get("since", "7d"))
    )
    redis = request.app[appkeys.REDIS]
    rows = await read_usage(redis, await accounts_of(redis, account), days, client)
    body = {"object": "list", "data": [r.to_dict() for r in rows], "totals": totals(rows)}
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def limit_stats(request: web.Request) -> web.StreamResponse:
    require_admin(request)
    metering = request.app[appkeys.METERING]
    body = {**metering.limiter.stats.to_dict(), "usage_dropped": metering.usage.dropped}
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def add_admin_routes(app: web.Application) -> None:
    app.router.add_get("/admin/v1/usage", usage)
    app.router.add_get("/admin/v1/limits/stats", limit_stats)
