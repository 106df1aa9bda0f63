"""The one place the request path meets limits and usage: `metered()` wraps a handler call.

Before the call: admit against the client's and the key's limits (429 when refused; no Redis
round trip when neither has a limit). After it: read the real usage from the response (the JSON
body, or the tail of an SSE stream), settle the token reservation and the in-flight slot. A
cancelled request (client gone) is settled in the background. Usage is tallied from the
journal's record of each request (`UsageRecorder.observe`), off the request path.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web
from redis.exceptions import RedisError

from gateway.auth import KeyVerifier
from gateway.context import RequestContext
from gateway.limits.limiter import Admission, RateLimiter
from gateway.limits.policy import LIMIT_FIELDS, estimate_tokens, scopes_of
from gateway.limits.usage import UsageRecorder, extract_usage
from gateway.store.records import ApiKeyRecord

log = structlog.get_logger("gateway.limits")

#: Bytes at the end of a captured stream searched for its usage chunk.
STREAM_TAIL_BYTES = 4096


def has_limits(record: Any) -> bool:
    return any(getattr(record, name) is not None for name in LIMIT_FIELDS)


class Metering:
    """The limiter, the usage recorder, and the background settlements still running."""

    def __init__(self, limiter: RateLimiter, usage: UsageRecorder, verifier: KeyVerifier) -> None:
        self.limiter = limiter
        self.usage = usage
        self.verifier = verifier
        self._background: set[asyncio.Task[None]] = set()

    async def key_record(self, key_id: str) -> ApiKeyRecord | None:
        """The key's record: authentication has just cached it, so this is a dict lookup."""
        found, record = self.verifier.cache.lookup(key_id)
        if found:
            return record
        try:
            return await self.verifier.keys.get(key_id)
        except RedisError:
            return None

    async def admit(self, ctx: RequestContext, data: dict[str, Any]) -> Admission | None:
        assert ctx.client is not None
        assert ctx.user is not None
        key = await self.key_record(ctx.user.key_id)
        if not has_limits(ctx.client) and (key is None or not has_limits(key)):
            return None
        scopes = scopes_of(ctx.client, key)
        admission = await self.limiter.admit(
            ctx.client.account, scopes, estimate_tokens(ctx.raw_body, data)
        )
        if admission is not None and admission.headers:
            ctx.extra_headers = {**(ctx.extra_headers or {}), **admission.headers}
        return admission

    async def finish(
        self,
        ctx: RequestContext,
        admission: Admission | None,
        response: web.StreamResponse | None,
    ) -> None:
        """Settle a limited request's reservation with its real usage (usage is tallied from
        the journal record, off the request path, for every request)."""
        if admission is None:
            return
        usage = usage_of(ctx, response)
        if usage is None:
            actual = admission.estimate if response is not None and response.status < 400 else 0
        else:
            actual = usage[0] + usage[1]
        await self.limiter.settle(admission, actual)

    def finish_later(
        self,
        ctx: RequestContext,
        admission: Admission | None,
        response: web.StreamResponse | None,
    ) -> None:
        if admission is None:
            return
        task = asyncio.create_task(self.finish(ctx, admission, response), name="metering-settle")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await self.usage.close()


def usage_of(ctx: RequestContext, response: web.StreamResponse | None) -> tuple[int, int] | None:
    """Real usage, when the response carried it. A stream's comes from its final usage chunk
    in the journal's capture (the gateway asks the upstream for it); without it, or past the
    capture limit, the reservation stands as the usage."""
    if response is None or response.status >= 400:
        return None
    if isinstance(response, web.Response):
        body = response.body
        return extract_usage(body) if isinstance(body, bytes) else None
    capture = ctx.capture
    if capture is None or capture.truncated or not capture.parts:
        return None
    return extract_usage(stream_tail(capture.parts))


def stream_tail(parts: list[bytes]) -> bytes:
    """The last `STREAM_TAIL_BYTES` or more of a captured stream (its usage chunk is there)."""
    tail: list[bytes] = []
    size = 0
    for part in reversed(parts):
        tail.append(part)
        size += len(part)
        if size >= STREAM_TAIL_BYTES:
            break
    return b"".join(reversed(tail))


async def metered(
    metering: Metering,
    ctx: RequestContext,
    data: dict[str, Any],
    call: Callable[[], Awaitable[web.StreamResponse]],
) -> web.StreamResponse:
    """Admit, run `call`, then settle and account: the hook around every chat completion."""
    admission = await metering.admit(ctx, data)
    try:
        response = await call()
    except asyncio.CancelledError:
        metering.finish_later(ctx, admission, None)
        raise
    except Exception:
        with contextlib.suppress(Exception):
            await metering.finish(ctx, admission, None)
        raise
    await metering.finish(ctx, admission, response)
    return response
