"""Measure what a rate-limited request costs: one gateway process and echo tenants with no
limit, one limit, and every limit (set so high they never refuse); interleaved rounds of a fixed
number of requests at a fixed concurrency, on loopback. Bounded in count and time.

    .venv/bin/python -m tests.support.measure_limits_cost \
        [--requests 2000] [--rounds 5] [--parallel 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from gateway.keys_service import issue_key
from gateway.redis_server import EmbeddedRedis
from gateway.store.records import ClientRecord
from gateway.store.redis import create_redis
from gateway.store.repositories import ApiKeyRepository, ClientRepository
from tests.conftest import free_port

SECRET = "measure-secret"
ACCOUNT = "1111-2222-3333"
BODY = orjson.dumps({"model": "echo-1", "messages": [{"role": "user", "content": "hello there"}]})
HUGE = 1_000_000_000
TIME_LIMIT = 300.0
#: off: no limit (no Redis on the request path); rpm: one limit (one script call);
#: all: rpm, tpm, max_concurrent and a day budget (a check and a settle call).
MODES = ("off", "rpm", "all")


async def make_tenants(redis_url: str) -> dict[str, tuple[str, str]]:
    redis = create_redis(redis_url)
    tenants = {}
    try:
        modes: list[tuple[str, dict[str, Any]]] = [
            ("off", {}),
            ("rpm", {"rpm": HUGE}),
            ("all", {"rpm": HUGE, "tpm": HUGE, "max_concurrent": HUGE, "tokens_per_day": HUGE}),
        ]
        for mode, limits in modes:
            name = f"measure-{mode}"
            record = ClientRecord(account=ACCOUNT, name=name, provider="echo", **limits)
            await ClientRepository(redis).put(record)
            issued = await issue_key(ApiKeyRepository(redis), SECRET, account=ACCOUNT, name=mode)
            tenants[mode] = (record.hostname("api.localhost"), issued.key)
    finally:
        await redis.aclose()
    return tenants


async def wait_ready(port: int) -> None:
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise SystemExit("gateway did not become ready")


async def one_round(
    session: aiohttp.ClientSession, url: str, tenant: tuple[str, str], count: int, parallel: int
) -> tuple[list[float], float]:
    host, key = tenant
    headers = {"Host": host, "Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    latencies: list[float] = []
    remaining = iter(range(count))

    async def worker() -> None:
        for _ in remaining:
            started = time.perf_counter()
            async with session.post(url, data=BODY, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    raise SystemExit(f"unexpected status {response.status}")
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(parallel)))
    return latencies, time.perf_counter() - started


async def measure(args: argparse.Namespace, workdir: Path) -> None:
    redis_server = EmbeddedRedis(workdir / "redis", port=free_port(), persistent=False)
    redis_url = redis_server.start()
    port = free_port()
    env = {
        **os.environ,
        "GATEWAY_REDIS_URL": redis_url,
        "GATEWAY_SECRET": SECRET,
        "GATEWAY_ACCESS_LOG": "false",
        "GATEWAY_LOG_LEVEL": "warning",
        "GATEWAY_VAR_DIR": str(workdir / "var"),
    }
    gateway = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "serve", "--port", str(port), env=env
    )
    try:
        tenants = await make_tenants(redis_url)
        await wait_ready(port)
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        results: dict[str, list[float]] = {mode: [] for mode in MODES}
        rates: dict[str, list[float]] = {mode: [] for mode in MODES}
        connector = aiohttp.TCPConnector(limit=args.parallel)
        async with aiohttp.ClientSession(connector=connector) as session:
            for mode in MODES:  # warm-up
                await one_round(session, url, tenants[mode], 200, args.parallel)
            for index in range(args.rounds):
                order = MODES if index % 2 == 0 else MODES[::-1]
                for mode in order:
                    latencies, elapsed = await one_round(
                        session, url, tenants[mode], args.requests, args.parallel
                    )
                    results[mode] += latencies
                    rates[mode].append(args.requests / elapsed)
        print(f"{args.rounds} rounds x {args.requests} requests, {args.parallel} in parallel")
        print("limits  median_ms  p90_ms  p99_ms  req_per_s")
        for mode in MODES:
            values = sorted(results[mode])
            q = statistics.quantiles(values, n=100)
            print(
                f"{mode:6}  {statistics.median(values) * 1000:9.3f}  {q[89] * 1000:6.3f}  "
                f"{q[98] * 1000:6.3f}  {statistics.median(rates[mode]):9.0f}"
            )
        for mode in MODES[1:]:
            added = (statistics.median(results[mode]) - statistics.median(results["off"])) * 1000
            print(f"added median latency, limits {mode}: {added:.3f} ms")
    finally:
        gateway.terminate()
        await gateway.wait()
        redis_server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--parallel", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        asyncio.run(asyncio.wait_for(measure(args, Path(workdir)), TIME_LIMIT))


if __name__ == "__main__":
    main()
