"""Dollar budgets, account-wide limits and end-user limits in the limiter's one atomic script:
exact under concurrency, on a single Redis and on a Redis Cluster (every key of one check
carries the account's hash tag)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from redis.asyncio import Redis

from gateway.costs import Cost, micro_usd
from gateway.errors import QuotaExceededError, RateLimitError
from gateway.limits.checks import checks_for, end_user_scope, scopes_of
from gateway.limits.limiter import RateLimiter
from gateway.store.records import AccountRecord, ApiKeyRecord, ClientRecord
from gateway.store.redis import create_redis
from tests.conftest import ACCOUNT


@pytest.fixture(params=["standalone", "cluster"])
def redis_url(request: pytest.FixtureRequest, redis_url: str) -> str:
    if request.param == "cluster":
        return str(request.getfixturevalue("redis_cluster_url"))
    return redis_url


CLIENT = ClientRecord(account=ACCOUNT, name="bot", provider="echo")
KEY = ApiKeyRecord(id="0123456789ab", account=ACCOUNT, name="k", hash="x")


async def test_dollar_budget_refuses_the_request_that_would_cross_it(redis: Redis) -> None:
    limiter = RateLimiter(redis)
    account = AccountRecord(account=ACCOUNT, usd_per_day=0.01)  # 10,000 micro-dollars
    scopes = scopes_of(CLIENT, KEY, account)
    admitted = [await limiter.admit(ACCOUNT, scopes, 10, 3000) for _ in range(3)]
    with pytest.raises(QuotaExceededError) as refused:
        await limiter.admit(ACCOUNT, scopes, 10, 3000)  # 12,000 > 10,000
    message = refused.value.message
    assert "dollars per day budget (account)" in message
    assert "Limit $0.01" in message
    assert "Used $0.009" in message
    assert "resets in" in message
    assert refused.value.code == "insufficient_quota"
    assert refused.value.status == 429
    assert int(refused.value.headers["retry-after"]) > 0
    # Settling to the real cost frees what the estimate over-reserved.
    first = admitted[0]
    assert first is not None
    await limiter.settle(first, 5, actual_usd=1000)  # used: 7,000
    assert await limiter.admit(ACCOUNT, scopes, 10, 3000) is not None  # 10,000: exactly full
    with pytest.raises(QuotaExceededError):
        await limiter.admit(ACCOUNT, scopes, 10, 1)


async def test_budgets_at_every_scope_and_month(redis: Redis) -> None:
    limiter = RateLimiter(redis)
    client = ClientRecord(account=ACCOUNT, name="bot", provider="echo", usd_per_month=0.005)
    key = ApiKeyRecord(id="0123456789ab", account=ACCOUNT, name="k", hash="x", usd_per_day=1.0)
    scopes = scopes_of(client, key, AccountRecord(account=ACCOUNT, usd_per_day=1.0))
    kinds = [(c.kind, c.scope) for c in checks_for(ACCOUNT, scopes, 0.0)]
    assert kinds == [("D", "account"), ("M", "client:bot"), ("D", "key:0123456789ab")]
    await limiter.admit(ACCOUNT, scopes, 1, 5000)
    with pytest.raises(QuotaExceededError, match=r"dollars per month budget \(client:bot\)"):
        await limiter.admit(ACCOUNT, scopes, 1, 1)


async def test_account_limits_sum_every_client_and_key(redis: Redis) -> None:
    limiter = RateLimiter(redis)
    account = AccountRecord(account=ACCOUNT, rpm=3)
    other_client = ClientRecord(account=ACCOUNT, name="other", provider="echo")
    other_key = ApiKeyRecord(id="ba9876543210", account=ACCOUNT, name="k2", hash="y")
    for client, key in ((CLIENT, KEY), (other_client, other_key), (CLIENT, other_key)):
        await limiter.admit(ACCOUNT, scopes_of(client, key, account), 1)
    with pytest.raises(RateLimitError, match="account"):
        await limiter.admit(ACCOUNT, scopes_of(other_client, KEY, account), 1)


async def test_end_user_limits(redis: Redis) -> None:
    limiter = RateLimiter(redis)
    client = ClientRecord(
        account=ACCOUNT, name="bot", provider="echo", end_user_rpm=2, end_user_usd_per_day=0.002
    )
    for _ in range(2):
        await limiter.admit(ACCOUNT, scopes_of(client, None, end_user="alice"), 1, 100)
    with pytest.raises(RateLimitError, match=end_user_scope("bot", "alice")):
        await limiter.admit(ACCOUNT, scopes_of(client, None, end_user="alice"), 1, 100)
    # Another end user has a budget of their own; one without an id is not limited per user.
    await limiter.admit(ACCOUNT, scopes_of(client, None, end_user="bob"), 1, 2000)
    with pytest.raises(QuotaExceededError):
        await limiter.admit(ACCOUNT, scopes_of(client, None, end_user="bob"), 1, 1)
    assert await limiter.admit(ACCOUNT, scopes_of(client, None), 1, 10**9) is None
    # Whatever bytes an end-user id holds, its key is a short digest under the account's tag.
    weird = "x" * 10_000 + "\u2603{}\n"
    assert len(end_user_scope("bot", weird)) == len("user:bot:") + 32


async def test_two_limiters_on_two_connections_admit_exactly(redis_url: str, redis: Redis) -> None:
    """Many concurrent admissions from two limiters (two connections, as two gateways have):
    exactly floor(budget / estimate) pass."""
    connections = [create_redis(redis_url), create_redis(redis_url)]
    limiters = [RateLimiter(c) for c in connections]
    account = AccountRecord(account=ACCOUNT, usd_per_day=0.05)  # 50,000 micro-dollars
    scopes = scopes_of(CLIENT, KEY, account)

    async def one(index: int) -> bool:
        try:
            await limiters[index % 2].admit(ACCOUNT, scopes, 1, 3000)
        except QuotaExceededError:
            return False
        return True

    try:
        for connection in connections:
            await connection.ping()  # a cluster client must learn the slots before a burst
        results = await asyncio.gather(*(one(i) for i in range(60)))
    finally:
        for connection in connections:
            await connection.aclose()
    assert results.count(True) == 50_000 // 3000


def test_micro_usd_rounds_up() -> None:
    cost = Cost(Decimal("0.0000001"), Decimal(0), Decimal("0.0000015"), "genai-prices")
    assert micro_usd(cost) == 2
    assert micro_usd(Cost(Decimal(1), Decimal(0), Decimal(0), "x")) == 1_000_000
