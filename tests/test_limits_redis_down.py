"""With Redis unreachable, a limited request is let through (fail-open, the default, counted in
the `unchecked` metric) or refused with 503 (fail-closed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import aiohttp
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from gateway import appkeys
from gateway.admin.app import create_admin_app
from gateway.app import create_app
from gateway.config import Settings
from gateway.redis_server import EmbeddedRedis
from gateway.store.redis import create_redis
from tests.conftest import TEST_SECRET, AiohttpServer, free_port, make_tenant, sdk_kwargs
from tests.support.upstream_server import UpstreamServer

ADMIN_TOKEN = "admin-test-token"
HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "own-redis", port=free_port(), persistent=False)
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize("fail_open", [True, False])
async def test_limited_request_while_redis_is_down(
    aiohttp_server: AiohttpServer,
    settings: Settings,
    own_redis: EmbeddedRedis,
    upstream: tuple[UpstreamServer, str],
    fail_open: bool,
) -> None:
    configured = settings.replace(
        redis_url=own_redis.url, rate_limit_fail_open=fail_open, admin_token=ADMIN_TOKEN
    )
    redis = create_redis(own_redis.url)
    try:
        tenant = await make_tenant(redis, upstream_url=upstream[1], rpm=100)
    finally:
        await redis.aclose()
    gateway = await aiohttp_server(create_app(configured, TEST_SECRET))
    assert gateway.app is not None
    admin = await aiohttp_server(create_admin_app(configured, gateway.app[appkeys.METRICS]))
    sdk = openai.AsyncOpenAI(**sdk_kwargs(gateway, tenant))
    try:
        # Warm the tenant and key caches while Redis is up, then take Redis away.
        await sdk.chat.completions.create(model="gpt-test", messages=HI)
        own_redis.stop()
        if fail_open:
            reply = await sdk.chat.completions.create(model="gpt-test", messages=HI)
            assert reply.choices[0].message.content == "Hello from upstream"
        else:
            with pytest.raises(openai.InternalServerError) as caught:
                await sdk.chat.completions.create(model="gpt-test", messages=HI)
            assert caught.value.status_code == 503
            assert caught.value.code == "rate_limiter_unavailable"
    finally:
        await sdk.close()
    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with session.get(admin.make_url("/metrics"), headers=headers) as response:
            assert response.status == 200
            text = await response.text()
    metrics = dict(
        line.rsplit(" ", 1) for line in text.splitlines() if line.startswith("gateway_rate_limit")
    )
    assert float(metrics["gateway_rate_limit_admitted_total"]) == 1
    assert float(metrics["gateway_rate_limit_unchecked_total"]) == (1 if fail_open else 0)
    assert float(metrics["gateway_rate_limit_failed_closed_total"]) == (0 if fail_open else 1)
