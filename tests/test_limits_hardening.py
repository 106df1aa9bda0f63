"""Limits never fail open on input (issue 10, item 2): a huge `max_tokens` is clamped, a script
that fails in Redis is refused with 503 and counted, and a failing check writes no counter."""

from __future__ import annotations

import dataclasses
import time

import openai
import pytest
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from gateway import appkeys
from gateway.limits import scripts
from gateway.limits.checks import MAX_TOKENS_PER_REQUEST, estimate_tokens, utc_day
from gateway.store import keys
from gateway.store.repositories import ApiKeyRepository
from tests.conftest import make_tenant, sdk_kwargs
from tests.support.helpers import error_of, raw_request, wait_for
from tests.support.upstream_server import UpstreamServer

HUGE = 1_000_000_000_000_000_000


def test_estimates_are_clamped_whatever_the_request_asks_for() -> None:
    for field in ("max_tokens", "max_completion_tokens"):
        for asked in (HUGE, 2**70, MAX_TOKENS_PER_REQUEST + 1):
            assert estimate_tokens(b"{}", {field: asked}) == MAX_TOKENS_PER_REQUEST
    # A float asks for as much as the integer would (an outsider's attack found it skipped).
    assert estimate_tokens(b"{}", {"max_tokens": 1e30}) == MAX_TOKENS_PER_REQUEST
    assert estimate_tokens(b"{}", {"max_tokens": "1e30"}) == 1  # not a number: not reserved
    assert estimate_tokens(b"x" * 40, {"max_tokens": 10}) == 21


async def test_a_huge_max_tokens_is_refused_by_tpm_not_let_through(
    gateway: TestServer, redis: Redis, upstream: tuple[UpstreamServer, str]
) -> None:
    tenant = await make_tenant(redis, upstream_url=upstream[1], rpm=100, tpm=10_000)
    async with openai.AsyncOpenAI(**sdk_kwargs(gateway, tenant)) as sdk:
        with pytest.raises(openai.RateLimitError):
            await sdk.chat.completions.create(
                model="gpt-test", messages=[{"role": "user", "content": "hi"}], max_tokens=HUGE
            )
    stats = gateway.app[appkeys.METERING].limiter.stats
    assert (stats.unchecked, stats.script_errors, stats.refused) == (0, 0, 1)
    # Refused: all or nothing, so the request window holds nothing.
    assert await redis.zcard(keys.limit_requests(tenant.account, "client:customer-support")) == 0


async def test_a_huge_max_tokens_on_a_budget_reserves_the_ceiling_and_settles_exactly(
    gateway: TestServer, redis: Redis, upstream: tuple[UpstreamServer, str]
) -> None:
    tenant = await make_tenant(redis, upstream_url=upstream[1], tokens_per_day=10**12)
    async with openai.AsyncOpenAI(**sdk_kwargs(gateway, tenant)) as sdk:
        reply = await sdk.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "hi"}], max_tokens=HUGE
        )
    assert reply.usage is not None
    day_key = keys.budget_day(tenant.account, "client:customer-support", utc_day(time.time()))

    async def settled() -> bool:
        value = await redis.get(day_key)
        return value is not None and int(value) == reply.usage.total_tokens  # type: ignore[union-attr]

    await wait_for(settled, what="the budget to hold the real usage")
    stats = gateway.app[appkeys.METERING].limiter.stats
    assert (stats.unchecked, stats.script_errors, stats.admitted) == (0, 0, 1)


async def test_a_failing_script_is_a_503_counted_and_writes_nothing(
    gateway: TestServer, redis: Redis, upstream: tuple[UpstreamServer, str]
) -> None:
    tenant = await make_tenant(redis, upstream_url=upstream[1], rpm=100)
    repository = ApiKeyRepository(redis)
    record = await repository.require(tenant.key_id)
    await repository.put(dataclasses.replace(record, tokens_per_day=1000))
    scope = f"key:{tenant.key_id}"
    # The key's day budget is not a counter: Redis fails the script (WRONGTYPE).
    await redis.hset(keys.budget_day(tenant.account, scope, utc_day(time.time())), "x", "1")
    body = b'{"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}'
    status, _headers, reply = await raw_request(
        gateway, "POST", "/v1/chat/completions", host=tenant.hostname, key=tenant.key, body=body
    )
    assert status == 503
    assert error_of(reply)["code"] == "rate_limiter_error"
    stats = gateway.app[appkeys.METERING].limiter.stats
    assert (stats.unchecked, stats.script_errors, stats.admitted) == (0, 1, 0)
    # The client's rpm check ran first in the script, yet nothing was written.
    assert await redis.zcard(keys.limit_requests(tenant.account, "client:customer-support")) == 0


async def test_the_check_script_refuses_out_of_range_arguments_before_any_write(
    redis: Redis,
) -> None:
    """The path of the original bug, below the clamp: an estimate of 10^18 reached INCRBY as
    `1e+18` after the rpm entry was added, which then stayed."""
    account, scope = "3141-5926-5359", "client:c"
    rpm_key = keys.limit_requests(account, scope)
    check = redis.register_script(scripts.CHECK)
    day_key = keys.budget_day(account, scope, "20260101")
    # ARGV: member, estimate, window, lease, n, estimate_usd, then (kind, limit, ttl) per check.
    args: list[str | int] = [
        "member", HUGE, 60_000, 900_000, 2, 0, "r", 100, 0, "d", 10**15, 86400
    ]  # fmt: skip
    with pytest.raises(ResponseError, match="out of range"):
        await check(keys=[rpm_key, day_key], args=args)
    assert await redis.exists(rpm_key, day_key) == 0
    args[1] = 5
    assert (await check(keys=[rpm_key, day_key], args=args))[0] == 1
    assert await redis.get(day_key) == b"5"
