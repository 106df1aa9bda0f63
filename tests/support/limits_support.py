"""Helpers for the limit tests: an upstream that reports stream usage, and waiting on Redis."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from redis.asyncio import Redis

from gateway import appkeys
from gateway.store import keys
from tests.support.helpers import wait_for

#: The usage the suite's upstream reports for a stream: 7 prompt tokens, one token per word.
STREAM_PROMPT_TOKENS = 7


async def tokens_in_window(redis: Redis, account: str, scope: str) -> int:
    value: Any = await redis.hget(keys.limit_token_amounts(account, scope), "_sum")
    return int(value or 0)


async def in_flight(redis: Redis, account: str, scope: str) -> int:
    return int(await redis.zcard(keys.limit_in_flight(account, scope)))


async def flush_usage(app: web.Application) -> None:
    """Write the usage tally to Redis once the journal writer has handed it every finished
    request (usage is counted from journal records, off the request path)."""
    journal = app[appkeys.JOURNAL]

    async def drained() -> bool:
        return journal.queued == 0

    await wait_for(drained, what="the journal queue to drain")
    await app[appkeys.METERING].usage.flush()
