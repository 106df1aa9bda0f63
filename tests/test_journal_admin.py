"""Redaction across all of Redis, and the admin port: API, stats, metrics, token rules."""

from __future__ import annotations

from typing import Any

import aiohttp
import openai
import pytest
from aiohttp.test_utils import TestServer
from openai.types.chat import ChatCompletionMessageParam
from redis.asyncio import Redis
from structlog.testing import capture_logs

from gateway import appkeys
from gateway.admin.app import create_admin_app
from gateway.app import create_app
from gateway.config import Settings
from gateway.server import start_admin
from gateway.store.records import ClientRecord
from gateway.store.repositories import ClientRepository
from tests.conftest import TEST_SECRET, AiohttpServer, Tenant, make_tenant, sdk_kwargs
from tests.support.journal_helpers import wait_for_records
from tests.support.upstream_server import UPSTREAM_KEY, UpstreamServer

ADMIN_TOKEN = "admin-token-for-tests"
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


async def dump_everything(redis: Redis) -> bytes:
    """Every key's name and value, whatever its type."""
    out = []
    async for key in redis.scan_iter(count=1000):
        kind_raw: Any = await redis.type(key)
        kind = kind_raw.decode()
        value: Any
        if kind == "string":
            value = await redis.get(key)
        elif kind == "hash":
            value = await redis.hgetall(key)
        elif kind == "set":
            value = await redis.smembers(key)
        elif kind == "list":
            value = await redis.lrange(key, 0, -1)
        elif kind == "zset":
            value = await redis.zrange(key, 0, -1, withscores=True)
        else:
            assert kind == "stream", kind
            value = await redis.xrange(key, "-", "+")
        out.append(repr((key, value)).encode())
    return b"\n".join(out)


async def test_no_key_or_secret_anywhere_in_redis(
    aiohttp_server: AiohttpServer,
    settings: Settings,
    redis: Redis,
    upstream: tuple[UpstreamServer, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEST_UPSTREAM_KEY", UPSTREAM_KEY)
    await ClientRepository(redis).put(
        ClientRecord(
            account="3141-5926-5359",
            name="customer-support",
            provider="openai",
            upstream_url=upstream[1],
            upstream_key_env="TEST_UPSTREAM_KEY",
        )
    )
    tenant = await make_tenant(redis, client="echo-bot", provider="echo")
    full = Tenant(
        tenant.account, "customer-support", tenant.hostname.replace("echo-bot", "customer-support"),
        tenant.key, tenant.key_id,
    )  # fmt: skip
    custom = settings.replace(
        journal_redact_headers="x-team-secret", journal_redact_paths="metadata.password"
    )
    server = await aiohttp_server(create_app(custom, TEST_SECRET))
    secrets = [tenant.key.encode(), UPSTREAM_KEY.encode(), TEST_SECRET.encode(), b"hunter2", b"s3"]
    headers = {"x-team-secret": "s3cr3t-team", "cookie": "session=s3cr3t-cookie"}
    async with openai.AsyncOpenAI(**sdk_kwargs(server, full, default_headers={
        "Host": full.hostname, **headers
    })) as sdk:  # fmt: skip
        await sdk.chat.completions.create(
            model="gpt-test", messages=MESSAGES, metadata={"password": "hunter2"}
        )
        await sdk.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True)
    async with aiohttp.ClientSession() as session:
        for name in ("api-key", "x-api-key"):
            async with session.post(
                server.make_url("/v1/chat/completions"),
                json={"model": "echo-1", "messages": MESSAGES},
                headers={"Host": tenant.hostname, name: tenant.key},
            ) as response:
                assert response.status == 200
    records = await wait_for_records(redis, 4)
    assert records[0]["request"]["body"]["content"]["metadata"] == {"password": "[REDACTED]"}
    assert records[0]["request"]["headers"]["x-team-secret"] == "[REDACTED]"
    assert records[3]["request"]["headers"]["x-api-key"] == "[REDACTED]"
    everything = await dump_everything(redis)
    assert b"[REDACTED]" in everything
    for secret in secrets:
        assert secret not in everything, secret


@pytest.fixture
async def admin(
    aiohttp_server: AiohttpServer, gateway: TestServer, settings: Settings
) -> TestServer:
    app = gateway.app
    assert app is not None
    admin_settings = settings.replace(admin_token=ADMIN_TOKEN)
    return await aiohttp_server(create_admin_app(admin_settings, app[appkeys.METRICS]))


AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def test_admin_api_needs_the_token(admin: TestServer) -> None:
    async with aiohttp.ClientSession() as session:
        for path in ("/admin/journal", "/admin/stats", "/metrics", "/admin/journal/x"):
            async with session.get(admin.make_url(path)) as response:
                assert response.status == 401
                assert (await response.json())["error"]["code"] == "invalid_admin_token"
        async with session.get(admin.make_url("/admin/")) as response:
            assert response.status == 200
            assert "Gateway journal" in await response.text()


async def test_admin_journal_filters_paging_show_stats_and_metrics(
    admin: TestServer, client: openai.AsyncOpenAI, tenant: Tenant, redis: Redis
) -> None:
    for _ in range(5):
        await client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(model="gpt-test", messages=[])
    records = await wait_for_records(redis, 6)
    async with aiohttp.ClientSession(headers=AUTH) as session:

        async def get(path: str, **params: str) -> Any:
            async with session.get(admin.make_url(path), params=params) as response:
                assert response.status == 200, await response.text()
                return await response.json()

        page = await get("/admin/journal", limit="4", account=tenant.account)
        assert [r["request_id"] for r in page["records"]] == [
            r["request_id"] for r in reversed(records[2:])
        ]
        rest = await get("/admin/journal", limit="4", cursor=page["next_cursor"])
        assert [r["request_id"] for r in rest["records"]] == [
            r["request_id"] for r in reversed(records[:2])
        ]
        bad = await get("/admin/journal", status="4xx")
        assert [r["status"] for r in bad["records"]] == [400]
        one = await get(f"/admin/journal/{records[0]['request_id']}")
        assert one == records[0]
        stats = await get("/admin/stats", since="15m", bucket="30s")
        assert stats["requests"] == 6
        assert stats["client_error_rate"] == round(1 / 6, 4)
        assert stats["tokens"]["total"] == 50
        assert stats["by_client"][f"{tenant.account}/{tenant.client}"]["requests"] == 6
        assert sum(b["requests"] for b in stats["series"]) == 6
        async with session.get(admin.make_url("/metrics")) as response:
            metrics = await response.text()
        async with session.get(admin.make_url("/admin/stats"), params={"since": "soon"}) as r:
            assert r.status == 400
    assert (
        f'gateway_requests_total{{account="{tenant.account}",client="{tenant.client}",status="200"}}'
        " 5.0" in metrics
    )
    assert "gateway_journal_queue_depth" in metrics
    assert "gateway_journal_dropped_total 0.0" in metrics
    assert "gateway_time_to_first_byte_seconds_bucket" in metrics


async def test_admin_port_does_not_start_without_a_token(settings: Settings) -> None:
    app = create_app(settings, TEST_SECRET)
    with capture_logs() as logs:
        assert await start_admin(settings.replace(admin_token=""), app) is None
    assert logs[0]["event"] == "admin_port_disabled"
    assert "GATEWAY_ADMIN_TOKEN" in logs[0]["reason"]
