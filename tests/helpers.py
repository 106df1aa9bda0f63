"""Small helpers shared by the end-to-end tests: raw HTTP calls, journal reads, deadlines."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

import aiohttp
import orjson
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from gateway.store import keys


async def raw_request(
    gateway: TestServer,
    method: str,
    path: str,
    *,
    host: str,
    key: str | None = None,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One request with exactly these bytes and headers (no SDK in the way); response header
    names come back in lower case."""
    sent = {"Host": host}
    if key is not None:
        sent["Authorization"] = f"Bearer {key}"
    if body is not None:
        sent.setdefault("Content-Type", "application/json")
    sent.update(headers or {})
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, gateway.make_url(path), data=body, headers=sent) as response,
    ):
        headers = {name.lower(): value for name, value in response.headers.items()}
        return response.status, headers, await response.read()


def error_of(body: bytes) -> dict[str, Any]:
    """The `error` object of an OpenAI-shaped error body, checking the shape on the way."""
    data = orjson.loads(body)
    assert set(data) == {"error"}
    error: dict[str, Any] = data["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str)
    assert error["message"]
    return error


async def wait_for(
    condition: Callable[[], Awaitable[bool]], *, timeout: float = 5.0, interval: float = 0.01
) -> float:
    """Poll `condition` until it holds; return how long that took; fail at the deadline."""
    start = time.monotonic()
    while not await condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)
    return time.monotonic() - start


async def journal_records(redis: Redis) -> list[dict[str, Any]]:
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], await redis.xrange(keys.JOURNAL_STREAM))
    return [orjson.loads(fields[b"record"]) for _id, fields in entries]


async def journal_record(redis: Redis, request_id: str, timeout: float = 5.0) -> dict[str, Any]:
    """The journal record of one request, waiting for the batched writer to flush it."""
    found: dict[str, Any] = {}

    async def present() -> bool:
        for record in await journal_records(redis):
            if record["request_id"] == request_id:
                found.update(record)
                return True
        return False

    await wait_for(present, timeout=timeout)
    return found
