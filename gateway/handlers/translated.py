"""Handlers that serve one API by translating to and from another provider's handler.

    messages_over_chat(chat)     Anthropic caller (`/v1/messages`) -> an OpenAI-format handler
    chat_over_messages(messages) OpenAI caller (`/v1/chat/completions`) -> an Anthropic handler

A wrapper translates the request (`gateway.translate`, a 400 naming any field it cannot map),
calls the wrapped handler with it, and translates whatever that handler returned: a JSON payload,
an `UpstreamReply` (JSON, SSE, or the upstream's API error, whose status is kept and whose body is
put in the caller's shape) or an `EventStream`. Streams are translated event by event as they
arrive, so the caller's first event leaves before the upstream has finished. The pipeline meters
and journals the translated reply like any other.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from aiohttp import web

from gateway.auth import UserProfile
from gateway.errors import UpstreamError
from gateway.exchange import exchange_of
from gateway.protocols import (
    EventStream,
    OpenAICompatibleChatCompletionResponseType,
    OpenAICompatiblePassthroughProtocol,
)
from gateway.translate.anthropic_errors import (
    anthropic_error_from_openai,
    openai_error_from_anthropic,
)
from gateway.translate.reply_from_anthropic import ChatChunksFromAnthropic, to_chat_completion
from gateway.translate.reply_from_openai import AnthropicEventsFromChat, to_anthropic_message
from gateway.translate.request_to_anthropic import to_anthropic_request
from gateway.translate.request_to_openai import to_openai_request
from gateway.translate.sse import SSEParser
from gateway.upstream.reply import UpstreamReply

Result = OpenAICompatibleChatCompletionResponseType


def _not_json(what: str) -> UpstreamError:
    return UpstreamError(f"the upstream sent {what} that is not JSON", code="upstream_bad_response")


async def _events_of(result: Result) -> AsyncIterator[dict[str, Any]]:
    """The JSON events of a streamed result, parsed as they arrive (`[DONE]` ends it)."""
    if isinstance(result, UpstreamReply):
        chunks: AsyncIterator[Any] = result.chunks()
    else:
        assert not isinstance(result, dict | web.StreamResponse)
        chunks = result
    parser = SSEParser()
    async for item in chunks:
        if isinstance(item, dict):
            yield item
            continue
        for event in parser.feed(item):
            if event.data.strip() == "[DONE]":
                return
            try:
                value = event.json()
            except orjson.JSONDecodeError as exc:
                raise _not_json("a stream event") from exc
            if isinstance(value, dict):
                yield value


async def _json_of(result: Result) -> dict[str, Any]:
    if isinstance(result, dict):
        return result
    if isinstance(result, UpstreamReply):
        return await result.json_object()
    if isinstance(result, web.Response) and isinstance(result.body, bytes):
        try:
            value = orjson.loads(result.body)
        except orjson.JSONDecodeError as exc:
            raise _not_json("a reply") from exc
        if isinstance(value, dict):
            return value
    raise UpstreamError("the provider's reply cannot be translated", code="upstream_untranslatable")


async def _error_reply(
    request: web.Request, result: Result, convert: Callable[[int, bytes], dict[str, Any] | None]
) -> web.Response | None:
    """An upstream API error in the caller's shape (status kept), or None when `result` is not
    an error. An error body in neither shape is a 502, as on every route."""
    if isinstance(result, UpstreamReply) and result.status >= 400:
        status, body = result.status, await result.read()
    elif isinstance(result, web.Response) and result.status >= 400:
        status = result.status
        body = result.body if isinstance(result.body, bytes) else b""
    else:
        return None
    exchange = exchange_of(request)
    exchange.upstream_finished()
    converted = convert(status, body)
    if converted is None:
        raise UpstreamError(
            f"the upstream provider answered {status} without an API error body",
            code="upstream_bad_response",
        )
    exchange.ended("upstream_error")
    return web.json_response(converted, status=status, dumps=lambda o: orjson.dumps(o).decode())


def _stream_failed(request: web.Request, kind: str, message: str) -> None:
    """The upstream ended its stream with an error event: the journal says so."""
    error = {"message": message, "type": kind, "param": None, "code": "upstream_stream_error"}
    exchange_of(request).ended("upstream_error", error)


def _close(result: Result) -> None:
    if isinstance(result, UpstreamReply):
        result.close()


def _is_stream(result: Result) -> bool:
    if isinstance(result, UpstreamReply):
        return result.is_event_stream
    return not isinstance(result, dict | web.StreamResponse)


def messages_over_chat(
    chat: OpenAICompatiblePassthroughProtocol,
) -> OpenAICompatiblePassthroughProtocol:
    """Serve `/v1/messages` with an OpenAI chat handler."""

    async def messages(
        request: web.Request, user_profile: UserProfile, data: dict[str, Any]
    ) -> Result:
        body = to_openai_request(data)
        result = await chat(request, user_profile, body)
        streaming = False
        try:
            error = await _error_reply(request, result, anthropic_error_from_openai)
            if error is not None:
                return error
            if _is_stream(result):
                streaming = True  # the stream closes the reply when it ends
                return _anthropic_events(request, result, str(body["model"]))
            return to_anthropic_message(await _json_of(result))
        finally:
            if not streaming:
                _close(result)

    return messages


async def _anthropic_events(request: web.Request, result: Result, model: str) -> EventStream:
    translator = AnthropicEventsFromChat(model)
    try:
        async for chunk in _events_of(result):
            for name, event in translator.feed(chunk):
                if name == "error":
                    _stream_failed(request, event["error"]["type"], event["error"]["message"])
                yield event
        exchange_of(request).upstream_finished()
        for _, event in translator.finish():
            yield event
    finally:
        _close(result)


def chat_over_messages(
    messages: OpenAICompatiblePassthroughProtocol,
) -> OpenAICompatiblePassthroughProtocol:
    """Serve `/v1/chat/completions` with an Anthropic Messages handler."""

    async def chat(request: web.Request, user_profile: UserProfile, data: dict[str, Any]) -> Result:
        body = to_anthropic_request(data)
        options = data.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        result = await messages(request, user_profile, body)
        streaming = False
        try:
            error = await _error_reply(
                request, result, lambda status, raw: openai_error_from_anthropic(raw)
            )
            if error is not None:
                return error
            if _is_stream(result):
                streaming = True
                return _chat_chunks(request, result, include_usage)
            return to_chat_completion(await _json_of(result), int(time.time()))
        finally:
            if not streaming:
                _close(result)

    return chat


async def _chat_chunks(request: web.Request, result: Result, include_usage: bool) -> EventStream:
    translator = ChatChunksFromAnthropic(int(time.time()), include_usage=include_usage)
    try:
        async for event in _events_of(result):
            for chunk in translator.feed(event):
                if isinstance(chunk.get("error"), dict):
                    _stream_failed(request, chunk["error"]["type"], chunk["error"]["message"])
                yield chunk
        exchange_of(request).upstream_finished()
    finally:
        _close(result)
