"""SSE relay: chunks reach the client as the upstream sends them, and disconnects propagate."""

from __future__ import annotations

import asyncio

import aiohttp
import openai
import orjson
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from tests.conftest import Tenant
from tests.support.journal_helpers import journal_record
from tests.support.upstream_server import UpstreamServer

STREAM_BODY = orjson.dumps(
    {"model": "pause-stream", "messages": [{"role": "user", "content": "hi"}], "stream": True}
)


async def test_first_chunk_arrives_while_the_upstream_is_still_sending(
    client: openai.AsyncOpenAI, upstream_server: UpstreamServer
) -> None:
    # The upstream sends its first chunk, then waits until we release it. If the gateway
    # buffered the stream, we would never see that chunk and the timeout below would fire.
    async with asyncio.timeout(5):
        stream = await client.chat.completions.create(
            model="pause-stream", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        first = await anext(aiter(stream))
        assert first.choices[0].delta.role == "assistant"
        assert not upstream_server.released.is_set()
        upstream_server.release()
        rest = [chunk async for chunk in stream]
    assert "".join(c.choices[0].delta.content or "" for c in rest if c.choices) == (
        "Hello from the stream"
    )


async def test_client_disconnect_cancels_the_upstream_request(
    gateway: TestServer, tenant: Tenant, upstream_server: UpstreamServer, redis: Redis
) -> None:
    headers = {
        "Host": tenant.hostname,
        "Authorization": f"Bearer {tenant.key}",
        "Content-Type": "application/json",
    }
    async with aiohttp.ClientSession() as session:
        response = await session.post(
            gateway.make_url("/v1/chat/completions"), data=STREAM_BODY, headers=headers
        )
        request_id = response.headers["x-request-id"]
        assert (await response.content.readuntil(b"\n\n")).startswith(b"data: ")
        response.close()  # hang up mid-stream
    async with asyncio.timeout(5):
        await upstream_server.disconnected.wait()
    record = await journal_record(redis, request_id)
    assert (record["status"], record["outcome"]) == (200, "client_disconnected")


async def test_upstream_breaking_off_mid_stream_ends_with_an_error_event(
    gateway: TestServer, tenant: Tenant, redis: Redis
) -> None:
    body = orjson.dumps(
        {"model": "break-stream", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    )
    headers = {
        "Host": tenant.hostname,
        "Authorization": f"Bearer {tenant.key}",
        "Content-Type": "application/json",
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            gateway.make_url("/v1/chat/completions"), data=body, headers=headers
        ) as response,
    ):
        assert response.status == 200
        text = (await response.read()).decode()
        request_id = response.headers["x-request-id"]
    events = [line for line in text.split("\n\n") if line]
    assert events[0].startswith("data: {")
    error = orjson.loads(events[-1].removeprefix("data: "))["error"]
    assert error["code"] == "upstream_error"
    record = await journal_record(redis, request_id)
    assert (record["status"], record["outcome"]) == (200, "upstream_error")


async def test_echo_provider_streams_and_answers_json(
    gateway: TestServer, echo_tenant: Tenant
) -> None:
    from tests.conftest import sdk_kwargs

    async with openai.AsyncOpenAI(**sdk_kwargs(gateway, echo_tenant)) as sdk:
        reply = await sdk.chat.completions.create(
            model="echo-1", messages=[{"role": "user", "content": "say this back"}]
        )
        stream = await sdk.chat.completions.create(
            model="echo-1",
            messages=[{"role": "user", "content": "say this back"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    assert reply.choices[0].message.content == "echo: say this back"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: say this back"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 4
