"""Regressions from an outsider's attack on the hardened gateway: each was a 500, a held
connection or an uncounted request before its fix."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from gateway.app import create_app
from gateway.config import Settings
from gateway.errors import InvalidRequestError
from gateway.journal.cli import record_line
from gateway.limits.checks import MAX_TOKENS_PER_REQUEST, estimate_tokens
from gateway.services.fields import check_value
from gateway.validation import MAX_NESTING
from tests.conftest import TEST_SECRET, AiohttpServer, Tenant
from tests.support.helpers import error_of, raw_request
from tests.support.journal_helpers import journal_record


@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 254, 600, 1023])
async def test_deeply_nested_bodies_are_a_400_on_every_route(
    gateway: TestServer, echo_tenant: Tenant, redis: Redis, depth: int
) -> None:
    nested = b"[" * depth + b"]" * depth
    for path, fields in (
        ("/v1/chat/completions", b'"messages":[{"role":"user","content":"hi"}]'),
        ("/v1/responses", b'"input":"hi"'),
    ):
        body = b'{"model":"echo-1",' + fields + b',"x":' + nested + b"}"
        status, headers, reply = await raw_request(
            gateway, "POST", path, host=echo_tenant.hostname, key=echo_tenant.key, body=body
        )
        assert (status, error_of(reply)["code"]) == (400, "too_deeply_nested"), path
        record = await journal_record(redis, headers["x-request-id"])
        assert record["status"] == 400


async def test_nesting_at_the_limit_is_served(gateway: TestServer, echo_tenant: Tenant) -> None:
    nested = b"[" * (MAX_NESTING - 2) + b"]" * (MAX_NESTING - 2)
    body = b'{"model":"echo-1","messages":[{"role":"user","content":"hi"}],"x":' + nested + b"}"
    status, _, _ = await raw_request(
        gateway, "POST", "/v1/chat/completions", host=echo_tenant.hostname,
        key=echo_tenant.key, body=body,
    )  # fmt: skip
    assert status == 200


async def test_a_key_with_a_non_ascii_byte_is_a_401_not_a_500(
    gateway: TestServer, echo_tenant: Tenant
) -> None:
    key_id = echo_tenant.key_id
    request = (
        f"GET /v1/models HTTP/1.1\r\nHost: {echo_tenant.hostname}\r\n".encode()
        + b"Authorization: Bearer gwk_" + key_id.encode() + b"_\xff\xfe\r\n"
        + b"Connection: close\r\n\r\n"
    )  # fmt: skip
    reader, writer = await asyncio.open_connection(gateway.host, gateway.port)
    writer.write(request)
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 5.0)
    writer.close()
    assert raw.startswith(b"HTTP/1.1 401"), raw[:80]


async def test_a_body_that_trickles_in_is_a_408(
    aiohttp_server: AiohttpServer, settings: Settings, echo_tenant: Tenant, redis: Redis
) -> None:
    server = await aiohttp_server(create_app(settings.replace(body_timeout=0.5), TEST_SECRET))
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {echo_tenant.hostname}\r\n"
        f"Authorization: Bearer {echo_tenant.key}\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000\r\n\r\n{".encode()
    )
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(4096), 5.0)  # no more body bytes are sent
    writer.close()
    assert raw.startswith(b"HTTP/1.1 408"), raw[:80]
    body = raw.split(b"\r\n\r\n", 1)[1]
    assert orjson.loads(body)["error"]["code"] == "request_timeout"


@pytest.mark.parametrize("value", [10**20, 1e30, 18446744073709551616.0])
def test_huge_or_float_max_tokens_reserve_the_ceiling(value: float) -> None:
    data = {"model": "m", "messages": [], "max_tokens": value}  # as orjson reads such a body
    assert estimate_tokens(b'{"model": "m"}', data) == MAX_TOKENS_PER_REQUEST


def test_responses_max_output_tokens_is_reserved() -> None:
    data = {"model": "m", "input": "hi", "max_output_tokens": 500}
    assert estimate_tokens(orjson.dumps(data), data) > 500


def test_journal_lines_cannot_drive_the_terminal() -> None:
    record = {
        "account": None,
        "client": None,
        "latency_ms": {"total": 1.0},
        "model": {"answered": None, "requested": None},
        "usage": None,
        "time": "2026-12-02T00:00:00Z",
        "status": 404,
        "outcome": "not_found",
        "method": "GET",
        "path": "/v1/\x1b[31mRED\x1b]0;pwned\x07",
        "request_id": "req_1",
    }
    line = record_line(record)
    assert "\x1b" not in line
    assert "\x07" not in line
    assert "\\x1b[31mRED" in line


@pytest.mark.parametrize(
    ("name", "kind", "value"),
    [
        ("tokens_per_day", "count", 18446744073709551615),
        ("rpm", "count", 2**63),
        ("max_concurrent", "count", 10**19),
        ("usd_per_day", "usd", 9007199255),
        ("end_user_usd_per_day", "usd", 1e10),
    ],
)
def test_limits_past_what_the_script_counts_are_refused(name: str, kind: Any, value: Any) -> None:
    """An outsider set these through the admin API; each then made every request a 503."""
    with pytest.raises(InvalidRequestError) as caught:
        check_value(name, kind, value)
    assert caught.value.param == name
    assert check_value(name, kind, 10**9) == 10**9
