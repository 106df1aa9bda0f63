"""Host header to client record.

Parsing is pure (`parse_host`); resolution (`TenantResolver`) consults an in-process cache and
falls back to Redis, which is the truth. A host that names no client is a 404; the gateway never
falls back to another tenant.
"""

from __future__ import annotations

import dataclasses
import re

from gateway.cache import TtlCache
from gateway.errors import NotFoundError
from gateway.store.records import ClientRecord
from gateway.store.repositories import ClientRepository, DomainRepository

_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_ACCOUNT = re.compile(r"^[0-9]{4}-[0-9]{4}-[0-9]{4}$")
_HOSTNAME_MAX = 253


def is_client_name(name: str) -> bool:
    """An RFC 1123 label in lower case: what a client's name must be."""
    return bool(_LABEL.fullmatch(name))


def is_account_number(account: str) -> bool:
    return bool(_ACCOUNT.fullmatch(account))


@dataclasses.dataclass(frozen=True, slots=True)
class DefaultHost:
    """`{client}.{account}.{api_domain}`."""

    client: str
    account: str


@dataclasses.dataclass(frozen=True, slots=True)
class CustomHost:
    """Any other well-formed hostname: looked up among verified custom domains."""

    hostname: str


ParsedHost = DefaultHost | CustomHost


def normalise_host(raw: str) -> str | None:
    """Lower-case hostname without port or trailing dot, or None when it is not a hostname."""
    host = raw.strip().lower()
    if not host:
        return None
    if host.startswith("["):  # IPv6 literal, never a tenant
        return None
    if ":" in host:
        host, _, port = host.rpartition(":")
        if not port.isdigit():
            return None
    host = host.removesuffix(".")
    if not host or len(host) > _HOSTNAME_MAX:
        return None
    labels = host.split(".")
    if not all(_LABEL.fullmatch(label) for label in labels):
        return None
    return host


def parse_host(raw: str, api_domain: str) -> ParsedHost | None:
    """Classify a Host header value; None when it cannot name any tenant."""
    host = normalise_host(raw)
    if host is None:
        return None
    suffix = "." + api_domain
    if host.endswith(suffix):
        head = host[: -len(suffix)]
        client, dot, account = head.partition(".")
        if dot and is_client_name(client) and is_account_number(account):
            return DefaultHost(client=client, account=account)
        return None  # under our domain but not a tenant's name: never a custom domain
    if host == api_domain:
        return None
    return CustomHost(hostname=host)


class TenantResolver:
    """Resolves hosts to client records, caching hits and misses for `ttl` seconds."""

    def __init__(
        self,
        clients: ClientRepository,
        domains: DomainRepository,
        api_domain: str,
        cache: TtlCache[str, ClientRecord | None],
    ) -> None:
        self.clients = clients
        self.domains = domains
        self.api_domain = api_domain
        self.cache = cache

    async def resolve(self, raw_host: str) -> ClientRecord:
        """The client served at `raw_host`. A Host that is not a valid hostname (over 253
        characters, a bad label, an IP literal) is refused before any cache or Redis lookup,
        and the cache is keyed by the normalised name, so junk Hosts cannot fill it."""
        host = normalise_host(raw_host)
        record = None
        if host is not None:
            record = await self.cache.get_or_load(host, lambda: self._load(host))
        if record is None:
            shown = (host or raw_host)[:100].encode("ascii", "backslashreplace").decode()
            raise NotFoundError(f"no client is served at host {shown!r}", code="unknown_host")
        return record

    async def _load(self, host: str) -> ClientRecord | None:
        parsed = parse_host(host, self.api_domain)
        if isinstance(parsed, DefaultHost):
            return await self.clients.get(parsed.account, parsed.client)
        if isinstance(parsed, CustomHost):
            domain = await self.domains.get(parsed.hostname)
            if domain is None or not domain.verified:
                return None
            return await self.clients.get(domain.account, domain.client)
        return None
