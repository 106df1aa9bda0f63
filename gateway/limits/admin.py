"""Usage on the admin port, and the limiter's counters as Prometheus metrics.

    GET /admin/usage?account=A&client=C&since=7d   usage rows by day, and their totals

The admin app's middleware checks the admin token and renders errors. The limiter's counters
(`gateway_rate_limit_*`, among them `unchecked`: requests let through while Redis was down) are
read at scrape time from the gateway app's `RateLimiter`, like the journal's.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import orjson
from aiohttp import web
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from gateway import appkeys
from gateway.errors import InvalidRequestError
from gateway.limits.metering import Metering
from gateway.limits.usage import days_back, read_usage, totals
from gateway.store import keys
from gateway.tenancy import is_account_number, is_client_name

_SINCE = re.compile(r"^(\d{1,4})d$")
_HELP = {
    "admitted": "Limited requests admitted",
    "refused": "Requests refused by a rate limit or budget (429)",
    "unchecked": "Limited requests let through unchecked because Redis failed (fail-open)",
    "failed_closed": "Limited requests refused with 503 because Redis failed (fail-closed)",
    "settle_errors": "Settlements (usage reconciliation) that failed",
    "script_errors": "Limit checks whose script failed in Redis (a bug path: refused with 503)",
}


class LimiterCollector(Collector):
    def __init__(self, metering: Metering) -> None:
        self.metering = metering

    def collect(self) -> Iterator[Any]:
        for name, value in self.metering.limiter.stats.to_dict().items():
            yield CounterMetricFamily(f"gateway_rate_limit_{name}", _HELP[name], value=value)
        yield CounterMetricFamily(
            "gateway_usage_dropped", "Usage counts dropped (Redis down too long)",
            value=self.metering.usage.dropped,
        )  # fmt: skip


def since_days(value: str) -> int:
    match = _SINCE.match(value.strip())
    if not match or not 1 <= int(match.group(1)) <= 1000:
        raise InvalidRequestError(
            f"since: {value!r} is not a number of days like 7d (1d to 1000d)", param="since"
        )
    return int(match.group(1))


async def usage(request: web.Request) -> web.StreamResponse:
    query = request.query
    account, client = query.get("account"), query.get("client")
    if account is not None and not is_account_number(account):
        raise InvalidRequestError(f"account: {account!r} is not an account number", param="account")
    if client is not None and not is_client_name(client):
        raise InvalidRequestError(f"client: {client!r} is not a client name", param="client")
    days = days_back(time.time(), since_days(query.get("since", "7d")))
    redis = request.app[appkeys.ADMIN_REDIS]
    if account is not None:
        accounts = [account]
    else:
        members = await redis.smembers(keys.ACCOUNTS)
        accounts = sorted(m.decode() if isinstance(m, bytes) else m for m in members)
    rows = await read_usage(redis, accounts, days, client)
    body = {"object": "list", "data": [r.to_dict() for r in rows], "totals": totals(rows)}
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def add_usage_routes(app: web.Application) -> None:
    app.router.add_get("/admin/usage", usage)
