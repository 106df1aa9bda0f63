"""JournalWriter: a bounded in-memory queue drained into Redis in pipelined batches.

`submit` never waits: the request path appends a `RecordDraft` to a deque. A background task
finalizes drafts into records (off the request path), feeds them to the metrics, and writes them
with one script call per batch (global stream, account stream and request-id index in one step
per record, idempotent by a write token, so a retried batch never duplicates a record).

No input can stop it (issue 10): every record can be encoded (`encode.py`); a record whose
finalization fails is still written, reduced to what the draft says (`incomplete`); a batch
Redis rejects is split in halves until the one record it refuses is alone, and that record goes
to the dead-letter file (`dead_lettered`) while the others are written. The task is supervised:
a crash is logged, counted (`restarts`) and the loop started again.

While Redis is unreachable (or says it cannot write now: OOM, READONLY, LOADING, ...), records
go to the spill file (`spill.py`, which belongs to one Redis) and are replayed, in order, before
anything newer once Redis answers again; `journal_redis_unavailable` is logged at most once per
`warn_interval`, with a count. `close` (graceful shutdown) writes everything to Redis or leaves
it in the spill file. A record is dropped only when the spill file cannot be written (disk
full); that is logged as an error and counted.
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

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from gateway.journal.encode import clean_text, encode_record, minimal_record
from gateway.journal.entry import Entry, flat_fields
from gateway.journal.record import RecordDraft, finalize, summarize
from gateway.journal.redact import RedactionPolicy
from gateway.journal.spill import DeadLetterFile, SpillDirectory
from gateway.logs import ThrottledLog
from gateway.store import keys
from gateway.store.faults import store_wide

log = structlog.get_logger("gateway.journal")

#: One call writes a whole batch. KEYS: the global stream, then per record its account stream
#: and its request-id index (all in the `{journal}` slot). ARGV: maxlen, minid, index ttl, the
#: number F of entry fields and their F names, then per record its write token and F values.
#: A record whose token the index already holds was written by an earlier try and is skipped,
#: so a batch retried after a lost reply is not duplicated; an index that another record holds
#: (a trusted proxy's repeated id) is never overwritten. Trimming by time runs once per
#: stream per batch. Returns how many records were written.
_WRITE_BATCH_SCRIPT = """
local maxlen, minid, ttl, f = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local names = {}
for j = 1, f do names[j] = ARGV[4 + j] end
local written, touched = 0, {}
for i = 1, (#KEYS - 1) / 2 do
  local stream, index = KEYS[2 * i], KEYS[2 * i + 1]
  local at = 4 + f + (i - 1) * (f + 1)
  local token = ARGV[at + 1]
  local seen = redis.call('GET', index)
  if not (seen and string.sub(seen, 1, #token + 1) == token .. ' ') then
    local fields = {}
    for j = 1, f do
      fields[2 * j - 1] = names[j]
      fields[2 * j] = ARGV[at + 1 + j]
    end
    local id
    if maxlen > 0 then
      id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', unpack(fields))
      redis.call('XADD', stream, 'MAXLEN', '~', maxlen, id, unpack(fields))
    else
      id = redis.call('XADD', KEYS[1], '*', unpack(fields))
      redis.call('XADD', stream, id, unpack(fields))
    end
    if not seen then  -- the first record of an id keeps the index: it is never repointed
      redis.call('SET', index, token .. ' ' .. id, 'EX', ttl)
    end
    touched[stream] = true
    written = written + 1
  end
end
if minid > 0 then
  redis.call('XTRIM', KEYS[1], 'MINID', '~', minid)
  for stream in pairs(touched) do redis.call('XTRIM', stream, 'MINID', '~', minid) end
end
return written
"""

#: The flat fields of a stream entry (docs/journal.md), in the order the script receives them.
_ENTRY_FIELDS = (
    "v",
    "request_id",
    "account",
    "client",
    "status",
    "outcome",
    "latency_ms",
    "prompt_tokens",
    "completion_tokens",
    "record",
)

#: Most record bytes written in one script call.
_BATCH_BYTES = 2 * 1024 * 1024

#: How long the request-id index lives when retention is by count only.
_DEFAULT_INDEX_TTL = 7 * 86400


#: Longest pause of the supervisor between a crash and the restart.
_RESTART_DELAY = 0.1


@dataclasses.dataclass(frozen=True, slots=True)
class JournalOptions:
    policy: RedactionPolicy = dataclasses.field(default_factory=RedactionPolicy)
    capture_limit: int = 1024 * 1024
    max_records: int = 1_000_000
    retention: float = 604800.0
    queue_size: int = 100_000
    queue_bytes: int = 64 * 1024 * 1024
    persist: bool = True
    batch_size: int = 256
    flush_interval: float = 0.05
    retry_delay: float = 0.5
    #: Least seconds between two `journal_redis_unavailable` lines.
    warn_interval: float = 30.0


class JournalWriter:
    def __init__(
        self,
        redis: Redis,
        spill_dir: Path,
        options: JournalOptions | None = None,
        observers: Iterable[Callable[[dict[str, Any]], None]] = (),
        store: str = "",
    ) -> None:
        self.redis = redis
        self.options = options or JournalOptions()
        self.observers = tuple(observers)
        self.spill_dir = spill_dir
        #: The Redis this writer writes to (URL without password): its spill file's owner.
        self.store = store
        self._spill: SpillDirectory | None = None
        self._dead = DeadLetterFile(spill_dir)
        self._pending: collections.deque[RecordDraft] = collections.deque()
        self._pending_bytes = 0
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._script = redis.register_script(_WRITE_BATCH_SCRIPT)
        self._unavailable = ThrottledLog(
            log, "journal_redis_unavailable", self.options.warn_interval
        )
        self._observer_failed = ThrottledLog(log, "journal_observer_failed", 60.0)
        self.written = 0
        self.spilled = 0
        self.replayed = 0
        self.dropped = 0
        self.dead_lettered = 0
        self.restarts = 0

    @property
    def queued(self) -> int:
        return len(self._pending)

    @property
    def alive(self) -> bool:
        """The writer's task runs (it is supervised: only `close` ends it)."""
        return self._task is not None and not self._task.done()

    def counters(self) -> dict[str, int]:
        return {
            "queued": self.queued,
            "written": self.written,
            "spilled": self.spilled,
            "replayed": self.replayed,
            "dropped": self.dropped,
            "dead_lettered": self.dead_lettered,
            "restarts": self.restarts,
            "alive": int(self.alive),
        }

    def _pop(self) -> RecordDraft:
        draft = self._pending.popleft()
        self._pending_bytes -= draft.size
        return draft

    def submit(self, draft: RecordDraft) -> None:
        """Queue a record; never waits. A queue past its count or its bytes (bodies held by the
        drafts) moves its oldest records to the spill file, so memory stays bounded."""
        self._pending.append(draft)
        self._pending_bytes += draft.size
        while len(self._pending) > 1 and (
            len(self._pending) > self.options.queue_size
            or self._pending_bytes > self.options.queue_bytes
        ):
            self._spill_entries([self._prepare(self._pop())])
        if len(self._pending) >= self.options.batch_size:
            self._wake.set()

    def start(self) -> None:
        if self.options.persist:
            self._spill = SpillDirectory(self.spill_dir, self.store)
            if self._spill.pending:
                log.info("journal_spill_found", directory=str(self.spill_dir))
            for path, owner in self._spill.foreign:
                log.warning(
                    "journal_spill_for_other_redis",
                    file=str(path),
                    spilled_for=owner,
                    redis=self.store,
                    reason="left in place, never replayed into another Redis",
                )
        self._task = asyncio.create_task(self._supervise(), name="journal-writer")

    async def close(self) -> None:
        """Graceful shutdown: write everything to Redis, or keep it in the spill file."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        try:
            await self._drain()
        except Exception as exc:  # Redis down, or worse: what is queued goes to disk
            self._spill_queue()
            log.warning("journal_left_in_spill_at_close", error=str(exc), **self.counters())
        finally:
            if self._spill is not None:
                self._spill.close()
            self._dead.close()
        log.info("journal_closed", **self.counters())

    async def _supervise(self) -> None:
        """Run the loop until `close`; a crash is logged, counted, and the loop restarted."""
        while not self._closing:
            try:
                await self._run()
            except Exception:
                self.restarts += 1
                log.exception("journal_writer_crashed", **self.counters())
                with contextlib.suppress(Exception):
                    self._spill_queue()
                await asyncio.sleep(_RESTART_DELAY)

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
                if not store_wide(exc):
                    raise
                self._spill_queue()
                self._unavailable.warn(error=clean_text(str(exc))[:300], **self.counters())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake_on_close(), self.options.retry_delay)
            else:
                self._unavailable.recovered("journal_redis_available", **self.counters())

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
                entries = []
                for line in lines:
                    entry = Entry.from_spill_line(line)
                    if entry is None:
                        self._dead_letter(None, "the spill line is not a journal record", line)
                    else:
                        entries.append(entry)
                await self._commit(entries)
                source.advance(offset)
                self.replayed += len(entries)
                if not self._spill.pending:
                    log.info("journal_spill_replayed", **self.counters())
        while self._pending:
            entries = self._next_batch()
            if not self.options.persist:
                continue
            try:
                self.written += await self._commit(entries)
            except BaseException:
                self._spill_entries(entries)
                raise

    async def _commit(self, entries: list[Entry]) -> int:
        """Write a batch; when Redis rejects it (not store-wide), split it in halves so that one
        record it refuses cannot take the others down, and dead-letter a refused record. Returns
        the records written; raises on store-wide failures."""
        if not entries:
            return 0
        try:
            await self._write(entries)
        except ResponseError as exc:
            if store_wide(exc):
                raise
            if len(entries) == 1:
                self._dead_letter(entries[0], str(exc))
                return 0
            middle = len(entries) // 2
            return await self._commit(entries[:middle]) + await self._commit(entries[middle:])
        return len(entries)

    def _next_batch(self) -> list[Entry]:
        """Up to `batch_size` records, and no more than `_BATCH_BYTES` of them (one script call
        holds Redis for its whole batch, so large bodies make smaller batches)."""
        entries: list[Entry] = []
        size = 0
        while self._pending and len(entries) < self.options.batch_size and size < _BATCH_BYTES:
            entry = self._prepare(self._pop())
            entries.append(entry)
            size += len(entry.payload)
        return entries

    def _prepare(self, draft: RecordDraft) -> Entry:
        """The draft as an entry; never raises, whatever the request carried."""
        options = self.options
        try:
            if options.persist:
                record = finalize(draft, options.policy, options.capture_limit)
            else:  # nobody reads the bodies: give the observers what they need, cheaply
                record = summarize(draft)
        except Exception:
            log.exception("journal_record_incomplete", request_id=clean_text(draft.request_id))
            record = minimal_record(draft)
        raw = {"request": draft.request_body, "response": draft.response_body}
        record, payload = encode_record(record, raw, options.policy.text_body)
        for observe in self.observers:
            try:
                observe(record)
            except Exception as exc:
                self._observer_failed.warn(error=repr(exc)[:300])
        return Entry(os.urandom(8).hex(), record, payload if options.persist else b"")

    async def _write(self, entries: list[Entry]) -> None:
        options = self.options
        minid = int((time.time() - options.retention) * 1000) if options.retention > 0 else 0
        ttl = int(options.retention) if options.retention > 0 else _DEFAULT_INDEX_TTL
        script_keys: list[str] = [keys.JOURNAL_STREAM]
        args: list[str | bytes | int] = [options.max_records, minid, ttl, len(_ENTRY_FIELDS)]
        args.extend(_ENTRY_FIELDS)
        for entry in entries:
            record = entry.record
            script_keys.append(keys.journal_account_stream(record["account"]))
            script_keys.append(keys.journal_request_index(record["request_id"]))
            args += (entry.token, *flat_fields(record), entry.payload)
        await self._script(keys=script_keys, args=args)

    def _spill_queue(self) -> None:
        """Move every queued record to the spill file, oldest first."""
        if not self._pending:
            return
        if not self.options.persist:
            while self._pending:
                self._prepare(self._pop())
            return
        entries = [self._prepare(draft) for draft in self._pending]
        self._pending.clear()
        self._pending_bytes = 0
        self._spill_entries(entries)

    def _spill_entries(self, entries: list[Entry]) -> None:
        if self._spill is None:
            return
        try:
            self._spill.own.append([entry.spill_line() for entry in entries])
        except OSError as exc:
            self._lost(len(entries), exc)
            return
        self.spilled += len(entries)

    def _dead_letter(self, entry: Entry | None, why: str, line: bytes = b"") -> None:
        """Keep what Redis refused (or a damaged spill line) in the dead-letter file."""
        why = clean_text(why)[:500]
        try:
            if entry is not None:
                self._dead.keep(entry.token, why, entry.payload)
            else:
                self._dead.keep_line(line, why)
        except OSError as exc:
            self._lost(1, exc)
            return
        self.dead_lettered += 1
        log.error(
            "journal_record_dead_lettered",
            request_id=entry.record.get("request_id") if entry is not None else None,
            reason=why,
            file=str(self._dead.path),
            **self.counters(),
        )

    def _lost(self, lost: int, exc: OSError) -> None:
        self.dropped += lost
        log.error(
            "journal_records_dropped",
            reason="the spill file cannot be written (disk full?)",
            error=str(exc),
            lost=lost,
            **self.counters(),
        )
