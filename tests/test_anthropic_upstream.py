"""The Anthropic test upstream speaks the API the way the official `anthropic` SDK expects:
the SDK (async, sync, stream) parses its messages, event sequences and errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import pytest
from aiohttp.test_utils import TestServer

from tests.conftest import AiohttpServer
from tests.support.anthropic_upstream import (
    ERROR_TYPES,
    REQUEST_ID,
    SIGNATURE,
    TEXT,
    THOUGHT,
    AnthropicUpstream,
)
from tests.support.upstream_server import UPSTREAM_KEY

HI: list[Any] = [{"role": "user", "content": "Hi there"}]
WEATHER: Any = {
    "name": "weather",
    "description": "Weather by city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.fixture
async def claude(
    aiohttp_server: AiohttpServer,
) -> AsyncIterator[tuple[AnthropicUpstream, TestServer]]:
    behaviour = AnthropicUpstream()
    server = await aiohttp_server(behaviour.app())
    yield behaviour, server
    behaviour.release()


def sdk_options(server: TestServer, key: str = UPSTREAM_KEY) -> dict[str, Any]:
    return {"base_url": str(server.make_url("")), "api_key": key, "max_retries": 0, "timeout": 10.0}


async def test_async_sdk_message_and_headers(claude: tuple[AnthropicUpstream, TestServer]) -> None:
    behaviour, server = claude
    async with anthropic.AsyncAnthropic(**sdk_options(server)) as sdk:
        message = await sdk.messages.create(model="claude-test", max_tokens=50, messages=HI)
    assert message.content[0].type == "text"
    assert message.content[0].text == TEXT
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 11
    assert message.usage.cache_creation_input_tokens == 5
    assert message.usage.cache_read_input_tokens == 3
    seen = behaviour.seen[-1]
    assert seen.headers["Authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert seen.headers["anthropic-version"]


async def test_sync_sdk_and_count_tokens(claude: tuple[AnthropicUpstream, TestServer]) -> None:
    _, server = claude

    def call() -> tuple[str, int]:
        with anthropic.Anthropic(**sdk_options(server)) as sdk:
            message = sdk.messages.create(model="claude-test", max_tokens=50, messages=HI)
            count = sdk.messages.count_tokens(model="claude-test", messages=HI, system="Be brief")
        block = message.content[0]
        assert block.type == "text"
        return block.text, count.input_tokens

    assert await asyncio.to_thread(call) == (TEXT, 4)


async def test_stream_event_sequence(claude: tuple[AnthropicUpstream, TestServer]) -> None:
    _, server = claude
    async with anthropic.AsyncAnthropic(**sdk_options(server)) as sdk:
        stream = await sdk.messages.create(model="thinker", max_tokens=50, messages=HI, stream=True)
        kinds = []
        async for event in stream:
            if event.type == "content_block_delta":
                kinds.append(f"{event.type}:{event.delta.type}")
            else:
                kinds.append(event.type)
        async with sdk.messages.stream(model="thinker", max_tokens=50, messages=HI) as helper:
            texts = [text async for text in helper.text_stream]
            final = await helper.get_final_message()
    assert kinds == [
        "message_start",
        "content_block_start",
        "content_block_delta:thinking_delta",
        "content_block_delta:signature_delta",
        "content_block_stop",
        "content_block_start",
        *["content_block_delta:text_delta"] * 3,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]  # the SDK swallows `ping`; the raw bytes carry it (test_translate_replies checks them)
    assert "".join(texts) == TEXT
    thinking = final.content[0]
    assert thinking.type == "thinking"
    assert (thinking.thinking, thinking.signature) == (THOUGHT, SIGNATURE)
    assert final.usage.output_tokens == 9
    assert final.usage.cache_read_input_tokens == 3


async def test_tool_use_stream_and_results(claude: tuple[AnthropicUpstream, TestServer]) -> None:
    _, server = claude
    async with anthropic.AsyncAnthropic(**sdk_options(server)) as sdk:
        async with sdk.messages.stream(
            model="tool-caller", max_tokens=50, messages=HI, tools=[WEATHER]
        ) as stream:
            first = await stream.get_final_message()
        call = first.content[0]
        assert call.type == "tool_use"
        assert (call.name, call.input) == ("weather", {"city": "Paris"})
        assert first.stop_reason == "tool_use"
        result: Any = {"type": "tool_result", "tool_use_id": call.id, "content": "21 C"}
        answer = await sdk.messages.create(
            model="tool-caller",
            max_tokens=50,
            tools=[WEATHER],
            messages=[
                *HI,
                {"role": "assistant", "content": first.content},
                {"role": "user", "content": [result]},
            ],
        )
    block = answer.content[0]
    assert block.type == "text"
    assert block.text == "answer: 21 C"


@pytest.mark.parametrize(
    ("status", "exception"),
    [
        (400, anthropic.BadRequestError),
        (401, anthropic.AuthenticationError),
        (403, anthropic.PermissionDeniedError),
        (404, anthropic.NotFoundError),
        (413, anthropic.APIStatusError),
        (429, anthropic.RateLimitError),
        (500, anthropic.InternalServerError),
        (529, anthropic.InternalServerError),
    ],
)
async def test_errors_raise_the_sdk_exceptions(
    claude: tuple[AnthropicUpstream, TestServer], status: int, exception: type[Exception]
) -> None:
    _, server = claude
    async with anthropic.AsyncAnthropic(**sdk_options(server)) as sdk:
        with pytest.raises(exception) as caught:
            await sdk.messages.create(model=f"error-{status}", max_tokens=5, messages=HI)
    error = caught.value
    assert isinstance(error, anthropic.APIStatusError)
    assert error.status_code == status
    assert error.request_id == REQUEST_ID
    assert isinstance(error.body, dict)
    assert error.body["error"]["type"] == ERROR_TYPES[status]


async def test_wrong_key_and_bad_bodies(claude: tuple[AnthropicUpstream, TestServer]) -> None:
    _, server = claude
    async with anthropic.AsyncAnthropic(**sdk_options(server, key="wrong")) as sdk:
        with pytest.raises(anthropic.AuthenticationError):
            await sdk.messages.create(model="m", max_tokens=5, messages=HI)
    async with anthropic.AsyncAnthropic(**sdk_options(server)) as sdk:
        with pytest.raises(anthropic.BadRequestError) as caught:
            await sdk.messages.create(
                model="m", max_tokens=5, messages=HI, extra_headers={"anthropic-version": ""}
            )
        assert "anthropic-version" in caught.value.message
        with pytest.raises(anthropic.BadRequestError) as caught:
            await sdk.post("/v1/messages", body={"model": "m", "messages": HI}, cast_to=object)
        assert "max_tokens" in caught.value.message


async def test_stream_error_event(claude: tuple[AnthropicUpstream, TestServer]) -> None:
    _, server = claude
    async with anthropic.AsyncAnthropic(**sdk_options(server)) as sdk:
        stream = await sdk.messages.create(
            model="stream-error", max_tokens=5, messages=HI, stream=True
        )
        with pytest.raises(anthropic.APIStatusError) as caught:
            async for _ in stream:
                pass
    assert "Overloaded" in str(caught.value)
