"""Never lose a record: Redis stopped mid-run, graceful shutdown under load, a full disk."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import openai
import pytest
from redis.asyncio import Redis

from gateway import appkeys
from gateway.app import create_app
from gateway.config import Settings
from gateway.journal.entry import Entry
from gateway.journal.spill import SpillFile
from gateway.journal.writer import JournalWriter
from gateway.redis_server import EmbeddedRedis
from gateway.store import keys
from gateway.store.redis import create_redis
from tests.conftest import TEST_SECRET, AiohttpServer, free_port, make_tenant, sdk_kwargs
from tests.support.journal_helpers import journal_records, wait_for_records

N = 60


async def test_redis_stopped_mid_run_loses_no_record(
    aiohttp_server: AiohttpServer, tmp_path: Path
) -> None:
    port = free_port()
    server = EmbeddedRedis(tmp_path / "redis", port=port, persistent=True)
    url = server.start()
    redis = create_redis(url)
    try:
        tenant = await make_tenant(redis, client="echo-bot", provider="echo")
        settings = Settings(
            redis_url=url,
            secret=TEST_SECRET,
            var_dir=str(tmp_path / "var"),
            access_log=False,
            cache_ttl=300.0,
        )
        app = create_app(settings, TEST_SECRET)
        gateway = await aiohttp_server(app)
        writer = app[appkeys.JOURNAL]
        answered = []
        async with openai.AsyncOpenAI(**sdk_kwargs(gateway, tenant)) as sdk:
            for index in range(N):
                if index == N // 3:
                    server.stop()
                if index == 2 * N // 3:
                    # Records go to disk while Redis is away (the writer's next flush finds
                    # it gone; wait for that rather than race the 50 ms flush interval).
                    deadline = time.monotonic() + 5.0
                    while writer.spilled == 0:
                        assert time.monotonic() < deadline, "nothing was spilled"
                        await asyncio.sleep(0.01)
                    server.start()
                raw = await sdk.chat.completions.with_raw_response.create(
                    model="echo-1",
                    messages=[{"role": "user", "content": f"n{index}"}],
                    stream=index % 2 == 0,
                )
                assert raw.http_response.status_code == 200
                answered.append(raw.headers["x-request-id"])
        await redis.aclose()
        redis = create_redis(url)  # a fresh pool: the old connections died with the server
        records = await wait_for_records(redis, N, within=20.0)
        assert [r["request_id"] for r in records] == answered  # all, once each, in order
        await asyncio.sleep(0.2)  # nothing more may arrive: the count is exact
        assert await redis.xlen(keys.JOURNAL_STREAM) == N
        counters = writer.counters()
        assert counters["replayed"] == counters["spilled"] > 0
        assert counters["dropped"] == 0
    finally:
        await redis.aclose()
        server.stop()


async def test_graceful_shutdown_under_load_loses_no_record(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    tenant = await make_tenant(redis, client="echo-bot", provider="echo")
    port = free_port()
    env = {
        **os.environ,
        "GATEWAY_REDIS_URL": redis_url,
        "GATEWAY_SECRET": TEST_SECRET,
        "GATEWAY_PORT": str(port),
        "GATEWAY_VAR_DIR": str(tmp_path / "var"),
        "GATEWAY_ACCESS_LOG": "false",
        "GATEWAY_ADMIN_TOKEN": "",
    }
    process = subprocess.Popen(  # noqa: ASYNC220 - starting it does not block
        [sys.executable, "-m", "gateway", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    answered: list[str] = []
    stop_after = 150
    async with aiohttp.ClientSession() as session:
        deadline = time.monotonic() + 20
        while True:
            try:
                async with session.get(base + "/healthz") as response:
                    if response.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            assert process.poll() is None, "the gateway exited"
            assert time.monotonic() < deadline, "the gateway did not come up"
            await asyncio.sleep(0.05)

        async def worker() -> None:
            body = {"model": "echo-1", "messages": [{"role": "user", "content": "load"}]}
            headers = {"Host": tenant.hostname, "Authorization": f"Bearer {tenant.key}"}
            for _ in range(100):
                try:
                    async with session.post(
                        base + "/v1/chat/completions", json=body, headers=headers
                    ) as response:
                        await response.read()
                        answered.append(response.headers["x-request-id"])
                except aiohttp.ClientError:
                    return  # the gateway stopped accepting: this worker is done
                if len(answered) == stop_after:
                    process.send_signal(signal.SIGTERM)

        await asyncio.gather(*(worker() for _ in range(10)))
    assert process.wait(timeout=30) == 0, process.stderr.read() if process.stderr else ""
    if process.stderr:
        process.stderr.close()
    records = await journal_records(redis)
    ids = [r["request_id"] for r in records]
    assert len(answered) >= stop_after
    assert set(answered) <= set(ids)
    assert len(ids) == len(set(ids))


async def test_full_disk_counts_dropped_records_and_says_so(
    redis: Redis, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not os.path.exists("/dev/full"):  # noqa: ASYNC240
        pytest.skip("/dev/full is not available here")
    writer = JournalWriter(redis, tmp_path / "journal")
    writer.start()
    full = SpillFile.claim(Path("/dev/full"), create=False)
    assert full is not None
    assert writer._spill is not None
    own, writer._spill.own = writer._spill.own, full
    try:
        writer._spill_entries([Entry("t1", {}, b"{}"), Entry("t2", {}, b"{}")])
    finally:
        writer._spill.own = own
        full.close(remove=False)
    await writer.close()
    assert writer.counters()["dropped"] == 2
    assert writer.counters()["spilled"] == 0
    assert "journal_records_dropped" in capsys.readouterr().out
