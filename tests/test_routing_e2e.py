"""Deployments, strategies, outlier ejection and the request deadline, end to end: the real app,
real upstream servers on loopback, the openai SDK, the journal and /metrics."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator

import openai
import pytest
from aiohttp.test_utils import TestServer
from openai.types.chat import ChatCompletionMessageParam
from redis.asyncio import Redis

from gateway import appkeys
from gateway.balancing import Deployment
from gateway.config import Settings
from gateway.rewrite import ClientPolicy
from gateway.store import keys
from tests.conftest import ACCOUNT, AiohttpServer, Cli, free_port, make_tenant, sdk_kwargs
from tests.support.helpers import wait_for
from tests.support.journal_helpers import wait_for_record
from tests.support.upstream_server import UPSTREAM_KEY, UpstreamServer

HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
FAILURES = 3
EJECTION = 1.5


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.replace(
        upstream_backoff=0.01,
        upstream_backoff_max=0.05,
        upstream_timeout=0.5,
        outlier_consecutive_failures=FAILURES,
        outlier_base_ejection=EJECTION,
        outlier_max_ejection=10 * EJECTION,
    )


class Upstream:
    """An upstream test server that can be killed and brought back on the same port."""

    def __init__(self, aiohttp_server: AiohttpServer) -> None:
        self._start = aiohttp_server
        self.port = free_port()
        self.behaviour = UpstreamServer()
        self.server: TestServer | None = None
        self.url = f"http://127.0.0.1:{self.port}/v1"

    async def start(self) -> Upstream:
        self.server = await self._start(self.behaviour.app(), port=self.port)
        return self

    async def kill(self) -> None:
        assert self.server is not None
        await self.server.close()
        self.server = None

    @property
    def seen(self) -> int:
        return len(self.behaviour.seen)


@pytest.fixture
async def upstreams(aiohttp_server: AiohttpServer) -> AsyncIterator[list[Upstream]]:
    started = [await Upstream(aiohttp_server).start() for _ in range(3)]
    yield started
    for upstream in started:
        upstream.behaviour.release()


def _deployment(
    upstream: Upstream, weight: float = 1.0, models: dict[str, str] | None = None
) -> Deployment:
    return Deployment(url=upstream.url, key=UPSTREAM_KEY, weight=weight, models=models or {})


async def _sdk(gateway: TestServer, redis: Redis, policy: ClientPolicy) -> openai.AsyncOpenAI:
    tenant = await make_tenant(redis, upstream_url="", policy=policy)
    return openai.AsyncOpenAI(**sdk_kwargs(gateway, tenant))


async def _ask(sdk: openai.AsyncOpenAI, tag: str, model: str = "gpt-test") -> str:
    reply = await sdk.chat.completions.create(
        model=model, messages=HI, extra_headers={"X-Client-Request-Id": tag}
    )
    return reply.model


def _within_binomial(count: int, n: int, p: float, sigmas: float = 4.5) -> bool:
    return abs(count - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


async def test_weighted_traffic_splits_by_weight(
    gateway: TestServer, redis: Redis, upstreams: list[Upstream]
) -> None:
    heavy, light, _ = upstreams
    policy = ClientPolicy(
        strategy="weighted", deployments=(_deployment(heavy, 3), _deployment(light, 1))
    )
    sdk = await _sdk(gateway, redis, policy)
    n = 300
    for batch in range(0, n, 20):
        await asyncio.gather(*(_ask(sdk, f"w-{batch + i}") for i in range(20)))
    await sdk.close()
    assert heavy.seen + light.seen == n
    assert _within_binomial(heavy.seen, n, 0.75), (heavy.seen, light.seen)
    assert heavy.behaviour.seen[0].headers["Authorization"] == f"Bearer {UPSTREAM_KEY}"


async def test_a_retry_moves_to_another_deployment(
    gateway: TestServer, redis: Redis, upstreams: list[Upstream]
) -> None:
    first, second, _ = upstreams
    first.behaviour.failures = ["503", "503", "503"]
    policy = ClientPolicy(
        strategy="ordered", deployments=(_deployment(first), _deployment(second)), retries=2
    )
    sdk = await _sdk(gateway, redis, policy)
    await _ask(sdk, "retry-moves")
    await sdk.close()
    record = await wait_for_record(redis, "retry-moves")
    assert [(a["upstream"], a["status"]) for a in record["attempts"]] == [
        (first.url, 503),
        (second.url, 200),
    ]
    assert (first.seen, second.seen) == (1, 1)


async def test_least_busy_sends_concurrent_requests_to_the_idle_deployment(
    gateway: TestServer, redis: Redis, upstreams: list[Upstream]
) -> None:
    busy, idle, _ = upstreams
    busy.behaviour.slow_seconds = 5.0
    policy = ClientPolicy(strategy="least_busy", deployments=(_deployment(busy), _deployment(idle)))
    sdk = await _sdk(gateway, redis, policy)
    slow = asyncio.create_task(_ask(sdk, "lb-slow", model="slow"))  # busy: listed first, idle

    async def reached() -> bool:
        return busy.seen == 1

    await wait_for(reached, what="the slow request to reach the busy deployment")
    for i in range(5):
        await _ask(sdk, f"lb-{i}")
    assert (busy.seen, idle.seen) == (1, 5)
    busy.behaviour.release()
    slow.cancel()
    await sdk.close()


async def test_a_model_map_renames_the_model_and_narrows_the_deployments(
    gateway: TestServer, redis: Redis, upstreams: list[Upstream]
) -> None:
    mapped, _, _ = upstreams
    policy = ClientPolicy(deployments=(_deployment(mapped, models={"gpt-test": "their-name"}),))
    sdk = await _sdk(gateway, redis, policy)
    await _ask(sdk, "mapped")
    assert mapped.behaviour.seen[-1].json["model"] == "their-name"
    with pytest.raises(openai.BadRequestError) as caught:
        await _ask(sdk, "unmapped", model="gpt-other")
    await sdk.close()
    assert caught.value.code == "model_not_available"
    assert mapped.seen == 1
    record = await wait_for_record(redis, "unmapped")
    assert record["status"] == 400


async def test_a_killed_upstream_is_ejected_after_n_failures_until_its_ejection_ends(
    gateway: TestServer, redis: Redis, upstreams: list[Upstream]
) -> None:
    dead, healthy, _ = upstreams
    policy = ClientPolicy(
        strategy="ordered", deployments=(_deployment(dead), _deployment(healthy)), retries=0
    )
    sdk = await _sdk(gateway, redis, policy)
    await dead.kill()
    for i in range(FAILURES):
        await _ask(sdk, f"kill-{i}")
    ejected_at = time.monotonic()
    await dead.start()  # back on the same port, but still ejected: it must get nothing
    count = 0
    while time.monotonic() - ejected_at < EJECTION * 0.6:  # well inside the ejection
        await _ask(sdk, f"during-{count}")
        count += 1
    assert dead.seen == 0
    assert count > 0
    metrics = gateway.app[appkeys.METRICS].render().decode()
    labels = f'account="{ACCOUNT}",client="customer-support",upstream="{dead.url}"'
    assert f"gateway_upstream_ejected{{{labels}}} 1.0" in metrics
    assert f"gateway_upstream_ejections_total{{{labels}}} 1.0" in metrics

    records = [await wait_for_record(redis, f"kill-{i}") for i in range(FAILURES)]
    assert [r["attempts"][0].get("error") for r in records] == ["upstream_unreachable"] * FAILURES
    assert [r["attempts"][0].get("ejected") for r in records] == [None] * (FAILURES - 1) + [True]
    assert all(r["status"] == 200 for r in records)  # the healthy deployment answered each
    record = await wait_for_record(redis, f"during-{count - 1}")
    assert [a["upstream"] for a in record["attempts"]] == [healthy.url]

    while dead.seen == 0:  # once the ejection is over, ordered sends to it first again
        assert time.monotonic() - ejected_at < EJECTION + 5, "the ejection never ended"
        await _ask(sdk, "after")
    assert time.monotonic() - ejected_at >= EJECTION * 0.75
    await sdk.close()
    metrics = gateway.app[appkeys.METRICS].render().decode()
    assert f"gateway_upstream_ejected{{{labels}}} 0.0" in metrics


async def test_every_deployment_ejected_still_serves(
    gateway: TestServer, redis: Redis, upstreams: list[Upstream]
) -> None:
    first, second, _ = upstreams
    first.behaviour.failures = ["500"] * FAILURES
    second.behaviour.failures = ["500"] * FAILURES
    policy = ClientPolicy(deployments=(_deployment(first), _deployment(second)), retries=0)
    sdk = await _sdk(gateway, redis, policy)
    for i in range(FAILURES):
        with pytest.raises(openai.InternalServerError):
            await _ask(sdk, f"both-{i}")
    await _ask(sdk, "both-out")  # both ejected now: tried all the same
    await sdk.close()
    record = await wait_for_record(redis, "both-out")
    assert record["status"] == 200
    assert record["attempts"][0]["all_ejected"] is True


async def test_three_attempts_answer_504_at_the_deadline_not_after_three_timeouts(
    gateway: TestServer, redis: Redis, upstreams: list[Upstream], settings: Settings
) -> None:
    slow, _, _ = upstreams
    slow.behaviour.failures = ["slow"] * 3
    slow.behaviour.slow_seconds = 5.0
    deadline = 1.25  # upstream_timeout is 0.5 s: three attempts would take 1.5 s and more
    policy = ClientPolicy(deployments=(_deployment(slow),), retries=2, request_deadline=deadline)
    sdk = await _sdk(gateway, redis, policy)
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as caught:
        await _ask(sdk, "deadline")
    elapsed = time.monotonic() - started
    await sdk.close()
    slow.behaviour.release()
    assert caught.value.status_code == 504
    assert caught.value.code == "request_deadline"
    assert deadline <= elapsed < 3 * settings.upstream_timeout
    record = await wait_for_record(redis, "deadline")
    assert [a.get("error") for a in record["attempts"]] == [
        "upstream_timeout",
        "upstream_timeout",
        "request_deadline",
    ]
    assert record["status"] == 504


async def test_the_deadline_setting_applies_without_a_policy_field(
    aiohttp_server: AiohttpServer, settings: Settings, redis: Redis, upstreams: list[Upstream]
) -> None:
    from gateway.app import create_app
    from tests.conftest import TEST_SECRET

    gateway = await aiohttp_server(create_app(settings.replace(request_deadline=0.7), TEST_SECRET))
    slow, _, _ = upstreams
    slow.behaviour.failures = ["slow"] * 3
    policy = ClientPolicy(deployments=(_deployment(slow),), retries=2)
    sdk = await _sdk(gateway, redis, policy)
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as caught:
        await _ask(sdk, "deadline-setting")
    await sdk.close()
    slow.behaviour.release()
    assert caught.value.status_code == 504
    assert 0.7 <= time.monotonic() - started < 3 * settings.upstream_timeout


async def test_clients_health_shows_each_process_view_of_the_ejection(
    gateway: TestServer, redis: Redis, upstreams: list[Upstream], cli: Cli
) -> None:
    failing, healthy, _ = upstreams
    failing.behaviour.failures = ["500"] * FAILURES
    policy = ClientPolicy(
        strategy="ordered", deployments=(_deployment(failing), _deployment(healthy)), retries=0
    )
    sdk = await _sdk(gateway, redis, policy)
    for i in range(FAILURES):
        await _ask(sdk, f"health-{i}")
    await sdk.close()

    async def published() -> bool:
        return bool(await redis.exists(keys.client_health(ACCOUNT, "customer-support")))

    await wait_for(published, what="the ejection on the health board")
    argv = ("clients", "health", "customer-support", "--account", ACCOUNT)
    result = await asyncio.to_thread(cli, *argv, "--json")
    assert result.code == 0, result.err
    report = result.json
    assert report["strategy"] == "ordered"
    out, back = report["deployments"]
    assert (out["url"], back["url"]) == (failing.url, healthy.url)
    assert out["ejected_anywhere"] is True
    (view,) = out["instances"].values()
    assert 0 < view["ejected_for"] <= EJECTION
    assert view["ejections"] == 1
    assert back["ejected_anywhere"] is False
    text = await asyncio.to_thread(cli, *argv)
    assert f"{failing.url}  weight 1  ejected on" in text.out
    assert f"{healthy.url}  weight 1  in service" in text.out
    assert UPSTREAM_KEY not in text.out + result.out


async def test_in_flight_counts_end_with_each_reply_json_and_stream(
    gateway: TestServer, redis: Redis, upstreams: list[Upstream]
) -> None:
    first, second, _ = upstreams
    policy = ClientPolicy(
        strategy="least_busy", deployments=(_deployment(first), _deployment(second))
    )
    sdk = await _sdk(gateway, redis, policy)
    for i in range(3):
        await _ask(sdk, f"idle-json-{i}")
        stream = await sdk.chat.completions.create(model="gpt-test", messages=HI, stream=True)
        async for _chunk in stream:
            pass
    await sdk.close()
    # Sequential requests find both idle, so the first listed wins every time; a count left
    # behind by a finished reply would have sent the next request to `second`.
    assert (first.seen, second.seen) == (6, 0)
