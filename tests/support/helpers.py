"""Small helpers shared by the end-to-end tests: raw HTTP calls, error shapes, deadlines."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson
from aiohttp.test_utils import TestServer


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
    condition: Callable[[], Awaitable[bool]],
    *,
    timeout: float = 5.0,
    interval: float = 0.01,
    what: str = "condition",
) -> float:
    """Poll `condition` until it holds; return how long that took; fail at the deadline."""
    start = time.monotonic()
    while not await condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)
    return time.monotonic() - start
