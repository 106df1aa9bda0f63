"""The pipeline end to end: a third-party handler gets the same capture, usage and limits as a
built-in one; path addressing; request ids a caller cannot forge; errors that leak nothing."""

from __future__ import annotations

import time
from typing import Any

import openai
import orjson
import pytest
from aiohttp.test_utils import TestServer
from openai.types.chat import ChatCompletionMessageParam
from redis.asyncio import Redis

from gateway.config import Settings
from gateway.journal.shards import shard_of
from gateway.limits.checks import utc_day
from gateway.rewrite import ClientPolicy
from gateway.store import keys
from tests.conftest import TEST_SECRET, AiohttpServer, Tenant, make_tenant, sdk_kwargs
from tests.support.helpers import error_of, raw_request, wait_for
from tests.support.journal_helpers import journal_record
from tests.support.limits_support import in_flight
from tests.support.upstream_server import UPSTREAM_KEY, UpstreamServer

HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


async def test_third_party_stream_is_captured_metered_and_limited(
    gateway: TestServer, redis: Redis
) -> None:
    """tests/support/thirdparty: an entry-point handler that streams events and knows nothing
    of the gateway. Its records carry text, chunks, ttfb and usage; its tokens count."""
    tenant = await make_tenant(
        redis, client="tp", provider="thirdparty-demo", tpm=31, tokens_per_day=10**6
    )
    async with openai.AsyncOpenAI(**sdk_kwargs(gateway, tenant)) as sdk:
        raw = await sdk.chat.completions.with_raw_response.create(
            model="tp-1", messages=HI, stream=True
        )
        parsed: Any = raw.parse()
        chunks = [chunk async for chunk in parsed]
        # 15 tokens used of tpm 31: a 16-token reservation fits once, then no more.
        second = await sdk.chat.completions.create(model="tp-1", messages=HI)
        with pytest.raises(openai.RateLimitError):
            await sdk.chat.completions.create(model="tp-1", messages=HI, max_tokens=10)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "third party says hello"
    assert all(c.usage is None for c in chunks)  # the caller did not ask for usage
    record = await journal_record(redis, raw.headers["x-request-id"])
    assert record["stream"]["text"] == "third party says hello"
    assert record["stream"]["chunks"] == 6
    assert record["stream"]["usage_requested_by_gateway"] is True
    assert record["latency_ms"]["ttfb"] is not None
    assert record["usage"] == {"input_tokens": 11, "output_tokens": 4, "total_tokens": 15}
    assert second.usage is not None
    assert second.usage.total_tokens == 15


async def test_path_addressing_serves_the_tenant_with_the_same_key_rules(
    gateway: TestServer, redis: Redis, echo_tenant: Tenant
) -> None:
    other = await make_tenant(redis, client="other-bot", provider="echo", key_clients=("x",))
    base = f"/tenants/{echo_tenant.client}.{echo_tenant.account}/v1"
    kwargs = sdk_kwargs(gateway, echo_tenant, base_url=str(gateway.make_url(base)))
    kwargs.pop("default_headers")
    async with openai.AsyncOpenAI(**kwargs) as sdk:
        raw = await sdk.chat.completions.with_raw_response.create(model="echo-1", messages=HI)
        stream = await sdk.chat.completions.create(model="echo-1", messages=HI, stream=True)
        streamed = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        assert [m.id async for m in sdk.models.list()] == ["echo-1"]
    assert raw.parse().choices[0].message.content == "echo: hi" == streamed
    record = await journal_record(redis, raw.headers["x-request-id"])
    assert (record["addressing"], record["client"]) == ("path", echo_tenant.client)
    # A key limited to other clients is refused on this path as on the tenant's hostname.
    status, _, body = await raw_request(
        gateway,
        "GET",
        f"/tenants/{echo_tenant.client}.{echo_tenant.account}/v1/models",
        host="127.0.0.1",
        key=other.key,
    )
    assert (status, error_of(body)["code"]) == (403, "key_not_allowed")
    status, _, body = await raw_request(
        gateway,
        "GET",
        "/tenants/nobody.0000-0000-0000/v1/models",
        host="127.0.0.1",
        key=echo_tenant.key,
    )
    assert (status, error_of(body)["code"]) == (404, "unknown_host")


async def test_path_routing_can_be_turned_off(
    aiohttp_server: AiohttpServer, settings: Settings, echo_tenant: Tenant
) -> None:
    from gateway.app import create_app

    server = await aiohttp_server(create_app(settings.replace(path_routing=False), TEST_SECRET))
    status, _, body = await raw_request(
        server,
        "GET",
        f"/tenants/{echo_tenant.client}.{echo_tenant.account}/v1/models",
        host="127.0.0.1",
        key=echo_tenant.key,
    )
    assert (status, error_of(body)["code"]) == (404, "unknown_url")


async def test_a_caller_cannot_repoint_another_requests_record(
    gateway: TestServer, redis: Redis, echo_tenant: Tenant
) -> None:
    body = orjson.dumps({"model": "echo-1", "messages": HI})
    _, headers, _ = await raw_request(
        gateway,
        "POST",
        "/v1/chat/completions",
        host=echo_tenant.hostname,
        key=echo_tenant.key,
        body=body,
    )
    victim = headers["x-request-id"]
    # An unauthenticated request to an unknown host, naming the victim's id.
    status, forged, _ = await raw_request(
        gateway,
        "POST",
        "/v1/chat/completions",
        host="nobody.example",
        body=body,
        headers={"X-Request-Id": victim},
    )
    assert status == 404
    assert forged["x-request-id"] != victim
    await journal_record(redis, forged["x-request-id"])
    record = await journal_record(redis, victim)
    assert (record["status"], record["client"]) == (200, echo_tenant.client)
    shard = shard_of(victim, Settings().journal_shards)
    index = await redis.get(keys.journal_shard_index(shard, victim))
    assert index is not None


async def test_upstream_error_body_is_not_repeated_to_the_tenant(
    client: openai.AsyncOpenAI, redis: Redis, tenant: Tenant
) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        await client.chat.completions.create(model="echo-headers-500", messages=HI)
    assert caught.value.status_code == 502
    message = caught.value.message
    assert UPSTREAM_KEY not in message
    assert "Bearer" not in message
    record = await journal_record(redis, caught.value.response.headers["x-request-id"])
    assert UPSTREAM_KEY not in orjson.dumps(record).decode()


async def test_an_upstream_error_quoting_the_upstream_key_is_scrubbed(
    client: openai.AsyncOpenAI, redis: Redis
) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        await client.chat.completions.create(model="echo-key-401", messages=HI)
    assert UPSTREAM_KEY not in caught.value.message
    assert "bad key Bearer [REDACTED]" in caught.value.message
    record = await journal_record(redis, caught.value.response.headers["x-request-id"])
    assert UPSTREAM_KEY not in orjson.dumps(record).decode()


@pytest.mark.parametrize("content", [5, None, ["x"], [{"type": "text", "text": 3}], {"a": 1}])
async def test_managed_bad_content_parts_are_400(
    gateway: TestServer, redis: Redis, upstream: tuple[UpstreamServer, str], content: object
) -> None:
    tenant = await make_tenant(
        redis, client="managed-bad", upstream_url=upstream[1], policy=ClientPolicy(mode="managed")
    )
    body = orjson.dumps({"model": "gpt-test", "messages": [{"role": "user", "content": content}]})
    status, headers, reply = await raw_request(
        gateway, "POST", "/v1/chat/completions", host=tenant.hostname, key=tenant.key, body=body
    )
    if content is None:  # an empty message is allowed: the model gets it as it is
        assert status == 200
        return
    assert (status, error_of(reply)["type"]) == (400, "invalid_request_error")
    record = await journal_record(redis, headers["x-request-id"])
    assert (record["status"], record["outcome"]) == (400, "bad_request")


async def _budget_used(redis: Redis, tenant: Tenant) -> int:
    day = utc_day(time.time())
    return int(
        await redis.get(keys.budget_day(tenant.account, f"client:{tenant.client}", day)) or 0
    )


async def test_a_stream_the_client_leaves_early_is_still_charged(
    gateway: TestServer, redis: Redis, upstream: tuple[UpstreamServer, str]
) -> None:
    """(The test server, like `gateway serve`, cancels the request's task when the client
    leaves: the settlement runs in the background with no response.)"""
    tenant = await make_tenant(
        redis, client="leaver", upstream_url=upstream[1], tokens_per_day=10**6, max_concurrent=5
    )
    async with openai.AsyncOpenAI(**sdk_kwargs(gateway, tenant)) as sdk:
        stream: Any = await sdk.chat.completions.create(
            model="pause-stream", messages=HI, stream=True
        )
        await anext(aiter(stream))
        await stream.close()

    async def settled() -> bool:  # the in-flight slot is freed by the settlement
        return await in_flight(redis, tenant.account, f"client:{tenant.client}") == 0

    await wait_for(settled, what="the left stream's settlement")
    upstream[0].release()
    assert await _budget_used(redis, tenant) >= 2  # the prompt estimate and the event relayed


async def test_usage_of_a_stream_past_the_capture_limit_is_still_read(
    aiohttp_server: AiohttpServer,
    settings: Settings,
    redis: Redis,
    upstream: tuple[UpstreamServer, str],
) -> None:
    from gateway.app import create_app

    # The first chunk alone passes the limit, so the usage chunk arrives in a later read.
    server = await aiohttp_server(
        create_app(settings.replace(journal_capture_bytes=40), TEST_SECRET)
    )
    tenant = await make_tenant(redis, client="long", upstream_url=upstream[1], tokens_per_day=10**6)
    async with openai.AsyncOpenAI(**sdk_kwargs(server, tenant)) as sdk:
        raw = await sdk.chat.completions.with_raw_response.create(
            model="pause-stream", messages=HI, stream=True
        )
        parsed: Any = raw.parse()
        first = await anext(aiter(parsed))
        upstream[0].release()
        rest = [c.choices[0].delta.content or "" async for c in parsed if c.choices]
    assert first.choices[0].delta.role == "assistant"
    assert "".join(rest) == "Hello from the stream"
    record = await journal_record(redis, raw.headers["x-request-id"])
    assert record["response"]["body"]["truncated"] is True
    assert record["usage"] == {"input_tokens": 7, "output_tokens": 4, "total_tokens": 11}
    assert await _budget_used(redis, tenant) == 11


async def test_a_gateway_key_in_any_header_is_redacted_in_the_journal(
    client: openai.AsyncOpenAI, redis: Redis, tenant: Tenant
) -> None:
    raw = await client.models.with_raw_response.list(
        extra_headers={"Proxy-Authorization": f"Bearer {tenant.key}", "X-Note": tenant.key}
    )
    record = await journal_record(redis, raw.headers["x-request-id"])
    assert tenant.key not in orjson.dumps(record).decode()
    assert record["request"]["headers"]["proxy-authorization"] == "[REDACTED]"


async def test_upstream_url_query_is_not_journaled_and_a_200_html_page_is_a_502(
    gateway: TestServer, redis: Redis, upstream: tuple[UpstreamServer, str]
) -> None:
    tenant = await make_tenant(redis, client="q", upstream_url=upstream[1] + "?key=QUERYSECRET")
    async with openai.AsyncOpenAI(**sdk_kwargs(gateway, tenant)) as sdk:
        raw = await sdk.chat.completions.with_raw_response.create(model="gpt-test", messages=HI)
        with pytest.raises(openai.APIStatusError) as caught:
            await sdk.chat.completions.create(model="html-200", messages=HI)
    record = await journal_record(redis, raw.headers["x-request-id"])
    assert "QUERYSECRET" not in orjson.dumps(record).decode()
    assert (caught.value.status_code, caught.value.code) == (502, "upstream_bad_response")
