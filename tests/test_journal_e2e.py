"""One journal record per answered request, whatever the outcome, through the real app."""

from __future__ import annotations

from typing import Any

import aiohttp
import openai
import pytest
from aiohttp.test_utils import TestServer
from openai.types.chat import ChatCompletionMessageParam
from redis.asyncio import Redis

from gateway import appkeys
from gateway.app import create_app
from gateway.config import Settings
from gateway.store import keys
from tests.conftest import TEST_SECRET, AiohttpServer, Tenant, sdk_kwargs
from tests.support.journal_helpers import journal_records, wait_for_record, wait_for_records
from tests.support.upstream_server import UpstreamServer

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi there"}]


async def test_success_record_has_usage_models_and_bodies(
    client: openai.AsyncOpenAI, redis: Redis, tenant: Tenant
) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-test", messages=MESSAGES
    )
    request_id = raw.headers["x-request-id"]
    record = await wait_for_record(redis, request_id)
    assert (record["status"], record["outcome"]) == (200, "ok")
    assert (record["account"], record["client"], record["key_id"]) == (
        tenant.account,
        tenant.client,
        tenant.key_id,
    )
    assert record["model"] == {"requested": "gpt-test", "answered": "gpt-test-2024"}
    assert record["usage"] == {"input_tokens": 7, "output_tokens": 3, "total_tokens": 10}
    assert record["request"]["body"]["content"]["messages"] == MESSAGES
    assert record["response"]["body"]["content"]["choices"][0]["message"]["content"] == (
        "Hello from upstream"
    )
    assert record["request"]["headers"]["authorization"] == "[REDACTED]"
    assert record["latency_ms"]["total"] >= record["latency_ms"]["upstream"] > 0
    assert record["stream"] is None


async def test_stream_record_assembles_text_and_keeps_hidden_usage(
    client: openai.AsyncOpenAI, redis: Redis, upstream_server: UpstreamServer
) -> None:
    chunks = []
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-test", messages=MESSAGES, stream=True
    )
    async for chunk in raw.parse():
        chunks.append(chunk)
    # The client did not ask for usage: it must not see the usage chunk the gateway asked for.
    assert all(chunk.usage is None for chunk in chunks)
    assert all(chunk.choices for chunk in chunks)
    assert upstream_server.seen[-1].json["stream_options"] == {"include_usage": True}
    record = await wait_for_record(redis, raw.headers["x-request-id"])
    assert record["stream"]["text"] == "Hello from the stream"
    assert record["stream"]["chunks"] == len(chunks) == 6
    assert record["stream"]["usage_requested_by_gateway"] is True
    assert record["usage"] == {"input_tokens": 7, "output_tokens": 4, "total_tokens": 11}
    assert record["response"]["body"]["format"] == "sse"


async def test_stream_with_usage_asked_by_client_passes_it_through(
    client: openai.AsyncOpenAI, redis: Redis
) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-test",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in raw.parse()]
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 11
    record = await wait_for_record(redis, raw.headers["x-request-id"])
    assert record["stream"]["chunks"] == len(chunks) == 7
    assert record["stream"]["usage_requested_by_gateway"] is False
    assert record["usage"]["total_tokens"] == 11


async def test_echo_stream_record_has_usage(
    gateway: TestServer, echo_tenant: Tenant, redis: Redis
) -> None:
    async with openai.AsyncOpenAI(**sdk_kwargs(gateway, echo_tenant)) as sdk:
        raw = await sdk.chat.completions.with_raw_response.create(
            model="echo-1", messages=[{"role": "user", "content": "one two"}], stream=True
        )
        chunks = [chunk async for chunk in raw.parse()]
    record = await wait_for_record(redis, raw.headers["x-request-id"])
    assert record["stream"]["text"] == "echo: one two"
    assert record["stream"]["chunks"] == len(chunks)
    assert record["usage"] == {"input_tokens": 2, "output_tokens": 3, "total_tokens": 5}


async def test_error_outcomes_are_journaled(
    gateway: TestServer, tenant: Tenant, redis: Redis
) -> None:
    async with openai.AsyncOpenAI(**sdk_kwargs(gateway, tenant, api_key="gwk_wrong")) as bad:
        with pytest.raises(openai.AuthenticationError):
            await bad.chat.completions.create(model="gpt-test", messages=MESSAGES)
    unknown = Tenant(tenant.account, "nobody", "nobody.0000-0000-0000.api.localhost", "k", "")
    async with openai.AsyncOpenAI(**sdk_kwargs(gateway, unknown)) as lost:
        with pytest.raises(openai.NotFoundError):
            await lost.chat.completions.create(model="gpt-test", messages=MESSAGES)
    async with openai.AsyncOpenAI(**sdk_kwargs(gateway, tenant)) as sdk:
        with pytest.raises(openai.BadRequestError):
            await sdk.chat.completions.create(model="gpt-test", messages=[])
        with pytest.raises(openai.RateLimitError):
            await sdk.chat.completions.create(model="error-429", messages=MESSAGES)
    session = aiohttp.ClientSession()
    async with session:
        response = await session.post(
            gateway.make_url("/v1/chat/completions"),
            data=b"{not json",
            headers={
                "Host": tenant.hostname,
                "Authorization": f"Bearer {tenant.key}",
                "Content-Type": "application/json",
            },
        )
        assert response.status == 400
    records = await wait_for_records(redis, 5)
    outcomes = [(r["status"], r["outcome"]) for r in records]
    assert outcomes == [
        (401, "auth_failed"),
        (404, "not_found"),
        (400, "bad_request"),
        (429, "upstream_error"),
        (400, "bad_request"),
    ]
    assert records[0]["key_id"] is None
    assert records[0]["error"]["code"] is not None
    assert records[4]["request"]["body"] == {
        "format": "text",
        "content": "{not json",
        "bytes": 9,
        "truncated": False,
    }


async def test_upstream_timeout_is_journaled(
    aiohttp_server: AiohttpServer, settings: Settings, tenant: Tenant, redis: Redis
) -> None:
    server = await aiohttp_server(create_app(settings.replace(upstream_timeout=0.2), TEST_SECRET))
    async with openai.AsyncOpenAI(**sdk_kwargs(server, tenant)) as sdk:
        with pytest.raises(openai.APIStatusError) as caught:
            await sdk.chat.completions.create(model="slow", messages=MESSAGES)
    assert caught.value.status_code == 504
    (record,) = await wait_for_records(redis, 1)
    assert record["outcome"] == "upstream_timeout"


async def test_client_disconnect_mid_stream_keeps_what_was_relayed(
    gateway: TestServer, tenant: Tenant, redis: Redis, upstream_server: UpstreamServer
) -> None:
    async with openai.AsyncOpenAI(**sdk_kwargs(gateway, tenant)) as sdk:
        stream: Any = await sdk.chat.completions.create(
            model="pause-stream", messages=MESSAGES, stream=True
        )
        first = await anext(aiter(stream))
        assert first.choices[0].delta.role == "assistant"
        await stream.close()
    (record,) = await wait_for_records(redis, 1)
    assert (record["status"], record["outcome"]) == (200, "client_disconnected")
    assert record["stream"]["chunks"] == 1
    assert record["stream"]["text"] == ""
    upstream_server.release()


async def test_long_bodies_are_cut_and_say_so(
    aiohttp_server: AiohttpServer, settings: Settings, tenant: Tenant, redis: Redis
) -> None:
    server = await aiohttp_server(
        create_app(settings.replace(journal_capture_bytes=64), TEST_SECRET)
    )
    async with openai.AsyncOpenAI(**sdk_kwargs(server, tenant)) as sdk:
        await sdk.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "x" * 500}]
        )
    (record,) = await wait_for_records(redis, 1)
    body = record["request"]["body"]
    assert (body["truncated"], body["format"], len(body["content"])) == (True, "text", 64)
    assert body["bytes"] > 500


async def test_account_stream_holds_only_that_account(
    gateway: TestServer, tenant: Tenant, redis: Redis
) -> None:
    async with openai.AsyncOpenAI(**sdk_kwargs(gateway, tenant)) as sdk:
        await sdk.chat.completions.create(model="gpt-test", messages=MESSAGES)
    async with openai.AsyncOpenAI(**sdk_kwargs(gateway, tenant, api_key="gwk_wrong")) as bad:
        with pytest.raises(openai.AuthenticationError):
            await bad.chat.completions.create(model="gpt-test", messages=MESSAGES)
    unknown = Tenant(tenant.account, "nobody", "nobody.0000-0000-0000.api.localhost", "k", "")
    async with openai.AsyncOpenAI(**sdk_kwargs(gateway, unknown)) as lost:
        with pytest.raises(openai.NotFoundError):
            await lost.chat.completions.create(model="gpt-test", messages=MESSAGES)
    everything = await wait_for_records(redis, 3)
    mine = await journal_records(redis, keys.journal_account_stream(tenant.account))
    nobody = await journal_records(redis, keys.journal_account_stream(None))
    assert [r["request_id"] for r in mine] == [r["request_id"] for r in everything[:2]]
    assert [r["request_id"] for r in nobody] == [everything[2]["request_id"]]


async def test_journal_off_writes_nothing_to_redis(
    aiohttp_server: AiohttpServer, settings: Settings, tenant: Tenant, redis: Redis
) -> None:
    app = create_app(settings.replace(journal_enabled=False), TEST_SECRET)
    server = await aiohttp_server(app)
    async with openai.AsyncOpenAI(**sdk_kwargs(server, tenant)) as sdk:
        await sdk.chat.completions.create(model="gpt-test", messages=MESSAGES)
    await server.close()
    assert await redis.xlen(keys.JOURNAL_STREAM) == 0
    assert app[appkeys.JOURNAL].written == 0
