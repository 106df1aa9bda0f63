"""The pipeline's promises, walked over every way in: every tenant route x every provider
(OpenAI-compatible upstream, Azure, echo, managed mode, a third-party entry-point handler) x
stream or not, through the real app, a real Redis and the official openai SDK.

For each case a fresh client with `rpm = 2` and a large daily token budget takes three requests:
- the first two are answered and the third is a 429 `rate_limit_exceeded`: limits apply on every
  route (a route the provider does not serve is a 400 `endpoint_not_supported` each time, refused
  as bad input before the limits stage);
- every request has exactly one journal record, and every answered body-carrying request has
  usage there: usage is read from every shape;
- the client's daily token budget counter in Redis equals the sum of the usage the journal shows:
  every token is metered, streams included (with usage the caller did not ask for).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import Any

import openai
import pytest
from aiohttp.test_utils import TestServer
from openai.types.chat import ChatCompletionMessageParam
from redis.asyncio import Redis

from gateway.limits.checks import utc_day
from gateway.rewrite import ClientPolicy
from gateway.store import keys
from tests.conftest import ACCOUNT, make_tenant, sdk_kwargs
from tests.support.journal_helpers import wait_for_record
from tests.support.upstream_server import UpstreamServer

HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello there"}]

Call = Callable[[openai.AsyncOpenAI], Awaitable[Any]]


async def _drain(stream: Any) -> None:
    async for _event in stream:
        pass


ROUTES: dict[str, Call] = {
    "chat": lambda sdk: sdk.chat.completions.with_raw_response.create(model="m", messages=HI),
    "chat-stream": lambda sdk: sdk.chat.completions.with_raw_response.create(
        model="m", messages=HI, stream=True
    ),
    "completions": lambda sdk: sdk.completions.with_raw_response.create(model="m", prompt="hi"),
    "completions-stream": lambda sdk: sdk.completions.with_raw_response.create(
        model="m", prompt="hi", stream=True
    ),
    "embeddings": lambda sdk: sdk.embeddings.with_raw_response.create(model="m", input=["a b"]),
    "responses": lambda sdk: sdk.responses.with_raw_response.create(model="m", input="hi"),
    "responses-stream": lambda sdk: sdk.responses.with_raw_response.create(
        model="m", input="hi", stream=True
    ),
    "models": lambda sdk: sdk.models.with_raw_response.list(),
}

#: provider name -> the routes it serves (the rest must answer 400 endpoint_not_supported).
PROVIDERS: dict[str, frozenset[str]] = {
    "openai": frozenset(ROUTES),
    "azure": frozenset(ROUTES),
    "echo": frozenset(ROUTES),
    "managed": frozenset(ROUTES),
    "thirdparty-demo": frozenset({"chat", "chat-stream", "models"}),
}


@dataclasses.dataclass(frozen=True)
class Case:
    provider: str
    route: str

    @property
    def served(self) -> bool:
        return self.route in PROVIDERS[self.provider]

    @property
    def client_name(self) -> str:
        return f"{self.provider}-{self.route}".replace("_", "-")[:60]


CASES = [Case(p, r) for p in PROVIDERS for r in ROUTES]


async def _tenant(redis: Redis, case: Case, upstream_url: str) -> Any:
    fields: dict[str, Any] = {"rpm": 2, "tokens_per_day": 10**9}
    if case.provider == "azure":
        return await make_tenant(
            redis,
            client=case.client_name,
            provider="azure",
            upstream_url=upstream_url.removesuffix("/v1"),
            policy=ClientPolicy(azure_api_version="2024-10-21"),
            **fields,
        )
    if case.provider == "managed":
        return await make_tenant(
            redis,
            client=case.client_name,
            provider="openai",
            upstream_url=upstream_url,
            policy=ClientPolicy(mode="managed"),
            **fields,
        )
    if case.provider == "openai":
        return await make_tenant(
            redis, client=case.client_name, upstream_url=upstream_url, **fields
        )
    return await make_tenant(redis, client=case.client_name, provider=case.provider, **fields)


async def _send(sdk: openai.AsyncOpenAI, case: Case) -> tuple[int, str, str | None]:
    """(status, request id, error code) of one request, its stream read to the end."""
    try:
        raw = await ROUTES[case.route](sdk)
    except openai.APIStatusError as exc:
        return exc.status_code, exc.response.headers["x-request-id"], exc.code
    parsed = raw.parse()
    if case.route.endswith("-stream"):
        await _drain(parsed)
    return raw.status_code, raw.headers["x-request-id"], None


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.provider}/{c.route}")
async def test_every_route_and_provider_is_limited_metered_and_journaled(
    case: Case, gateway: TestServer, redis: Redis, upstream: tuple[UpstreamServer, str]
) -> None:
    tenant = await _tenant(redis, case, upstream[1])
    async with openai.AsyncOpenAI(**sdk_kwargs(gateway, tenant)) as sdk:
        results = [await _send(sdk, case) for _ in range(3)]
    if case.served:
        assert [status for status, _, _ in results[:2]] == [200, 200], results
        assert (results[2][0], results[2][2]) == (429, "rate_limit_exceeded"), results[2]
    else:  # refused as bad input, before the limits stage: no request counted
        assert [(status, code) for status, _, code in results] == [
            (400, "endpoint_not_supported")
        ] * 3

    records = [await wait_for_record(redis, request_id) for _, request_id, _ in results]
    assert [r["status"] for r in records] == [status for status, _, _ in results]
    assert len({r["request_id"] for r in records}) == 3
    metered = 0
    for record in records[:2]:
        assert record["client"] == tenant.client
        if case.served and case.route != "models":
            assert record["usage"] is not None, record
            assert record["usage"]["total_tokens"] > 0
            metered += record["usage"]["total_tokens"]
        if case.served and case.route.endswith("-stream"):
            assert record["stream"]["chunks"] > 0
            assert record["latency_ms"]["ttfb"] is not None
    day = utc_day(time.time())
    budget = await redis.get(keys.budget_day(ACCOUNT, f"client:{tenant.client}", day))
    assert int(budget or 0) == metered
