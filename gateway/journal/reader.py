"""Reading the journal: pages of records with filters, one record by request id, following.

An account filter reads that account's stream, never the global one, so one tenant's records
cost the same however busy the others are. Client, status and outcome filters are checked on the
entry's flat fields, without parsing the record JSON. A cursor is a stream entry id.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator
from typing import Any

import orjson
from redis.asyncio import Redis

from gateway.errors import FilterError
from gateway.store import keys

_STATUS = re.compile(r"^([1-5])xx$|^([1-5]\d\d)$")
_ENTRY_ID = re.compile(r"^\d+-\d+$")


def check_status(value: str) -> str:
    if not _STATUS.match(value.lower()):
        raise FilterError(f"status {value!r} must be a code like 404 or a class like 4xx or 5xx")
    return value.lower()


def check_cursor(value: str) -> str:
    if not _ENTRY_ID.match(value):
        raise FilterError(f"cursor {value!r} is not a journal entry id like 1700000000000-0")
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

    @property
    def stream(self) -> str:
        if self.account is not None:
            return keys.journal_account_stream(self.account)
        return keys.JOURNAL_STREAM


def decode_fields(raw: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in raw.items() if k != b"record"}


def record_of(raw: dict[bytes, bytes]) -> dict[str, Any]:
    record: dict[str, Any] = orjson.loads(raw[b"record"])
    return record


class JournalReader:
    def __init__(self, redis: Redis, *, page_scan: int = 500, max_scan: int = 20_000) -> None:
        self.redis = redis
        self.page_scan = page_scan
        self.max_scan = max_scan

    async def page(
        self, flt: JournalFilter, *, limit: int = 50, before: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Newest first: up to `limit` matching records older than `before`, and the cursor
        for the next page (None at the end). Scans at most `max_scan` entries per call."""
        found: list[dict[str, Any]] = []
        upper = f"({before}" if before else "+"
        scanned = 0
        cursor: str | None = None
        while len(found) < limit and scanned < self.max_scan:
            entries: Any = await self.redis.xrevrange(flt.stream, upper, "-", count=self.page_scan)
            if not entries:
                return found, None
            for entry_id, raw in entries:
                scanned += 1
                cursor = entry_id.decode()
                if flt.matches(decode_fields(raw)):
                    found.append(record_of(raw))
                    if len(found) == limit:
                        break
            upper = f"({cursor}"
        return found, cursor

    async def get(self, request_id: str) -> dict[str, Any] | None:
        """The latest record of a request id, through its index (no scan)."""
        pointer: Any = await self.redis.get(keys.journal_request_index(request_id))
        if pointer is None:
            return None
        entry_id = pointer.decode().partition(" ")[2]
        entries: Any = await self.redis.xrange(keys.JOURNAL_STREAM, entry_id, entry_id, count=1)
        return record_of(entries[0][1]) if entries else None

    async def window(
        self, flt: JournalFilter, since_ms: int
    ) -> tuple[list[tuple[int, dict[str, str]]], bool]:
        """Flat fields (with the entry's ms timestamp) of matching entries newer than
        `since_ms`, newest first; True when `max_scan` cut the window short."""
        out: list[tuple[int, dict[str, str]]] = []
        upper = "+"
        scanned = 0
        while scanned < self.max_scan:
            entries: Any = await self.redis.xrevrange(
                flt.stream, upper, str(since_ms), count=self.page_scan
            )
            if not entries:
                return out, False
            for entry_id, raw in entries:
                scanned += 1
                fields = decode_fields(raw)
                if flt.matches(fields):
                    out.append((int(entry_id.split(b"-")[0]), fields))
            upper = "(" + entries[-1][0].decode()
        return out, True

    async def follow(
        self, flt: JournalFilter, after: str = "$", block_ms: int = 1000
    ) -> AsyncIterator[dict[str, Any]]:
        """New matching records as they arrive (XREAD BLOCK), forever."""
        last = after
        while True:
            reply: Any = await self.redis.xread({flt.stream: last}, count=100, block=block_ms)
            for _stream, entries in reply or ():
                for entry_id, raw in entries:
                    last = entry_id.decode()
                    if flt.matches(decode_fields(raw)):
                        yield record_of(raw)
