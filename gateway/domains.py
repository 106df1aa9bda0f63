"""Custom domains: claim a hostname with a token, prove it with a DNS TXT record.

`domains add` issues a token and the TXT record to create; `domains verify` looks the record up
and marks the domain verified when the token is there. Only verified domains route.
"""

from __future__ import annotations

import dataclasses
import secrets
import time

import dns.asyncresolver
import dns.exception
import dns.resolver

from gateway.errors import DomainVerificationError, InvalidRequestError, NotFoundError
from gateway.store.records import DomainRecord
from gateway.store.repositories import ClientRepository, DomainRepository
from gateway.tenancy import normalise_host

CHALLENGE_LABEL = "_gateway-challenge"
CHALLENGE_PREFIX = "gateway-verify="


def challenge_name(hostname: str) -> str:
    return f"{CHALLENGE_LABEL}.{hostname}"


def challenge_value(record: DomainRecord) -> str:
    return CHALLENGE_PREFIX + record.token


def lookup_name(raw: str) -> str:
    """A hostname as stored, from what an operator typed (`API.Acme.com.` is `api.acme.com`)."""
    return raw.strip().lower().rstrip(".")


def check_custom_hostname(raw: str, api_domain: str) -> str:
    hostname = normalise_host(raw)
    if hostname is None or ":" in raw:
        raise InvalidRequestError(f"{raw!r} is not a valid hostname")
    if hostname == api_domain or hostname.endswith("." + api_domain):
        raise InvalidRequestError(
            f"{hostname} is under the gateway's own domain {api_domain}; default hostnames "
            "need no custom domain"
        )
    return hostname


async def add_domain(
    domains: DomainRepository,
    clients: ClientRepository,
    api_domain: str,
    *,
    hostname: str,
    account: str,
    client: str,
) -> DomainRecord:
    await clients.require(account, client)
    record = DomainRecord(
        hostname=check_custom_hostname(hostname, api_domain),
        account=account,
        client=client,
        token=secrets.token_urlsafe(24),
    )
    return await domains.add(record)


async def txt_values(
    name: str, nameserver: str | None = None, port: int = 53, lifetime: float = 5.0
) -> list[str]:
    """Every TXT string at `name`, from the system's resolvers or the `nameserver` given."""
    resolver = dns.asyncresolver.Resolver(configure=nameserver is None)
    if nameserver is not None:
        resolver.nameservers = [nameserver]
        resolver.port = port
    resolver.lifetime = lifetime
    try:
        answer = await resolver.resolve(name, "TXT")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except dns.exception.DNSException as exc:
        raise DomainVerificationError(f"DNS lookup of {name} failed: {exc}") from exc
    return [b"".join(rdata.strings).decode(errors="replace") for rdata in answer]


async def verify_domain(
    domains: DomainRepository,
    hostname: str,
    *,
    force: bool = False,
    nameserver: str | None = None,
    port: int = 53,
) -> DomainRecord:
    record = await domains.get(lookup_name(hostname))
    if record is None:
        raise NotFoundError(f"no custom domain {hostname!r}: add it first", code="domain_not_found")
    if not force:
        name = challenge_name(record.hostname)
        values = await txt_values(name, nameserver, port)
        if challenge_value(record) not in values:
            raise DomainVerificationError(
                f'TXT record {name} does not hold "{challenge_value(record)}" '
                f"(found {len(values)} TXT value(s))"
            )
    verified = dataclasses.replace(record, verified=True, verified_at=time.time())
    return await domains.put(verified)
