"""Custom domains: claim, verify (DNS TXT; `force` is the operator's), list and release."""

from __future__ import annotations

from typing import Any

from gateway import domains as dns_domains
from gateway.errors import NotFoundError
from gateway.services.context import AdminContext
from gateway.store.records import DomainRecord
from gateway.store.repositories import ClientRepository, DomainRepository


def domain_dict(record: DomainRecord) -> dict[str, Any]:
    return record.to_dict()


async def _domain_of(ctx: AdminContext, hostname: str, account: str | None) -> DomainRecord:
    """The domain, or 404 when it is missing, of another account than asked, or not the
    actor's to see (one answer for all three)."""
    record = await DomainRepository(ctx.redis).get(dns_domains.lookup_name(hostname))
    wanted = {account, ctx.actor.account} - {None}
    if record is None or not wanted <= {record.account}:
        raise NotFoundError(
            f"no custom domain {hostname[:200]!r}: add it first", code="domain_not_found"
        )
    return record


async def add_domain(ctx: AdminContext, hostname: str, account: str, client: str) -> dict[str, Any]:
    ctx.write(account, "client")
    record = await dns_domains.add_domain(
        DomainRepository(ctx.redis),
        ClientRepository(ctx.redis),
        ctx.api_domain,
        hostname=hostname,
        account=account,
        client=client,
    )
    txt = {
        "name": dns_domains.challenge_name(record.hostname),
        "type": "TXT",
        "value": dns_domains.challenge_value(record),
    }
    after = domain_dict(record)
    await ctx.audit(
        "domains.add", account=account, target=record.hostname, before=None, after=after
    )
    return {**after, "dns_record": txt}


async def verify_domain(
    ctx: AdminContext,
    hostname: str,
    *,
    account: str | None = None,
    force: bool = False,
    nameserver: str | None = None,
    port: int = 53,
) -> dict[str, Any]:
    before = await _domain_of(ctx, hostname, account)
    ctx.write(before.account, "client")
    if force:
        ctx.operator_only("mark a domain verified without DNS")
    record = await dns_domains.verify_domain(
        DomainRepository(ctx.redis), before.hostname, force=force, nameserver=nameserver, port=port
    )
    after = domain_dict(record)
    await ctx.audit(
        "domains.verify",
        account=record.account,
        target=record.hostname,
        before=domain_dict(before),
        after=after,
    )
    return after


async def show_domain(
    ctx: AdminContext, hostname: str, account: str | None = None
) -> dict[str, Any]:
    return domain_dict(await _domain_of(ctx, hostname, account))


async def list_domains(
    ctx: AdminContext, account: str | None, client: str | None = None
) -> list[dict[str, Any]]:
    records = await DomainRepository(ctx.redis).list(ctx.visible_accounts(account), client)
    return [domain_dict(r) for r in records]


async def remove_domain(
    ctx: AdminContext, hostname: str, account: str | None = None
) -> dict[str, Any]:
    before = await _domain_of(ctx, hostname, account)
    ctx.write(before.account, "client")
    await DomainRepository(ctx.redis).remove(before.hostname)
    data = domain_dict(before)
    await ctx.audit(
        "domains.remove", account=before.account, target=before.hostname, before=data, after=None
    )
    return data
