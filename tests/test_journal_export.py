"""`gateway journal export` as a real process over consumer groups: at least once (a consumer
killed between writing and acknowledging loses nothing), resumable, claim-after respected, new
groups from the oldest record or from now, exits once caught up."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import aiohttp
import orjson
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from gateway.journal.shards import global_streams
from tests.conftest import REPO, TEST_SECRET, Tenant
from tests.support.journal_helpers import wait_for_records

N = 60
#: Records of ~9 KB (the request and the echoed reply): N of them overflow any pipe buffer, so
#: an exporter whose output is not read blocks in its write, after reading, before acking.
CONTENT = "x" * 4000


async def _answer(gateway: TestServer, tenant: Tenant) -> list[str]:
    body = {"model": "echo-1", "messages": [{"role": "user", "content": CONTENT}]}
    headers = {"Host": tenant.hostname, "Authorization": f"Bearer {tenant.key}"}
    ids = []
    async with aiohttp.ClientSession() as session:
        for _ in range(N):
            url = gateway.make_url("/v1/chat/completions")
            async with session.post(url, json=body, headers=headers) as response:
                assert response.status == 200
                ids.append(response.headers["x-request-id"])
    return ids


class Export:
    """`gateway journal export --group ...` in its own process."""

    def __init__(self, redis_url: str, var: Path) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        self.env.update(
            GATEWAY_REDIS_URL=redis_url,
            GATEWAY_SECRET=TEST_SECRET,
            GATEWAY_VAR_DIR=str(var),
            GATEWAY_CONFIG=str(REPO / "config" / "gateway.toml"),
        )

    async def start(self, *argv: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "journal", "export", *argv,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=self.env,
        )  # fmt: skip

    async def run(self, *argv: str) -> list[str]:
        """Run to the end (it must exit by itself: caught up); the request ids it wrote."""
        process = await self.start(*argv)
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, err.decode()
        return [orjson.loads(line)["request_id"] for line in out.splitlines()]


async def _pending(redis: Redis, group: str) -> int:
    total = 0
    for stream in global_streams(8)[:-1]:
        summary: dict[str, int] = await redis.xpending(stream, group)
        total += summary["pending"]
    return total


async def _kill_between_read_and_ack(
    export: Export, redis: Redis, *argv: str
) -> tuple[list[str], int]:
    """Start a consumer, read a few of its lines, kill it while it is blocked writing the
    rest (read from Redis, not acknowledged); the ids it wrote completely, and what is pending."""
    process = await export.start(*argv)
    assert process.stdout is not None
    lines = [await asyncio.wait_for(process.stdout.readline(), 30) for _ in range(3)]
    group = argv[argv.index("--group") + 1]
    deadline = time.monotonic() + 10
    while await _pending(redis, group) == 0:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    rest = await process.stdout.read()  # before wait(): a full pipe buffer holds the exit back
    await process.wait()
    lines += [line + b"\n" for line in rest.split(b"\n")[:-1]]  # a cut last line is not a line
    pending = await _pending(redis, group)
    return [orjson.loads(line)["request_id"] for line in lines], pending


async def test_a_consumer_killed_between_read_and_ack_loses_nothing(
    gateway: TestServer, redis: Redis, echo_tenant: Tenant, redis_url: str, tmp_path: Path
) -> None:
    ids = await _answer(gateway, echo_tenant)
    await wait_for_records(redis, N)
    export = Export(redis_url, tmp_path / "var")

    first, pending = await _kill_between_read_and_ack(
        export, redis, "--group", "lake", "--consumer", "c1"
    )
    assert pending > 0  # killed holding records it had read and not acknowledged
    assert len(first) < N
    # Another consumer leaves them alone while they are younger than --claim-after...
    assert await export.run("--group", "lake", "--consumer", "c2") == []
    assert await _pending(redis, "lake") == pending
    # ...and takes them over once they are older.
    claimed = await export.run("--group", "lake", "--consumer", "c2", "--claim-after", "0")
    assert len(claimed) == pending
    assert set(first) | set(claimed) == set(ids)  # at least once: nothing lost
    assert await _pending(redis, "lake") == 0
    # Resumable: the group moved past everything acknowledged.
    assert await export.run("--group", "lake", "--consumer", "c1") == []

    # A new group starts at the oldest record, in the journal's order; `--from now` at the end.
    assert await export.run("--group", "fresh", "--format", "jsonl") == ids
    assert await export.run("--group", "later", "--from", "now") == []


async def test_the_same_consumer_takes_its_own_pending_records_back_at_once(
    gateway: TestServer, redis: Redis, echo_tenant: Tenant, redis_url: str, tmp_path: Path
) -> None:
    ids = await _answer(gateway, echo_tenant)
    await wait_for_records(redis, N)
    export = Export(redis_url, tmp_path / "var")
    first, pending = await _kill_between_read_and_ack(
        export, redis, "--group", "own", "--consumer", "box-1"
    )
    again = await export.run("--group", "own", "--consumer", "box-1")  # claim-after: 60 s
    assert len(again) == pending > 0
    assert set(first) | set(again) == set(ids)
    assert await _pending(redis, "own") == 0
