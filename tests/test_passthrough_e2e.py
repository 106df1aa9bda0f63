"""The openai passthrough, end to end: the official SDK, the real app, a real upstream."""

from __future__ import annotations

import asyncio
import re

import openai
import orjson
import pytest
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from tests.conftest import Tenant, make_tenant, sdk_kwargs
from tests.support.helpers import raw_request
from tests.support.journal_helpers import journal_record
from tests.support.upstream_server import UPSTREAM_KEY, UpstreamServer, completion

MESSAGES: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


async def test_async_sdk_gets_the_upstream_completion_unchanged(
    client: openai.AsyncOpenAI, upstream_server: UpstreamServer
) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-test", messages=MESSAGES
    )
    assert orjson.loads(raw.content) == completion("gpt-test")
    reply = raw.parse()
    assert reply.choices[0].message.content == "Hello from upstream"
    assert reply.usage is not None
    assert reply.usage.total_tokens == 10
    assert raw.headers["x-request-id"].startswith("req_")
    assert raw.headers["x-upstream-request-id"] == "upstream-req-1"
    assert len(upstream_server.seen) == 1


async def test_sync_sdk_json_and_stream(gateway: TestServer, tenant: Tenant) -> None:
    def call() -> tuple[str | None, list[str]]:
        with openai.OpenAI(**sdk_kwargs(gateway, tenant)) as sync:
            reply = sync.chat.completions.create(model="gpt-test", messages=MESSAGES)
            stream = sync.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True)
            parts = [c.choices[0].delta.content or "" for c in stream if c.choices]
            return reply.choices[0].message.content, parts

    content, parts = await asyncio.to_thread(call)
    assert content == "Hello from upstream"
    assert "".join(parts) == "Hello from the stream"


async def test_async_stream_yields_every_upstream_chunk(
    client: openai.AsyncOpenAI, upstream_server: UpstreamServer
) -> None:
    stream = await client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True)
    chunks = [chunk async for chunk in stream]
    # role chunk, one per word, finish chunk: exactly what the upstream sent
    assert len(chunks) == len(upstream_server.words) + 2
    assert [c.choices[0].delta.content for c in chunks[1:-1]] == upstream_server.words
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_body_goes_upstream_byte_for_byte_with_the_gateways_key(
    gateway: TestServer, tenant: Tenant, upstream_server: UpstreamServer
) -> None:
    body = b'{ "model" : "gpt-test",\n "messages": [{"role":"user","content":"h\\u00e9"}], "x":1 }'
    status, _headers, _ = await raw_request(
        gateway,
        "POST",
        "/v1/chat/completions",
        host=tenant.hostname,
        key=tenant.key,
        body=body,
        headers={
            "Cookie": "session=1",
            "X-Api-Key": tenant.key,
            "Proxy-Authorization": "Basic abc",
            "OpenAI-Organization": "org-of-tenant",
            "X-Custom-Trace": "kept",
        },
    )
    assert status == 200
    seen = upstream_server.seen[0]
    assert seen.body == body
    headers = {name.lower(): value for name, value in seen.headers.items()}
    assert headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert headers["x-custom-trace"] == "kept"
    for dropped in ("cookie", "x-api-key", "proxy-authorization", "openai-organization"):
        assert dropped not in headers
    assert tenant.key not in repr(seen.headers)


async def test_models_are_forwarded(
    client: openai.AsyncOpenAI, upstream_server: UpstreamServer
) -> None:
    page = await client.models.list()
    assert [model.id for model in page.data] == ["gpt-test"]
    assert upstream_server.seen[0].path == "/v1/models"
    assert upstream_server.seen[0].headers["Authorization"] == f"Bearer {UPSTREAM_KEY}"


async def test_upstream_key_from_environment(
    gateway: TestServer,
    redis: Redis,
    upstream: tuple[UpstreamServer, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tenant = await make_tenant(
        redis, client="env-key", upstream_url=upstream[1], upstream_key_env="TEST_UPSTREAM_KEY"
    )
    async with openai.AsyncOpenAI(**sdk_kwargs(gateway, tenant)) as sdk:
        with pytest.raises(openai.APIStatusError) as missing:
            await sdk.chat.completions.create(model="gpt-test", messages=MESSAGES)
        assert missing.value.status_code == 502
        assert "TEST_UPSTREAM_KEY" in str(missing.value)
        monkeypatch.setenv("TEST_UPSTREAM_KEY", "from-env")
        await sdk.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert upstream[0].seen[-1].headers["Authorization"] == "Bearer from-env"


async def test_request_id_is_the_gateways_and_the_callers_id_is_echoed(
    gateway: TestServer, echo_tenant: Tenant, redis: Redis
) -> None:
    body = b'{"model": "echo-1", "messages": [{"role": "user", "content": "x"}]}'
    path = "/v1/chat/completions"
    _, first, _ = await raw_request(
        gateway,
        "POST",
        path,
        host=echo_tenant.hostname,
        key=echo_tenant.key,
        body=body,
        headers={"X-Request-Id": "trace-123.abc", "X-Client-Request-Id": "mine-1"},
    )
    assert first["x-request-id"] != "trace-123.abc"  # no trusted proxy: never the caller's
    assert re.fullmatch(r"req_[0-9a-f]{24}", first["x-request-id"])
    assert first["x-client-request-id"] == "mine-1"
    record = await journal_record(redis, first["x-request-id"])
    assert record["client_request_id"] == "mine-1"
    _, second, _ = await raw_request(
        gateway,
        "POST",
        path,
        host=echo_tenant.hostname,
        key=echo_tenant.key,
        body=body,
        headers={"X-Client-Request-Id": "bad id with spaces and \u00e9" * 3},
    )
    assert "x-client-request-id" not in second
    assert second["x-request-id"] != first["x-request-id"]


async def test_every_request_is_journaled_with_its_identity(
    client: openai.AsyncOpenAI, redis: Redis, tenant: Tenant
) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-test", messages=MESSAGES
    )
    record = await journal_record(redis, raw.headers["x-request-id"])
    assert record["status"] == 200
    assert record["outcome"] == "ok"
    assert (record["account"], record["client"], record["key_id"]) == (
        tenant.account,
        tenant.client,
        tenant.key_id,
    )
    assert record["host"] == tenant.hostname
    assert record["latency_ms"]["total"] > 0
    assert tenant.key not in orjson.dumps(record).decode()
