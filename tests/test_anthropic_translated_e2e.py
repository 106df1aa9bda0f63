"""Both SDKs through the gateway where the caller's format and the upstream's differ.

    caller        upstream    path
    openai     -> anthropic   /v1/chat/completions translated to Messages and back
    anthropic  -> openai      /v1/messages translated to chat completions and back

(anthropic -> anthropic is tests/test_anthropic_native_e2e.py; openai -> openai the passthrough's
tests.) The upstreams are the loopback test servers in tests/support; every request leaves a
journal record with both formats and its usage.
"""

from __future__ import annotations

import asyncio
from typing import Any

import anthropic
import openai
import orjson
import pytest
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from tests.conftest import Tenant
from tests.support.anthropic_clients import (
    HI,
    WEATHER_ANTHROPIC,
    WEATHER_OPENAI,
    anthropic_kwargs,
    openai_kwargs,
)
from tests.support.anthropic_upstream import TEXT, AnthropicUpstream
from tests.support.journal_helpers import wait_for_record
from tests.support.upstream_server import UPSTREAM_KEY, UpstreamServer

# -- openai caller, anthropic upstream: translated ---------------------------------------------


async def test_openai_sdk_on_an_anthropic_client(
    gateway: TestServer,
    claude_tenant: Tenant,
    claude_upstream: tuple[AnthropicUpstream, str],
    redis: Redis,
) -> None:
    behaviour, _ = claude_upstream
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
    gateway: TestServer, claude_tenant: Tenant, claude_upstream: tuple[AnthropicUpstream, str]
) -> None:
    behaviour, _ = claude_upstream
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


# -- streams that pause, break or fail; model listing -------------------------------------------


async def test_translated_streams_relay_the_first_event_before_the_upstream_finishes(
    gateway: TestServer,
    claude_tenant: Tenant,
    claude_upstream: tuple[AnthropicUpstream, str],
    tenant: Tenant,
    upstream_server: UpstreamServer,
) -> None:
    behaviour, _ = claude_upstream
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
    gateway: TestServer, claude_tenant: Tenant, claude_upstream: tuple[AnthropicUpstream, str]
) -> None:
    async with openai.AsyncOpenAI(**openai_kwargs(gateway, claude_tenant)) as sdk:
        models = await sdk.models.list()
    assert [(m.id, m.owned_by, m.created) for m in models.data] == [
        ("claude-test", "anthropic", 1735689600)
    ]
    seen = claude_upstream[0].seen[-1]
    assert (seen.path, seen.headers["x-api-key"]) == ("/v1/models", UPSTREAM_KEY)
