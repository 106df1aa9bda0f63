"""Building a journal record from a finished request (see `docs/journal.md`)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.context import RequestContext

SCHEMA_VERSION = 1


def _ms(start: float | None, end: float | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start) * 1000.0, 3)


def build_record(
    request: web.Request, ctx: RequestContext, status: int, finished: float
) -> dict[str, Any]:
    client = ctx.client
    return {
        "v": SCHEMA_VERSION,
        "request_id": ctx.request_id,
        "time": round(ctx.started_wall, 6),
        "host": request.host[:255],
        "account": client.account if client else None,
        "client": client.name if client else None,
        "key_id": ctx.user.key_id if ctx.user else None,
        "method": request.method,
        "path": request.path[:1024],
        "status": status,
        "outcome": ctx.outcome,
        "model": ctx.model,
        "stream": ctx.stream,
        "chunks": ctx.chunks,
        "latency_ms": _ms(ctx.started, finished),
        "upstream_ms": _ms(ctx.upstream_started, ctx.upstream_finished),
        "ttfb_ms": _ms(ctx.started, ctx.first_byte_at),
        "error": ctx.error,
    }
