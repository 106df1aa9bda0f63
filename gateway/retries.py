"""Sending one request to a client's upstreams: retries with backoff, then ordered fallback.

Each upstream (the client's own, then its policy's `fallbacks`) is tried up to `1 + retries`
times. A connection error, a timeout, a 429 or a 5xx moves on: to a retry at the same upstream
after an exponential, jittered backoff (at least what `Retry-After` asks for), or, once that
upstream's retries are spent or its `Retry-After` is longer than `retry_after_max`, straight to
the next upstream. The last answer is relayed as it is. Nothing is retried once a byte of the
reply has gone to the client. Every attempt is recorded on `ctx.attempts` for the journal.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import random
import time
from collections.abc import Sequence
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from gateway.config import Settings
from gateway.context import RequestContext
from gateway.errors import UpstreamError
from gateway.upstream import relay, upstream_errors


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    """One upstream to try: the full URL, its headers (credentials included), and a label
    for the journal that carries no secret."""

    url: str
    headers: CIMultiDict[str]
    label: str


@dataclasses.dataclass(frozen=True, slots=True)
class RetrySettings:
    retries: int
    backoff: float
    backoff_max: float
    retry_after_max: float

    @classmethod
    def from_settings(cls, settings: Settings, retries: int | None = None) -> RetrySettings:
        return cls(
            retries=settings.upstream_retries if retries is None else retries,
            backoff=settings.upstream_backoff,
            backoff_max=settings.upstream_backoff_max,
            retry_after_max=settings.upstream_retry_after_max,
        )


def is_retryable_status(status: int) -> bool:
    return status == 429 or status >= 500


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def backoff_delay(retry: RetrySettings, attempt: int) -> float:
    """Exponential backoff with jitter: between half and all of `backoff * 2**attempt`."""
    ceiling = min(retry.backoff_max, retry.backoff * (2.0**attempt))
    return ceiling * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not a secret


async def send(
    request: web.Request,
    ctx: RequestContext,
    session: aiohttp.ClientSession,
    method: str,
    targets: Sequence[Target],
    body: bytes | None,
    retry: RetrySettings,
) -> web.StreamResponse:
    """Try `targets` in order and relay the first answer that is final."""
    for index, target in enumerate(targets):
        last_target = index == len(targets) - 1
        for attempt in range(retry.retries + 1):
            last_try = attempt == retry.retries
            entry: dict[str, Any] = {"upstream": target.label, "attempt": attempt + 1}
            ctx.attempts.append(entry)
            started = time.perf_counter()
            relaying = False
            try:
                async with upstream_errors(target.url):
                    ctx.upstream_started = started
                    async with session.request(
                        method, target.url, data=body, headers=target.headers
                    ) as upstream:
                        entry["status"] = upstream.status
                        wait = _wait_before_next(upstream, retry, attempt, last_try, last_target)
                        if wait is None:
                            entry["ms"] = _ms(started)
                            relaying = True
                            return await relay(request, upstream, ctx)
                        await upstream.read()
            except UpstreamError as exc:
                entry["error"] = exc.code
                entry["ms"] = _ms(started)
                if relaying or (last_target and last_try) or ctx.first_byte_at is not None:
                    raise
                wait = 0.0 if last_try else backoff_delay(retry, attempt)
            else:
                entry["ms"] = _ms(started)
            if wait < 0:  # Retry-After too long for this upstream: fall back now
                break
            if not last_try:
                entry["retry_in_ms"] = round(wait * 1000.0, 3)
                await asyncio.sleep(wait)
    raise UpstreamError("no upstream answered", code="upstream_unreachable")  # pragma: no cover


def _wait_before_next(
    upstream: aiohttp.ClientResponse,
    retry: RetrySettings,
    attempt: int,
    last_try: bool,
    last_target: bool,
) -> float | None:
    """None: relay this answer. Otherwise seconds to wait before the next try at this upstream
    (0 after its last try: the next upstream is tried at once), or -1 to fall back at once."""
    if not is_retryable_status(upstream.status) or (last_try and last_target):
        return None
    if last_try:
        return 0.0
    asked = retry_after_seconds(upstream.headers.get("Retry-After"))
    if asked is not None and asked > retry.retry_after_max:
        return None if last_target else -1.0
    return max(asked or 0.0, backoff_delay(retry, attempt))


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 3)
