"""Where journal records live in Redis: the sharded global stream and the account streams.

A Redis Cluster puts one key on one node, so a single global stream would make one master take
every journal write. The global stream is therefore `shards` streams, each with its own hash
tag: a record goes to the shard its request id hashes to (CRC32, so every process and every
reader agree), with its request-id index beside it in the same slot, so `show` reads one slot.
Each account's stream sits on the account's own tag, with an account-scoped index.

A record is written twice, by one script per slot: shard stream + index, account stream + its
index. Each script skips a record whose write token its index already holds, so a batch retried
after a lost reply (or replayed from the spill) never duplicates a record in either stream.

Entry ids are proposed by the writer (its clock in ms, then a sequence), strictly increasing in
the order it writes, so merging shards by entry id gives the order records were written in; a
record retried after a half-written batch proposes its first id again. Across gateways, the
order is their clocks' (to the millisecond); a stream already past a proposed id (another
gateway's clock runs ahead) gives the record its next id instead.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from gateway.store import keys

#: One call writes the records of a batch that share a slot. KEYS: the stream, then one index
#: key per record. ARGV: maxlen, minid, index ttl, the number F of entry fields and their F
#: names, then per record its write token, its proposed entry id and F values. A record whose
#: token its index already holds was written by an earlier try and is skipped; an index that
#: another record holds (a trusted proxy's repeated id) is never repointed. The proposed id
#: (the batch's time and the record's place in it) keeps a batch's order across shards; a
#: stream already past it gets the next id instead. Trimming by time runs once per call.
#: Returns how many records were written.
WRITE_SCRIPT = """
local maxlen, minid, ttl, f = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local names = {}
for j = 1, f do names[j] = ARGV[4 + j] end
local function add(id, fields)
  if maxlen > 0 then
    return redis.pcall('XADD', KEYS[1], 'MAXLEN', '~', maxlen, id, unpack(fields))
  end
  return redis.pcall('XADD', KEYS[1], id, unpack(fields))
end
local written = 0
for i = 1, #KEYS - 1 do
  local index = KEYS[1 + i]
  local at = 4 + f + (i - 1) * (f + 2)
  local token = ARGV[at + 1]
  local seen = redis.call('GET', index)
  if not (seen and string.sub(seen, 1, #token + 1) == token .. ' ') then
    local fields = {}
    for j = 1, f do
      fields[2 * j - 1] = names[j]
      fields[2 * j] = ARGV[at + 2 + j]
    end
    local id = add(ARGV[at + 2], fields)
    if type(id) == 'table' then id = add('*', fields) end
    if type(id) == 'table' then return redis.error_reply(id.err) end
    if not seen then  -- the first record of an id keeps the index: it is never repointed
      redis.call('SET', index, token .. ' ' .. id, 'EX', ttl)
    end
    written = written + 1
  end
end
if minid > 0 and written > 0 then redis.call('XTRIM', KEYS[1], 'MINID', '~', minid) end
return written
"""

#: One round trip for a lookup by id. KEYS: an index, its stream (one slot). Returns the
#: entry's fields as a flat array, or nil.
READ_SCRIPT = """
local pointer = redis.call('GET', KEYS[1])
if not pointer then return nil end
local id = string.sub(pointer, string.find(pointer, ' ', 1, true) + 1)
local entries = redis.call('XRANGE', KEYS[2], id, id, 'COUNT', 1)
if #entries == 0 then return nil end
return entries[1][2]
"""


#: Most proposed ids kept for retries (a long outage spills far more records than this).
_MAX_REMEMBERED = 100_000


def shard_of(request_id: str, shards: int) -> int:
    return zlib.crc32(request_id.encode()) % shards


def shard_streams(shards: int) -> list[str]:
    return [keys.journal_shard_stream(n) for n in range(shards)]


def global_streams(shards: int) -> list[str]:
    """Every stream a global reader merges: the shards, then the first layout's stream."""
    return [*shard_streams(shards), keys.LEGACY_JOURNAL_STREAM]


def account_streams(account: str | None) -> list[str]:
    return [keys.journal_account_stream(account), keys.legacy_journal_account_stream(account)]


class SlotWrite:
    """The records of one batch bound for one stream: its index keys and its arguments."""

    __slots__ = ("args", "keys", "maxlen")

    def __init__(self, stream: str, maxlen: int) -> None:
        self.keys: list[str] = [stream]
        self.maxlen = maxlen
        self.args: list[str | bytes | int] = []

    def add(self, index: str, token: str, entry_id: str, values: Sequence[str | bytes]) -> None:
        self.keys.append(index)
        self.args.append(token)
        self.args.append(entry_id)
        self.args.extend(values)


class ShardedLayout:
    """Splits a batch into one script call per slot and runs them concurrently."""

    def __init__(self, redis: Redis, shards: int) -> None:
        self.shards = shards
        self._script: AsyncScript = redis.register_script(WRITE_SCRIPT)
        self._last = (0, -1)
        #: Ids proposed for records of a batch that failed: its retry (or the spill's replay)
        #: proposes the same ones, so records a half-written batch left out keep their places.
        self._proposed: dict[str, str] = {}

    def _next_id(self) -> str:
        now_ms = int(time.time() * 1000)
        ms, seq = self._last
        self._last = (now_ms, 0) if now_ms > ms else (ms, seq + 1)
        return f"{self._last[0]}-{self._last[1]}"

    def max_per_shard(self, max_records: int) -> int:
        """`journal_max_records` caps the whole global stream, so each shard keeps its share."""
        return -(-max_records // self.shards) if max_records > 0 else 0

    async def write(
        self,
        records: Sequence[tuple[str, str | None, str, Sequence[str | bytes]]],
        *,
        fields: Sequence[str],
        max_records: int,
        minid: int,
        ttl: int,
    ) -> None:
        """Write `(request id, account, token, field values)` tuples; raises the first error."""
        calls: dict[str, SlotWrite] = {}
        per_shard = self.max_per_shard(max_records)
        proposed = self._proposed
        if len(proposed) > _MAX_REMEMBERED:
            proposed.clear()
        for request_id, account, token, values in records:
            entry_id = proposed.get(token) or self._next_id()
            proposed[token] = entry_id
            shard = shard_of(request_id, self.shards)
            stream = keys.journal_shard_stream(shard)
            write = calls.get(stream) or calls.setdefault(stream, SlotWrite(stream, per_shard))
            write.add(keys.journal_shard_index(shard, request_id), token, entry_id, values)
            stream = keys.journal_account_stream(account)
            write = calls.get(stream) or calls.setdefault(stream, SlotWrite(stream, max_records))
            write.add(keys.journal_account_index(account, request_id), token, entry_id, values)
        results = await asyncio.gather(
            *(
                self._script(
                    keys=call.keys,
                    args=[call.maxlen, minid, ttl, len(fields), *fields, *call.args],
                )
                for call in calls.values()
            ),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        for _request_id, _account, token, _values in records:
            del proposed[token]


async def read_by_id(script: AsyncScript, request_id: str, shards: int) -> Any:
    """The flat fields of the latest entry for a request id (new layout, then the first), with
    `script` the registered `READ_SCRIPT`."""
    shard = shard_of(request_id, shards)
    found = await script(
        keys=[keys.journal_shard_index(shard, request_id), keys.journal_shard_stream(shard)]
    )
    if found is None:
        legacy = [keys.legacy_journal_request_index(request_id), keys.LEGACY_JOURNAL_STREAM]
        found = await script(keys=legacy)
    return found
