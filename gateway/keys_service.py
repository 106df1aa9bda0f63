"""Creating API keys: the one place that makes a key, hashes it and stores the record."""

from __future__ import annotations

import dataclasses
import time

from gateway.auth import generate_key, hash_key
from gateway.store.records import ApiKeyRecord
from gateway.store.repositories import ApiKeyRepository


@dataclasses.dataclass(frozen=True, slots=True)
class IssuedKey:
    """A new key: the record as stored, and the secret, which is shown once and never kept."""

    record: ApiKeyRecord
    key: str


async def issue_key(
    repository: ApiKeyRepository,
    secret: str,
    *,
    account: str,
    name: str,
    clients: tuple[str, ...] = (),
    expires_in: float | None = None,
) -> IssuedKey:
    key_id, key = generate_key()
    now = time.time()
    record = ApiKeyRecord(
        id=key_id,
        account=account,
        name=name,
        hash=hash_key(secret, key),
        clients=clients,
        created_at=now,
        expires_at=None if expires_in is None else now + expires_in,
    )
    await repository.add(record)
    return IssuedKey(record=record, key=key)
