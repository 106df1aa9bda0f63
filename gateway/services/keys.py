"""API keys: create (the secret is in the answer once, never again), change limits, list,
read and revoke. A key of another account answers 404, like a missing one."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from gateway.errors import InvalidRequestError, NotFoundError
from gateway.keys_service import issue_key
from gateway.services.context import AdminContext
from gateway.services.fields import LIMITS, Kind, check_fields
from gateway.store.records import ApiKeyRecord
from gateway.store.repositories import ApiKeyRepository, ClientRepository

CREATE_FIELDS: dict[str, Kind] = {"name": "text", "clients": "texts", **LIMITS}
UPDATE_FIELDS: dict[str, Kind] = dict(LIMITS)
_MAX_EXPIRY = 10 * 365 * 86400.0


async def _key_of(ctx: AdminContext, key_id: str, account: str | None) -> ApiKeyRecord:
    record = await ApiKeyRepository(ctx.redis).get(key_id)
    missing = f"no key with id {key_id[:40]!r}"
    if record is None or (account is not None and record.account != account):
        raise NotFoundError(missing, code="key_not_found")
    ctx.owns(record.account, missing, "key_not_found")
    return record


async def create_key(
    ctx: AdminContext,
    account: str,
    changes: Mapping[str, Any],
    expires_in: float | None = None,
) -> dict[str, Any]:
    ctx.write(account, "key")
    fields = check_fields(changes, CREATE_FIELDS, what="a key")
    name = fields.pop("name", None)
    if not name:
        raise InvalidRequestError("a key needs a name", param="name")
    if expires_in is not None and not 0 < expires_in <= _MAX_EXPIRY:
        raise InvalidRequestError("expires_in must be 1 second to 10 years", param="expires_in")
    clients = fields.pop("clients", ())
    repository = ClientRepository(ctx.redis)
    for client in clients:
        await repository.require(account, client)
    issued = await issue_key(
        ApiKeyRepository(ctx.redis),
        ctx.secret,
        account=account,
        name=name,
        clients=clients,
        expires_in=expires_in,
        limits=fields,
    )
    after = issued.record.public_dict()
    await ctx.audit(
        "keys.create", account=account, target=issued.record.id, before=None, after=after
    )
    return {**after, "key": issued.key}


async def update_key(
    ctx: AdminContext, key_id: str, changes: Mapping[str, Any], account: str | None = None
) -> dict[str, Any]:
    before = await _key_of(ctx, key_id, account)
    ctx.write(before.account, "key")
    fields = check_fields(changes, UPDATE_FIELDS, what="a key's update")
    record = await ApiKeyRepository(ctx.redis).put(dataclasses.replace(before, **fields))
    after = record.public_dict()
    await ctx.audit(
        "keys.update",
        account=record.account,
        target=key_id,
        before=before.public_dict(),
        after=after,
    )
    return after


async def show_key(ctx: AdminContext, key_id: str, account: str | None = None) -> dict[str, Any]:
    return (await _key_of(ctx, key_id, account)).public_dict()


async def list_keys(ctx: AdminContext, account: str) -> list[dict[str, Any]]:
    ctx.see(account, "key")
    return [r.public_dict() for r in await ApiKeyRepository(ctx.redis).list(account)]


async def revoke_key(ctx: AdminContext, key_id: str, account: str | None = None) -> dict[str, Any]:
    before = await _key_of(ctx, key_id, account)
    ctx.write(before.account, "key")
    record = await ApiKeyRepository(ctx.redis).revoke(key_id)
    after = record.public_dict()
    await ctx.audit(
        "keys.revoke",
        account=record.account,
        target=key_id,
        before=before.public_dict(),
        after=after,
    )
    return after
