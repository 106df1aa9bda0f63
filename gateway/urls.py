"""Upstream URLs an operator configures: link-local addresses refused; userinfo and query
kept out of what the gateway records (`public_url`).

The upstream URL is trusted operator input (`docs/reliability.md`): loopback and private
addresses stay allowed (a self-hosted model beside the gateway). Link-local addresses
(169.254.0.0/16, fe80::/10, where cloud metadata services answer) are refused unless the
operator passes `--allow-link-local`. The check reads the host as the system resolver would,
so `http://2852039166/` and `http://0xa9.254.169.254/` are caught; a hostname that resolves to
a link-local address is not (it is not resolved here).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

from gateway.errors import InvalidRequestError


def public_url(url: str) -> str:
    """`url` without userinfo or query (`http://u:p@host/v1?key=k` -> `http://host/v1`): some
    upstreams take a key in either."""
    parts = urlsplit(url)
    if "@" not in parts.netloc and not parts.query:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=netloc, query="", fragment=""))


def without_userinfo(url: str) -> str:
    """`url` without `user:password@` (what is sent when a key is the credential)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


_LINK_LOCAL_V4 = ipaddress.ip_network("169.254.0.0/16")
_LINK_LOCAL_V6 = ipaddress.ip_network("fe80::/10")


def link_local_address(url: str) -> str | None:
    """The link-local address `url` names literally (in any form the resolver reads), or None."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return None
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(host)
    except ValueError:
        try:  # inet_aton reads the legacy forms too: 2852039166, 0xa9.254.169.254, 169.254.43518
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in _LINK_LOCAL_V4 or address in _LINK_LOCAL_V6:
        return str(address)
    return None


def refuse_link_local(urls: Iterable[str], allowed: bool) -> None:
    """Raise for the first link-local URL among `urls`, unless `--allow-link-local`."""
    if allowed:
        return
    for url in urls:
        address = link_local_address(url)
        if address is not None:
            raise InvalidRequestError(
                f"upstream {public_url(url)} is the link-local address {address} "
                "(where cloud metadata services answer); pass --allow-link-local if you mean it"
            )
