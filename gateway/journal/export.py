"""`gateway journal export`: the journal to another system, with Redis consumer groups.

Delivery is at least once. Each shard stream (and the first layout's stream, when it exists)
has the group; a consumer reads entries (XREADGROUP), writes them out and flushes, and only then
acknowledges them (XACK). A consumer killed between the two leaves its entries pending: the same
consumer name takes its own pending entries back as it starts, and any other consumer of the
group claims entries idle longer than `claim_after` (XAUTOCLAIM). So a line can be written
twice (after a crash) but never skipped; downstream, dedupe on `request_id` + `time`.

A new group starts at the oldest retained record (`start="0"`), or at the end (`start="$"`,
`--from now`); an existing group resumes where it was. Without `follow`, `run` returns once a
round finds nothing new to read or to claim.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

Entry = tuple[tuple[int, int], str, bytes, bytes]  # (id as numbers), stream, entry id, record


@dataclasses.dataclass(frozen=True, slots=True)
class ExportOptions:
    group: str
    consumer: str
    claim_after_ms: int = 60_000
    start: str = "0"
    follow: bool = False
    count: int = 100
    poll: float = 0.25


def _entries(stream: str, raw: Any) -> list[Entry]:
    out: list[Entry] = []
    for item in raw or ():
        if not item or item[1] is None:  # an entry trimmed away while it was pending
            continue
        entry_id, fields = item
        ms, _, seq = entry_id.partition(b"-")
        out.append(((int(ms), int(seq)), stream, entry_id, fields[b"record"]))
    return out


class JournalExporter:
    def __init__(self, redis: Redis, streams: Sequence[str], options: ExportOptions) -> None:
        self.redis = redis
        self.options = options
        self.candidates = list(streams)
        self.streams: list[str] = []
        self.exported = 0

    async def prepare(self, optional: Sequence[str] = ()) -> None:
        """Create the group on every stream (`optional` ones only when they exist)."""
        for stream in self.candidates:
            keep = stream not in optional
            try:
                await self.redis.xgroup_create(
                    stream, self.options.group, id=self.options.start, mkstream=keep
                )
                keep = True
            except ResponseError as exc:
                if "BUSYGROUP" in str(exc):
                    keep = True
                elif stream not in optional:
                    raise
            if keep:
                self.streams.append(stream)

    async def _own_pending(self, stream: str) -> list[Entry]:
        """Entries this consumer read before and never acknowledged (it crashed)."""
        reply: Any = await self.redis.xreadgroup(
            self.options.group, self.options.consumer, {stream: "0"}, count=self.options.count
        )
        return [e for _name, raw in reply or () for e in _entries(stream, raw)]

    async def _claimed(self, stream: str) -> list[Entry]:
        reply: Any = await self.redis.xautoclaim(
            stream,
            self.options.group,
            self.options.consumer,
            self.options.claim_after_ms,
            start_id="0-0",
            count=self.options.count,
        )
        return _entries(stream, reply[1] if reply else ())

    async def _new(self, stream: str) -> list[Entry]:
        reply: Any = await self.redis.xreadgroup(
            self.options.group, self.options.consumer, {stream: ">"}, count=self.options.count
        )
        return [e for _name, raw in reply or () for e in _entries(stream, raw)]

    async def _round(self, read: Callable[[str], Any], write: Callable[[list[bytes]], None]) -> int:
        batches = await asyncio.gather(*(read(stream) for stream in self.streams))
        entries = sorted((e for batch in batches for e in batch), key=lambda e: e[0])
        if not entries:
            return 0
        write([record for _at, _stream, _id, record in entries])  # written and flushed...
        acks: dict[str, list[bytes]] = {}
        for _at, stream, entry_id, _record in entries:
            acks.setdefault(stream, []).append(entry_id)
        await asyncio.gather(  # ...before they are acknowledged
            *(self.redis.xack(stream, self.options.group, *ids) for stream, ids in acks.items())
        )
        self.exported += len(entries)
        return len(entries)

    async def run(self, write: Callable[[list[bytes]], None]) -> int:
        """Export until caught up (or forever with `follow`); returns how many were written."""
        while await self._round(self._own_pending, write):
            pass
        while True:
            claimed = await self._round(self._claimed, write)
            fresh = await self._round(self._new, write)
            if claimed or fresh:
                continue
            if not self.options.follow:
                return self.exported
            await asyncio.sleep(self.options.poll)
