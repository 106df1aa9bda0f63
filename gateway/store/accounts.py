"""The account repository: the only code that reads and writes account records.

Accounts that predate account records (a client was added, so the account is in `gw:accounts`)
read as a bare record with no name and no limits, so every account has one shape.
"""

from __future__ import annotations

from redis.asyncio import Redis

from gateway.errors import NotFoundError, RecordExistsError
from gateway.store import keys
from gateway.store.records import AccountRecord


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class AccountRepository:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def get(self, account: str) -> AccountRecord | None:
        raw = await self.redis.get(keys.account(account))
        if raw is not None:
            return AccountRecord.from_json(raw)
        if await self.redis.sismember(keys.ACCOUNTS, account):
            return AccountRecord(account=account, created_at=0.0)
        return None

    async def require(self, account: str) -> AccountRecord:
        record = await self.get(account)
        if record is None:
            raise NotFoundError(f"no account {account}", code="account_not_found")
        return record

    async def add(self, record: AccountRecord) -> AccountRecord:
        if await self.get(record.account) is not None:
            raise RecordExistsError(f"account {record.account} already exists")
        return await self.put(record)

    async def put(self, record: AccountRecord) -> AccountRecord:
        await self.redis.set(keys.account(record.account), record.to_json())
        await self.redis.sadd(keys.ACCOUNTS, record.account)
        await self.redis.publish(
            keys.INVALIDATION_CHANNEL, keys.invalidation_account(record.account)
        )
        return record

    async def list(self) -> list[AccountRecord]:
        numbers = sorted(_text(a) for a in await self.redis.smembers(keys.ACCOUNTS))
        records = [await self.get(number) for number in numbers]
        return [r for r in records if r is not None]

    async def remove(self, account: str) -> AccountRecord:
        record = await self.require(account)
        await self.redis.srem(keys.ACCOUNTS, account)
        await self.redis.delete(keys.account(account), keys.account_prices(account))
        await self.redis.publish(keys.INVALIDATION_CHANNEL, keys.invalidation_account(account))
        return record
