"""The sharded journal layout on one Redis: records of the first layout stay readable beside new
ones, and a batch written twice (a retry after a lost reply) is stored once in every stream."""

from __future__ import annotations

import aiohttp
import orjson
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from gateway.journal.reader import JournalFilter, JournalReader
from gateway.journal.shards import ShardedLayout, account_streams
from gateway.store import keys
from tests.conftest import Tenant
from tests.support.journal_helpers import journal_length, wait_for_records

FIELDS = ("v", "request_id", "account", "client", "status", "outcome", "latency_ms", "record")


async def _answer(gateway: TestServer, tenant: Tenant, count: int) -> list[str]:
    body = {"model": "echo-1", "messages": [{"role": "user", "content": "hello"}]}
    headers = {"Host": tenant.hostname, "Authorization": f"Bearer {tenant.key}"}
    ids = []
    async with aiohttp.ClientSession() as session:
        for _ in range(count):
            url = gateway.make_url("/v1/chat/completions")
            async with session.post(url, json=body, headers=headers) as response:
                assert response.status == 200
                ids.append(response.headers["x-request-id"])
    return ids


def _flat(record: dict[str, object]) -> dict[str, bytes | str]:
    return {
        "v": "1",
        "request_id": str(record["request_id"]),
        "account": str(record["account"]),
        "client": str(record["client"]),
        "status": str(record["status"]),
        "outcome": str(record["outcome"]),
        "latency_ms": "1.0",
        "record": orjson.dumps(record),
    }


async def test_records_of_the_first_layout_stay_readable(
    gateway: TestServer, redis: Redis, echo_tenant: Tenant
) -> None:
    new = await _answer(gateway, echo_tenant, 2)
    written = await wait_for_records(redis, 2)
    # A record as a gateway of the first layout left it: one `{journal}` slot, same entry id in
    # the global and the account stream, an index naming it.
    old = {**written[0], "request_id": "req_from_the_first_layout"}
    old_id = "1000000000000-0"
    await redis.xadd(keys.LEGACY_JOURNAL_STREAM, _flat(old), id=old_id)  # type: ignore[arg-type]
    account_stream = keys.legacy_journal_account_stream(echo_tenant.account)
    await redis.xadd(account_stream, _flat(old), id=old_id)  # type: ignore[arg-type]
    await redis.set(keys.legacy_journal_request_index(old["request_id"]), f"tok {old_id}")

    reader = JournalReader(redis)
    page, cursor = await reader.page(JournalFilter(), limit=10)
    assert [r["request_id"] for r in page] == [*new[::-1], old["request_id"]]
    assert cursor is None
    mine, _ = await reader.page(JournalFilter(account=echo_tenant.account), limit=10)
    assert [r["request_id"] for r in mine] == [*new[::-1], old["request_id"]]
    assert await reader.get(old["request_id"]) == old
    assert await reader.get(new[1]) == written[1]
    assert await reader.get("req_nobody_sent") is None


async def test_a_batch_written_twice_is_stored_once_in_every_stream(
    gateway: TestServer, redis: Redis, echo_tenant: Tenant
) -> None:
    await _answer(gateway, echo_tenant, 1)
    record = (await wait_for_records(redis, 1))[0]
    layout = ShardedLayout(redis, 8)
    batch = []
    for index in range(20):
        copy = {**record, "request_id": f"req_copy_{index}"}
        values = list(_flat(copy).values())
        batch.append((copy["request_id"], copy["account"], f"token{index}", values))
    for _ in range(2):
        await layout.write(batch, fields=FIELDS, max_records=0, minid=0, ttl=60)
    assert await journal_length(redis) == 21
    account = account_streams(echo_tenant.account)[0]
    assert await redis.xlen(account) == 21
    reader = JournalReader(redis)
    page, _ = await reader.page(JournalFilter(), limit=50)
    assert [r["request_id"] for r in page[:20]] == [f"req_copy_{i}" for i in range(20)][::-1]
