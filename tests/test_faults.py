"""Fault tests that count (issue 10): Redis SIGKILLed and restarted under load, the upstream
killed mid-stream, clients leaving mid-stream, SIGTERM to `gateway serve` under load. Each
checks that the journal holds exactly one record per request the gateway accepted (answered
with a response head), no duplicates, and that the gateway serves afterwards. The figures are
printed (`-s`) and quoted in docs/reliability.md.

Everything is a real process on loopback: `gateway serve`, a private redis-server for the kill,
the suite's upstream in its own process for the upstream kill.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import redis as sync_redis_lib
from redis.asyncio import Redis

from gateway.redis_server import EmbeddedRedis
from gateway.store.redis import create_redis
from tests.conftest import REPO, Tenant, free_port, make_tenant
from tests.support.gateway_process import (
    GatewayProcess,
    gateway_process,
    metric,
    wait_for_port,
)
from tests.support.secret_scan import register_log_file

CHAT = {"model": "echo-1", "messages": [{"role": "user", "content": "load"}]}


class Answered:
    """The request ids answered so far, and a way to wait until there are `n` of them."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self._changed = asyncio.Event()

    def add(self, request_id: str) -> None:
        self.ids.append(request_id)
        self._changed.set()

    async def reach(self, count: int) -> None:
        while len(self.ids) < count:
            self._changed.clear()
            await self._changed.wait()


def journal_ids(redis_url: str) -> list[str]:
    client = sync_redis_lib.Redis.from_url(redis_url)
    try:
        entries: Any = client.xrange("gw:{journal}:all", "-", "+")
        return [fields[b"request_id"].decode() for _id, fields in entries]
    finally:
        client.close()


async def wait_for_journal(redis_url: str, count: int, within: float = 20.0) -> list[str]:
    deadline = time.monotonic() + within
    while len(ids := await asyncio.to_thread(journal_ids, redis_url)) < count:
        assert time.monotonic() < deadline, f"journal has {len(ids)} of {count} records"
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)  # nothing more may arrive: the count is exact
    return await asyncio.to_thread(journal_ids, redis_url)


def check_exact(answered: list[str], journaled: list[str], name: str) -> None:
    assert len(journaled) == len(set(journaled)), f"{name}: a record is duplicated"
    missing = set(answered) - set(journaled)
    extra = set(journaled) - set(answered)
    assert not missing, f"{name}: {len(missing)} accepted requests are not journaled"
    assert not extra, f"{name}: {len(extra)} records of requests nobody saw answered"
    print(f"\n{name}: accepted={len(answered)} journaled={len(journaled)} lost=0 duplicates=0")


async def post(session: aiohttp.ClientSession, gateway: GatewayProcess, tenant: Tenant) -> str:
    headers = {"Host": tenant.hostname, "Authorization": f"Bearer {tenant.key}"}
    url = f"http://127.0.0.1:{gateway.port}/v1/chat/completions"
    async with session.post(url, json=CHAT, headers=headers) as response:
        await response.read()
        return response.headers["x-request-id"]


async def serves_after(gateway: GatewayProcess, tenant: Tenant, redis_url: str) -> None:
    async with aiohttp.ClientSession() as session:
        request_id = await post(session, gateway, tenant)
    deadline = time.monotonic() + 5.0
    while request_id not in await asyncio.to_thread(journal_ids, redis_url):
        assert time.monotonic() < deadline, "the request after the fault was not journaled"
        await asyncio.sleep(0.05)


@contextlib.contextmanager
def serving(redis_url: str, var: Path, **settings: str) -> Iterator[GatewayProcess]:
    with gateway_process(redis_url, var, **settings) as gateway:
        register_log_file(gateway.log_path)
        yield gateway


async def test_redis_sigkilled_and_restarted_under_load(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis", port=free_port(), persistent=True)
    url = server.start()
    try:
        redis = create_redis(url)
        tenant = await make_tenant(redis, client="echo-bot", provider="echo")
        await redis.aclose()
        answered = Answered()
        with serving(url, tmp_path / "var", cache_ttl="300") as gateway:
            async with aiohttp.ClientSession() as session:

                async def worker() -> None:
                    for _ in range(40):
                        answered.add(await post(session, gateway, tenant))

                async def chaos() -> None:
                    await answered.reach(100)
                    assert server.process is not None
                    server.process.send_signal(signal.SIGKILL)
                    await asyncio.to_thread(server.process.wait)
                    if server.process.stderr:
                        server.process.stderr.close()
                    server.process = None
                    await answered.reach(len(answered.ids) + 80)  # served while Redis is gone
                    await asyncio.to_thread(server.start)

                await asyncio.gather(chaos(), *(worker() for _ in range(8)))
            journaled = await wait_for_journal(url, len(answered.ids))
            check_exact(answered.ids, journaled, "redis SIGKILL")
            spilled = metric(gateway.admin_port, "gateway_journal_spilled_total")
            replayed = metric(gateway.admin_port, "gateway_journal_replayed_total")
            assert spilled == replayed > 0  # the outage was real: records waited on disk
            print(f"redis SIGKILL: spilled={spilled:.0f} replayed={replayed:.0f}")
            await serves_after(gateway, tenant, url)
            assert gateway.stop() == 0
    finally:
        server.stop()


@contextlib.contextmanager
def upstream_process(port: int) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.upstream_process", str(port)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


async def open_streams(
    session: aiohttp.ClientSession, gateway: GatewayProcess, tenant: Tenant, count: int
) -> list[tuple[str, aiohttp.ClientResponse]]:
    """`count` streams, each read up to its first chunk."""
    headers = {"Host": tenant.hostname, "Authorization": f"Bearer {tenant.key}"}
    body = {"model": "pause-stream", "stream": True, "messages": CHAT["messages"]}
    url = f"http://127.0.0.1:{gateway.port}/v1/chat/completions"

    async def one() -> tuple[str, aiohttp.ClientResponse]:
        response = await session.post(url, json=body, headers=headers)
        assert response.status == 200
        await response.content.readuntil(b"\n\n")
        return response.headers["x-request-id"], response

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def test_upstream_killed_mid_stream(redis: Redis, redis_url: str, tmp_path: Path) -> None:
    port = free_port()
    tenant = await make_tenant(redis, upstream_url=f"http://127.0.0.1:{port}/v1")
    echo = await make_tenant(redis, client="echo-bot", provider="echo")
    with upstream_process(port) as upstream, serving(redis_url, tmp_path / "var") as gateway:
        async with aiohttp.ClientSession() as session:
            streams = await open_streams(session, gateway, tenant, 20)
            upstream.send_signal(signal.SIGKILL)
            for _request_id, response in streams:
                await response.read()  # the gateway ends each stream
                response.release()
        answered = [request_id for request_id, _ in streams]
        journaled = await wait_for_journal(redis_url, len(answered))
        check_exact(answered, journaled, "upstream SIGKILL mid-stream")
        records = await journal_records_of(redis)
        assert {r["outcome"] for r in records} == {"upstream_error"}
        assert all(r["stream"]["chunks"] >= 1 for r in records)
        await serves_after(gateway, echo, redis_url)
        assert gateway.stop() == 0


async def journal_records_of(redis: Redis) -> list[dict[str, Any]]:
    entries: Any = await redis.xrange("gw:{journal}:all", "-", "+")
    return [orjson.loads(fields[b"record"]) for _id, fields in entries]


async def test_clients_leave_mid_stream(redis: Redis, redis_url: str, tmp_path: Path) -> None:
    port = free_port()
    tenant = await make_tenant(redis, upstream_url=f"http://127.0.0.1:{port}/v1")
    with upstream_process(port), serving(redis_url, tmp_path / "var") as gateway:
        async with aiohttp.ClientSession() as session:
            streams = await open_streams(session, gateway, tenant, 20)
            for _request_id, response in streams:
                response.close()  # the client leaves after the first chunk
        answered = [request_id for request_id, _ in streams]
        journaled = await wait_for_journal(redis_url, len(answered))
        check_exact(answered, journaled, "clients leaving mid-stream")
        records = await journal_records_of(redis)
        assert {(r["status"], r["outcome"]) for r in records} == {(200, "client_disconnected")}
        await serves_after(gateway, tenant, redis_url)
        assert gateway.stop() == 0


async def test_sigterm_under_load(redis: Redis, redis_url: str, tmp_path: Path) -> None:
    tenant = await make_tenant(redis, client="echo-bot", provider="echo")
    answered: list[str] = []
    refused = 0
    with serving(redis_url, tmp_path / "var", access_log="false") as gateway:
        async with aiohttp.ClientSession() as session:

            async def worker() -> None:
                nonlocal refused
                for _ in range(100):
                    try:
                        answered.append(await post(session, gateway, tenant))
                    except aiohttp.ClientError:
                        refused += 1
                        return  # the gateway stopped accepting
                    if len(answered) == 200:
                        gateway.process.send_signal(signal.SIGTERM)

            await asyncio.gather(*(worker() for _ in range(10)))
        assert gateway.process.wait(timeout=30) == 0
    journaled = await wait_for_journal(redis_url, len(answered))
    check_exact(answered, journaled, f"SIGTERM under load (refused after: {refused})")
    with serving(redis_url, tmp_path / "var2") as again:
        await serves_after(again, tenant, redis_url)
        assert again.stop() == 0
