"""The journal on the suite's three-master Redis Cluster: records spread over every master, and
every reader (the reader itself, the admin API, the CLI) merges the shards in order."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis, RedisCluster

from gateway import appkeys
from gateway.admin.app import create_admin_app
from gateway.config import Settings
from gateway.journal.reader import JournalFilter, JournalReader
from gateway.journal.shards import shard_streams
from gateway.journal.stats import journal_stats
from gateway.store import keys
from tests.conftest import OTHER_ACCOUNT, REPO, TEST_SECRET, AiohttpServer, Tenant, make_tenant
from tests.support.journal_helpers import wait_for_records

ADMIN_TOKEN = "cluster-admin-token"
REQUESTS = 40


@pytest.fixture
def redis_url(redis_cluster_url: str) -> str:
    """Every fixture of this module (settings, gateway, redis, tenants) on the cluster."""
    return redis_cluster_url


async def _send(gateway: TestServer, tenants: list[Tenant], count: int) -> list[tuple[str, str]]:
    """`count` requests one after another, alternating tenants: (request id, account)."""
    answered = []
    body = {"model": "echo-1", "messages": [{"role": "user", "content": "spread"}]}
    async with aiohttp.ClientSession() as session:
        for index in range(count):
            tenant = tenants[index % len(tenants)]
            headers = {"Host": tenant.hostname, "Authorization": f"Bearer {tenant.key}"}
            url = gateway.make_url("/v1/chat/completions")
            async with session.post(url, json=body, headers=headers) as response:
                assert response.status == 200, await response.text()
                answered.append((response.headers["x-request-id"], tenant.account))
    return answered


async def _cli(redis_url: str, *argv: str) -> Any:
    """`gateway journal ...` in its own process (its own event loop), JSON lines parsed."""
    env = {**os.environ, "GATEWAY_REDIS_URL": redis_url, "GATEWAY_SECRET": TEST_SECRET}
    env["GATEWAY_CONFIG"] = str(REPO / "config" / "gateway.toml")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "journal", *argv, "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return out


async def test_records_land_on_every_master_and_readers_merge_them_in_order(
    gateway: TestServer,
    redis: Redis,
    echo_tenant: Tenant,
    settings: Settings,
    redis_url: str,
    aiohttp_server: AiohttpServer,
) -> None:
    assert isinstance(redis, RedisCluster)
    other = await make_tenant(redis, account=OTHER_ACCOUNT, client="echo-two", provider="echo")
    answered = await _send(gateway, [echo_tenant, other], REQUESTS)
    ids = [request_id for request_id, _account in answered]

    # Written: merged by entry id, the shards give the records in the order they were answered.
    records = await wait_for_records(redis, REQUESTS)
    assert [r["request_id"] for r in records] == ids

    # Spread: every master holds shards with records; each account stream is on its tag's slot.
    holding: dict[str, int] = {}
    for stream in shard_streams(settings.journal_shards):
        node = redis.get_node_from_key(stream).name
        holding[node] = holding.get(node, 0) + await redis.xlen(stream)
    masters = {node.name for node in redis.get_primaries()}
    assert len(masters) == 3
    assert set(holding) == masters
    assert all(count > 0 for count in holding.values()), holding
    for account in (echo_tenant.account, OTHER_ACCOUNT):
        stream = keys.journal_account_stream(account)
        assert redis.keyslot(stream) == redis.keyslot(f"{{{account}}}")

    # The reader: pages with cursors, an account's stream, one record by id, stats, following.
    reader = JournalReader(redis, shards=settings.journal_shards)
    paged: list[str] = []
    cursor: str | None = None
    while True:
        page, cursor = await reader.page(JournalFilter(), limit=7, before=cursor)
        paged += [r["request_id"] for r in page]
        if cursor is None:
            break
    assert paged == ids[::-1]
    mine, _ = await reader.page(JournalFilter(account=OTHER_ACCOUNT), limit=100)
    assert [r["request_id"] for r in mine] == [i for i, a in answered if a == OTHER_ACCOUNT][::-1]
    for record in records:
        assert await reader.get(record["request_id"]) == record
    stats = await journal_stats(
        reader, JournalFilter(), since_seconds=600, now_ms=int(time.time() * 1000)
    )
    assert stats["requests"] == REQUESTS
    start = await reader.positions(JournalFilter())
    later = [i for i, _a in await _send(gateway, [echo_tenant, other], 6)]
    followed: list[str] = []
    async with asyncio.timeout(10):
        async for record in reader.follow(JournalFilter(), after=start, poll=0.02):
            followed.append(record["request_id"])
            if len(followed) == len(later):
                break
    assert followed == later
    ids += later

    # The admin API (the dashboard's source): pages with cursors and one record.
    app = gateway.app
    assert app is not None
    admin_settings = settings.replace(admin_token=ADMIN_TOKEN)
    admin = await aiohttp_server(create_admin_app(admin_settings, app[appkeys.METRICS]))
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    listed: list[str] = []
    async with aiohttp.ClientSession(headers=auth) as session:
        params = {"limit": "9"}
        while True:
            async with session.get(admin.make_url("/admin/journal"), params=params) as response:
                assert response.status == 200, await response.text()
                body = await response.json()
            listed += [r["request_id"] for r in body["records"]]
            if body["next_cursor"] is None:
                break
            params["cursor"] = body["next_cursor"]
        async with session.get(admin.make_url(f"/admin/journal/{ids[3]}")) as response:
            assert (await response.json())["request_id"] == ids[3]
    assert listed == ids[::-1]

    # The CLI, in its own process.
    tail = await _cli(redis_url, "tail", "-n", "12")
    assert [orjson.loads(line)["request_id"] for line in tail.splitlines()] == ids[-12:]
    shown = orjson.loads(await _cli(redis_url, "show", ids[5]))
    assert shown["request_id"] == ids[5]
    stats_out = orjson.loads(await _cli(redis_url, "stats", "--since", "10m"))
    assert stats_out["requests"] == len(ids)
