"""Account-wide limits, dollar budgets and end-user limits through the pipeline, with the
openai SDK: the account's limit sums its clients, the budget's 429 says which budget and when
it resets, a dollar budget with no known price refuses rather than guess, end users are
limited one by one."""

from __future__ import annotations

import dataclasses
from typing import Any

import openai
import pytest
from aiohttp.test_utils import TestServer
from openai.types.chat import ChatCompletionMessageParam
from redis.asyncio import Redis

from gateway.store.accounts import AccountRepository
from gateway.store.prices import PriceRepository
from gateway.store.records import AccountRecord, PriceRecord
from gateway.store.repositories import ApiKeyRepository, ClientRepository
from tests.conftest import Tenant, make_tenant, sdk_kwargs
from tests.support.helpers import wait_for
from tests.support.upstream_server import UpstreamServer

HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


def sdk(gateway: TestServer, tenant: Tenant) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(**sdk_kwargs(gateway, tenant))


async def test_account_rpm_is_shared_by_its_clients(
    redis: Redis, upstream: tuple[UpstreamServer, str], gateway: TestServer
) -> None:
    first = await make_tenant(redis, upstream_url=upstream[1])
    second = await make_tenant(redis, client="second", upstream_url=upstream[1])
    await AccountRepository(redis).put(AccountRecord(account=first.account, rpm=3))
    async with sdk(gateway, first) as one, sdk(gateway, second) as two:
        for caller in (one, two, one):
            await caller.chat.completions.create(model="gpt-test", messages=HI)
        with pytest.raises(openai.RateLimitError) as refused:
            await two.chat.completions.create(model="gpt-test", messages=HI)
    assert "account" in refused.value.message
    assert len(upstream[0].seen) == 3


async def test_client_and_key_dollar_budgets(
    redis: Redis, upstream: tuple[UpstreamServer, str], gateway: TestServer
) -> None:
    tenant = await make_tenant(redis, upstream_url=upstream[1])
    await PriceRepository(redis).put(PriceRecord("gpt-test", "0", "1000"))  # $0.001 a token
    clients = ClientRepository(redis)
    record = await clients.require(tenant.account, tenant.client)
    await clients.put(dataclasses.replace(record, usd_per_month=0.006))
    async with sdk(gateway, tenant) as caller:
        for _ in range(2):  # reserve 3 output tokens, bill 3: $0.003 each
            await caller.chat.completions.create(model="gpt-test", messages=HI, max_tokens=3)
        with pytest.raises(openai.RateLimitError) as refused:
            await caller.chat.completions.create(model="gpt-test", messages=HI, max_tokens=3)
        assert refused.value.code == "insufficient_quota"
        assert "dollars per month budget (client:customer-support)" in refused.value.message
        assert "Limit $0.006, Used $0.006" in refused.value.message
        assert int(refused.value.response.headers["retry-after"]) > 0
        # The key's own budget is checked in the same script.
        await clients.put(dataclasses.replace(record, usd_per_month=None))
        keys = ApiKeyRepository(redis)
        key = await keys.require(tenant.key_id)
        await keys.put(dataclasses.replace(key, usd_per_day=0.001))
        await wait_until_refused(caller, "key:")


async def wait_until_refused(caller: openai.AsyncOpenAI, scope: str) -> None:
    """Changes reach the gateway's caches by pub/sub: the next requests see the new budget."""
    seen: list[str] = []

    async def refused() -> bool:
        try:
            await caller.chat.completions.create(model="gpt-test", messages=HI, max_tokens=3)
        except openai.RateLimitError as exc:
            seen.append(exc.message)
            return True
        return False

    await wait_for(refused, what="the key's budget to refuse")
    assert scope in seen[-1]


async def test_a_dollar_budget_without_a_price_refuses(
    redis: Redis, upstream: tuple[UpstreamServer, str], gateway: TestServer
) -> None:
    tenant = await make_tenant(redis, upstream_url=upstream[1])
    await AccountRepository(redis).put(AccountRecord(account=tenant.account, usd_per_day=5.0))
    async with sdk(gateway, tenant) as caller:
        with pytest.raises(openai.BadRequestError) as refused:
            await caller.chat.completions.create(model="gpt-test", messages=HI)
    assert refused.value.code == "price_unknown"
    assert "gpt-test" in refused.value.message
    assert upstream[0].seen == []
    # A priced model goes through.
    async with sdk(gateway, tenant) as caller:
        await caller.chat.completions.create(model="gpt-4o", messages=HI)


async def test_end_users_are_limited_one_by_one(
    redis: Redis, upstream: tuple[UpstreamServer, str], gateway: TestServer
) -> None:
    tenant = await make_tenant(redis, upstream_url=upstream[1], end_user_rpm=2)
    async with sdk(gateway, tenant) as caller:
        ask: dict[str, Any] = {"model": "gpt-test", "messages": HI}
        for _ in range(2):
            await caller.chat.completions.create(**ask, user="alice")
        with pytest.raises(openai.RateLimitError):
            await caller.chat.completions.create(**ask, user="alice")
        with pytest.raises(openai.RateLimitError):  # the header names the same end user
            await caller.chat.completions.create(
                **ask, extra_headers={"x-gateway-end-user": "alice"}
            )
        await caller.chat.completions.create(**ask, user="bob")
        await caller.chat.completions.create(**ask, safety_identifier="carol")
        for _ in range(3):  # no end user named: the per-user limit does not apply
            await caller.chat.completions.create(**ask)
