"""Reading the journal back in tests: wait, with a deadline, for one request's record."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from redis.asyncio import Redis

from gateway.store import keys


async def journal_record(redis: Redis, request_id: str, within: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for _entry_id, fields in await redis.xrange(keys.JOURNAL_STREAM) or ():
            record: dict[str, Any] = orjson.loads((fields or {})[b"record"])
            if record["request_id"] == request_id:
                return record
        await asyncio.sleep(0.02)
    raise AssertionError(f"no journal record for {request_id} within {within}s")
