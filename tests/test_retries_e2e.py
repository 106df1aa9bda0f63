"""Upstream retries and ordered fallback, against upstream test servers that fail each way."""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai
import pytest
from aiohttp.test_utils import TestServer
from openai.types.chat import ChatCompletionMessageParam
from redis.asyncio import Redis

from gateway.config import Settings
from gateway.rewrite import ClientPolicy, UpstreamTarget
from gateway.upstream.retries import RetrySettings, backoff_delay, retry_after_seconds
from tests.conftest import AiohttpServer, free_port, make_tenant, sdk_kwargs
from tests.support.journal_helpers import journal_record
from tests.support.upstream_server import UpstreamServer

HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.replace(upstream_backoff=0.01, upstream_backoff_max=0.05, upstream_timeout=0.5)


@pytest.fixture
async def fallback(aiohttp_server: AiohttpServer) -> AsyncIterator[tuple[UpstreamServer, str]]:
    behaviour = UpstreamServer()
    server = await aiohttp_server(behaviour.app())
    yield behaviour, str(server.make_url("/v1"))
    behaviour.release()


async def _sdk(
    gateway: TestServer, redis: Redis, primary_url: str, policy: ClientPolicy
) -> openai.AsyncOpenAI:
    tenant = await make_tenant(redis, upstream_url=primary_url, policy=policy)
    return openai.AsyncOpenAI(**sdk_kwargs(gateway, tenant))


def _with_fallback(url: str, retries: int | None = None) -> ClientPolicy:
    return ClientPolicy(fallbacks=(UpstreamTarget(url=url, key="fallback-key"),), retries=retries)


async def test_429_is_retried_with_backoff_then_succeeds(
    gateway: TestServer, redis: Redis, upstream: tuple[UpstreamServer, str]
) -> None:
    server, url = upstream
    server.failures = ["429", "503"]
    sdk = await _sdk(gateway, redis, url, ClientPolicy())
    reply = await sdk.chat.completions.create(
        model="gpt-test", messages=HI, extra_headers={"X-Client-Request-Id": "req-retry-1"}
    )
    await sdk.close()
    assert reply.choices[0].message.content == "Hello from upstream"
    assert len(server.seen) == 3
    record = await journal_record(redis, "req-retry-1")
    assert [a["status"] for a in record["attempts"]] == [429, 503, 200]
    assert all(a["upstream"] == url for a in record["attempts"])
    assert all("retry_in_ms" in a for a in record["attempts"][:2])


async def test_retry_after_is_honoured(
    gateway: TestServer, redis: Redis, upstream: tuple[UpstreamServer, str]
) -> None:
    server, url = upstream
    server.failures = ["429"]
    server.retry_after = "1"
    sdk = await _sdk(gateway, redis, url, ClientPolicy())
    await sdk.chat.completions.create(model="gpt-test", messages=HI)
    await sdk.close()
    first, second = server.seen
    assert second.at - first.at >= 0.95


async def test_long_retry_after_falls_back_at_once(
    gateway: TestServer,
    redis: Redis,
    upstream: tuple[UpstreamServer, str],
    fallback: tuple[UpstreamServer, str],
) -> None:
    server, url = upstream
    server.failures = ["429"]
    server.retry_after = "120"
    sdk = await _sdk(gateway, redis, url, _with_fallback(fallback[1]))
    await sdk.chat.completions.create(model="gpt-test", messages=HI)
    await sdk.close()
    assert len(server.seen) == 1
    assert len(fallback[0].seen) == 1


@pytest.mark.parametrize("failure", ["500", "503", "html-502", "429", "drop", "slow"])
async def test_each_failure_falls_back_to_the_next_upstream(
    gateway: TestServer,
    redis: Redis,
    upstream: tuple[UpstreamServer, str],
    fallback: tuple[UpstreamServer, str],
    failure: str,
) -> None:
    server, url = upstream
    server.failures = [failure]
    server.slow_seconds = 1.0
    sdk = await _sdk(gateway, redis, url, _with_fallback(fallback[1], retries=0))
    reply = await sdk.chat.completions.create(
        model="gpt-test", messages=HI, extra_headers={"X-Client-Request-Id": f"req-fb-{failure}"}
    )
    await sdk.close()
    assert reply.choices[0].message.content == "Hello from upstream"
    assert len(server.seen) == 1
    (used,) = fallback[0].seen
    assert used.headers["Authorization"] == "Bearer fallback-key"
    record = await journal_record(redis, f"req-fb-{failure}")
    assert [a["upstream"] for a in record["attempts"]] == [url, fallback[1]]
    assert record["attempts"][1]["status"] == 200
    first = record["attempts"][0]
    if failure in ("drop", "slow"):
        assert first["error"] == ("upstream_timeout" if failure == "slow" else "upstream_error")
    else:
        assert first["status"] == int(failure.removeprefix("html-"))


async def test_connection_refused_falls_back(
    gateway: TestServer, redis: Redis, fallback: tuple[UpstreamServer, str]
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    sdk = await _sdk(gateway, redis, dead, _with_fallback(fallback[1], retries=1))
    reply = await sdk.chat.completions.create(
        model="gpt-test", messages=HI, extra_headers={"X-Client-Request-Id": "req-refused"}
    )
    await sdk.close()
    assert reply.model == "gpt-test-2024"
    record = await journal_record(redis, "req-refused")
    assert [a.get("error") for a in record["attempts"]] == [
        "upstream_unreachable",
        "upstream_unreachable",
        None,
    ]


async def test_last_failure_is_relayed_when_every_upstream_fails(
    gateway: TestServer,
    redis: Redis,
    upstream: tuple[UpstreamServer, str],
    fallback: tuple[UpstreamServer, str],
) -> None:
    server, url = upstream
    server.failures = ["500", "500"]
    fallback[0].failures = ["503", "503"]
    sdk = await _sdk(gateway, redis, url, _with_fallback(fallback[1], retries=1))
    with pytest.raises(openai.InternalServerError) as caught:
        await sdk.chat.completions.create(model="gpt-test", messages=HI)
    await sdk.close()
    assert caught.value.status_code == 503
    assert (len(server.seen), len(fallback[0].seen)) == (2, 2)


async def test_all_upstreams_unreachable_is_a_502(gateway: TestServer, redis: Redis) -> None:
    dead = [f"http://127.0.0.1:{free_port()}/v1" for _ in range(2)]
    policy = ClientPolicy(fallbacks=(UpstreamTarget(url=dead[1]),), retries=0)
    sdk = await _sdk(gateway, redis, dead[0], policy)
    with pytest.raises(openai.APIStatusError) as caught:
        await sdk.chat.completions.create(model="gpt-test", messages=HI)
    await sdk.close()
    assert caught.value.status_code == 502
    assert caught.value.code == "upstream_unreachable"


async def test_client_errors_are_not_retried(
    gateway: TestServer,
    redis: Redis,
    upstream: tuple[UpstreamServer, str],
    fallback: tuple[UpstreamServer, str],
) -> None:
    server, url = upstream
    sdk = await _sdk(gateway, redis, url, _with_fallback(fallback[1]))
    with pytest.raises(openai.BadRequestError):
        await sdk.chat.completions.create(model="error-400", messages=HI)
    await sdk.close()
    assert (len(server.seen), len(fallback[0].seen)) == (1, 0)


async def test_a_started_stream_is_never_retried(
    gateway: TestServer,
    redis: Redis,
    upstream: tuple[UpstreamServer, str],
    fallback: tuple[UpstreamServer, str],
) -> None:
    server, url = upstream
    sdk = await _sdk(gateway, redis, url, _with_fallback(fallback[1]))
    stream = await sdk.chat.completions.create(
        model="break-stream",
        messages=HI,
        stream=True,
        extra_headers={"X-Client-Request-Id": "req-broken-stream"},
    )
    with pytest.raises(openai.APIError):
        async for _chunk in stream:
            pass
    await sdk.close()
    assert (len(server.seen), len(fallback[0].seen)) == (1, 0)
    record = await journal_record(redis, "req-broken-stream")
    assert len(record["attempts"]) == 1
    assert record["outcome"] == "upstream_error"


def test_retry_after_forms() -> None:
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def test_backoff_grows_exponentially_within_jitter_and_cap() -> None:
    retry = RetrySettings(retries=5, backoff=0.5, backoff_max=3.0, retry_after_max=30.0)
    for attempt, ceiling in enumerate([0.5, 1.0, 2.0, 3.0, 3.0]):
        delay = backoff_delay(retry, attempt)
        assert ceiling / 2 <= delay <= ceiling
