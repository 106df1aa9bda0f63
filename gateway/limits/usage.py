"""Usage accounting: per account, client, key and model, by UTC day; and reading it back.

The request path does nothing: the journal writer hands each finished record to
`UsageRecorder.observe`, which adds to an in-memory tally; a background task
writes the tally to Redis with one pipelined `HINCRBY` per counter every `flush_interval`, so
accounting costs no Redis round trip on the request path. Counts not yet written when Redis is
down are kept and written later; a graceful shutdown flushes them.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterable
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.limits.checks import utc_day
from gateway.store import keys

log = structlog.get_logger("gateway.usage")

#: Most distinct counters held while Redis is unreachable; past it new counts are dropped.
_MAX_PENDING = 200_000
COUNTERS = {"req": "requests", "pt": "prompt_tokens", "ct": "completion_tokens"}
#: Journal outcomes of requests that reached a handler (bad input, auth and limit refusals don't).
COUNTED_OUTCOMES = frozenset(
    {"ok", "upstream_error", "upstream_timeout", "client_disconnected", "internal_error"}
)


class UsageRecorder:
    def __init__(
        self,
        redis: Redis,
        *,
        retention_days: int = 400,
        flush_interval: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.retention_seconds = retention_days * 86400
        self.flush_interval = flush_interval
        self.clock = clock
        self._pending: dict[str, collections.Counter[str]] = {}
        self._size = 0
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0

    def add(
        self, account: str, client: str, key_id: str, model: str, prompt: int, completion: int
    ) -> None:
        tally = self._pending.get(redis_key := keys.usage_day(account, utc_day(self.clock())))
        if tally is None:
            tally = self._pending[redis_key] = collections.Counter()
        suffix = f"|{client}|{key_id}|{model[:200]}"
        if self._size >= _MAX_PENDING and "req" + suffix not in tally:
            self.dropped += 1
            return
        self._size += 0 if "req" + suffix in tally else 3
        tally["req" + suffix] += 1
        tally["pt" + suffix] += prompt
        tally["ct" + suffix] += completion

    def observe(self, record: dict[str, Any]) -> None:
        """Tally one journal record (the journal writer calls this off the request path):
        requests a handler served or tried, with their usage; refusals are not counted."""
        if record["outcome"] not in COUNTED_OUTCOMES or not record["key_id"]:
            return
        usage = record["usage"] or {}
        self.add(
            record["account"],
            record["client"],
            record["key_id"],
            record["model"]["requested"] or "",
            usage.get("input_tokens", 0),
            usage.get("output_tokens", 0),
        )

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="usage-recorder")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await self.flush()
        except (RedisError, OSError) as exc:
            log.error("usage_flush_failed_at_close", error=type(exc).__name__, lost=self._size)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            try:
                await self.flush()
            except (RedisError, OSError) as exc:
                log.warning("usage_flush_failed", error=type(exc).__name__, pending=self._size)

    async def flush(self) -> None:
        """Write everything tallied so far; on failure the tally is kept for the next try."""
        pending, self._pending, self._size = self._pending, {}, 0
        if not pending:
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for redis_key, tally in pending.items():
                    for field, amount in tally.items():
                        if amount:
                            pipe.hincrby(redis_key, field, amount)
                    pipe.expire(redis_key, self.retention_seconds)
                await pipe.execute()
        except BaseException:
            self._restore(pending)
            raise

    def _restore(self, pending: dict[str, collections.Counter[str]]) -> None:
        for redis_key, tally in pending.items():
            self._pending.setdefault(redis_key, collections.Counter()).update(tally)
        self._size = sum(len(t) for t in self._pending.values())


@dataclasses.dataclass(frozen=True, slots=True)
class UsageRow:
    day: str
    account: str
    client: str
    key_id: str
    model: str
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def days_back(now: float, days: int) -> list[str]:
    """The UTC days from `days - 1` days ago up to today, oldest first."""
    return [utc_day(now - 86400 * back) for back in range(max(days, 1) - 1, -1, -1)]


async def read_usage(
    redis: Redis, accounts: Iterable[str], days: list[str], client: str | None = None
) -> list[UsageRow]:
    rows: list[UsageRow] = []
    for account in accounts:
        for day in days:
            fields = await redis.hgetall(keys.usage_day(account, day))
            rows += _rows(day, account, fields, client)
    return rows


def _rows(day: str, account: str, fields: dict[Any, Any], client: str | None) -> list[UsageRow]:
    merged: dict[tuple[str, str, str], dict[str, int]] = {}
    for raw_field, raw_value in fields.items():
        field = raw_field.decode() if isinstance(raw_field, bytes) else str(raw_field)
        counter, _, rest = field.partition("|")
        parts = rest.split("|", 2)
        if counter not in COUNTERS or len(parts) != 3:
            continue
        if client is not None and parts[0] != client:
            continue
        ident = (parts[0], parts[1], parts[2])
        merged.setdefault(ident, {})[COUNTERS[counter]] = int(raw_value)
    return [
        UsageRow(day, account, c, k, m, **counts) for (c, k, m), counts in sorted(merged.items())
    ]


def totals(rows: Iterable[UsageRow]) -> dict[str, int]:
    result = dict.fromkeys(COUNTERS.values(), 0)
    for row in rows:
        result["requests"] += row.requests
        result["prompt_tokens"] += row.prompt_tokens
        result["completion_tokens"] += row.completion_tokens
    return result
