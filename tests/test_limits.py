"""Rate limits, token reconciliation and budgets end to end, through the openai SDK, against a
single Redis and against a three-master Redis Cluster."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from typing import Any

import openai
import orjson
import pytest
from aiohttp.test_utils import TestServer
from openai.types.chat import ChatCompletionMessageParam
from redis.asyncio import Redis

from gateway import appkeys
from gateway.limits.checks import utc_day
from gateway.limits.usage import read_usage
from gateway.store import keys
from gateway.store.repositories import ApiKeyRepository
from tests.conftest import Tenant, make_tenant, sdk_kwargs
from tests.support.helpers import wait_for
from tests.support.limits_support import (
    STREAM_PROMPT_TOKENS,
    flush_usage,
    in_flight,
    tokens_in_window,
)
from tests.support.upstream_server import UpstreamServer

HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


@pytest.fixture(params=["standalone", "cluster"])
def redis_url(request: pytest.FixtureRequest, redis_url: str) -> str:
    if request.param == "cluster":
        return str(request.getfixturevalue("redis_cluster_url"))
    return redis_url


async def limited_tenant(
    redis: Redis, upstream_url: str, key_limits: dict[str, Any] | None = None, **client_limits: Any
) -> Tenant:
    tenant = await make_tenant(redis, upstream_url=upstream_url, **client_limits)
    if key_limits:
        repository = ApiKeyRepository(redis)
        record = await repository.require(tenant.key_id)
        await repository.put(dataclasses.replace(record, **key_limits))
    return tenant


@pytest.fixture
async def sdk_for(gateway: TestServer) -> AsyncIterator[Any]:
    made: list[openai.AsyncOpenAI] = []

    def make(tenant: Tenant) -> openai.AsyncOpenAI:
        made.append(openai.AsyncOpenAI(**sdk_kwargs(gateway, tenant)))
        return made[-1]

    yield make
    for sdk in made:
        await sdk.close()


async def test_over_the_limit_is_an_openai_429_with_rate_limit_headers(
    redis: Redis, upstream: tuple[UpstreamServer, str], sdk_for: Any
) -> None:
    tenant = await limited_tenant(redis, upstream[1], rpm=2)
    sdk = sdk_for(tenant)
    remaining = []
    for _ in range(2):
        raw = await sdk.chat.completions.with_raw_response.create(model="gpt-test", messages=HI)
        assert raw.headers["x-ratelimit-limit-requests"] == "2"
        assert raw.headers["x-ratelimit-reset-requests"].endswith("s")
        remaining.append(raw.headers["x-ratelimit-remaining-requests"])
        assert raw.parse().choices[0].message.content == "Hello from upstream"
    assert remaining == ["1", "0"]
    with pytest.raises(openai.RateLimitError) as caught:
        await sdk.chat.completions.create(model="gpt-test", messages=HI)
    error = caught.value
    assert error.status_code == 429
    assert error.code == "rate_limit_exceeded"
    assert error.type == "requests"
    assert "Limit 2, Used 2" in error.message
    headers = error.response.headers
    assert 1 <= int(headers["retry-after"]) <= 60
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-limit-requests"] == "2"

    async def refusal_journaled() -> bool:
        entries: Any = await redis.xrange(keys.JOURNAL_STREAM)
        records = [orjson.loads(fields[b"record"]) for _id, fields in entries]
        return any(r["status"] == 429 and r["key_id"] == tenant.key_id for r in records)

    await wait_for(refusal_journaled, what="the 429 in the journal")


async def test_concurrent_requests_admit_exactly_the_limit(
    redis: Redis, upstream: tuple[UpstreamServer, str], sdk_for: Any
) -> None:
    tenant = await limited_tenant(redis, upstream[1], rpm=10)
    sdk = sdk_for(tenant)

    async def one() -> int:
        try:
            await sdk.chat.completions.create(model="gpt-test", messages=HI)
        except openai.RateLimitError:
            return 429
        return 200

    statuses = await asyncio.gather(*(one() for _ in range(30)))
    assert statuses.count(200) == 10
    assert statuses.count(429) == 20


@pytest.mark.parametrize("client_asks_for_usage", [True, False])
async def test_stream_reservation_is_replaced_by_the_real_usage(
    redis: Redis,
    gateway: TestServer,
    upstream: tuple[UpstreamServer, str],
    sdk_for: Any,
    client_asks_for_usage: bool,
) -> None:
    """The gateway asks the upstream for a stream's usage whether or not the client did."""
    tenant = await limited_tenant(redis, upstream[1], key_limits={"tpm": 10_000})
    scope = f"key:{tenant.key_id}"
    stream = await sdk_for(tenant).chat.completions.create(
        model="gpt-test",
        messages=HI,
        stream=True,
        stream_options={"include_usage": True} if client_asks_for_usage else openai.NOT_GIVEN,
        max_tokens=500,
    )
    chunks = [chunk async for chunk in stream]
    real = STREAM_PROMPT_TOKENS + len(upstream[0].words)
    if client_asks_for_usage:
        assert chunks[-1].usage is not None
        assert chunks[-1].usage.total_tokens == real
    else:
        assert all(chunk.usage is None for chunk in chunks)

    async def reconciled() -> bool:
        return await tokens_in_window(redis, tenant.account, scope) == real

    await wait_for(reconciled, what="the reservation (500+) to become the real usage")
    await flush_usage(gateway.app)
    rows = await read_usage(redis, [tenant.account], [utc_day(time.time())])
    assert [
        (r.client, r.key_id, r.model, r.requests, r.prompt_tokens, r.completion_tokens)
        for r in rows
    ] == [
        (tenant.client, tenant.key_id, "gpt-test", 1, STREAM_PROMPT_TOKENS, len(upstream[0].words))
    ]


async def test_json_usage_settles_tokens_and_tpm_refuses_what_cannot_fit(
    redis: Redis, upstream: tuple[UpstreamServer, str], sdk_for: Any
) -> None:
    tenant = await limited_tenant(redis, upstream[1], tpm=200)
    sdk = sdk_for(tenant)
    raw = await sdk.chat.completions.with_raw_response.create(model="gpt-test", messages=HI)
    assert raw.headers["x-ratelimit-limit-tokens"] == "200"
    # The upstream reports 7 + 3 tokens: the reservation is settled to exactly that.
    assert await tokens_in_window(redis, tenant.account, f"client:{tenant.client}") == 10
    with pytest.raises(openai.RateLimitError) as caught:
        await sdk.chat.completions.create(model="gpt-test", messages=HI, max_tokens=300)
    assert caught.value.type == "tokens"
    assert caught.value.response.headers["x-ratelimit-limit-tokens"] == "200"
    assert await tokens_in_window(redis, tenant.account, f"client:{tenant.client}") == 10


async def test_max_concurrent_counts_requests_in_flight(
    redis: Redis, upstream: tuple[UpstreamServer, str], sdk_for: Any
) -> None:
    behaviour, url = upstream
    tenant = await limited_tenant(redis, url, max_concurrent=1)
    sdk = sdk_for(tenant)
    stream = await sdk.chat.completions.create(model="pause-stream", messages=HI, stream=True)
    iterator = stream.__aiter__()
    await anext(iterator)
    with pytest.raises(openai.RateLimitError) as caught:
        await sdk.chat.completions.create(model="gpt-test", messages=HI)
    assert "concurrent requests" in caught.value.message
    behaviour.release()
    _rest = [chunk async for chunk in iterator]

    async def released() -> bool:
        return await in_flight(redis, tenant.account, f"client:{tenant.client}") == 0

    await wait_for(released, what="the in-flight slot to be released")
    reply = await sdk.chat.completions.create(model="gpt-test", messages=HI)
    assert reply.choices[0].message.content == "Hello from upstream"


@pytest.mark.parametrize(
    ("budget", "later"), [("tokens_per_day", 86400), ("tokens_per_month", 32 * 86400)]
)
async def test_budget_refuses_with_insufficient_quota_until_the_window_resets(
    redis: Redis,
    gateway: TestServer,
    upstream: tuple[UpstreamServer, str],
    sdk_for: Any,
    budget: str,
    later: int,
) -> None:
    tenant = await limited_tenant(redis, upstream[1], key_limits={budget: 25})
    sdk = sdk_for(tenant)
    for _ in range(3):  # 0, 10, 20 tokens used before each: all under 25
        await sdk.chat.completions.create(model="gpt-test", messages=HI)
    with pytest.raises(openai.RateLimitError) as caught:
        await sdk.chat.completions.create(model="gpt-test", messages=HI)
    assert caught.value.code == "insufficient_quota"
    assert caught.value.type == "insufficient_quota"
    assert int(caught.value.response.headers["retry-after"]) >= 1
    limiter = gateway.app[appkeys.METERING].limiter
    limiter.clock = lambda: time.time() + later
    reply = await sdk.chat.completions.create(model="gpt-test", messages=HI)
    assert reply.choices[0].message.content == "Hello from upstream"
