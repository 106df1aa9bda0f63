"""The SSRF guard for http plugins: where a plugin's request may go.

The host must be in the plugin's allowlist; every address it resolves to is checked, and a
private, loopback, link-local, multicast, reserved or unspecified address is refused unless the
plugin's config allows that class (`allow_private` covers private, link-local and the rest;
`allow_loopback` covers loopback). The request then connects only to the checked addresses
(`PinnedResolver`), so a DNS answer that changes between check and connect cannot redirect it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult

from gateway.errors import PluginRefusedError
from gateway.plugins.manifest import HttpPluginConfig

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def address_refusal(address: IPAddress, config: HttpPluginConfig) -> str | None:
    """Why `address` may not be reached under `config`, or None when it may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return None if config.allow_loopback else "a loopback address"
    if address.is_unspecified:
        return "an unspecified address"
    for flag, label in (
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address.is_private, "a private address"),
        (address.is_reserved, "a reserved address"),
        (not address.is_global, "a non-global address"),
    ):
        if flag:
            return None if config.allow_private else label
    return None


async def checked_addresses(config: HttpPluginConfig, port: int) -> list[ResolveResult]:
    host = config.host
    if host not in config.allowed_hosts:
        raise PluginRefusedError(f"host {host!r} is not in the plugin's allowed hosts")
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise PluginRefusedError(f"cannot resolve {host!r}: {exc.strerror}") from exc
    results: list[ResolveResult] = []
    for family, _type, proto, _canon, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0])
        refusal = address_refusal(address, config)
        if refusal is not None:
            raise PluginRefusedError(f"{host!r} resolves to {refusal} ({address}), refused")
        results.append(
            ResolveResult(
                hostname=host,
                host=str(address),
                port=port,
                family=family,
                proto=proto,
                flags=socket.AI_NUMERICHOST,
            )
        )
    if not results:
        raise PluginRefusedError(f"{host!r} resolves to no address")
    return results


class PinnedResolver(AbstractResolver):
    """Answers only with the addresses the guard checked."""

    def __init__(self, results: list[ResolveResult]) -> None:
        self.results = results

    async def resolve(
        self, host: str, port: int = 0, family: Any = socket.AF_INET
    ) -> list[ResolveResult]:
        return [dict(r, port=port) for r in self.results]  # type: ignore[misc]

    async def close(self) -> None:
        return None
