"""The translators' output, served on loopback, is what each official SDK expects: the
`anthropic` SDK accumulates translated events into the right message, the `openai` SDK reads
translated chunks and completions."""

from __future__ import annotations

import time
from typing import Any

import anthropic
import openai
import orjson
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.translate.reply_from_anthropic import ChatChunksFromAnthropic, to_chat_completion
from gateway.translate.reply_from_openai import AnthropicEventsFromChat, to_anthropic_message
from gateway.translate.sse import DONE, encode_data, encode_event
from tests.conftest import AiohttpServer
from tests.support.anthropic_upstream import USAGE, message_events
from tests.support.upstream_server import completion
from tests.test_translate_replies import TOOL_USE, claude_message, tool_chunks

HI: Any = [{"role": "user", "content": "Hi"}]


async def sse(request: web.Request, events: list[bytes]) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for event in events:
        await response.write(event)
    await response.write_eof()
    return response


async def translated_messages(request: web.Request) -> web.StreamResponse:
    """Anthropic's API, answered by translating OpenAI replies."""
    data = await request.json()
    if not data.get("stream"):
        return web.json_response(to_anthropic_message(completion("gpt-test")))
    translator = AnthropicEventsFromChat("gpt-test")
    events = [e for chunk in tool_chunks() for e in translator.feed(chunk)] + translator.finish()
    return await sse(request, [encode_event(name, body) for name, body in events])


async def translated_chat(request: web.Request) -> web.StreamResponse:
    """OpenAI's API, answered by translating Anthropic replies."""
    data = await request.json()
    message = claude_message([{"type": "text", "text": "Hello from Claude"}, TOOL_USE], "tool_use")
    if not data.get("stream"):
        return web.json_response(to_chat_completion(message, int(time.time())))
    include = (data.get("stream_options") or {}).get("include_usage") is True
    translator = ChatChunksFromAnthropic(int(time.time()), include_usage=include)
    chunks = [c for _, event in message_events(message) for c in translator.feed(event)]
    return await sse(request, [encode_data(chunk) for chunk in chunks] + [DONE])


async def serve(aiohttp_server: AiohttpServer) -> TestServer:
    app = web.Application()
    app.router.add_post("/v1/messages", translated_messages)
    app.router.add_post("/v1/chat/completions", translated_chat)
    return await aiohttp_server(app)


async def test_anthropic_sdk_reads_translated_openai_replies(aiohttp_server: AiohttpServer) -> None:
    server = await serve(aiohttp_server)
    options: Any = {"base_url": str(server.make_url("")), "api_key": "k", "max_retries": 0}
    async with anthropic.AsyncAnthropic(**options) as sdk:
        message = await sdk.messages.create(model="gpt-test", max_tokens=5, messages=HI)
        async with sdk.messages.stream(model="gpt-test", max_tokens=5, messages=HI) as stream:
            final = await stream.get_final_message()
    block = message.content[0]
    assert block.type == "text"
    assert block.text == "Hello from upstream"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (7, 3)
    assert [block.type for block in final.content] == ["thinking", "text", "tool_use", "tool_use"]
    calls = [(b.name, b.input) for b in final.content if b.type == "tool_use"]
    assert calls == [("weather", {"city": "Paris"}), ("time", {})]
    assert final.stop_reason == "tool_use"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (9, 4)


async def test_openai_sdk_reads_translated_anthropic_replies(aiohttp_server: AiohttpServer) -> None:
    server = await serve(aiohttp_server)
    async with openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key="k") as sdk:
        reply = await sdk.chat.completions.create(model="claude-test", messages=HI)
        stream = await sdk.chat.completions.create(
            model="claude-test", messages=HI, stream=True, stream_options={"include_usage": True}
        )
        chunks = [chunk async for chunk in stream]
    assert reply.choices[0].message.content == "Hello from Claude"
    calls = reply.choices[0].message.tool_calls or []
    assert [(c.function.name, orjson.loads(c.function.arguments)) for c in calls] == [  # type: ignore[union-attr]
        ("weather", {"city": "Paris"})
    ]
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == sum(USAGE.values())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    arguments = "".join(
        call.function.arguments or ""
        for c in chunks
        if c.choices
        for call in c.choices[0].delta.tool_calls or []
        if call.function is not None
    )
    assert text == "Hello from Claude"
    assert orjson.loads(arguments) == {"city": "Paris"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 4
