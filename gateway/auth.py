"""API keys: made at random, shown once, stored only as HMAC-SHA256 under a server secret.

A key reads `gwk_<id>_<secret>`: the 12-hex-digit id is public (logs and the journal name a key by
it) and finds the record in one Redis GET; the HMAC of the whole key, compared in constant time,
proves it. 401 for a missing, malformed, unknown, revoked or expired key; 403 for a valid key of
the same account that may not use this client. A key of another account gets the same 401 as an
unknown one, so nothing tells whether a key exists elsewhere.
"""

from __future__ import annotations

import dataclasses
import hmac
import secrets
import time
from collections.abc import Mapping

from gateway.cache import TtlCache
from gateway.errors import AuthenticationError, PermissionDeniedError
from gateway.store.records import ApiKeyRecord, ClientRecord
from gateway.store.repositories import ApiKeyRepository

KEY_PREFIX = "gwk_"
KEY_ID_HEX_DIGITS = 12
_KEY_ID_END = len(KEY_PREFIX) + KEY_ID_HEX_DIGITS
_HEX = frozenset("0123456789abcdef")
KEY_HEADERS = ("authorization", "api-key", "x-api-key")


@dataclasses.dataclass(frozen=True, slots=True)
class UserProfile:
    """Who is calling: handed to every handler."""

    account: str
    client: str
    key_id: str
    key_name: str


def generate_key() -> tuple[str, str]:
    """A fresh (key id, full key)."""
    key_id = secrets.token_hex(KEY_ID_HEX_DIGITS // 2)
    return key_id, f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def hash_key(secret: str, key: str) -> str:
    """HMAC-SHA256 of the key under the server secret, hex (the one-shot C path)."""
    return hmac.digest(secret.encode(), key.encode(), "sha256").hex()


def key_id_of(key: str) -> str | None:
    """The public id inside a well-formed key, else None."""
    if len(key) < _KEY_ID_END + 2 or not key.startswith(KEY_PREFIX) or key[_KEY_ID_END] != "_":
        return None
    if not key.isascii():  # a key is ASCII; other bytes cannot be hashed as sent: unknown
        return None
    key_id = key[len(KEY_PREFIX) : _KEY_ID_END]
    return key_id if _HEX.issuperset(key_id) else None


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key from `Authorization: Bearer`, `api-key` or `x-api-key`, whichever comes first."""
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    for name in KEY_HEADERS[1:]:
        other = headers.get(name)
        if other and other.strip():
            return other.strip()
    return None


class KeyVerifier:
    """Checks presented keys against their records, caching records for a short TTL."""

    def __init__(
        self, keys: ApiKeyRepository, secret: str, cache: TtlCache[str, ApiKeyRecord | None]
    ) -> None:
        self.keys = keys
        self.secret = secret
        self.cache = cache

    async def authenticate(self, key: str | None, client: ClientRecord) -> UserProfile:
        if key is None:
            raise AuthenticationError(
                "missing API key: send it as 'Authorization: Bearer <key>'", code="missing_api_key"
            )
        key_id = key_id_of(key)
        record = None if key_id is None else await self._record(key_id)
        if (
            record is None
            or record.account != client.account
            or not hmac.compare_digest(record.hash, hash_key(self.secret, key))
            or not record.is_active(time.time())
        ):
            raise AuthenticationError("incorrect, revoked or expired API key")
        if not record.allows_client(client.name):
            raise PermissionDeniedError(
                f"this API key may not use client {client.name!r}", code="key_not_allowed"
            )
        return UserProfile(
            account=record.account, client=client.name, key_id=record.id, key_name=record.name
        )

    async def _record(self, key_id: str) -> ApiKeyRecord | None:
        return await self.cache.get_or_load(key_id, lambda: self.keys.get(key_id))
