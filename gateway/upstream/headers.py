"""Which headers cross the gateway, in each direction (RFC 9110 §7.6.1 plus credentials)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from multidict import CIMultiDict, CIMultiDictProxy

#: Never copied in either direction (RFC 9110 §7.6.1, plus what aiohttp recomputes).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "content-encoding",
        "host",
    }
)

#: Request headers the tenant sends that must not reach the upstream: its own credentials,
#: cookies, tracing ids of its own, and settings that belong to the gateway's upstream account.
REQUEST_ONLY = frozenset(
    {
        "authorization",
        "api-key",
        "x-api-key",
        "cookie",
        "accept-encoding",
        "openai-organization",
        "openai-project",
        "x-request-id",
        "x-client-request-id",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "forwarded",
    }
)
_DROP_REQUEST = HOP_BY_HOP | REQUEST_ONLY
#: An upstream's request id (`x-request-id`, Anthropic's `request-id`) is passed on as
#: `x-upstream-request-id`: the gateway's own id is the one the caller sees.
_DROP_RESPONSE = HOP_BY_HOP | {"set-cookie", "x-request-id", "request-id", "date", "server"}


def forward_request_headers(
    incoming: Mapping[str, str], extra: Iterable[tuple[str, str]] = ()
) -> CIMultiDict[str]:
    headers: CIMultiDict[str] = CIMultiDict(
        (name, value) for name, value in incoming.items() if name.lower() not in _DROP_REQUEST
    )
    for name, value in extra:
        headers[name] = value
    return headers


def forward_response_headers(upstream: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    headers: CIMultiDict[str] = CIMultiDict(
        (name, value) for name, value in upstream.items() if name.lower() not in _DROP_RESPONSE
    )
    upstream_id = upstream.get("x-request-id") or upstream.get("request-id")
    if upstream_id:
        headers["x-upstream-request-id"] = upstream_id
    return headers
