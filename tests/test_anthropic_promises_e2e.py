"""The pipeline's promises on the Anthropic side, walked over every way in: every route where
an Anthropic format is involved (Anthropic's routes through the `anthropic` SDK, OpenAI's
routes on an `anthropic` client through the `openai` SDK) x every provider that can serve them
(`anthropic`, `openai`, `azure`, `echo`, managed mode) x stream or not.

As in tests/test_pipeline_promises_e2e.py, a fresh client with `rpm = 2` takes three requests:
two are answered and the third is a 429 in the route's error shape; every request has one
journal record with the caller's format (`api`) and the upstream's (`upstream_api`); every
answered body-carrying request has usage; the client's daily token counter equals the sum of
the usage the journal shows. A route a provider cannot serve is a 400 each time, refused before
the limits stage.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anthropic
import openai
import pytest
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from gateway.limits.checks import utc_day
from gateway.rewrite import ClientPolicy
from gateway.store import keys
from tests.conftest import ACCOUNT, AiohttpServer, make_tenant, sdk_kwargs
from tests.support.anthropic_upstream import AnthropicUpstream
from tests.support.journal_helpers import wait_for_record
from tests.support.upstream_server import UpstreamServer

HI: Any = [{"role": "user", "content": "hello there"}]

Raw = Any
AnthropicCall = Callable[[anthropic.AsyncAnthropic], Awaitable[Raw]]
OpenAICall = Callable[[openai.AsyncOpenAI], Awaitable[Raw]]

ANTHROPIC_ROUTES: dict[str, AnthropicCall] = {
    "messages": lambda sdk: sdk.messages.with_raw_response.create(
        model="m", max_tokens=20, messages=HI
    ),
    "messages-stream": lambda sdk: sdk.messages.with_raw_response.create(
        model="m", max_tokens=20, messages=HI, stream=True
    ),
    "count-tokens": lambda sdk: sdk.messages.with_raw_response.count_tokens(model="m", messages=HI),
}
OPENAI_ROUTES: dict[str, OpenAICall] = {
    "chat": lambda sdk: sdk.chat.completions.with_raw_response.create(model="m", messages=HI),
    "chat-stream": lambda sdk: sdk.chat.completions.with_raw_response.create(
        model="m", messages=HI, stream=True
    ),
    "models": lambda sdk: sdk.models.with_raw_response.list(),
}
TRANSLATED = frozenset({"messages", "messages-stream"})

#: provider -> (the routes it serves, the API its upstream speaks). OpenAI's routes on OpenAI
#: providers are tests/test_pipeline_promises_e2e.py's.
PROVIDERS: dict[str, tuple[frozenset[str], str | None]] = {
    "anthropic": (frozenset(ANTHROPIC_ROUTES) | frozenset(OPENAI_ROUTES), "anthropic"),
    "openai": (TRANSLATED, "openai"),
    "azure": (TRANSLATED, "openai"),
    "echo": (TRANSLATED, None),
    "managed": (TRANSLATED, "openai"),
}


@dataclasses.dataclass(frozen=True)
class Case:
    provider: str
    route: str

    @property
    def served(self) -> bool:
        return self.route in PROVIDERS[self.provider][0]

    @property
    def anthropic_route(self) -> bool:
        return self.route in ANTHROPIC_ROUTES

    @property
    def client_name(self) -> str:
        return f"a-{self.provider}-{self.route}"[:60]


CASES = [Case("anthropic", route) for route in (*ANTHROPIC_ROUTES, *OPENAI_ROUTES)] + [
    Case(provider, route)
    for provider in PROVIDERS
    if provider != "anthropic"
    for route in ANTHROPIC_ROUTES
]


async def _tenant(redis: Redis, case: Case, openai_url: str, anthropic_url: str) -> Any:
    fields: dict[str, Any] = {"rpm": 2, "tokens_per_day": 10**9, "client": case.client_name}
    if case.provider == "anthropic":
        return await make_tenant(redis, provider="anthropic", upstream_url=anthropic_url, **fields)
    if case.provider == "azure":
        policy = ClientPolicy(azure_api_version="2024-10-21")
        url = openai_url.removesuffix("/v1")
        return await make_tenant(redis, provider="azure", upstream_url=url, policy=policy, **fields)
    if case.provider == "managed":
        policy = ClientPolicy(mode="managed")
        return await make_tenant(redis, upstream_url=openai_url, policy=policy, **fields)
    if case.provider == "openai":
        return await make_tenant(redis, upstream_url=openai_url, **fields)
    return await make_tenant(redis, provider=case.provider, **fields)


async def _send(gateway: TestServer, tenant: Any, case: Case) -> tuple[int, str, str | None]:
    """(status, request id, error type or code) of one request, its stream read to the end."""
    if case.anthropic_route:
        options = {
            "base_url": str(gateway.make_url("")),
            "api_key": tenant.key,
            "default_headers": {"Host": tenant.hostname},
            "max_retries": 0,
        }
        async with anthropic.AsyncAnthropic(**options) as claude:
            try:
                raw = await ANTHROPIC_ROUTES[case.route](claude)
            except anthropic.APIStatusError as exc:
                body = exc.body if isinstance(exc.body, dict) else {}
                kind = (body.get("error") or {}).get("type")
                return exc.status_code, exc.response.headers["request-id"], kind
            parsed = await raw.parse()
            if case.route.endswith("-stream"):
                async for _ in parsed:
                    pass
            assert raw.headers["request-id"] == raw.headers["x-request-id"]
            return raw.status_code, raw.headers["x-request-id"], None
    async with openai.AsyncOpenAI(**sdk_kwargs(gateway, tenant)) as sdk:
        try:
            response = await OPENAI_ROUTES[case.route](sdk)
        except openai.APIStatusError as exc:
            return exc.status_code, exc.response.headers["x-request-id"], exc.code
        result = response.parse()
        if case.route.endswith("-stream"):
            async for _ in result:
                pass
        return response.status_code, response.headers["x-request-id"], None


@pytest.fixture
async def claude_url(aiohttp_server: AiohttpServer) -> str:
    server = await aiohttp_server(AnthropicUpstream().app())
    return str(server.make_url(""))


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.provider}/{c.route}")
async def test_anthropic_routes_and_providers_are_limited_metered_and_journaled(
    case: Case,
    gateway: TestServer,
    redis: Redis,
    upstream: tuple[UpstreamServer, str],
    claude_url: str,
) -> None:
    tenant = await _tenant(redis, case, upstream[1], claude_url)
    results = [await _send(gateway, tenant, case) for _ in range(3)]
    limited = "rate_limit_error" if case.anthropic_route else "rate_limit_exceeded"
    if case.served:
        assert [status for status, _, _ in results[:2]] == [200, 200], results
        assert (results[2][0], results[2][2]) == (429, limited), results[2]
    else:
        assert [(status, kind) for status, _, kind in results] == [
            (400, "invalid_request_error")
        ] * 3

    records = [await wait_for_record(redis, request_id) for _, request_id, _ in results]
    assert [r["status"] for r in records] == [status for status, _, _ in results]
    metered = 0
    for record in records[:2]:
        assert record["api"] == ("anthropic" if case.anthropic_route else "openai")
        if not case.served:
            continue
        assert record["upstream_api"] == PROVIDERS[case.provider][1]
        if case.route not in ("models", "count-tokens"):
            assert record["usage"] is not None, record
            assert record["usage"]["total_tokens"] > 0
            metered += record["usage"]["total_tokens"]
        if case.route.endswith("-stream"):
            assert record["stream"]["chunks"] > 0
            assert record["stream"]["text"]
            assert record["latency_ms"]["ttfb"] is not None
    day = utc_day(time.time())
    budget = await redis.get(keys.budget_day(ACCOUNT, f"client:{tenant.client}", day))
    assert int(budget or 0) == metered
