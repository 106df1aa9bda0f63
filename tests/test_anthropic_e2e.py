"""Both SDKs through the gateway in all four combinations of caller and upstream format.

    caller        upstream    path
    anthropic  -> anthropic   native /v1/messages, relayed byte for byte
    openai     -> anthropic   /v1/chat/completions translated to Messages and back
    anthropic  -> openai      /v1/messages translated to chat completions and back
    openai     -> openai      the passthrough (tests/test_passthrough_e2e.py has the rest)

The upstreams are the loopback test servers (tests/support), the clients the official SDKs; every
request leaves a journal record with both formats and its usage.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import openai
import orjson
import pytest
import redis as sync_redis_lib
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from gateway.rewrite import ClientPolicy
from gateway.store import keys
from gateway.store.records import ClientRecord
from tests.conftest import ACCOUNT, AiohttpServer, Cli, Tenant, make_tenant
from tests.support.anthropic_upstream import TEXT, AnthropicUpstream
from tests.support.helpers import raw_request
from tests.support.journal_helpers import wait_for_record
from tests.support.upstream_server import UPSTREAM_KEY, UpstreamServer

HI: Any = [{"role": "user", "content": "Hi there"}]
WEATHER_ANTHROPIC: Any = {
    "name": "weather",
    "description": "Weather by city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
WEATHER_OPENAI: Any = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "Weather by city",
        "parameters": WEATHER_ANTHROPIC["input_schema"],
    },
}


@pytest.fixture
async def claude(aiohttp_server: AiohttpServer) -> AsyncIterator[tuple[AnthropicUpstream, str]]:
    behaviour = AnthropicUpstream()
    server = await aiohttp_server(behaviour.app())
    yield behaviour, str(server.make_url(""))
    behaviour.release()


@pytest.fixture
async def claude_tenant(redis: Redis, claude: tuple[AnthropicUpstream, str]) -> Tenant:
    return await make_tenant(
        redis, client="claude-desk", provider="anthropic", upstream_url=claude[1]
    )


def anthropic_kwargs(gateway: TestServer, tenant: Tenant, **overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "base_url": str(gateway.make_url("")),
        "api_key": tenant.key,
        "default_headers": {"Host": tenant.hostname},
        "max_retries": 0,
        "timeout": 10.0,
    }
    kwargs.update(overrides)
    return kwargs


def openai_kwargs(gateway: TestServer, tenant: Tenant) -> dict[str, Any]:
    return {
        "base_url": str(gateway.make_url("/v1")),
        "api_key": tenant.key,
        "default_headers": {"Host": tenant.hostname},
        "max_retries": 0,
        "timeout": 10.0,
    }


# -- anthropic caller, anthropic upstream: native ----------------------------------------------


async def test_native_messages_relayed_byte_for_byte(
    gateway: TestServer, claude_tenant: Tenant, claude: tuple[AnthropicUpstream, str], redis: Redis
) -> None:
    behaviour, _ = claude
    body = b'{"model":"claude-test","max_tokens":20,  "messages":[{"role":"user","content":"Hi"}]}'
    status, headers, reply = await raw_request(
        gateway,
        "POST",
        "/v1/messages",
        host=claude_tenant.hostname,
        body=body,
        headers={
            "x-api-key": claude_tenant.key,
            "anthropic-version": "2023-06-01",
            "anthropic-beta": "tools-2099",
        },
    )
    assert status == 200, reply
    assert orjson.loads(reply)["content"][0]["text"] == TEXT
    seen = behaviour.seen[-1]
    assert seen.body == body
    assert seen.headers["x-api-key"] == UPSTREAM_KEY
    assert seen.headers["anthropic-version"] == "2023-06-01"
    assert seen.headers["anthropic-beta"] == "tools-2099"
    assert "Authorization" not in seen.headers
    assert all(claude_tenant.key not in value for value in seen.headers.values())
    assert headers["request-id"] == headers["x-request-id"]
    record = await wait_for_record(redis, headers["x-request-id"])
    assert record["request"]["headers"]["x-api-key"] == "[REDACTED]"
    assert (record["api"], record["upstream_api"]) == ("anthropic", "anthropic")
    assert record["usage"] == {
        "input_tokens": 19,
        "output_tokens": 4,
        "total_tokens": 23,
        "cached_input_tokens": 3,
        "cache_creation_input_tokens": 5,
    }


async def test_native_sdk_sync_async_stream_and_count_tokens(
    gateway: TestServer, claude_tenant: Tenant, claude: tuple[AnthropicUpstream, str], redis: Redis
) -> None:
    behaviour, _ = claude

    def sync_call() -> str:
        with anthropic.Anthropic(**anthropic_kwargs(gateway, claude_tenant)) as sdk:
            message = sdk.messages.create(model="claude-test", max_tokens=20, messages=HI)
        block = message.content[0]
        assert block.type == "text"
        return block.text

    assert await asyncio.to_thread(sync_call) == TEXT
    async with anthropic.AsyncAnthropic(**anthropic_kwargs(gateway, claude_tenant)) as sdk:
        message = await sdk.messages.create(model="claude-test", max_tokens=20, messages=HI)
        assert message.usage.cache_read_input_tokens == 3
        async with sdk.messages.stream(
            model="tool-caller", max_tokens=20, messages=HI, tools=[WEATHER_ANTHROPIC]
        ) as stream:
            final = await stream.get_final_message()
        count = await sdk.messages.count_tokens(model="claude-test", messages=HI)
        raw = await sdk.messages.with_raw_response.create(
            model="claude-test", max_tokens=20, messages=HI, stream=True
        )
        text = ""
        async for event in await raw.parse():
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                text += event.delta.text
    block = final.content[0]
    assert block.type == "tool_use"
    assert block.input == {"city": "Paris"}
    assert count.input_tokens == 2
    assert text == TEXT
    record = await wait_for_record(redis, raw.headers["x-request-id"])
    assert record["stream"]["text"] == TEXT
    assert record["usage"]["output_tokens"] == 4
    assert record["usage"]["input_tokens"] == 19
    assert behaviour.seen[-1].path == "/v1/messages"


async def test_native_stream_first_event_before_upstream_finishes(
    gateway: TestServer, claude_tenant: Tenant, claude: tuple[AnthropicUpstream, str]
) -> None:
    behaviour, _ = claude
    async with anthropic.AsyncAnthropic(**anthropic_kwargs(gateway, claude_tenant)) as sdk:
        stream = await sdk.messages.create(
            model="pause-stream", max_tokens=20, messages=HI, stream=True
        )
        iterator = stream.__aiter__()
        first = await asyncio.wait_for(iterator.__anext__(), 5)
        assert first.type == "message_start"
        assert not behaviour.released.is_set()
        behaviour.release()
        rest = [event.type async for event in iterator]
    assert rest[-1] == "message_stop"


@pytest.mark.parametrize(
    ("model", "exception", "status"),
    [
        ("error-400", anthropic.BadRequestError, 400),
        ("error-404", anthropic.NotFoundError, 404),
        ("error-429", anthropic.RateLimitError, 429),
        ("error-529", anthropic.InternalServerError, 529),
    ],
)
async def test_native_upstream_errors_reach_the_sdk(
    gateway: TestServer,
    claude_tenant: Tenant,
    model: str,
    exception: type[anthropic.APIStatusError],
    status: int,
) -> None:
    async with anthropic.AsyncAnthropic(**anthropic_kwargs(gateway, claude_tenant)) as sdk:
        with pytest.raises(exception) as caught:
            await sdk.messages.create(model=model, max_tokens=5, messages=HI)
    assert caught.value.status_code == status
    assert caught.value.request_id is not None


async def test_gateway_errors_in_anthropic_shape(
    gateway: TestServer, claude_tenant: Tenant
) -> None:
    async with anthropic.AsyncAnthropic(
        **anthropic_kwargs(gateway, claude_tenant, api_key="sk-wrong")
    ) as sdk:
        with pytest.raises(anthropic.AuthenticationError) as auth:
            await sdk.messages.create(model="claude-test", max_tokens=5, messages=HI)
    assert isinstance(auth.value.body, dict)
    assert auth.value.body["error"]["type"] == "authentication_error"
    assert auth.value.request_id is not None
    unknown = {"default_headers": {"Host": "nobody.1111-2222-3333.api.localhost"}}
    async with anthropic.AsyncAnthropic(
        **anthropic_kwargs(gateway, claude_tenant, **unknown)
    ) as sdk:
        with pytest.raises(anthropic.NotFoundError):
            await sdk.messages.create(model="claude-test", max_tokens=5, messages=HI)
    status, _, body = await raw_request(
        gateway,
        "POST",
        "/v1/messages",
        host=claude_tenant.hostname,
        key=claude_tenant.key,
        body=b'{"model": "claude-test", "messages": "nope"',
    )
    error = orjson.loads(body)
    assert status == 400
    assert error["type"] == "error"
    assert error["error"]["type"] == "invalid_request_error"
    assert claude_tenant.key not in body.decode()


async def test_limits_apply_on_anthropic_routes(
    gateway: TestServer, redis: Redis, claude: tuple[AnthropicUpstream, str]
) -> None:
    tenant = await make_tenant(
        redis, client="claude-limited", provider="anthropic", upstream_url=claude[1], rpm=1
    )
    async with anthropic.AsyncAnthropic(**anthropic_kwargs(gateway, tenant)) as sdk:
        await sdk.messages.create(model="claude-test", max_tokens=5, messages=HI)
        with pytest.raises(anthropic.RateLimitError) as caught:
            await sdk.messages.create(model="claude-test", max_tokens=5, messages=HI)
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["type"] == "rate_limit_error"


# -- openai caller, anthropic upstream: translated ---------------------------------------------


async def test_openai_sdk_on_an_anthropic_client(
    gateway: TestServer, claude_tenant: Tenant, claude: tuple[AnthropicUpstream, str], redis: Redis
) -> None:
    behaviour, _ = claude
    async with openai.AsyncOpenAI(**openai_kwargs(gateway, claude_tenant)) as sdk:
        raw = await sdk.chat.completions.with_raw_response.create(
            model="claude-test", messages=[{"role": "system", "content": "Be brief."}, *HI]
        )
        reply = raw.parse()
        stream = await sdk.chat.completions.create(
            model="claude-test", messages=HI, stream=True, stream_options={"include_usage": True}
        )
        chunks = [chunk async for chunk in stream]
        hidden = await sdk.chat.completions.create(model="claude-test", messages=HI, stream=True)
        quiet = [chunk async for chunk in hidden]
    assert reply.choices[0].message.content == TEXT
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (19, 4)
    sent = behaviour.seen[0]
    assert sent.json["system"] == [{"type": "text", "text": "Be brief."}]
    assert sent.json["max_tokens"] == 4096
    assert sent.headers["x-api-key"] == UPSTREAM_KEY
    assert sent.headers["anthropic-version"]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == TEXT
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 23
    assert all(chunk.usage is None for chunk in quiet)
    record = await wait_for_record(redis, raw.headers["x-request-id"])
    assert (record["api"], record["upstream_api"]) == ("openai", "anthropic")
    assert record["usage"]["input_tokens"] == 19


async def test_openai_tool_calls_on_an_anthropic_client(
    gateway: TestServer, claude_tenant: Tenant
) -> None:
    async with openai.AsyncOpenAI(**openai_kwargs(gateway, claude_tenant)) as sdk:
        first = await sdk.chat.completions.create(
            model="tool-caller", messages=HI, tools=[WEATHER_OPENAI]
        )
        calls = first.choices[0].message.tool_calls or []
        assert first.choices[0].finish_reason == "tool_calls"
        call = calls[0]
        assert call.type == "function"
        assert orjson.loads(call.function.arguments) == {"city": "Paris"}
        answer = await sdk.chat.completions.create(
            model="tool-caller",
            tools=[WEATHER_OPENAI],
            messages=[
                *HI,
                {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},  # type: ignore[list-item]
                {"role": "tool", "tool_call_id": call.id, "content": "21 C"},
            ],
        )
        stream = await sdk.chat.completions.create(
            model="tool-caller", messages=HI, tools=[WEATHER_OPENAI], stream=True
        )
        fragments = [
            tool.function.arguments or ""
            async for chunk in stream
            if chunk.choices
            for tool in chunk.choices[0].delta.tool_calls or []
            if tool.function is not None
        ]
    assert answer.choices[0].message.content == "answer: 21 C"
    assert orjson.loads("".join(fragments)) == {"city": "Paris"}


async def test_openai_caller_refusals_and_upstream_errors(
    gateway: TestServer, claude_tenant: Tenant, claude: tuple[AnthropicUpstream, str]
) -> None:
    behaviour, _ = claude
    async with openai.AsyncOpenAI(**openai_kwargs(gateway, claude_tenant)) as sdk:
        with pytest.raises(openai.BadRequestError) as refused:
            await sdk.chat.completions.create(model="claude-test", messages=HI, seed=4)
        with pytest.raises(openai.RateLimitError) as limited:
            await sdk.chat.completions.create(model="error-429", messages=HI)
    assert isinstance(refused.value.body, dict)
    assert refused.value.body["param"] == "seed"
    assert not behaviour.seen[-1:] or behaviour.seen[-1].json["model"] == "error-429"
    assert "upstream says 429" in limited.value.message


# -- anthropic caller, openai upstream: translated ---------------------------------------------


async def test_anthropic_sdk_on_an_openai_client(
    gateway: TestServer, tenant: Tenant, upstream_server: UpstreamServer, redis: Redis
) -> None:
    def sync_call() -> str:
        with anthropic.Anthropic(**anthropic_kwargs(gateway, tenant)) as sdk:
            message = sdk.messages.create(
                model="gpt-test", max_tokens=20, messages=HI, system="Be brief."
            )
        block = message.content[0]
        assert block.type == "text"
        return block.text

    assert await asyncio.to_thread(sync_call) == "Hello from upstream"
    sent = upstream_server.seen[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.json["messages"][0] == {"role": "system", "content": "Be brief."}
    assert sent.json["max_completion_tokens"] == 20
    assert sent.headers["Authorization"] == f"Bearer {UPSTREAM_KEY}"
    async with anthropic.AsyncAnthropic(**anthropic_kwargs(gateway, tenant)) as sdk:
        message = await sdk.messages.create(model="gpt-test", max_tokens=20, messages=HI)
        raw = await sdk.messages.with_raw_response.create(
            model="gpt-test", max_tokens=20, messages=HI, stream=True
        )
        kinds = [event.type async for event in await raw.parse()]
        async with sdk.messages.stream(model="gpt-test", max_tokens=20, messages=HI) as stream:
            texts = [text async for text in stream.text_stream]
            final = await stream.get_final_message()
    assert (message.usage.input_tokens, message.usage.output_tokens) == (7, 3)
    assert message.stop_reason == "end_turn"
    assert kinds[0] == "message_start"
    assert kinds[-2:] == ["message_delta", "message_stop"]
    assert "".join(texts) == "Hello from the stream"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (7, 4)
    assert upstream_server.seen[-1].json["stream_options"] == {"include_usage": True}
    record = await wait_for_record(redis, raw.headers["x-request-id"])
    assert (record["api"], record["upstream_api"]) == ("anthropic", "openai")
    assert record["usage"]["input_tokens"] == 7
    assert record["usage"]["output_tokens"] == 4


async def test_anthropic_tool_use_on_an_openai_client(gateway: TestServer, tenant: Tenant) -> None:
    async with anthropic.AsyncAnthropic(**anthropic_kwargs(gateway, tenant)) as sdk:
        first = await sdk.messages.create(
            model="tool-caller", max_tokens=20, messages=HI, tools=[WEATHER_ANTHROPIC]
        )
        call = first.content[0]
        assert call.type == "tool_use"
        assert call.input == {"city": "Paris"}
        assert first.stop_reason == "tool_use"
        result: Any = {"type": "tool_result", "tool_use_id": call.id, "content": "21 C"}
        answer = await sdk.messages.create(
            model="tool-caller",
            max_tokens=20,
            tools=[WEATHER_ANTHROPIC],
            messages=[
                *HI,
                {"role": "assistant", "content": first.content},
                {"role": "user", "content": [result]},
            ],
        )
        async with sdk.messages.stream(
            model="tool-caller", max_tokens=20, messages=HI, tools=[WEATHER_ANTHROPIC]
        ) as stream:
            streamed = await stream.get_final_message()
    block = answer.content[0]
    assert block.type == "text"
    assert block.text == "answer: 21 C"
    tool = streamed.content[0]
    assert tool.type == "tool_use"
    assert tool.input == {"city": "Paris"}


async def test_anthropic_caller_refusals_and_upstream_errors(
    gateway: TestServer, tenant: Tenant
) -> None:
    async with anthropic.AsyncAnthropic(**anthropic_kwargs(gateway, tenant)) as sdk:
        with pytest.raises(anthropic.BadRequestError) as refused:
            await sdk.messages.create(
                model="gpt-test", max_tokens=5, messages=HI, extra_body={"top_k": 3}
            )
        with pytest.raises(anthropic.RateLimitError) as limited:
            await sdk.messages.create(model="error-429", max_tokens=5, messages=HI)
        with pytest.raises(anthropic.BadRequestError) as counted:
            await sdk.messages.count_tokens(model="gpt-test", messages=HI)
    assert "top_k" in refused.value.message
    assert isinstance(limited.value.body, dict)
    assert limited.value.body["error"] == {
        "type": "rate_limit_error",
        "message": "upstream says 429",
    }
    assert "count_tokens" in counted.value.message


def test_cli_adds_an_anthropic_client(cli: Cli, sync_redis: sync_redis_lib.Redis) -> None:
    added = cli(
        "clients",
        "add",
        "claude-cli",
        "--account",
        ACCOUNT,
        "--provider",
        "anthropic",
        "--upstream-url",
        "https://api.anthropic.com",
        "--upstream-key-env",
        "ANTHROPIC_KEY",
        "--json",
    )
    assert added.code == 0, added.err
    assert added.json["provider"] == "anthropic"
    stored = ClientRecord.from_json(sync_redis.get(keys.client(ACCOUNT, "claude-cli")) or b"")
    assert (stored.provider, stored.upstream_key_env) == ("anthropic", "ANTHROPIC_KEY")
    assert stored.upstream_url == "https://api.anthropic.com"
    missing = cli("clients", "add", "x", "--account", ACCOUNT, "--provider", "anthropic")
    assert missing.code != 0
    assert "--upstream-url" in missing.err


# -- streams that pause, break or fail; model listing -------------------------------------------


async def test_translated_streams_relay_the_first_event_before_the_upstream_finishes(
    gateway: TestServer,
    claude_tenant: Tenant,
    claude: tuple[AnthropicUpstream, str],
    tenant: Tenant,
    upstream_server: UpstreamServer,
) -> None:
    behaviour, _ = claude
    async with openai.AsyncOpenAI(**openai_kwargs(gateway, claude_tenant)) as sdk:
        stream = await sdk.chat.completions.create(model="pause-stream", messages=HI, stream=True)
        iterator = stream.__aiter__()
        first = await asyncio.wait_for(iterator.__anext__(), 5)
        assert first.choices[0].delta.role == "assistant"
        assert not behaviour.released.is_set()
        behaviour.release()
        assert (
            "".join([c.choices[0].delta.content or "" async for c in iterator if c.choices]) == TEXT
        )
    async with anthropic.AsyncAnthropic(**anthropic_kwargs(gateway, tenant)) as claude_sdk:
        events = await claude_sdk.messages.create(
            model="pause-stream", max_tokens=20, messages=HI, stream=True
        )
        claude_iterator = events.__aiter__()
        assert (await asyncio.wait_for(claude_iterator.__anext__(), 5)).type == "message_start"
        assert not upstream_server.released.is_set()
        upstream_server.release()
        assert [event.type async for event in claude_iterator][-1] == "message_stop"


async def test_broken_and_failed_streams_end_with_an_error_the_sdk_raises(
    gateway: TestServer, claude_tenant: Tenant, tenant: Tenant, redis: Redis
) -> None:
    async with anthropic.AsyncAnthropic(**anthropic_kwargs(gateway, claude_tenant)) as sdk:
        for model in ("break-stream", "stream-error"):  # native: relayed, and cut off
            raw = await sdk.messages.with_raw_response.create(
                model=model, max_tokens=5, messages=HI, stream=True
            )
            with pytest.raises(anthropic.APIStatusError):
                async for _ in await raw.parse():
                    pass
            record = await wait_for_record(redis, raw.headers["x-request-id"])
            assert record["status"] == 200
    assert record["stream"]["chunks"] >= 1
    async with anthropic.AsyncAnthropic(**anthropic_kwargs(gateway, tenant)) as sdk:
        raw = await sdk.messages.with_raw_response.create(  # translated: OpenAI stream cut off
            model="break-stream", max_tokens=5, messages=HI, stream=True
        )
        with pytest.raises(anthropic.APIStatusError) as broken:
            async for _ in await raw.parse():
                pass
    assert "broke off" in str(broken.value)
    record = await wait_for_record(redis, raw.headers["x-request-id"])
    assert record["outcome"] == "upstream_error"
    async with openai.AsyncOpenAI(**openai_kwargs(gateway, claude_tenant)) as openai_sdk:
        response = await openai_sdk.chat.completions.with_raw_response.create(
            model="stream-error", messages=HI, stream=True
        )
        with pytest.raises(openai.APIError) as failed:
            async for _ in response.parse():
                pass
    assert "Overloaded" in str(failed.value)
    record = await wait_for_record(redis, response.headers["x-request-id"])
    assert record["outcome"] == "upstream_error"
    assert record["error"]["type"] == "overloaded_error"


async def test_openai_models_list_on_an_anthropic_client(
    gateway: TestServer, claude_tenant: Tenant, claude: tuple[AnthropicUpstream, str]
) -> None:
    async with openai.AsyncOpenAI(**openai_kwargs(gateway, claude_tenant)) as sdk:
        models = await sdk.models.list()
    assert [(m.id, m.owned_by, m.created) for m in models.data] == [
        ("claude-test", "anthropic", 1735689600)
    ]
    seen = claude[0].seen[-1]
    assert (seen.path, seen.headers["x-api-key"]) == ("/v1/models", UPSTREAM_KEY)


async def test_anthropic_sdk_unmodified_with_the_tenant_in_the_path(
    gateway: TestServer, claude_tenant: Tenant
) -> None:
    """No Host header: `base_url` names the tenant (`/tenants/{client}.{account}`)."""
    base = gateway.make_url(f"/tenants/{claude_tenant.client}.{claude_tenant.account}")
    async with anthropic.AsyncAnthropic(base_url=str(base), api_key=claude_tenant.key) as sdk:
        message = await sdk.messages.create(model="claude-test", max_tokens=5, messages=HI)
    block = message.content[0]
    assert block.type == "text"
    assert block.text == TEXT


async def test_browsers_may_read_request_id_on_anthropic_routes(
    gateway: TestServer, redis: Redis, claude: tuple[AnthropicUpstream, str]
) -> None:
    tenant = await make_tenant(
        redis,
        client="claude-web",
        provider="anthropic",
        upstream_url=claude[1],
        cors_origins=("https://app.test",),
    )
    body = orjson.dumps({"model": "claude-test", "max_tokens": 5, "messages": HI})
    status, headers, _ = await raw_request(
        gateway,
        "POST",
        "/v1/messages",
        host=tenant.hostname,
        key=tenant.key,
        body=body,
        headers={"Origin": "https://app.test"},
    )
    assert status == 200
    assert headers["access-control-allow-origin"] == "https://app.test"
    assert "request-id" in headers["access-control-expose-headers"].split(", ")


async def test_client_policy_applies_to_anthropic_messages(
    gateway: TestServer, redis: Redis, claude: tuple[AnthropicUpstream, str]
) -> None:
    behaviour, url = claude
    policy = ClientPolicy(
        aliases={"fast": "claude-test"},
        max_tokens_ceiling=16,
        system_prompt="Answer briefly.",
        system_prompt_mode="always",
    )
    tenant = await make_tenant(
        redis, client="claude-policy", provider="anthropic", upstream_url=url, policy=policy
    )
    async with anthropic.AsyncAnthropic(**anthropic_kwargs(gateway, tenant)) as sdk:
        await sdk.messages.create(model="fast", max_tokens=500, messages=HI, system="Be kind.")
        await sdk.messages.create(
            model="fast", max_tokens=5, messages=HI, system=[{"type": "text", "text": "Be kind."}]
        )
    first, second = (seen.json for seen in behaviour.seen[-2:])
    assert (first["model"], first["max_tokens"]) == ("claude-test", 16)
    assert first["system"] == "Answer briefly.\n\nBe kind."
    assert second["max_tokens"] == 5
    assert second["system"] == [
        {"type": "text", "text": "Answer briefly."},
        {"type": "text", "text": "Be kind."},
    ]
