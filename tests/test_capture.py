"""Stream capture and assembly for every OpenAI stream shape, and the usage-chunk filter (pure)."""

from __future__ import annotations

from typing import Any

import orjson

from gateway.journal.capture import StreamCapture, UsageChunkFilter, assemble_stream
from gateway.relay import frame
from gateway.usage import Usage


def _capture(events: list[Any], *, typed: bool = False, limit: int = 1 << 20) -> Any:
    capture = StreamCapture(limit)
    for event in events:
        capture.add(frame(event, typed))
    if not typed:
        capture.add(b"data: [DONE]\n\n")
    return capture


def test_chat_stream_text_tool_calls_usage_and_hidden_chunk() -> None:
    events = [
        {"model": "m-1", "choices": [{"index": 0, "delta": {"role": "assistant"}}]},
        {"choices": [{"index": 0, "delta": {"content": "Hel"}}]},
        {"choices": [{"index": 0, "delta": {"content": "lo"}}]},
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {"index": 0, "id": "c1", "function": {"name": "f", "arguments": "{"}}
                        ]
                    },
                }
            ]
        },
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]},
                }
            ]
        },
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2}},
    ]
    assembled = assemble_stream(_capture(events), usage_hidden=True)
    assert assembled.text == "Hello"
    assert assembled.tool_calls[0]["function"] == {"name": "f", "arguments": "{}"}
    assert assembled.usage == Usage(5, 2)
    assert (assembled.chunks, assembled.model, assembled.finish_reason) == (6, "m-1", "stop")
    assert assemble_stream(_capture(events), usage_hidden=False).chunks == 7


def test_completions_stream_text() -> None:
    events = [
        {"choices": [{"index": 0, "text": " wor"}]},
        {"choices": [{"index": 0, "text": "ld", "finish_reason": "stop"}]},
        {"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1}},
    ]
    assembled = assemble_stream(_capture(events))
    assert (assembled.text, assembled.usage) == (" world", Usage(1, 1))


def test_responses_stream_typed_events() -> None:
    final = {
        "model": "gpt-x",
        "status": "completed",
        "usage": {"input_tokens": 3, "output_tokens": 4},
    }
    events = [
        {"type": "response.created", "response": {"model": "gpt-x", "status": "in_progress"}},
        {"type": "response.output_text.delta", "delta": "Hi "},
        {"type": "response.output_text.delta", "delta": "there"},
        {"type": "response.completed", "response": final},
    ]
    assembled = assemble_stream(_capture(events, typed=True))
    assert (assembled.text, assembled.usage, assembled.finish_reason) == (
        "Hi there",
        Usage(3, 4),
        "completed",
    )
    assert assembled.chunks == 4


def test_truncated_capture_still_counts_chunks() -> None:
    events = [{"choices": [{"index": 0, "delta": {"content": "x" * 50}}]} for _ in range(10)]
    capture = _capture(events, limit=200)
    assert capture.truncated
    assert assemble_stream(capture).chunks == 10


def test_usage_filter_drops_only_the_usage_chunk_across_split_reads() -> None:
    usage = b'data: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1}}\n\n'
    content = b'data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n'
    whole = content + usage + b"data: [DONE]\n\n"
    out = UsageChunkFilter()
    sent = b"".join(out.feed(whole[i : i + 7]) for i in range(0, len(whole), 7)) + out.flush()
    assert sent == content + b"data: [DONE]\n\n"
    assert orjson.loads(content[6:])["choices"][0]["delta"]["content"] == "a"
