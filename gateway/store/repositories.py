"""Repositories: the only code that reads and writes tenant records in Redis.

Writes never use a cross-slot transaction: a record is written before the index that lists it and
removed after, so a crash between the two leaves at worst an index entry that `list` skips.
Every change is announced on the invalidation channel so running gateways drop cached copies.
"""

from __future__ import annotations

import dataclasses
import time

from redis.asyncio import Redis

from gateway.errors import NotFoundError, RecordExistsError
from gateway.store import keys
from gateway.store.records import ApiKeyRecord, ClientRecord, DomainRecord


class _Repository:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def _announce(self, message: str) -> None:
        await self.redis.publish(keys.INVALIDATION_CHANNEL, message)


class ClientRepository(_Repository):
    async def get(self, account: str, name: str) -> ClientRecord | None:
        raw = await self.redis.get(keys.client(account, name))
        return None if raw is None else ClientRecord.from_json(raw)

    async def require(self, account: str, name: str) -> ClientRecord:
        record = await self.get(account, name)
        if record is None:
            raise NotFoundError(f"no client {name!r} in account {account}", code="client_not_found")
        return record

    async def add(self, record: ClientRecord) -> ClientRecord:
        created = await self.redis.set(
            keys.client(record.account, record.name), record.to_json(), nx=True
        )
        if not created:
            raise RecordExistsError(
                f"client {record.name!r} already exists in account {record.account}"
            )
        await self.redis.sadd(keys.account_clients(record.account), record.name)
        await self.redis.sadd(keys.ACCOUNTS, record.account)
        await self._announce(keys.invalidation_client(record.account, record.name))
        return record

    async def put(self, record: ClientRecord) -> ClientRecord:
        """Create or replace."""
        await self.redis.set(keys.client(record.account, record.name), record.to_json())
        await self.redis.sadd(keys.account_clients(record.account), record.name)
        await self.redis.sadd(keys.ACCOUNTS, record.account)
        await self._announce(keys.invalidation_client(record.account, record.name))
        return record

    async def list(self, account: str | None = None) -> list[ClientRecord]:
        accounts = [account] if account else sorted(await self._accounts())
        records: list[ClientRecord] = []
        for acct in accounts:
            names = sorted(_text(n) for n in await self.redis.smembers(keys.account_clients(acct)))
            for name in names:
                record = await self.get(acct, name)
                if record is not None:
                    records.append(record)
        return records

    async def remove(self, account: str, name: str) -> ClientRecord:
        record = await self.require(account, name)
        domains = DomainRepository(self.redis)
        for hostname in await domains.hostnames_of(account, name):
            await domains.remove(hostname)
        await self.redis.delete(keys.client(account, name))
        await self.redis.srem(keys.account_clients(account), name)
        await self._announce(keys.invalidation_client(account, name))
        return record

    async def _accounts(self) -> set[str]:
        return {_text(a) for a in await self.redis.smembers(keys.ACCOUNTS)}


class ApiKeyRepository(_Repository):
    async def get(self, key_id: str) -> ApiKeyRecord | None:
        raw = await self.redis.get(keys.api_key(key_id))
        return None if raw is None else ApiKeyRecord.from_json(raw)

    async def add(self, record: ApiKeyRecord) -> ApiKeyRecord:
        created = await self.redis.set(keys.api_key(record.id), record.to_json(), nx=True)
        if not created:
            raise RecordExistsError(f"key id {record.id} already exists")
        await self.redis.sadd(keys.account_keys(record.account), record.id)
        return record

    async def require(self, key_id: str) -> ApiKeyRecord:
        record = await self.get(key_id)
        if record is None:
            raise NotFoundError(f"no key with id {key_id!r}", code="key_not_found")
        return record

    async def put(self, record: ApiKeyRecord) -> ApiKeyRecord:
        """Replace an existing key's record (its limits); running gateways drop their copy."""
        await self.redis.set(keys.api_key(record.id), record.to_json())
        await self._announce(keys.invalidation_key(record.id))
        return record

    async def list(self, account: str) -> list[ApiKeyRecord]:
        ids = sorted(_text(i) for i in await self.redis.smembers(keys.account_keys(account)))
        records = [await self.get(key_id) for key_id in ids]
        return sorted((r for r in records if r is not None), key=lambda r: r.created_at)

    async def revoke(self, key_id: str) -> ApiKeyRecord:
        record = await self.get(key_id)
        if record is None:
            raise NotFoundError(f"no key with id {key_id!r}", code="key_not_found")
        if record.revoked_at is None:
            record = dataclasses.replace(record, revoked_at=time.time())
            await self.redis.set(keys.api_key(key_id), record.to_json())
        await self._announce(keys.invalidation_key(key_id))
        return record


class DomainRepository(_Repository):
    async def get(self, hostname: str) -> DomainRecord | None:
        raw = await self.redis.get(keys.domain(hostname))
        return None if raw is None else DomainRecord.from_json(raw)

    async def require(self, hostname: str) -> DomainRecord:
        record = await self.get(hostname)
        if record is None:
            raise NotFoundError(f"no custom domain {hostname!r}", code="domain_not_found")
        return record

    async def add(self, record: DomainRecord) -> DomainRecord:
        created = await self.redis.set(keys.domain(record.hostname), record.to_json(), nx=True)
        if not created:
            raise RecordExistsError(f"domain {record.hostname!r} is already claimed")
        await self.redis.sadd(keys.client_domains(record.account, record.client), record.hostname)
        await self._announce(keys.invalidation_domain(record.hostname))
        return record

    async def put(self, record: DomainRecord) -> DomainRecord:
        await self.redis.set(keys.domain(record.hostname), record.to_json())
        await self._announce(keys.invalidation_domain(record.hostname))
        return record

    async def hostnames_of(self, account: str, client: str) -> list[str]:
        members = await self.redis.smembers(keys.client_domains(account, client))
        return sorted(_text(m) for m in members)

    async def list(
        self, account: str | None = None, client: str | None = None
    ) -> list[DomainRecord]:
        clients = ClientRepository(self.redis)
        records: list[DomainRecord] = []
        for client_record in await clients.list(account):
            if client is not None and client_record.name != client:
                continue
            for hostname in await self.hostnames_of(client_record.account, client_record.name):
                record = await self.get(hostname)
                if record is not None:
                    records.append(record)
        return records

    async def remove(self, hostname: str) -> DomainRecord:
        record = await self.require(hostname)
        await self.redis.delete(keys.domain(hostname))
        await self.redis.srem(keys.client_domains(record.account, record.client), hostname)
        await self._announce(keys.invalidation_domain(hostname))
        return record


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
