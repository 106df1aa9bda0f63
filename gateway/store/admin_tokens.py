"""The admin-token repository: account-scoped admin tokens, stored as an HMAC, never in clear."""

from __future__ import annotations

import dataclasses
import time

from redis.asyncio import Redis

from gateway.errors import NotFoundError, RecordExistsError
from gateway.store import keys
from gateway.store.records import AdminTokenRecord


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class AdminTokenRepository:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def get(self, token_id: str) -> AdminTokenRecord | None:
        raw = await self.redis.get(keys.admin_token(token_id))
        return None if raw is None else AdminTokenRecord.from_json(raw)

    async def require(self, token_id: str) -> AdminTokenRecord:
        record = await self.get(token_id)
        if record is None:
            raise NotFoundError(f"no admin token {token_id!r}", code="admin_token_not_found")
        return record

    async def add(self, record: AdminTokenRecord) -> AdminTokenRecord:
        if not await self.redis.set(keys.admin_token(record.id), record.to_json(), nx=True):
            raise RecordExistsError(f"admin token {record.id} already exists")
        await self.redis.sadd(keys.ADMIN_TOKENS, record.id)
        return record

    async def list(self, account: str | None = None) -> list[AdminTokenRecord]:
        ids = sorted(_text(i) for i in await self.redis.smembers(keys.ADMIN_TOKENS))
        records = [await self.get(token_id) for token_id in ids]
        return sorted(
            (r for r in records if r is not None and account in (None, r.account)),
            key=lambda r: r.created_at,
        )

    async def revoke(self, token_id: str) -> AdminTokenRecord:
        record = await self.require(token_id)
        if record.revoked_at is None:
            record = dataclasses.replace(record, revoked_at=time.time())
            await self.redis.set(keys.admin_token(token_id), record.to_json())
        return record
