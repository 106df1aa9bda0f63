"""Clients: the rules for adding, changing, reading and removing a tenant's client.

Where a client's traffic goes (provider, upstream URL and key, policy with its fallbacks) is the
operator's to set: a scoped token that could point a client at its own server would receive the
operator's upstream key. A scoped token may change its clients' CORS origins and limits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlparse

from gateway.errors import InvalidRequestError, PermissionDeniedError, PolicyError
from gateway.handlers.registry import needs_upstream_url, provider_names
from gateway.rewrite import ClientPolicy
from gateway.services.accounts import check_account, ensure_account
from gateway.services.context import AdminContext
from gateway.services.fields import END_USER_LIMITS, LIMITS, Kind, check_fields
from gateway.store.records import ClientRecord
from gateway.store.repositories import ClientRepository
from gateway.tenancy import is_client_name
from gateway.urls import refuse_link_local

ROUTING: dict[str, Kind] = {
    "provider": "text",
    "upstream_url": "text",
    "upstream_key_env": "text",
    "upstream_key": "text",
}
TENANT_FIELDS: dict[str, Kind] = {"cors_origins": "texts", **LIMITS, **END_USER_LIMITS}
FIELDS: dict[str, Kind] = {**ROUTING, **TENANT_FIELDS}

PolicyEdit = Callable[[ClientRecord], ClientRecord]


def check_client(name: Any) -> str:
    if not isinstance(name, str) or not is_client_name(name):
        raise InvalidRequestError(
            f"{str(name)[:80]!r} is not a client name: lower-case letters, digits and '-'",
            param="client",
            code="invalid_client",
        )
    return name


def upstream_urls(record: ClientRecord) -> tuple[str, ...]:
    """Every URL the client may send to: its own, its fallbacks, its deployments."""
    return (
        record.upstream_url,
        *(f.url for f in record.policy.fallbacks),
        *(d.url for d in record.policy.deployments),
    )


def _check_routing(record: ClientRecord, allow_link_local: bool) -> None:
    if record.provider not in provider_names():
        raise InvalidRequestError(
            f"unknown provider {record.provider!r}; installed: {', '.join(provider_names())}",
            param="provider",
        )
    if record.upstream_url:
        parsed = urlparse(record.upstream_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise InvalidRequestError(
                f"{record.upstream_url[:200]!r} is not an http(s) URL", param="upstream_url"
            )
    elif needs_upstream_url(record.provider) and not record.policy.deployments:
        raise InvalidRequestError(
            f"provider {record.provider!r} needs an upstream URL (upstream_url, --upstream-url)"
            " or a policy with deployments",
            param="upstream_url",
        )
    refuse_link_local(upstream_urls(record), allow_link_local)
    if record.upstream_key and record.upstream_key_env:
        raise InvalidRequestError(
            "give upstream_key or upstream_key_env, not both", param="upstream_key"
        )


def _fields(ctx: AdminContext, changes: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
    data = dict(changes)
    policy = data.pop("policy", None)
    fields = check_fields(data, FIELDS, what="a client")
    if not ctx.actor.is_operator and (policy is not None or set(fields) & set(ROUTING)):
        raise PermissionDeniedError(
            "an account's admin token cannot change where a client's traffic goes "
            "(provider, upstream, policy)",
            code="operator_only",
        )
    if "upstream_url" in fields:
        fields["upstream_url"] = fields["upstream_url"].rstrip("/")
    if policy is not None:
        if not isinstance(policy, dict):
            raise InvalidRequestError("policy must be an object", param="policy")
        try:
            fields["policy"] = ClientPolicy.from_dict(policy)
        except PolicyError as exc:
            raise InvalidRequestError(f"policy: {exc}", param="policy") from exc
    return fields, policy


async def add_client(
    ctx: AdminContext,
    account: str,
    name: str,
    changes: Mapping[str, Any],
    edit: PolicyEdit | None = None,
    *,
    allow_link_local: bool = False,
) -> dict[str, Any]:
    ctx.write(account, "client")
    ctx.operator_only("add clients")
    fields, _ = _fields(ctx, changes)
    if "provider" not in fields:
        raise InvalidRequestError("a client needs a provider", param="provider")
    record = ClientRecord(account=check_account(account), name=check_client(name), **fields)
    if edit is not None:
        record = edit(record)
    _check_routing(record, allow_link_local)
    await ensure_account(ctx, account)
    await ClientRepository(ctx.redis).add(record)
    after = record.public_dict(ctx.api_domain)
    await ctx.audit("clients.add", account=account, target=name, before=None, after=after)
    return after


async def update_client(
    ctx: AdminContext,
    account: str,
    name: str,
    changes: Mapping[str, Any],
    edit: PolicyEdit | None = None,
    *,
    allow_link_local: bool = False,
) -> dict[str, Any]:
    ctx.write(account, "client")
    fields, _ = _fields(ctx, changes)
    repository = ClientRepository(ctx.redis)
    before = await repository.require(account, name)
    record = dataclasses.replace(before, **fields)
    if edit is not None:
        record = edit(record)
    _check_routing(record, allow_link_local)
    await repository.put(record)
    after = record.public_dict(ctx.api_domain)
    await ctx.audit(
        "clients.update",
        account=account,
        target=name,
        before=before.public_dict(ctx.api_domain),
        after=after,
    )
    return after


async def show_client(ctx: AdminContext, account: str, name: str) -> dict[str, Any]:
    ctx.see(account, "client")
    record = await ClientRepository(ctx.redis).require(account, name)
    return record.public_dict(ctx.api_domain)


async def list_clients(ctx: AdminContext, account: str | None) -> list[dict[str, Any]]:
    records = await ClientRepository(ctx.redis).list(ctx.visible_accounts(account))
    return [r.public_dict(ctx.api_domain) for r in records]


async def remove_client(ctx: AdminContext, account: str, name: str) -> dict[str, Any]:
    ctx.write(account, "client")
    ctx.operator_only("remove clients")
    record = await ClientRepository(ctx.redis).remove(account, name)
    before = record.public_dict(ctx.api_domain)
    await ctx.audit("clients.remove", account=account, target=name, before=before, after=None)
    return before
