"""The pipeline's limits stage: reserve before the handler, settle with the real usage after.

Before the call: admit against the client's and the key's limits (429 when refused; no Redis
round trip when neither has a limit). After the response has been sent (a stream to its end):
read the real usage through `gateway.usage` (the JSON body, or the tail of the stream's
capture), settle the token reservation and the in-flight slot. A cancelled request (the client
went away) is settled in the background. Usage tallies are kept from the journal's record of
each request (`UsageRecorder.observe`), off the request path.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from aiohttp import web
from redis.exceptions import RedisError

from gateway.auth import KeyVerifier
from gateway.exchange import Exchange, Identity
from gateway.limits.checks import BYTES_PER_TOKEN, LIMIT_FIELDS, estimate_tokens, scopes_of
from gateway.limits.limiter import Admission, RateLimiter
from gateway.limits.usage import UsageRecorder
from gateway.store.records import ApiKeyRecord
from gateway.usage import Usage, merge_stream_usage, usage_in_bytes

log = structlog.get_logger("gateway.limits")


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

    async def admit(
        self, identity: Identity, exchange: Exchange, data: dict[str, Any]
    ) -> Admission | None:
        """Reserve against every limit of the client and the key (None: nothing is limited)."""
        key = await self.key_record(identity.user.key_id)
        if not has_limits(identity.client) and (key is None or not has_limits(key)):
            return None
        scopes = scopes_of(identity.client, key)
        # A route without a body (GET /v1/models) uses no tokens: it reserves none.
        estimate = estimate_tokens(exchange.upstream_body(data), data) if exchange.raw_body else 0
        admission = await self.limiter.admit(identity.client.account, scopes, estimate)
        if admission is not None and admission.headers:
            exchange.add_headers(admission.headers)
        return admission

    async def settle(
        self, admission: Admission | None, exchange: Exchange, response: web.StreamResponse | None
    ) -> None:
        """Replace the reservation with the real usage (or release it when nothing was used)."""
        if admission is None:
            return
        usage = usage_of(exchange, response)
        exchange.metered(usage)
        if usage is not None:
            actual = usage.total_tokens
        elif exchange.capture is not None:
            # A stream whose usage never came (the client left early, or the upstream sent
            # none): what was relayed was used. Charge the reservation, and at least the prompt
            # estimate plus one token per event relayed.
            prompt = len(exchange.raw_body or b"") // BYTES_PER_TOKEN + 1
            actual = max(admission.estimate, prompt + exchange.capture.events())
        elif response is not None and response.status < 400:
            actual = admission.estimate
        else:
            actual = 0
        await self.limiter.settle(admission, actual)

    def settle_later(self, admission: Admission | None, exchange: Exchange) -> None:
        """Settle a request whose task is being cancelled (the client left)."""
        if admission is None:
            return
        task = asyncio.create_task(self.settle(admission, exchange, None), name="metering-settle")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await self.usage.close()


def usage_of(exchange: Exchange, response: web.StreamResponse | None) -> Usage | None:
    """Real usage, when the response carried it: a JSON body's, or a stream's from its last
    events (the capture keeps them past its limit; Anthropic reports input in its first)."""
    if exchange.endpoint == "count_tokens" and response is not None and response.status < 400:
        return Usage(0, 0)  # Anthropic's token count generates nothing and is not billed
    capture = exchange.capture
    if capture is not None:
        tail = usage_in_bytes(capture.tail())
        if tail is not None and tail.input_tokens:
            return tail
        return merge_stream_usage(usage_in_bytes(capture.head()), tail)
    if exchange.response_body is None or (response is not None and response.status >= 400):
        return None
    return usage_in_bytes(exchange.response_body)
