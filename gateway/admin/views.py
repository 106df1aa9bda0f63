"""Admin endpoints: the journal with filters and a cursor, one record, statistics, metrics.

Errors have OpenAI's shape, like the tenant-facing API. See docs/journal.md ("Reading").
"""

from __future__ import annotations

import hmac
import re
import time
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler
from redis.exceptions import RedisError

from gateway import appkeys
from gateway.errors import (
    AuthenticationError,
    FilterError,
    GatewayError,
    InvalidRequestError,
    MethodNotAllowedError,
    NotFoundError,
    ServiceUnavailableError,
)
from gateway.journal.reader import JournalFilter, JournalReader, check_cursor, check_status
from gateway.journal.stats import journal_stats
from gateway.metrics import CONTENT_TYPE

STATIC = Path(__file__).parent / "static"
#: Hold no data, so they need no token (the page asks for it and sends it with each call).
_PUBLIC_PATHS = frozenset({"/admin", "/admin/"})
_PUBLIC_PREFIX = "/admin/static/"
_DURATION = re.compile(r"^(\d{1,9})([smhd])$")
#: The longest window a query may name (more than any retention the journal keeps).
_MAX_SECONDS = 10 * 366 * 86400
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_MAX_LIMIT = 500
_MAX_BUCKETS = 720


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


@web.middleware
async def admin_auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        public = request.path in _PUBLIC_PATHS or request.path.startswith(_PUBLIC_PREFIX)
        if not public:
            _authenticate(request)
        return await handler(request)
    except (FilterError, ValueError) as exc:
        error: GatewayError = InvalidRequestError(str(exc))
    except RedisError as exc:
        error = ServiceUnavailableError(f"redis is not answering: {type(exc).__name__}")
    except GatewayError as exc:
        error = exc
    except web.HTTPNotFound:
        error = NotFoundError(f"unknown admin URL: {request.path[:200]}", code="unknown_url")
    except web.HTTPMethodNotAllowed as exc:
        allowed = ", ".join(sorted(exc.allowed_methods))
        error = MethodNotAllowedError(
            f"method {request.method} is not allowed here; use {allowed}",
            headers={"Allow": allowed},
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        error = InvalidRequestError(exc.reason or "request failed", code="http_error")
        error.status = exc.status if exc.status < 500 else 400
    return web.Response(
        status=error.status,
        body=error.to_bytes(),
        content_type="application/json",
        headers=error.headers,
    )


def _authenticate(request: web.Request) -> None:
    token = request.app[appkeys.ADMIN_TOKEN]
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        presented.strip().encode(), token.encode()
    ):
        raise AuthenticationError(
            "the admin API wants 'Authorization: Bearer <GATEWAY_ADMIN_TOKEN>'",
            code="invalid_admin_token",
        )


def duration(value: str, name: str) -> float:
    match = _DURATION.match(value.strip())
    seconds = int(match.group(1)) * _SECONDS[match.group(2)] if match else 0
    if not 0 < seconds <= _MAX_SECONDS:
        raise FilterError(
            f"{name} {value[:40]!r} is not a duration like 15m, 30s, 6h or 7d (at most 3660d)"
        )
    return seconds


def _filter(query: Any) -> JournalFilter:
    status = query.get("status") or None
    return JournalFilter(
        account=query.get("account") or None,
        client=query.get("client") or None,
        status=check_status(status) if status else None,
        outcome=query.get("outcome") or None,
    )


def _reader(request: web.Request) -> JournalReader:
    return JournalReader(request.app[appkeys.ADMIN_REDIS])


async def journal_list(request: web.Request) -> web.StreamResponse:
    query = request.query
    limit_text = query.get("limit", "50")
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= _MAX_LIMIT:
        raise FilterError(f"limit must be a number from 1 to {_MAX_LIMIT}")
    cursor = query.get("cursor") or None
    records, next_cursor = await _reader(request).page(
        _filter(query), limit=int(limit_text), before=check_cursor(cursor) if cursor else None
    )
    return _json({"records": records, "next_cursor": next_cursor})


async def journal_record(request: web.Request) -> web.StreamResponse:
    request_id = request.match_info["request_id"]
    record = await _reader(request).get(request_id)
    if record is None:
        raise NotFoundError(f"no journal record for request id {request_id[:80]!r}")
    return _json(record)


async def stats(request: web.Request) -> web.StreamResponse:
    query = request.query
    since = duration(query.get("since", "15m"), "since")
    bucket = duration(query["bucket"], "bucket") if query.get("bucket") else None
    if bucket is not None and since / bucket > _MAX_BUCKETS:
        raise FilterError(f"since/bucket gives more than {_MAX_BUCKETS} buckets")
    result = await journal_stats(
        _reader(request),
        JournalFilter(account=query.get("account") or None),
        since_seconds=since,
        now_ms=int(time.time() * 1000),
        bucket_seconds=bucket,
    )
    return _json(result)


async def metrics(request: web.Request) -> web.StreamResponse:
    body = request.app[appkeys.METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def dashboard(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "index.html")


async def to_dashboard(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/admin/")


def add_admin_routes(app: web.Application) -> None:
    router = app.router
    router.add_get("/admin", to_dashboard)
    router.add_get("/admin/", dashboard)
    router.add_static("/admin/static/", STATIC)
    router.add_get("/admin/journal", journal_list)
    router.add_get("/admin/journal/{request_id}", journal_record)
    router.add_get("/admin/stats", stats)
    router.add_get("/metrics", metrics)
