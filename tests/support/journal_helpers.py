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

from gateway.config import Settings
from gateway.journal.shards import global_streams

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


#: The global journal's streams with the default `journal_shards` (and the first layout's).
GLOBAL_STREAMS = tuple(global_streams(Settings().journal_shards))


def _entry_order(item: tuple[int, bytes, Any]) -> tuple[int, int, int]:
    ms, _, seq = item[1].partition(b"-")
    return int(ms), int(seq), item[0]


async def journal_entries(redis: Redis, stream: str | None = None) -> list[tuple[bytes, Any]]:
    """`(entry id, fields)` of one stream, or of the global journal's shards merged by entry id,
    oldest first."""
    streams = (stream,) if stream else GLOBAL_STREAMS
    merged: list[tuple[int, bytes, Any]] = []
    for index, name in enumerate(streams):
        entries: Any = await redis.xrange(name, "-", "+")
        merged.extend((index, entry_id, raw) for entry_id, raw in entries)
    merged.sort(key=_entry_order)
    return [(entry_id, raw) for _index, entry_id, raw in merged]


async def journal_length(redis: Redis, stream: str | None = None) -> int:
    total = 0
    for name in (stream,) if stream else GLOBAL_STREAMS:
        total += await redis.xlen(name)
    return total


async def journal_records(redis: Redis, stream: str | None = None) -> list[dict[str, Any]]:
    """Every record of a stream (default: the global journal), oldest first, each checked
    against the schema."""
    entries = await journal_entries(redis, stream)
    return [check_record(orjson.loads(raw[b"record"])) for _id, raw in entries]


async def wait_for_records(
    redis: Redis, count: int, *, within: float = 10.0, stream: str | None = None
) -> list[dict[str, Any]]:
    """Wait (with a deadline) until the stream holds at least `count` records."""
    deadline = time.monotonic() + within
    while (length := await journal_length(redis, stream)) < count:
        assert time.monotonic() < deadline, f"journal has {length} of {count}"
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


def journal_ids_sync(url: str) -> list[str]:
    """The request ids of every record in the global journal (all shards), oldest first: for
    tests that watch a `gateway serve` process from a thread."""
    client = sync_redis.Redis.from_url(url, socket_timeout=5)
    merged: list[tuple[int, bytes, Any]] = []
    try:
        for index, stream in enumerate(GLOBAL_STREAMS):
            entries: Any = client.xrange(stream, "-", "+")
            merged.extend((index, entry_id, raw) for entry_id, raw in entries)
    finally:
        client.close()
    merged.sort(key=_entry_order)
    return [raw[b"request_id"].decode() for _index, _id, raw in merged]


def validate_all_records(url: str) -> int:
    """Check every record left in the journal at `url` (run after a test); returns how many."""
    if "+cluster://" in url:  # a Redis Cluster (tests/support/redis_cluster.py)
        client: Any = sync_redis.RedisCluster.from_url(url.replace("+cluster", "", 1))
    else:
        client = sync_redis.Redis.from_url(url, socket_timeout=5)
    entries: list[Any] = []
    try:
        for stream in GLOBAL_STREAMS:
            entries.extend(client.xrange(stream, "-", "+"))
    finally:
        client.close()
    for _id, raw in entries:
        check_record(orjson.loads(raw[b"record"]))
    return len(entries)


#: The record of one request (schema-checked), waiting for the batched writer to flush it.
journal_record = wait_for_record
