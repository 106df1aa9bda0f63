"""The pipeline's limits stage: reserve before the handler, settle with the real usage after.

Before the call: price the request (the operator's overrides for its account and client, from a
cache), then admit against the limits of the account, the client, the key and the end user, in
one script (429 when refused; no Redis round trip when none has a limit). A dollar budget
reserves the estimated cost (the input estimate plus `max_tokens`, or a default, as output, at
the requested model's price) and settles to the real cost; a request that a dollar budget
applies to but that no price is known for is refused (400 `price_unknown`), never waved through
at a made-up price. After the response has been sent (a stream to its end):
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
from gateway.cache import TtlCache
from gateway.costs import NO_OVERRIDES, PriceOverrides, TokenCounts, compute_cost, micro_usd
from gateway.errors import InvalidRequestError
from gateway.exchange import Exchange, Identity
from gateway.limits.checks import (
    BYTES_PER_TOKEN,
    LIMIT_FIELDS,
    estimate_output_tokens,
    estimate_tokens,
    scopes_of,
)
from gateway.limits.limiter import Admission, RateLimiter
from gateway.limits.usage import UsageRecorder
from gateway.store.accounts import AccountRepository
from gateway.store.prices import PriceBook
from gateway.store.records import AccountRecord, ApiKeyRecord, ClientRecord
from gateway.usage import Usage, merge_stream_usage, usage_in_bytes

log = structlog.get_logger("gateway.limits")


#: Every limit field a record may set (accounts, clients and keys share the first seven).
ALL_LIMITS = (*LIMIT_FIELDS, "usd_per_day", "usd_per_month", "end_user_rpm", "end_user_usd_per_day")
_DOLLARS = ("usd_per_day", "usd_per_month", "end_user_usd_per_day")


def has_limits(record: Any) -> bool:
    return any(getattr(record, name, None) is not None for name in ALL_LIMITS)


def has_dollar_limits(records: tuple[Any, ...]) -> bool:
    return any(getattr(r, name, None) is not None for r in records for name in _DOLLARS)


def token_counts(usage: Usage) -> TokenCounts:
    return TokenCounts(usage.input_tokens, usage.cached_input_tokens or 0, usage.output_tokens)


class Metering:
    """The limiter, the usage recorder, the account and price caches, and the background
    settlements still running."""

    def __init__(
        self,
        limiter: RateLimiter,
        usage: UsageRecorder,
        verifier: KeyVerifier,
        accounts: AccountRepository | None = None,
        account_cache: TtlCache[str, AccountRecord | None] | None = None,
        prices: PriceBook | None = None,
    ) -> None:
        self.limiter = limiter
        self.usage = usage
        self.verifier = verifier
        self.accounts = accounts
        self.account_cache = account_cache
        self.prices = prices
        self._background: set[asyncio.Task[None]] = set()

    async def account_record(self, account: str) -> AccountRecord | None:
        """The account's record (cached like client records; None without one)."""
        if self.accounts is None or self.account_cache is None:
            return None
        repository = self.accounts
        try:
            return await self.account_cache.get_or_load(account, lambda: repository.get(account))
        except RedisError:
            return None

    async def overrides(self, client: ClientRecord) -> PriceOverrides:
        """The operator's prices for this client (none when Redis cannot say: the table's
        prices apply, and the journal's `source` shows it)."""
        if self.prices is None:
            return NO_OVERRIDES
        try:
            return await self.prices.overrides_for(client.account, client.name)
        except RedisError:
            return NO_OVERRIDES

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
        client = identity.client
        overrides = await self.overrides(client)
        exchange.priced(overrides)
        key = await self.key_record(identity.user.key_id)
        account = await self.account_record(client.account)
        records = (client, key, account)
        if not any(has_limits(r) for r in records if r is not None):
            return None
        scopes = scopes_of(client, key, account, exchange.end_user)
        # A route without a body (GET /v1/models) uses no tokens: it reserves none.
        body = exchange.upstream_body(data) if exchange.raw_body else b""
        estimate = estimate_tokens(body, data) if body else 0
        estimate_usd = 0
        if body and has_dollar_limits(records):
            estimate_usd = self.estimate_usd(client, exchange, overrides, body, data)
        admission = await self.limiter.admit(client.account, scopes, estimate, estimate_usd)
        if admission is not None and admission.headers:
            exchange.add_headers(admission.headers)
        return admission

    def estimate_usd(
        self,
        client: ClientRecord,
        exchange: Exchange,
        overrides: PriceOverrides,
        body: bytes,
        data: dict[str, Any],
    ) -> int:
        """Micro-dollars to reserve: the input estimate and the output asked for (or the
        default), at the requested model's price."""
        tokens = TokenCounts(len(body) // BYTES_PER_TOKEN + 1, 0, estimate_output_tokens(data))
        cost = compute_cost(
            tokens, provider=client.provider, models=(exchange.model,), overrides=overrides
        )
        if cost is None:
            raise InvalidRequestError(
                f"a dollar budget applies to this request, but no price is known for model "
                f"{(exchange.model or '')[:100]!r}; the operator can set one "
                "(`gateway prices set`)",
                code="price_unknown",
                param="model",
            )
        return micro_usd(cost)

    async def settle(
        self, admission: Admission | None, exchange: Exchange, response: web.StreamResponse | None
    ) -> None:
        """Replace the reservation with the real usage (or release it when nothing was used)."""
        if admission is None:
            return
        usage = usage_of(exchange, response)
        exchange.metered(usage)
        actual_usd: int | None = None  # None: the dollar reservation stands
        if usage is not None:
            actual = usage.total_tokens
            if admission.estimate_usd:
                cost = compute_cost(
                    token_counts(usage),
                    provider=exchange.client.provider if exchange.client else None,
                    models=(exchange.model,),
                    overrides=exchange.price_overrides or NO_OVERRIDES,
                )
                actual_usd = None if cost is None else micro_usd(cost)
        elif exchange.capture is not None:
            # A stream whose usage never came (the client left early, or the upstream sent
            # none): what was relayed was used. Charge the reservation, and at least the prompt
            # estimate plus one token per event relayed.
            prompt = len(exchange.raw_body or b"") // BYTES_PER_TOKEN + 1
            actual = max(admission.estimate, prompt + exchange.capture.events())
        elif response is not None and response.status < 400:
            actual = admission.estimate
        else:
            actual, actual_usd = 0, 0
        await self.limiter.settle(admission, actual, actual_usd)

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
