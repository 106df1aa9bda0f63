"""The audit stream: one record per admin write, whoever made it (CLI or admin API).

A record says who (`operator` or `token:<id>`), through what (`cli` or `api`), what (`action`,
`account`, `target`) and the record `before` and `after`, as their public forms (stored upstream
keys, key and token hashes never appear).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import orjson
from redis.asyncio import Redis

from gateway.store import keys


@dataclasses.dataclass(frozen=True, slots=True)
class AuditEntry:
    actor: str
    via: str
    action: str
    account: str | None
    target: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    at: float = dataclasses.field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class AuditLog:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def append(self, entry: AuditEntry) -> str:
        entry_id = await self.redis.xadd(
            keys.AUDIT_STREAM,
            {"account": entry.account or "", "record": orjson.dumps(entry.to_dict())},
            maxlen=keys.AUDIT_MAX_LEN,
            approximate=True,
        )
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    async def tail(self, limit: int = 50, account: str | None = None) -> list[dict[str, Any]]:
        """The newest `limit` records (of one account when given), newest first."""
        out: list[dict[str, Any]] = []
        upper = "+"
        while len(out) < limit:
            entries: Any = await self.redis.xrevrange(keys.AUDIT_STREAM, upper, "-", count=200)
            if not entries:
                break
            for entry_id, fields in entries:
                if account is not None and fields.get(b"account", b"").decode() != account:
                    continue
                out.append({"id": entry_id.decode(), **orjson.loads(fields[b"record"])})
                if len(out) >= limit:
                    break
            upper = "(" + entries[-1][0].decode()
        return out
