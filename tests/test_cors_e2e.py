"""CORS: preflights answer for a client's allowed origins only; responses name the origin."""

from __future__ import annotations

from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from tests.conftest import make_tenant
from tests.support.helpers import error_of, raw_request

BODY = b'{"model": "echo-1", "messages": [{"role": "user", "content": "x"}]}'


async def test_preflight_and_response_headers_for_an_allowed_origin(
    gateway: TestServer, redis: Redis
) -> None:
    tenant = await make_tenant(
        redis, client="web", provider="echo", cors_origins=("https://app.example.com",)
    )
    status, headers, _ = await raw_request(
        gateway,
        "OPTIONS",
        "/v1/chat/completions",
        host=tenant.hostname,
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert status == 204
    assert headers["access-control-allow-origin"] == "https://app.example.com"
    assert "POST" in headers["access-control-allow-methods"]
    assert headers["access-control-allow-headers"] == "authorization, content-type"

    status, headers, _ = await raw_request(
        gateway,
        "POST",
        "/v1/chat/completions",
        host=tenant.hostname,
        key=tenant.key,
        body=BODY,
        headers={"Origin": "https://app.example.com"},
    )
    assert status == 200
    assert headers["access-control-allow-origin"] == "https://app.example.com"
    assert "x-request-id" in headers["access-control-expose-headers"]


async def test_preflight_from_another_origin_is_refused(gateway: TestServer, redis: Redis) -> None:
    tenant = await make_tenant(
        redis, client="web", provider="echo", cors_origins=("https://app.example.com",)
    )
    status, headers, body = await raw_request(
        gateway,
        "OPTIONS",
        "/v1/chat/completions",
        host=tenant.hostname,
        headers={"Origin": "https://evil.example.net", "Access-Control-Request-Method": "POST"},
    )
    assert status == 403
    assert error_of(body)["code"] == "origin_not_allowed"
    assert "access-control-allow-origin" not in headers
    status, headers, _ = await raw_request(
        gateway,
        "POST",
        "/v1/chat/completions",
        host=tenant.hostname,
        key=tenant.key,
        body=BODY,
        headers={"Origin": "https://evil.example.net"},
    )
    assert status == 200  # not a browser's business: the key is what authorises
    assert "access-control-allow-origin" not in headers


async def test_preflight_on_an_unknown_host_is_404(gateway: TestServer) -> None:
    status, _, body = await raw_request(
        gateway,
        "OPTIONS",
        "/v1/chat/completions",
        host="x.0000-0000-0009.api.localhost",
        headers={"Origin": "https://app.example.com"},
    )
    assert status == 404
    assert error_of(body)["code"] == "unknown_host"
