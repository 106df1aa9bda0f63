"""Reading the journal: pages of records with filters, one record by request id, following.

An account filter reads that account's stream, never the global one, so one tenant's records
cost the same however busy the others are. Client, status and outcome filters are checked on the
entry's flat fields, without parsing the record JSON. Several streams are merged newest first by
entry id (`shards.py`); a cursor is the position of a page's last entry, `<ms>-<seq>-<stream>`.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import heapq
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from redis.asyncio import Redis

from gateway.errors import FilterError
from gateway.journal.shards import READ_SCRIPT, account_streams, global_streams, read_by_id

_STATUS = re.compile(r"^([1-5])xx$|^([1-5]\d\d)$")
_ENTRY_ID = re.compile(r"^\d{1,20}-\d{1,20}(-\d{1,4})?$")


def check_status(value: str) -> str:
    if not _STATUS.match(value.lower()):
        raise FilterError(f"status {value!r} must be a code like 404 or a class like 4xx or 5xx")
    return value.lower()


def check_cursor(value: str) -> str:
    if not _ENTRY_ID.match(value):
        raise FilterError(
            f"cursor {value!r} is not a journal cursor like 1700000000000-0 or 1700000000000-0-3"
        )
    return value


@dataclasses.dataclass(frozen=True, slots=True)
class JournalFilter:
    account: str | None = None
    client: str | None = None
    status: str | None = None
    outcome: str | None = None

    def matches(self, fields: dict[str, str]) -> bool:
        if self.account is not None and fields.get("account") != self.account:
            return False
        if self.client is not None and fields.get("client") != self.client:
            return False
        if self.outcome is not None and fields.get("outcome") != self.outcome:
            return False
        if self.status is not None:
            status = fields.get("status", "")
            if self.status.endswith("xx"):
                return status[:1] == self.status[0]
            return status == self.status
        return True


def decode_fields(raw: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in raw.items() if k != b"record"}


def record_of(raw: dict[bytes, bytes]) -> dict[str, Any]:
    record: dict[str, Any] = orjson.loads(raw[b"record"])
    return record


#: A stream's place in a merge: the entry id as numbers, then the stream's position in the
#: reader's list. Newest first is this tuple descending.
Position = tuple[int, int, int]


def parse_position(cursor: str) -> Position:
    """`<ms>-<seq>` (before that id in every stream) or `<ms>-<seq>-<stream>` (a page's end)."""
    parts = [int(part) for part in check_cursor(cursor).split("-")]
    return parts[0], parts[1], parts[2] if len(parts) == 3 else 0


def _position(entry_id: bytes, stream: int) -> Position:
    ms, _, seq = entry_id.partition(b"-")
    return int(ms), int(seq), stream


class _Source:
    """One stream read newest first, a chunk at a time."""

    __slots__ = ("buffer", "done", "index", "lower", "name", "upper")

    def __init__(self, name: str, index: int, upper: str, lower: str) -> None:
        self.name = name
        self.index = index
        self.upper = upper
        self.lower = lower
        self.buffer: collections.deque[tuple[Position, bytes, dict[bytes, bytes]]]
        self.buffer = collections.deque()
        self.done = False

    async def fill(self, redis: Redis, count: int) -> None:
        entries: Any = await redis.xrevrange(self.name, self.upper, self.lower, count=count)
        if len(entries) < count:
            self.done = True
        for entry_id, raw in entries:
            self.buffer.append((_position(entry_id, self.index), entry_id, raw))
        if entries:
            self.upper = "(" + entries[-1][0].decode()


class JournalReader:
    """Reads merge the streams of a filter (the global stream's shards, or an account's stream,
    each with the first layout's stream after it) newest first, by entry id."""

    def __init__(
        self, redis: Redis, *, shards: int = 8, page_scan: int = 500, max_scan: int = 20_000
    ) -> None:
        self.redis = redis
        self.shards = shards
        self.page_scan = page_scan
        self.max_scan = max_scan
        self._read_script = redis.register_script(READ_SCRIPT)

    def streams(self, flt: JournalFilter) -> list[str]:
        if flt.account is not None:
            return account_streams(flt.account)
        return global_streams(self.shards)

    async def _newest_first(
        self, flt: JournalFilter, *, before: Position | None = None, since_ms: int | None = None
    ) -> AsyncIterator[tuple[Position, dict[bytes, bytes]]]:
        """Every entry of the filter's streams older than `before`, newer than `since_ms`."""
        lower = "-" if since_ms is None else str(since_ms)
        sources = []
        for index, name in enumerate(self.streams(flt)):
            upper = "+"
            if before is not None:
                bound = f"{before[0]}-{before[1]}"
                upper = bound if index < before[2] else "(" + bound
            sources.append(_Source(name, index, upper, lower))
        chunk = max(16, self.page_scan // len(sources))
        # One read first: a cluster client learns its slot map on its first command, and
        # concurrent first commands race in redis-py while it does.
        await sources[0].fill(self.redis, chunk)
        await asyncio.gather(*(source.fill(self.redis, chunk) for source in sources[1:]))
        heap = [(_desc(s.buffer[0][0]), s.index) for s in sources if s.buffer]
        heapq.heapify(heap)
        while heap:
            _key, index = heapq.heappop(heap)
            source = sources[index]
            position, _entry_id, raw = source.buffer.popleft()
            yield position, raw
            if not source.buffer and not source.done:
                await source.fill(self.redis, self.page_scan)
            if source.buffer:
                heapq.heappush(heap, (_desc(source.buffer[0][0]), index))

    async def page(
        self, flt: JournalFilter, *, limit: int = 50, before: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Newest first: up to `limit` matching records older than the cursor `before`, and the
        cursor for the next page (None at the end). Scans at most `max_scan` entries per call."""
        found: list[dict[str, Any]] = []
        scanned = 0
        cursor: str | None = None
        start = parse_position(before) if before else None
        async for position, raw in self._newest_first(flt, before=start):
            scanned += 1
            cursor = "-".join(map(str, position))
            if flt.matches(decode_fields(raw)):
                found.append(record_of(raw))
            if len(found) == limit or scanned >= self.max_scan:
                return found, cursor
        return found, None

    async def get(self, request_id: str) -> dict[str, Any] | None:
        """The first record of a request id: one script call in its shard's slot (then one in
        the first layout's, for records written before the shards)."""
        found: Any = await read_by_id(self._read_script, request_id, self.shards)
        if not found:
            return None
        raw = dict(zip(found[::2], found[1::2], strict=True))
        return record_of(raw)

    async def window(
        self, flt: JournalFilter, since_ms: int
    ) -> tuple[list[tuple[int, dict[str, str]]], bool]:
        """Flat fields (with the entry's ms timestamp) of matching entries newer than
        `since_ms`, newest first; True when `max_scan` cut the window short."""
        out: list[tuple[int, dict[str, str]]] = []
        scanned = 0
        async for position, raw in self._newest_first(flt, since_ms=since_ms):
            if scanned == self.max_scan:
                return out, True
            scanned += 1
            fields = decode_fields(raw)
            if flt.matches(fields):
                out.append((position[0], fields))
        return out, False

    async def positions(self, flt: JournalFilter) -> dict[str, str]:
        """The newest entry id of each of the filter's streams ("0-0" when empty)."""
        names = self.streams(flt)
        first: Any = await self.redis.xrevrange(names[0], "+", "-", count=1)
        lasts: list[Any] = [first]
        lasts += await asyncio.gather(
            *(self.redis.xrevrange(name, "+", "-", count=1) for name in names[1:])
        )
        pairs = zip(names, lasts, strict=True)
        return {name: last[0][0].decode() if last else "0-0" for name, last in pairs}

    async def follow(
        self,
        flt: JournalFilter,
        after: dict[str, str] | None = None,
        poll: float = 0.25,
        settle_ms: int = 500,
    ) -> AsyncIterator[dict[str, Any]]:
        """Matching records newer than `after` (default: now) as they arrive, forever, in id
        order. Each stream is read on its own (a cluster serves one slot per command); a batch
        lands on several shards a moment apart, so a record is held until its id is
        `settle_ms` old, by when the rest of its batch is readable too."""
        last = dict(after) if after is not None else await self.positions(flt)
        held: list[tuple[Position, int, dict[bytes, bytes]]] = []
        arrived = 0
        while True:
            replies: list[Any] = await asyncio.gather(
                *(self.redis.xread({name: at}, count=100) for name, at in last.items())
            )
            for index, (name, reply) in enumerate(zip(list(last), replies, strict=True)):
                for _stream, entries in reply or ():
                    for entry_id, raw in entries:
                        last[name] = entry_id.decode()
                        arrived += 1
                        heapq.heappush(held, (_position(entry_id, index), arrived, raw))
            ripe = int(time.time() * 1000) - settle_ms
            while held and held[0][0][0] <= ripe:
                _at, _n, raw = heapq.heappop(held)
                if flt.matches(decode_fields(raw)):
                    yield record_of(raw)
            await asyncio.sleep(poll)


def _desc(position: Position) -> Position:
    return -position[0], -position[1], -position[2]
