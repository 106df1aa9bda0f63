"""The connection layer, over raw sockets (what an HTTP client library refuses to send): slow
headers and idle keep-alive connections are closed, aiohttp's parser errors are OpenAI-shaped,
journaled and never echo the offending line, and bodies that do not decode are a 400."""

from __future__ import annotations

import asyncio
import gzip
import time
import zlib

import orjson
import pytest
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from gateway.app import create_app
from gateway.config import Settings
from tests.conftest import TEST_SECRET, GatewayServerFactory, Tenant, make_tenant
from tests.support.helpers import error_of, raw_request
from tests.support.journal_helpers import wait_for_record


async def exchange(server: TestServer, data: bytes, *, within: float = 5.0) -> bytes:
    """Send `data` on a fresh connection and read until the gateway closes it."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), within)
    finally:
        writer.close()


def split_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


@pytest.fixture
async def quick(
    gateway_server: GatewayServerFactory, settings: Settings, redis: Redis
) -> TestServer:
    fast = settings.replace(header_timeout=0.5, keepalive_timeout=0.5)
    return await gateway_server(create_app(fast, TEST_SECRET))


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> float:
    """Seconds until the server closed the connection (reading whatever it sent)."""
    start = time.monotonic()
    await asyncio.wait_for(reader.read(), seconds)
    return time.monotonic() - start


async def test_connections_trickling_headers_are_closed_after_header_timeout(
    quick: TestServer,
) -> None:
    async def trickle() -> float:
        reader, writer = await asyncio.open_connection(quick.host, quick.port)
        start = time.monotonic()
        try:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")

            async def drip() -> None:
                for _ in range(100):
                    await asyncio.sleep(0.05)
                    writer.write(b"X")
                    await writer.drain()

            dripping = asyncio.create_task(drip())
            try:
                await asyncio.wait_for(reader.read(), 4.0)
            finally:
                dripping.cancel()
                await asyncio.gather(dripping, return_exceptions=True)
            return time.monotonic() - start
        finally:
            writer.close()

    waits = await asyncio.gather(*(trickle() for _ in range(50)))
    assert all(0.4 < wait < 2.0 for wait in waits), waits


async def test_a_silent_connection_is_closed_after_header_timeout(quick: TestServer) -> None:
    reader, writer = await asyncio.open_connection(quick.host, quick.port)
    try:
        assert 0.4 < await closed_within(reader, 4.0) < 2.0
    finally:
        writer.close()


async def test_idle_keepalive_and_a_slow_second_request_are_closed(quick: TestServer) -> None:
    for second in (b"", b"GET /healthz HTTP/1.1\r\nHo"):
        reader, writer = await asyncio.open_connection(quick.host, quick.port)
        try:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b'{"status":"ok"}'), 2.0)
            assert head.startswith(b"HTTP/1.1 200")
            writer.write(second)
            await writer.drain()
            assert await closed_within(reader, 4.0) < 2.0
        finally:
            writer.close()


def parser_cases(key: str) -> dict[str, bytes]:
    host = b"Host: x\r\n"
    auth = b"Authorization: Bearer " + key.encode()
    return {
        "nul in a header": b"GET /v1/models HTTP/1.1\r\n" + host + auth + b"\x00\r\n\r\n",
        "bare CR": b"GET /v1/models HTTP/1.1\r\n" + host + auth + b"\rX: y\r\n\r\n",
        "line too long": b"GET /v1/models HTTP/1.1\r\n" + host + auth + b"A" * 9000 + b"\r\n\r\n",
        "CL and TE": b"POST /v1/chat/completions HTTP/1.1\r\n"
        + host
        + auth
        + b"\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "bad request line": b"GET /v1/models " + key.encode() + b"\r\n" + host + b"\r\n",
        "bad method": key.encode() + b" / HTTP/1.1\r\n" + host + b"\r\n",
        "brotli body": b"POST /v1/chat/completions HTTP/1.1\r\n"
        + host
        + auth
        + b"\r\nContent-Encoding: br\r\nContent-Length: 2\r\n\r\n{}",
        "bad chunk size": b"POST /v1/chat/completions HTTP/1.1\r\n"
        + host
        + auth
        + b"\r\nTransfer-Encoding: chunked\r\n\r\nzz"
        + key.encode()
        + b"\r\n\r\n",
    }


async def test_parser_errors_are_openai_shaped_journaled_and_echo_nothing(
    gateway: TestServer, redis: Redis, tenant: Tenant, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, data in parser_cases(tenant.key).items():
        status, headers, body = split_response(await exchange(gateway, data))
        assert 400 <= status < 500, (name, status, body)
        assert tenant.key.encode() not in body, name
        error = error_of(body)
        assert error["type"] == "invalid_request_error", name
        record = await wait_for_record(redis, headers["x-request-id"])
        assert record["status"] == status
        assert record["outcome"] == "bad_request"
        assert tenant.key not in orjson.dumps(record).decode()
    captured = capsys.readouterr()
    assert tenant.key not in captured.out + captured.err


def corrupt(data: bytes) -> bytes:
    """Compressed data with its middle overwritten: the header passes, the inflate fails."""
    return data[:12] + b"\xff" * 12 + data[24:]


async def test_bodies_that_do_not_decode_are_a_journaled_400(
    gateway: TestServer, redis: Redis, tenant: Tenant
) -> None:
    chat = b'{"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}'
    for encoding, body in (
        ("gzip", b"not gzip at all"),
        ("deflate", b"not deflate at all"),
        ("gzip", corrupt(gzip.compress(chat))),
    ):
        status, headers, reply = await raw_request(
            gateway,
            "POST",
            "/v1/chat/completions",
            host=tenant.hostname,
            key=tenant.key,
            body=body,
            headers={"Content-Encoding": encoding},
        )
        assert status == 400, reply
        assert error_of(reply)["code"] == "invalid_content_encoding"
        record = await wait_for_record(redis, headers["x-request-id"])
        assert (record["status"], record["outcome"]) == (400, "bad_request")
    for encoding, body in (("gzip", gzip.compress(chat)), ("deflate", zlib.compress(chat))):
        status, _headers, reply = await raw_request(
            gateway,
            "POST",
            "/v1/chat/completions",
            host=tenant.hostname,
            key=tenant.key,
            body=body,
            headers={"Content-Encoding": encoding},
        )
        assert status == 200, reply


async def test_the_gateway_serves_after_every_kind_of_bad_connection(
    gateway: TestServer, redis: Redis
) -> None:
    tenant = await make_tenant(redis, client="echo-bot", provider="echo")
    for data in parser_cases(tenant.key).values():
        await exchange(gateway, data)
    status, _headers, _body = await raw_request(
        gateway, "GET", "/v1/models", host=tenant.hostname, key=tenant.key
    )
    assert status == 200
