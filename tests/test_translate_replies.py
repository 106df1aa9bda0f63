"""Reply translation both ways: messages, stream event sequences, usage, errors, SSE framing."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import orjson
import pytest

from gateway import errors
from gateway.translate.mapping import FINISH_REASONS, STOP_REASONS
from gateway.translate.reply_from_anthropic import ChatChunksFromAnthropic, to_chat_completion
from gateway.translate.reply_from_openai import AnthropicEventsFromChat, to_anthropic_message
from tests.support.anthropic_upstream import USAGE, message_events
from tests.support.upstream_server import completion, stream_chunks

Event = tuple[str, dict[str, Any]]


def claude_message(content: list[dict[str, Any]], stop: str = "end_turn") -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "content": content,
        "model": "claude-test",
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {**USAGE, "output_tokens": 4},
    }


TOOL_USE = {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}}
THINKING = {"type": "thinking", "thinking": "Hmm.", "signature": "sig"}
TEXT = {"type": "text", "text": "Hello from Claude"}
#: USAGE (11 new, 5 cache creation, 3 cache read) and 4 output tokens, in OpenAI's terms.
OPENAI_USAGE = {
    "prompt_tokens": 19,
    "completion_tokens": 4,
    "total_tokens": 23,
    "prompt_tokens_details": {"cached_tokens": 3},
    "cache_read_input_tokens": 3,
    "cache_creation_input_tokens": 5,
}


def test_message_to_chat_completion() -> None:
    reply = to_chat_completion(claude_message([THINKING, TEXT, TOOL_USE], "tool_use"), 1700)
    openai.types.chat.ChatCompletion.model_validate(reply)
    assert reply == {
        "id": "msg_1",
        "object": "chat.completion",
        "created": 1700,
        "model": "claude-test",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hello from Claude",
                    "refusal": None,
                    "reasoning_content": "Hmm.",
                    "tool_calls": [
                        {
                            "id": "toolu_1",
                            "type": "function",
                            "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
                        }
                    ],
                },
                "logprobs": None,
                "finish_reason": "tool_calls",
            }
        ],
        "usage": OPENAI_USAGE,
    }
    only_tools = to_chat_completion(claude_message([TOOL_USE], "tool_use"), 1)
    assert only_tools["choices"][0]["message"]["content"] is None


@pytest.mark.parametrize(("stop", "finish"), sorted(FINISH_REASONS.items()))
def test_stop_reason_to_finish_reason(stop: str, finish: str) -> None:
    reply = to_chat_completion(claude_message([TEXT], stop), 1)
    assert reply["choices"][0]["finish_reason"] == finish


def test_server_tool_blocks_are_an_upstream_error() -> None:
    with pytest.raises(errors.UpstreamError) as caught:
        to_chat_completion(claude_message([{"type": "server_tool_use", "id": "s"}]), 1)
    assert caught.value.status == 502
    assert "server_tool_use" in caught.value.message


def chunks_of(events: list[Event], *, include_usage: bool) -> list[dict[str, Any]]:
    translator = ChatChunksFromAnthropic(1700, include_usage=include_usage)
    chunks = [chunk for _, data in events for chunk in translator.feed(data)]
    assert translator.done
    return chunks


def test_anthropic_stream_to_chat_chunks() -> None:
    message = claude_message([THINKING, TEXT, TOOL_USE], "tool_use")
    events = message_events(message)
    assert [name for name, _ in events] == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        *["content_block_delta"] * 3,
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    chunks = chunks_of(events, include_usage=True)
    for chunk in chunks:
        openai.types.chat.ChatCompletionChunk.model_validate(chunk)
    deltas = [chunk["choices"][0]["delta"] for chunk in chunks if chunk["choices"]]
    assert deltas == [
        {"role": "assistant", "content": ""},
        {"reasoning_content": "Hmm."},
        {"content": "Hello "},
        {"content": "from "},
        {"content": "Claude"},
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": ""},
                }
            ]
        },
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]},
        {},
    ]
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == OPENAI_USAGE
    assert {chunk["id"] for chunk in chunks} == {"msg_1"}
    assert chunks_of(events, include_usage=False) == chunks[:-1]


def test_anthropic_stream_error_event_becomes_an_openai_error_chunk() -> None:
    events = message_events(claude_message([TEXT]))[:1]
    events.append(
        ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    )
    chunks = chunks_of(events, include_usage=False)
    assert chunks[-1] == {
        "error": {
            "message": "Overloaded",
            "type": "overloaded_error",
            "param": None,
            "code": "overloaded_error",
        }
    }


def test_completion_to_anthropic_message() -> None:
    reply = completion("gpt-test")
    reply["usage"]["prompt_tokens_details"] = {"cached_tokens": 2}
    message = to_anthropic_message(reply)
    anthropic.types.Message.model_validate(message)
    assert message == {
        "id": "chatcmpl-upstream-1",
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": "Hello from upstream"}],
        "model": "gpt-test-2024",
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 5,
            "output_tokens": 3,
            "cache_read_input_tokens": 2,
            "cache_creation_input_tokens": 0,
        },
    }
    call: dict[str, Any] = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
    }
    reply["choices"][0]["message"] = {"role": "assistant", "content": None, "tool_calls": [call]}
    reply["choices"][0]["finish_reason"] = "tool_calls"
    message = to_anthropic_message(reply)
    assert message["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Paris"}}
    ]
    assert message["stop_reason"] == "tool_use"
    call["function"]["arguments"] = "not json"
    with pytest.raises(errors.UpstreamError):
        to_anthropic_message(reply)
    with pytest.raises(errors.UpstreamError):
        to_anthropic_message({"choices": []})


@pytest.mark.parametrize(("finish", "stop"), sorted(STOP_REASONS.items()))
def test_finish_reason_to_stop_reason(finish: str, stop: str) -> None:
    reply = completion("m")
    reply["choices"][0]["finish_reason"] = finish
    assert to_anthropic_message(reply)["stop_reason"] == stop


def events_of(chunks: list[dict[str, Any]]) -> list[Event]:
    translator = AnthropicEventsFromChat("gpt-test")
    events = [event for chunk in chunks for event in translator.feed(chunk)]
    return events + translator.finish()


def test_chat_chunks_to_the_anthropic_event_sequence() -> None:
    raw = stream_chunks("gpt-test", ["Hello", " there"], usage=True)
    chunks = [orjson.loads(line[6:]) for line in raw[:-1]]
    events = events_of(chunks)
    assert [name for name, _ in events] == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = events[0][1]["message"]
    anthropic.types.Message.model_validate(start)
    assert start["usage"] == {"input_tokens": 0, "output_tokens": 0}
    assert [e[1]["delta"]["text"] for e in events if e[0] == "content_block_delta"] == [
        "Hello",
        " there",
    ]
    assert events[-2][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {
            "input_tokens": 7,
            "output_tokens": 2,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
        },
    }


def tool_chunks() -> list[dict[str, Any]]:
    base = {
        "id": "chatcmpl-t",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-test",
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    def call(index: int, **fields: Any) -> dict[str, Any]:
        return {"tool_calls": [{"index": index, **fields}]}

    return [
        chunk({"role": "assistant", "reasoning_content": "Plan."}),
        chunk({"content": "Let me check."}),
        chunk(call(0, id="call_a", type="function", function={"name": "weather", "arguments": ""})),
        chunk(call(0, function={"arguments": '{"city":'})),
        chunk(call(1, id="call_b", type="function", function={"name": "time", "arguments": "{}"})),
        chunk(call(0, function={"arguments": '"Paris"}'})),
        chunk({}, "tool_calls"),
        {
            **base,
            "choices": [],
            "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13},
        },
    ]


def test_chat_tool_call_chunks_to_tool_use_blocks() -> None:
    events = events_of(tool_chunks())
    summary = [
        (
            name,
            data.get("index"),
            (data.get("delta") or data.get("content_block") or {}).get("type"),
        )
        for name, data in events
    ]
    assert summary == [
        ("message_start", None, None),
        ("content_block_start", 0, "thinking"),
        ("ping", None, None),
        ("content_block_delta", 0, "thinking_delta"),
        ("content_block_stop", 0, None),
        ("content_block_start", 1, "text"),
        ("content_block_delta", 1, "text_delta"),
        ("content_block_stop", 1, None),
        ("content_block_start", 2, "tool_use"),
        ("content_block_delta", 2, "input_json_delta"),
        ("content_block_stop", 2, None),
        ("content_block_start", 3, "tool_use"),
        ("content_block_delta", 3, "input_json_delta"),
        ("content_block_delta", 2, "input_json_delta"),  # a late fragment of the first call
        ("content_block_stop", 3, None),
        ("message_delta", None, None),
        ("message_stop", None, None),
    ]
    assert events[8][1]["content_block"] == {
        "type": "tool_use",
        "id": "call_a",
        "name": "weather",
        "input": {},
    }
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_stream_round_trip_keeps_text_tools_stop_and_usage() -> None:
    """Anthropic events -> chat chunks -> Anthropic events: the same message comes out."""
    message = claude_message([TEXT, TOOL_USE], "tool_use")
    chunks = chunks_of(message_events(message), include_usage=True)
    events = events_of(chunks)
    text = "".join(d["delta"].get("text", "") for n, d in events if n == "content_block_delta")
    arguments = "".join(
        d["delta"].get("partial_json", "") for n, d in events if n == "content_block_delta"
    )
    assert text == "Hello from Claude"
    assert orjson.loads(arguments) == {"city": "Paris"}
    final = events[-2][1]
    assert final["delta"]["stop_reason"] == "tool_use"
    # Cache creation folds into input on the OpenAI side, so it comes back as new input.
    assert final["usage"] == {
        "input_tokens": 16,
        "output_tokens": 4,
        "cache_read_input_tokens": 3,
        "cache_creation_input_tokens": 0,
    }


def test_openai_error_chunk_becomes_an_anthropic_error_event() -> None:
    events = events_of([{"error": {"message": "broke", "type": "api_error"}}])
    assert events == [
        ("error", {"type": "error", "error": {"type": "api_error", "message": "broke"}})
    ]


def test_empty_stream_still_makes_a_whole_sequence() -> None:
    assert [name for name, _ in events_of([])] == ["message_start", "message_delta", "message_stop"]
