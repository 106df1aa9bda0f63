"""JournalWriter: a bounded in-memory queue drained into Redis in pipelined batches.

`submit` never waits: the request path appends a `RecordDraft` to a deque. A background task
finalizes drafts into records (off the request path), feeds them to the metrics, and writes them
with one pipelined script call per record (global stream, account stream and request-id index in
one atomic step, idempotent by a write token, so a retried batch never duplicates a record).

While Redis fails, records go to the spill file (`spill.py`) and are replayed, in order, before
anything newer once Redis answers again. `close` (graceful shutdown) drains the queue and the
spill into Redis, and leaves on disk only what Redis still would not take. A record is dropped
only when the spill file cannot be written (disk full); that is logged as an error and counted.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
import structlog
from redis.asyncio import Redis, RedisCluster
from redis.exceptions import RedisError

from gateway.journal.record import RecordDraft, finalize, summarize
from gateway.journal.redact import RedactionPolicy
from gateway.store import keys

log = structlog.get_logger("gateway.journal")

#: KEYS: global stream, account stream, request index. ARGV: token, maxlen, minid, index ttl,
#: then the entry's field/value pairs. Returns the new entry id, or 0 when this token is there.
_WRITE_SCRIPT = """
local seen = redis.call('GET', KEYS[3])
if seen and string.sub(seen, 1, #ARGV[1] + 1) == ARGV[1] .. ' ' then return 0 end
local fields = {}
for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
local id
if tonumber(ARGV[2]) > 0 then
  id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', unpack(fields))
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], id, unpack(fields))
else
  id = redis.call('XADD', KEYS[1], '*', unpack(fields))
  redis.call('XADD', KEYS[2], id, unpack(fields))
end
if tonumber(ARGV[3]) > 0 then
  redis.call('XTRIM', KEYS[1], 'MINID', '~', ARGV[3])
  redis.call('XTRIM', KEYS[2], 'MINID', '~', ARGV[3])
end
redis.call('SET', KEYS[3], ARGV[1] .. ' ' .. id, 'EX', ARGV[4])
return id
"""

#: How long the request-id index lives when retention is by count only.
_DEFAULT_INDEX_TTL = 7 * 86400


@dataclasses.dataclass(frozen=True, slots=True)
class JournalOptions:
    policy: RedactionPolicy = dataclasses.field(default_factory=RedactionPolicy)
    capture_limit: int = 1024 * 1024
    max_records: int = 1_000_000
    retention: float = 604800.0
    queue_size: int = 100_000
    persist: bool = True
    batch_size: int = 256
    flush_interval: float = 0.05
    retry_delay: float = 0.5


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    """A finalized record ready for Redis: its write token and its JSON."""

    token: str
    record: dict[str, Any]
    payload: bytes

    def spill_line(self) -> bytes:
        return b'{"t":"' + self.token.encode() + b'","r":' + self.payload + b"}\n"

    @classmethod
    def from_spill_line(cls, line: bytes) -> Entry:
        data = orjson.loads(line)
        return cls(data["t"], data["r"], orjson.dumps(data["r"]))


class JournalWriter:
    def __init__(
        self,
        redis: Redis,
        spill_dir: Path,
        options: JournalOptions | None = None,
        observers: Iterable[Callable[[dict[str, Any]], None]] = (),
    ) -> None:
        self.redis = redis
        self.options = options or JournalOptions()
        self.observers = tuple(observers)
        self.spill_dir = spill_dir
        self._spill: Any = None  # SpillDirectory, opened in start()
        self._pending: collections.deque[RecordDraft] = collections.deque()
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._script = redis.register_script(_WRITE_SCRIPT)
        self.written = 0
        self.spilled = 0
        self.replayed = 0
        self.dropped = 0

    @property
    def queued(self) -> int:
        return len(self._pending)

    def counters(self) -> dict[str, int]:
        return {
            "queued": self.queued,
            "written": self.written,
            "spilled": self.spilled,
            "replayed": self.replayed,
            "dropped": self.dropped,
        }

    def submit(self, draft: RecordDraft) -> None:
        """Queue a record; never waits. A full queue moves its oldest record to the spill file."""
        self._pending.append(draft)
        if len(self._pending) > self.options.queue_size:
            self._spill_entries([self._prepare(self._pending.popleft())])
        if len(self._pending) >= self.options.batch_size:
            self._wake.set()

    def start(self) -> None:
        from gateway.journal.spill import SpillDirectory

        if self.options.persist:
            self._spill = SpillDirectory(self.spill_dir)
            if self._spill.pending:
                log.info("journal_spill_found", directory=str(self.spill_dir))
        self._task = asyncio.create_task(self._run(), name="journal-writer")

    async def close(self) -> None:
        """Graceful shutdown: write everything to Redis, or keep it in the spill file."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        try:
            await self._drain()
        except (RedisError, OSError) as exc:
            self._spill_queue()
            log.warning("journal_left_in_spill_at_close", error=str(exc), **self.counters())
        if self._spill is not None:
            self._spill.close()
        log.info("journal_closed", **self.counters())

    async def _run(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.options.flush_interval)
            self._wake.clear()
            if self._closing:
                return
            try:
                await self._drain()
            except (RedisError, OSError) as exc:
                self._spill_queue()
                log.warning("journal_redis_unavailable", error=str(exc), **self.counters())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake_on_close(), self.options.retry_delay)
            except Exception:
                log.exception("journal_writer_failed", **self.counters())
                self._spill_queue()

    async def _wake_on_close(self) -> None:
        while not self._closing:
            self._wake.clear()
            await self._wake.wait()

    async def _drain(self) -> None:
        """Replay the spill, then write the queue; raises when Redis fails."""
        if self._spill is not None:
            while (source := self._spill.next_pending()) is not None:
                lines, offset = source.read(self.options.batch_size)
                if not lines:  # only a line cut by a crash is left
                    source.reset()
                    continue
                entries = [Entry.from_spill_line(line) for line in lines]
                await self._write(entries)
                source.advance(offset)
                self.replayed += len(entries)
                if not self._spill.pending:
                    log.info("journal_spill_replayed", **self.counters())
        while self._pending:
            count = min(self.options.batch_size, len(self._pending))
            entries = [self._prepare(self._pending.popleft()) for _ in range(count)]
            if not self.options.persist:
                continue
            try:
                await self._write(entries)
            except BaseException:
                self._spill_entries(entries)
                raise
            self.written += len(entries)

    def _prepare(self, draft: RecordDraft) -> Entry:
        if self.options.persist:
            record = finalize(draft, self.options.policy, self.options.capture_limit)
        else:  # nobody reads the bodies: give the observers what they need, cheaply
            record = summarize(draft)
        for observe in self.observers:
            observe(record)
        payload = orjson.dumps(record) if self.options.persist else b""
        return Entry(os.urandom(8).hex(), record, payload)

    async def _write(self, entries: list[Entry]) -> None:
        options = self.options
        minid = int((time.time() - options.retention) * 1000) if options.retention > 0 else 0
        ttl = int(options.retention) if options.retention > 0 else _DEFAULT_INDEX_TTL
        cluster = isinstance(self.redis, RedisCluster)
        async with self.redis.pipeline(transaction=False) as pipe:
            for entry in entries:
                record = entry.record
                usage = record["usage"] or {}
                fields = (
                    "v", str(record["v"]),
                    "request_id", record["request_id"],
                    "account", record["account"] or "",
                    "client", record["client"] or "",
                    "status", str(record["status"]),
                    "outcome", record["outcome"],
                    "latency_ms", str(record["latency_ms"]["total"]),
                    "prompt_tokens", str(usage.get("prompt_tokens", "")),
                    "completion_tokens", str(usage.get("completion_tokens", "")),
                    "record", entry.payload,
                )  # fmt: skip
                await self._script(
                    keys=[
                        keys.JOURNAL_STREAM,
                        keys.journal_account_stream(record["account"]),
                        keys.journal_request_index(record["request_id"]),
                    ],
                    args=[entry.token, options.max_records, minid, ttl, *fields],
                    # redis-py refuses scripts in a cluster pipeline: one call each there.
                    client=None if cluster else pipe,
                )
            if not cluster:
                await pipe.execute()

    def _spill_queue(self) -> None:
        """Move every queued record to the spill file, oldest first."""
        if not self._pending:
            return
        if not self.options.persist:
            while self._pending:
                self._prepare(self._pending.popleft())
            return
        entries = [self._prepare(draft) for draft in self._pending]
        self._pending.clear()
        self._spill_entries(entries)

    def _spill_entries(self, entries: list[Entry]) -> None:
        if self._spill is None:
            return
        try:
            self._spill.own.append([entry.spill_line() for entry in entries])
        except OSError as exc:
            self.dropped += len(entries)
            log.error(
                "journal_records_dropped",
                reason="the spill file cannot be written (disk full?)",
                error=str(exc),
                lost=len(entries),
                **self.counters(),
            )
            return
        self.spilled += len(entries)
