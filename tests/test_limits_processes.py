"""Exactness across instances: two gateway processes share one Redis (or Redis Cluster); of
many concurrent requests against a limit of L per minute, exactly L succeed."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam
from redis.asyncio import Redis

from tests.conftest import TEST_SECRET, Tenant, free_port, make_tenant
from tests.support.upstream_server import UpstreamServer

LIMIT = 20
REQUESTS = 60
PARALLEL = 16
HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


@pytest.fixture(params=["standalone", "cluster"])
def redis_url(request: pytest.FixtureRequest, redis_url: str) -> str:
    if request.param == "cluster":
        return str(request.getfixturevalue("redis_cluster_url"))
    return redis_url


async def wait_ready(port: int, process: asyncio.subprocess.Process, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as session:
        while True:
            if process.returncode is not None:
                raise AssertionError(f"gateway on port {port} exited with {process.returncode}")
            try:
                async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"gateway on port {port} not ready within {within}s")
            await asyncio.sleep(0.05)


@pytest.fixture
async def gateway_ports(redis_url: str, redis: Redis, tmp_path: Path) -> AsyncIterator[list[int]]:
    ports = [free_port(), free_port()]
    env = {
        **os.environ,
        "GATEWAY_REDIS_URL": redis_url,
        "GATEWAY_SECRET": TEST_SECRET,
        "GATEWAY_ACCESS_LOG": "false",
        "GATEWAY_LOG_LEVEL": "warning",
        "GATEWAY_VAR_DIR": str(tmp_path / "var"),
    }
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        for port in ports
    ]
    try:
        for port, process in zip(ports, processes, strict=True):
            await wait_ready(port, process)
        yield ports
    finally:
        for process in processes:
            if process.returncode is None:
                process.terminate()
        for process in processes:
            try:
                await asyncio.wait_for(process.wait(), 20)
            except TimeoutError:
                process.kill()
                await process.wait()


async def test_two_gateways_admit_exactly_the_limit(
    redis: Redis, upstream: tuple[UpstreamServer, str], gateway_ports: list[int]
) -> None:
    tenant: Tenant = await make_tenant(redis, upstream_url=upstream[1], rpm=LIMIT)
    sdks = []
    for port in gateway_ports:
        sdks.append(
            openai.AsyncOpenAI(
                base_url=f"http://127.0.0.1:{port}/v1",
                api_key=tenant.key,
                default_headers={"Host": tenant.hostname},
                max_retries=0,
                timeout=20.0,
            )
        )
    gate = asyncio.Semaphore(PARALLEL)

    async def one(index: int) -> int:
        async with gate:
            try:
                await sdks[index % 2].chat.completions.create(model="gpt-test", messages=HI)
            except openai.RateLimitError:
                return 429
            return 200

    try:
        statuses = await asyncio.wait_for(
            asyncio.gather(*(one(i) for i in range(REQUESTS))), timeout=60
        )
    finally:
        for sdk in sdks:
            await sdk.close()
    assert statuses.count(200) == LIMIT
    assert statuses.count(429) == REQUESTS - LIMIT
    assert len(upstream[0].seen) == LIMIT
