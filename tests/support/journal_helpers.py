"""Reading the journal back in tests, and checking every record against the published schema."""

from __future__ import annotations

import asyncio
import functools
import json
import time
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import redis as sync_redis
from redis.asyncio import Redis

from gateway.store import keys

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "docs" / "journal.schema.json"


@functools.cache
def validator() -> Any:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def check_record(record: dict[str, Any]) -> dict[str, Any]:
    errors = sorted(validator().iter_errors(record), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]
    return record


async def journal_records(redis: Redis, stream: str = keys.JOURNAL_STREAM) -> list[dict[str, Any]]:
    """Every record of a stream, oldest first, each checked against the schema."""
    entries: Any = await redis.xrange(stream, "-", "+")
    return [check_record(orjson.loads(raw[b"record"])) for _id, raw in entries]


async def wait_for_records(
    redis: Redis, count: int, *, within: float = 10.0, stream: str = keys.JOURNAL_STREAM
) -> list[dict[str, Any]]:
    """Wait (with a deadline) until the stream holds at least `count` records."""
    deadline = time.monotonic() + within
    while await redis.xlen(stream) < count:
        assert time.monotonic() < deadline, f"journal has {await redis.xlen(stream)} of {count}"
        await asyncio.sleep(0.02)
    return await journal_records(redis, stream)


async def wait_for_record(redis: Redis, request_id: str, within: float = 10.0) -> dict[str, Any]:
    """The record whose `request_id` (the gateway's) or `client_request_id` (what the test sent
    as `X-Client-Request-Id`) is `request_id`."""
    deadline = time.monotonic() + within
    while True:
        for record in await journal_records(redis):
            if request_id in (record["request_id"], record["client_request_id"]):
                return record
        assert time.monotonic() < deadline, f"no journal record for {request_id}"
        await asyncio.sleep(0.02)


def validate_all_records(url: str) -> int:
    """Check every record left in the journal at `url` (run after a test); returns how many."""
    if "+cluster://" in url:  # a Redis Cluster (tests/support/redis_cluster.py)
        client: Any = sync_redis.RedisCluster.from_url(url.replace("+cluster", "", 1))
    else:
        client = sync_redis.Redis.from_url(url, socket_timeout=5)
    try:
        entries: Any = client.xrange(keys.JOURNAL_STREAM, "-", "+")
    finally:
        client.close()
    for _id, raw in entries:
        check_record(orjson.loads(raw[b"record"]))
    return len(entries)


#: The record of one request (schema-checked), waiting for the batched writer to flush it.
journal_record = wait_for_record
