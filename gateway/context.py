"""Per-request state shared by the middleware, the views and the handlers.

One mutable record per request, kept at `request[REQUEST_CONTEXT]`: the request id, timing, who
the tenant is, and what the journal and the access log will say about the request.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from aiohttp import web

from gateway.auth import UserProfile
from gateway.journal.capture import StreamCapture
from gateway.store.records import ClientRecord


@dataclasses.dataclass(slots=True)
class RequestContext:
    request_id: str
    started: float = dataclasses.field(default_factory=time.perf_counter)
    started_wall: float = dataclasses.field(default_factory=time.time)
    client: ClientRecord | None = None
    user: UserProfile | None = None
    #: The request body exactly as received; forwarded as-is unless a policy rewrites it.
    raw_body: bytes = b""
    model: str | None = None
    stream: bool = False
    #: perf_counter() when the upstream answered headers, and when the first byte went out.
    upstream_started: float | None = None
    upstream_finished: float | None = None
    first_byte_at: float | None = None
    outcome: str | None = None
    error: dict[str, Any] | None = None
    chunks: int = 0
    #: The SSE bytes relayed so far, for the journal (set when a stream starts).
    capture: StreamCapture | None = None
    #: One entry per upstream attempt (fallbacks, retries) and per managed-mode model call.
    attempts: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    hops: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def elapsed_ms(self, since: float | None = None) -> float:
        return (time.perf_counter() - (since or self.started)) * 1000.0


REQUEST_CONTEXT = web.RequestKey("request_context", RequestContext)


def context_of(request: web.Request) -> RequestContext:
    return request[REQUEST_CONTEXT]
