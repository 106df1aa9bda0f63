"""`UpstreamTransport`: send one request to a client's upstreams, with retries and fallbacks.

Each target (the client's own upstream, then its policy's `fallbacks`) is tried up to
`1 + retries` times (`retries.py` decides what is retried and how long to wait). The first final
answer is returned open, as an `UpstreamReply`, for the relay to copy to the client; nothing is
retried once a byte of the reply has gone out, because the reply is only returned after the
decision. Every attempt is recorded on the request's `Exchange` for the journal. Handlers and
managed mode send through it; nothing else talks to an upstream (tool plugins excepted, which
call their own APIs through `upstream_errors` too).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence

import aiohttp
import orjson
from multidict import CIMultiDict

from gateway.config import Settings
from gateway.errors import UpstreamError
from gateway.exchange import Exchange
from gateway.upstream.errors import upstream_errors
from gateway.upstream.reply import UpstreamReply
from gateway.upstream.retries import RetrySettings, backoff_delay, wait_before_next


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    """One upstream to try: the full URL, its headers (credentials included), and a label
    for the journal that carries no secret."""

    url: str
    headers: CIMultiDict[str]
    label: str


def create_upstream_session(settings: Settings) -> aiohttp.ClientSession:
    """One pooled session per process. `upstream_timeout` bounds every wait for the upstream
    (its headers, and each gap between body bytes), not a whole long stream."""
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=300)
    timeout = aiohttp.ClientTimeout(
        total=None,
        sock_connect=settings.upstream_connect_timeout,
        sock_read=settings.upstream_timeout,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        auto_decompress=True,
        skip_auto_headers=("User-Agent",),
        json_serialize=lambda obj: orjson.dumps(obj).decode(),
    )


class UpstreamTransport:
    """The process's pooled session and the send loop every handler uses."""

    def __init__(self, session: aiohttp.ClientSession, settings: Settings) -> None:
        self.session = session
        self.settings = settings

    def retry_settings(self, retries: int | None) -> RetrySettings:
        return RetrySettings.from_settings(self.settings, retries)

    async def send(
        self,
        exchange: Exchange,
        method: str,
        targets: Sequence[Target],
        body: bytes | None,
        retry: RetrySettings,
    ) -> UpstreamReply:
        """Try `targets` in order; return the first answer that is final, still open."""
        for index, target in enumerate(targets):
            last_target = index == len(targets) - 1
            for number in range(retry.retries + 1):
                last_try = number == retry.retries
                attempt = exchange.attempt(target.label, number + 1)
                exchange.upstream_started()
                try:
                    with upstream_errors():
                        response = await self.session.request(
                            method, target.url, data=body, headers=target.headers
                        )
                except UpstreamError as exc:
                    attempt.failed(exc.code)
                    if last_target and last_try:
                        raise
                    wait = 0.0 if last_try else backoff_delay(retry, number)
                else:
                    attempt.answered(response.status)
                    decision = wait_before_next(
                        response.status,
                        response.headers.get("Retry-After"),
                        retry,
                        number,
                        last_try,
                        last_target,
                    )
                    if decision is None:
                        return UpstreamReply(response, target.label)
                    response.close()
                    wait = decision
                if wait < 0:  # Retry-After too long for this upstream: fall back now
                    break
                if not last_try:
                    attempt.retry_in(wait)
                    await asyncio.sleep(wait)
        raise UpstreamError("no upstream answered", code="upstream_unreachable")  # pragma: no cover
