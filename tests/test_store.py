"""The repositories against the suite's Redis: records, indexes, hash tags, invalidation."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.crc import key_slot

from gateway.errors import NotFoundError, RecordExistsError
from gateway.store import keys
from gateway.store.records import ApiKeyRecord, ClientRecord, DomainRecord
from gateway.store.repositories import ApiKeyRepository, ClientRepository, DomainRepository
from tests.conftest import ACCOUNT, OTHER_ACCOUNT


def _client(name: str = "support", account: str = ACCOUNT, **fields: Any) -> ClientRecord:
    return ClientRecord(account=account, name=name, provider="echo", **fields)


def _key(key_id: str, account: str = ACCOUNT, created_at: float = 1.0) -> ApiKeyRecord:
    return ApiKeyRecord(id=key_id, account=account, name="k", hash="0" * 64, created_at=created_at)


def _domain(hostname: str, client: str = "support", account: str = ACCOUNT) -> DomainRecord:
    return DomainRecord(hostname=hostname, account=account, client=client, token="t")


async def test_client_add_get_and_duplicate(redis: Redis) -> None:
    clients = ClientRepository(redis)
    record = _client(upstream_url="http://127.0.0.1:1/v1")
    assert await clients.add(record) == record
    assert await clients.get(ACCOUNT, "support") == record
    assert await clients.require(ACCOUNT, "support") == record
    with pytest.raises(RecordExistsError) as caught:
        await clients.add(_client(upstream_url="http://other"))
    assert caught.value.status == 409
    assert (await clients.require(ACCOUNT, "support")).upstream_url == "http://127.0.0.1:1/v1"


async def test_client_get_unknown(redis: Redis) -> None:
    clients = ClientRepository(redis)
    assert await clients.get(ACCOUNT, "nobody") is None
    with pytest.raises(NotFoundError):
        await clients.require(ACCOUNT, "nobody")


async def test_client_put_creates_and_replaces(redis: Redis) -> None:
    clients = ClientRepository(redis)
    await clients.put(_client(upstream_url="http://a"))
    await clients.put(_client(upstream_url="http://b"))
    assert (await clients.require(ACCOUNT, "support")).upstream_url == "http://b"
    assert [r.name for r in await clients.list(ACCOUNT)] == ["support"]


async def test_client_list_by_account_and_all(redis: Redis) -> None:
    clients = ClientRepository(redis)
    for name, account in [("b", ACCOUNT), ("a", ACCOUNT), ("z", OTHER_ACCOUNT)]:
        await clients.add(_client(name, account))
    assert [r.name for r in await clients.list(ACCOUNT)] == ["a", "b"]
    assert [r.name for r in await clients.list(OTHER_ACCOUNT)] == ["z"]
    everything = [(r.account, r.name) for r in await clients.list()]
    assert everything == [(OTHER_ACCOUNT, "z"), (ACCOUNT, "a"), (ACCOUNT, "b")]
    assert await clients.list("0000-0000-0001") == []


async def test_client_list_skips_an_index_entry_without_a_record(redis: Redis) -> None:
    clients = ClientRepository(redis)
    await clients.add(_client("a"))
    await redis.sadd(keys.account_clients(ACCOUNT), "ghost")
    assert [r.name for r in await clients.list(ACCOUNT)] == ["a"]


async def test_client_remove_also_removes_its_domains(redis: Redis) -> None:
    clients, domains = ClientRepository(redis), DomainRepository(redis)
    await clients.add(_client("support"))
    await clients.add(_client("billing"))
    await domains.add(_domain("api.acme.test"))
    await domains.add(_domain("chat.acme.test"))
    await domains.add(_domain("billing.acme.test", client="billing"))
    removed = await clients.remove(ACCOUNT, "support")
    assert removed.name == "support"
    assert await clients.get(ACCOUNT, "support") is None
    assert [r.name for r in await clients.list(ACCOUNT)] == ["billing"]
    assert await domains.get("api.acme.test") is None
    assert await domains.get("chat.acme.test") is None
    assert await domains.hostnames_of(ACCOUNT, "support") == []
    assert await redis.exists(keys.client_domains(ACCOUNT, "support")) == 0
    assert [d.hostname for d in await domains.list()] == ["billing.acme.test"]
    with pytest.raises(NotFoundError):
        await clients.remove(ACCOUNT, "support")


async def test_key_add_list_and_duplicate(redis: Redis) -> None:
    repo = ApiKeyRepository(redis)
    await repo.add(_key("00000000000b", created_at=2.0))
    await repo.add(_key("00000000000a", created_at=3.0))
    await repo.add(_key("00000000000c", account=OTHER_ACCOUNT))
    assert [r.id for r in await repo.list(ACCOUNT)] == ["00000000000b", "00000000000a"]
    assert [r.id for r in await repo.list(OTHER_ACCOUNT)] == ["00000000000c"]
    with pytest.raises(RecordExistsError):
        await repo.add(_key("00000000000a", account=OTHER_ACCOUNT))
    assert (await repo.get("00000000000a")) == _key("00000000000a", created_at=3.0)
    assert await repo.get("ffffffffffff") is None


async def test_key_revoke_is_idempotent(redis: Redis) -> None:
    repo = ApiKeyRepository(redis)
    await repo.add(_key("00000000000a"))
    first = await repo.revoke("00000000000a")
    assert first.revoked_at is not None
    assert first.revoked_at <= time.time()
    second = await repo.revoke("00000000000a")
    assert second.revoked_at == first.revoked_at
    assert await repo.get("00000000000a") == first
    assert [r.revoked_at for r in await repo.list(ACCOUNT)] == [first.revoked_at]
    with pytest.raises(NotFoundError):
        await repo.revoke("ffffffffffff")


async def test_domain_add_list_put_remove(redis: Redis) -> None:
    clients, domains = ClientRepository(redis), DomainRepository(redis)
    await clients.add(_client("support"))
    await clients.add(_client("billing"))
    await clients.add(_client("support", OTHER_ACCOUNT))
    await domains.add(_domain("b.acme.test"))
    await domains.add(_domain("a.acme.test"))
    await domains.add(_domain("c.acme.test", client="billing"))
    await domains.add(_domain("other.test", account=OTHER_ACCOUNT))
    with pytest.raises(RecordExistsError):
        await domains.add(_domain("a.acme.test", client="billing"))
    assert (await domains.require("a.acme.test")).client == "support"

    def names(records: list[DomainRecord]) -> list[str]:
        return [r.hostname for r in records]

    assert names(await domains.list(ACCOUNT, "support")) == ["a.acme.test", "b.acme.test"]
    assert names(await domains.list(ACCOUNT)) == ["c.acme.test", "a.acme.test", "b.acme.test"]
    assert names(await domains.list(client="support")) == [
        "other.test",
        "a.acme.test",
        "b.acme.test",
    ]
    assert len(await domains.list()) == 4

    verified = dataclasses.replace(await domains.require("a.acme.test"), verified=True)
    await domains.put(verified)
    assert (await domains.require("a.acme.test")).verified is True

    removed = await domains.remove("a.acme.test")
    assert removed.hostname == "a.acme.test"
    assert await domains.get("a.acme.test") is None
    assert await domains.hostnames_of(ACCOUNT, "support") == ["b.acme.test"]
    with pytest.raises(NotFoundError):
        await domains.remove("a.acme.test")


@pytest.mark.parametrize(
    ("key", "record", "extra"),
    [
        (keys.client(ACCOUNT, "support"), _client(), {"future_field": [1, 2]}),
        (keys.api_key("00000000000a"), _key("00000000000a"), {"scopes": ["chat"]}),
        (keys.domain("a.acme.test"), _domain("a.acme.test"), {"dns_provider": "x"}),
    ],
)
async def test_unknown_fields_in_stored_json_are_ignored(
    redis: Redis,
    key: str,
    record: ClientRecord | ApiKeyRecord | DomainRecord,
    extra: dict[str, object],
) -> None:
    await redis.set(key, orjson.dumps({**record.to_dict(), **extra}))
    if isinstance(record, ClientRecord):
        assert await ClientRepository(redis).get(record.account, record.name) == record
    elif isinstance(record, ApiKeyRecord):
        assert await ApiKeyRepository(redis).get(record.id) == record
    else:
        assert await DomainRepository(redis).get(record.hostname) == record


def test_record_lists_round_trip_as_tuples() -> None:
    record = _client(cors_origins=("https://a.test", "https://b.test"))
    assert ClientRecord.from_json(record.to_json()) == record


def test_stored_json_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(ValueError, match="not a JSON object"):
        ClientRecord.from_json(b"[1, 2]")


@pytest.mark.parametrize("account", [ACCOUNT, OTHER_ACCOUNT, "0000-0000-0000"])
def test_keys_of_one_account_share_a_cluster_slot(account: str) -> None:
    names = [
        keys.client(account, "support"),
        keys.client(account, "billing"),
        keys.account_clients(account),
        keys.account_keys(account),
        keys.client_domains(account, "support"),
    ]
    assert {key_slot(name.encode()) for name in names} == {key_slot(account.encode())}


def test_single_record_keys_carry_their_own_tag() -> None:
    assert key_slot(keys.api_key("0123456789ab").encode()) == key_slot(b"0123456789ab")
    assert key_slot(keys.domain("api.acme.test").encode()) == key_slot(b"api.acme.test")


@pytest.fixture
async def invalidations(redis: Redis) -> AsyncIterator[PubSub]:
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(keys.INVALIDATION_CHANNEL)
    yield pubsub
    await pubsub.aclose()  # type: ignore[no-untyped-call]


async def _received(pubsub: PubSub, count: int, deadline_s: float = 5.0) -> list[str]:
    messages: list[str] = []
    deadline = time.monotonic() + deadline_s
    while len(messages) < count and time.monotonic() < deadline:
        message = await pubsub.get_message(timeout=0.2)
        if message is not None and message["type"] == "message":
            messages.append(message["data"].decode())
    return messages


async def test_every_change_is_announced(redis: Redis, invalidations: PubSub) -> None:
    clients, api_keys, domains = (
        ClientRepository(redis),
        ApiKeyRepository(redis),
        DomainRepository(redis),
    )
    await clients.add(_client("support"))
    await clients.put(_client("support"))
    await api_keys.add(_key("00000000000a"))  # a new key replaces no cached verdict
    await api_keys.revoke("00000000000a")
    await domains.add(_domain("a.acme.test"))
    await domains.put(dataclasses.replace(_domain("a.acme.test"), verified=True))
    await domains.add(_domain("b.acme.test"))
    await domains.remove("b.acme.test")
    await clients.remove(ACCOUNT, "support")
    expected = [
        f"client:{ACCOUNT}/support",
        f"client:{ACCOUNT}/support",
        "key:00000000000a",
        "domain:a.acme.test",
        "domain:a.acme.test",
        "domain:b.acme.test",
        "domain:b.acme.test",
        "domain:a.acme.test",
        f"client:{ACCOUNT}/support",
    ]
    assert await _received(invalidations, len(expected)) == expected
