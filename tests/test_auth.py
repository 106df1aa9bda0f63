"""API keys: their format, hashing, where they are read from, and `KeyVerifier` on a real Redis."""

from __future__ import annotations

import dataclasses
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict
from redis.asyncio import Redis

from gateway.auth import (
    KEY_PREFIX,
    KeyVerifier,
    UserProfile,
    generate_key,
    hash_key,
    key_id_of,
    presented_key,
)
from gateway.cache import TtlCache
from gateway.errors import AuthenticationError, PermissionDeniedError
from gateway.keys_service import IssuedKey, issue_key
from gateway.store import keys
from gateway.store.records import ApiKeyRecord, ClientRecord
from gateway.store.repositories import ApiKeyRepository
from tests.conftest import ACCOUNT, OTHER_ACCOUNT, TEST_SECRET

_KEY_SHAPE = re.compile(r"gwk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")


def test_generated_keys_have_the_documented_shape_and_are_unique() -> None:
    keys = [generate_key() for _ in range(200)]
    for key_id, key in keys:
        assert _KEY_SHAPE.fullmatch(key), key
        assert key_id_of(key) == key_id
    assert len({key for _, key in keys}) == len(keys)
    assert len({key_id for key_id, _ in keys}) == len(keys)


@pytest.mark.parametrize(
    "key",
    [
        "",
        "gwk_",
        "gwk_0123456789ab",
        "gwk_0123456789ab_",  # no secret part
        "gwk_0123456789AB_secret",  # upper-case hex is not what generate_key makes
        "gwk_0123456789ag_secret",
        "gwk_0123456789abXsecret",
        "gwk-0123456789ab_secret",
        "sk-0123456789ab_secret",
        "gwk_0123456789a_secret",
        "gwk_ 123456789ab_secret",
    ],
)
def test_key_id_of_rejects_malformed_keys(key: str) -> None:
    assert key_id_of(key) is None


def test_key_id_of_reads_the_id() -> None:
    assert key_id_of("gwk_0123456789ab_xy") == "0123456789ab"


def test_hash_key_is_a_keyed_hmac() -> None:
    _, key = generate_key()
    digest = hash_key(TEST_SECRET, key)
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert hash_key(TEST_SECRET, key) == digest
    assert hash_key("another-secret", key) != digest
    assert hash_key(TEST_SECRET, key + "x") != digest
    assert key not in digest


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Authorization": "Bearer gwk_k"}, "gwk_k"),
        ({"authorization": "bearer gwk_k"}, "gwk_k"),
        ({"Authorization": "BEARER   gwk_k  "}, "gwk_k"),
        ({"Authorization": "  Bearer gwk_k"}, "gwk_k"),
        ({"api-key": "gwk_k"}, "gwk_k"),
        ({"Api-Key": " gwk_k "}, "gwk_k"),
        ({"x-api-key": "gwk_k"}, "gwk_k"),
        ({"X-API-KEY": "gwk_k"}, "gwk_k"),
        # Precedence: Authorization, then api-key, then x-api-key.
        ({"Authorization": "Bearer a", "api-key": "b", "x-api-key": "c"}, "a"),
        ({"api-key": "b", "x-api-key": "c"}, "b"),
        ({"api-key": "  ", "x-api-key": "c"}, "c"),
        # Malformed: nothing is presented (an Authorization header is never second-guessed).
        ({}, None),
        ({"Authorization": ""}, None),
        ({"Authorization": "Bearer"}, None),
        ({"Authorization": "Bearer    "}, None),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, None),
        ({"Authorization": "gwk_k"}, None),
        ({"Authorization": "Token gwk_k", "x-api-key": "c"}, None),
        ({"api-key": ""}, None),
        ({"x-api-key": " "}, None),
    ],
)
def test_presented_key(headers: dict[str, str], expected: str | None) -> None:
    assert presented_key(CIMultiDict(headers)) == expected


header_names = st.sampled_from(
    ["Authorization", "authorization", "api-key", "X-Api-Key", "x-api-key", "other"]
)


@given(st.dictionaries(header_names, st.text(), max_size=4))
def test_presented_key_never_raises(headers: dict[str, str]) -> None:
    found = presented_key(CIMultiDict(headers))
    assert found is None or (found and found == found.strip())
    if found is not None:
        assert key_id_of(found) is None or key_id_of(found) == found[4:16]


@given(st.text())
def test_key_id_of_never_raises(key: str) -> None:
    key_id = key_id_of(key)
    assert key_id is None or (key.startswith(KEY_PREFIX) and len(key_id) == 12)


# --- KeyVerifier against the suite's Redis -------------------------------------------------

CLIENT = ClientRecord(account=ACCOUNT, name="support", provider="echo")
OTHER_CLIENT = ClientRecord(account=ACCOUNT, name="billing", provider="echo")
FOREIGN_CLIENT = ClientRecord(account=OTHER_ACCOUNT, name="support", provider="echo")


def _verifier(redis: Redis, secret: str = TEST_SECRET) -> KeyVerifier:
    cache: TtlCache[str, ApiKeyRecord | None] = TtlCache(60.0)
    return KeyVerifier(ApiKeyRepository(redis), secret, cache)


async def _issue(
    redis: Redis,
    *,
    account: str = ACCOUNT,
    clients: tuple[str, ...] = (),
    expires_in: float | None = None,
) -> IssuedKey:
    return await issue_key(
        ApiKeyRepository(redis),
        TEST_SECRET,
        account=account,
        name="ci",
        clients=clients,
        expires_in=expires_in,
    )


async def _auth_error(verifier: KeyVerifier, key: str | None, client: ClientRecord) -> str:
    with pytest.raises(AuthenticationError) as caught:
        await verifier.authenticate(key, client)
    assert caught.value.status == 401
    return caught.value.message


async def test_valid_key_gives_the_user_profile(redis: Redis) -> None:
    issued = await _issue(redis)
    profile = await _verifier(redis).authenticate(issued.key, CLIENT)
    assert profile == UserProfile(
        account=ACCOUNT, client="support", key_id=issued.record.id, key_name="ci"
    )


async def test_missing_key_is_401_with_its_own_code(redis: Redis) -> None:
    with pytest.raises(AuthenticationError) as caught:
        await _verifier(redis).authenticate(None, CLIENT)
    assert caught.value.code == "missing_api_key"


async def test_unknown_wrong_and_foreign_keys_get_the_same_401(redis: Redis) -> None:
    issued = await _issue(redis)
    verifier = _verifier(redis)
    _, unknown = generate_key()
    wrong_secret_part = issued.key[:-4] + ("AAAA" if not issued.key.endswith("AAAA") else "BBBB")
    messages = {
        await _auth_error(verifier, unknown, CLIENT),
        await _auth_error(verifier, wrong_secret_part, CLIENT),
        await _auth_error(verifier, "not-a-gateway-key", CLIENT),
        # A valid key of another account: 401 like an unknown key, never 403.
        await _auth_error(verifier, issued.key, FOREIGN_CLIENT),
        # The right key checked under another server secret.
        await _auth_error(_verifier(redis, "other-secret"), issued.key, CLIENT),
    }
    assert len(messages) == 1
    assert issued.record.id not in messages.pop()


async def test_foreign_key_limited_to_a_client_is_still_401(redis: Redis) -> None:
    issued = await _issue(redis, account=OTHER_ACCOUNT, clients=("billing",))
    await _auth_error(_verifier(redis), issued.key, CLIENT)


async def test_key_limited_to_other_clients_is_403(redis: Redis) -> None:
    issued = await _issue(redis, clients=("billing",))
    verifier = _verifier(redis)
    with pytest.raises(PermissionDeniedError) as caught:
        await verifier.authenticate(issued.key, CLIENT)
    assert caught.value.status == 403
    assert caught.value.code == "key_not_allowed"
    profile = await verifier.authenticate(issued.key, OTHER_CLIENT)
    assert profile.client == "billing"


async def test_expired_key_is_401(redis: Redis) -> None:
    expired = await _issue(redis, expires_in=0.0)
    await _auth_error(_verifier(redis), expired.key, CLIENT)
    live = await _issue(redis, expires_in=3600.0)
    assert (await _verifier(redis).authenticate(live.key, CLIENT)).key_id == live.record.id


async def test_revoked_key_is_401(redis: Redis) -> None:
    issued = await _issue(redis)
    await ApiKeyRepository(redis).revoke(issued.record.id)
    await _auth_error(_verifier(redis), issued.key, CLIENT)


async def test_a_stored_record_with_another_hash_is_401(redis: Redis) -> None:
    issued = await _issue(redis)
    tampered = dataclasses.replace(issued.record, hash=hash_key(TEST_SECRET, "something else"))
    await redis.set(keys.api_key(issued.record.id), tampered.to_json())
    await _auth_error(_verifier(redis), issued.key, CLIENT)
