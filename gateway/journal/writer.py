"""JournalWriter: a bounded in-memory queue drained into Redis in pipelined batches.

`submit` never waits: the request path only appends to a deque. A background task flushes a
batch whenever `batch_size` records are waiting or `flush_interval` has passed; `close` drains
everything before the process exits.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from typing import Any

import orjson
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.store import keys

log = structlog.get_logger("gateway.journal")


class JournalWriter:
    def __init__(
        self,
        redis: Redis,
        *,
        max_records: int,
        batch_size: int = 256,
        flush_interval: float = 0.05,
        retry_delay: float = 0.5,
    ) -> None:
        self.redis = redis
        self.max_records = max_records
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.retry_delay = retry_delay
        self._pending: collections.deque[dict[str, Any]] = collections.deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.written = 0

    def submit(self, record: dict[str, Any]) -> None:
        self._pending.append(record)
        if len(self._pending) >= self.batch_size:
            self._wake.set()

    @property
    def queued(self) -> int:
        return len(self._pending)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="journal-writer")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        while self._pending:
            try:
                await self._flush()
            except (RedisError, OSError) as exc:
                log.error("journal_flush_failed_at_close", error=str(exc), lost=self.queued)
                return

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_interval)
            self._wake.clear()
            try:
                while self._pending:
                    await self._flush()
            except (RedisError, OSError) as exc:
                log.warning("journal_flush_failed", error=str(exc), queued=self.queued)
                await asyncio.sleep(self.retry_delay)

    async def _flush(self) -> None:
        batch = [self._pending[i] for i in range(min(self.batch_size, len(self._pending)))]
        async with self.redis.pipeline(transaction=False) as pipe:
            for record in batch:
                pipe.xadd(
                    keys.JOURNAL_STREAM,
                    {"record": orjson.dumps(record)},
                    maxlen=self.max_records,
                    approximate=True,
                )
            await pipe.execute()
        for _ in batch:
            self._pending.popleft()
        self.written += len(batch)
