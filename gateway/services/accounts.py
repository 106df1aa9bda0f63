"""Accounts: create, change, read, list and remove account records (operator writes only,
except a scoped token may rename its own account)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from gateway.errors import InvalidRequestError, PermissionDeniedError, RecordInUseError
from gateway.services.context import AdminContext
from gateway.services.fields import LIMITS, Kind, check_fields
from gateway.store.accounts import AccountRepository
from gateway.store.admin_tokens import AdminTokenRepository
from gateway.store.records import AccountRecord
from gateway.store.repositories import ApiKeyRepository, ClientRepository
from gateway.tenancy import is_account_number

FIELDS: dict[str, Kind] = {"name": "text", **LIMITS}


def check_account(account: Any) -> str:
    if not isinstance(account, str) or not is_account_number(account):
        raise InvalidRequestError(
            f"{str(account)[:40]!r} is not an account number like 3141-5926-5359",
            param="account",
            code="invalid_account",
        )
    return account


async def add_account(
    ctx: AdminContext, account: str, changes: Mapping[str, Any]
) -> dict[str, Any]:
    ctx.operator_only("create accounts")
    fields = check_fields(changes, FIELDS, what="an account")
    record = await AccountRepository(ctx.redis).add(
        AccountRecord(account=check_account(account), **fields)
    )
    after = record.public_dict()
    await ctx.audit("accounts.add", account=account, target=account, before=None, after=after)
    return after


async def update_account(
    ctx: AdminContext, account: str, changes: Mapping[str, Any]
) -> dict[str, Any]:
    ctx.write(account)
    fields = check_fields(changes, FIELDS, what="an account")
    if not ctx.actor.is_operator and set(fields) - {"name"}:
        raise PermissionDeniedError(
            "an account's admin token cannot change its own account's limits",
            code="operator_only",
        )
    repository = AccountRepository(ctx.redis)
    before = await repository.require(account)
    record = await repository.put(dataclasses.replace(before, **fields))
    after = record.public_dict()
    await ctx.audit(
        "accounts.update", account=account, target=account, before=before.public_dict(), after=after
    )
    return after


async def show_account(ctx: AdminContext, account: str) -> dict[str, Any]:
    ctx.see(account)
    return (await AccountRepository(ctx.redis).require(account)).public_dict()


async def list_accounts(ctx: AdminContext) -> list[dict[str, Any]]:
    records = await AccountRepository(ctx.redis).list()
    own = ctx.actor.account
    return [r.public_dict() for r in records if own is None or r.account == own]


async def remove_account(ctx: AdminContext, account: str) -> dict[str, Any]:
    ctx.operator_only("remove accounts")
    repository = AccountRepository(ctx.redis)
    before = await repository.require(account)
    if await ClientRepository(ctx.redis).list(account):
        raise RecordInUseError(f"account {account} still has clients; remove them first")
    keys = await ApiKeyRepository(ctx.redis).list(account)
    if any(k.revoked_at is None for k in keys):
        raise RecordInUseError(f"account {account} still has active keys; revoke them first")
    tokens = await AdminTokenRepository(ctx.redis).list(account)
    if any(t.revoked_at is None for t in tokens):
        # A token left active would regain the account if the number were ever reused.
        raise RecordInUseError(
            f"account {account} still has active admin tokens; revoke them first"
        )
    await repository.remove(account)
    data = before.public_dict()
    await ctx.audit("accounts.remove", account=account, target=account, before=data, after=None)
    return data


async def ensure_account(ctx: AdminContext, account: str) -> None:
    """Give an account a record when its first client arrives (audited like any write)."""
    repository = AccountRepository(ctx.redis)
    if await repository.get(account) is None:
        record = await repository.put(AccountRecord(account=check_account(account)))
        await ctx.audit(
            "accounts.add", account=account, target=account, before=None, after=record.public_dict()
        )
