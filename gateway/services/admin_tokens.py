"""Admin tokens: the operator's (`GATEWAY_ADMIN_TOKEN`) and account-scoped ones.

A scoped token reads `gwa_<id>_<secret>` and is shown once at creation; only its HMAC (under
the key-hashing secret) is stored. Creating and revoking them is the operator's; a scoped token
lists its own account's. `authenticate` turns a presented token into the `Actor` it acts as.
"""

from __future__ import annotations

import hmac
import secrets
import time
from typing import Any

from gateway.auth import hash_key
from gateway.errors import AuthenticationError, InvalidRequestError, NotFoundError
from gateway.services.accounts import check_account
from gateway.services.context import Actor, AdminContext
from gateway.store.accounts import AccountRepository
from gateway.store.admin_tokens import AdminTokenRepository
from gateway.store.records import AdminTokenRecord

TOKEN_PREFIX = "gwa_"  # noqa: S105 (a prefix, not a secret)
_ID_HEX = 12
_ID_END = len(TOKEN_PREFIX) + _ID_HEX
_HEX = frozenset("0123456789abcdef")
_MAX_EXPIRY = 10 * 365 * 86400.0


def token_id_of(token: str) -> str | None:
    if len(token) < _ID_END + 2 or not token.startswith(TOKEN_PREFIX) or token[_ID_END] != "_":
        return None
    token_id = token[len(TOKEN_PREFIX) : _ID_END]
    return token_id if _HEX.issuperset(token_id) else None


def _missing(token_id: str) -> str:
    return f"no admin token {token_id[:40]!r}"


async def _require(repository: AdminTokenRepository, token_id: str) -> AdminTokenRecord:
    record = await repository.get(token_id)
    if record is None:
        raise NotFoundError(_missing(token_id), code="admin_token_not_found")
    return record


async def create_admin_token(
    ctx: AdminContext,
    account: str,
    *,
    name: str = "",
    read_only: bool = False,
    expires_in: float | None = None,
) -> dict[str, Any]:
    ctx.operator_only("create admin tokens")
    await AccountRepository(ctx.redis).require(check_account(account))
    if not isinstance(read_only, bool):
        raise InvalidRequestError("read_only must be true or false", param="read_only")
    if not isinstance(name, str) or len(name) > 200:
        raise InvalidRequestError("name must be a string of at most 200 characters", param="name")
    if expires_in is not None and not 0 < expires_in <= _MAX_EXPIRY:
        raise InvalidRequestError("expires_in must be 1 second to 10 years", param="expires_in")
    token_id = secrets.token_hex(_ID_HEX // 2)
    token = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
    now = time.time()
    record = AdminTokenRecord(
        id=token_id,
        account=account,
        hash=hash_key(ctx.secret, token),
        name=name,
        read_only=read_only,
        created_at=now,
        expires_at=None if expires_in is None else now + expires_in,
    )
    await AdminTokenRepository(ctx.redis).add(record)
    after = record.public_dict()
    await ctx.audit(
        "admin_tokens.create", account=account, target=token_id, before=None, after=after
    )
    return {**after, "token": token}


async def list_admin_tokens(ctx: AdminContext, account: str | None = None) -> list[dict[str, Any]]:
    records = await AdminTokenRepository(ctx.redis).list(ctx.visible_accounts(account))
    return [r.public_dict() for r in records]


async def show_admin_token(ctx: AdminContext, token_id: str) -> dict[str, Any]:
    repository = AdminTokenRepository(ctx.redis)
    record = await _require(repository, token_id)
    ctx.owns(record.account, _missing(token_id), "admin_token_not_found")
    return record.public_dict()


async def revoke_admin_token(ctx: AdminContext, token_id: str) -> dict[str, Any]:
    repository = AdminTokenRepository(ctx.redis)
    before = await _require(repository, token_id)
    ctx.owns(before.account, _missing(token_id), "admin_token_not_found")
    ctx.operator_only("revoke admin tokens")
    record = await repository.revoke(token_id)
    after = record.public_dict()
    await ctx.audit(
        "admin_tokens.revoke",
        account=record.account,
        target=token_id,
        before=before.public_dict(),
        after=after,
    )
    return after


async def authenticate(
    repository: AdminTokenRepository, secret: str, operator_token: str, presented: str
) -> Actor:
    """The actor a bearer token acts as; 401 for anything else (one answer for every failure)."""
    if operator_token and hmac.compare_digest(presented.encode(), operator_token.encode()):
        return Actor(via="api")
    token_id = token_id_of(presented)
    record = None if token_id is None else await repository.get(token_id)
    if (
        record is None
        or not hmac.compare_digest(record.hash, hash_key(secret, presented))
        or not record.is_active(time.time())
    ):
        raise AuthenticationError(
            "the admin API wants 'Authorization: Bearer <admin token>'",
            code="invalid_admin_token",
        )
    return Actor(via="api", token_id=record.id, account=record.account, read_only=record.read_only)
