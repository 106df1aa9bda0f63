"""`gateway.usage`: one reader for every usage shape (pure, no Redis)."""

from __future__ import annotations

import orjson
import pytest

from gateway.usage import Usage, merge_stream_usage, parse_usage, usage_in_bytes, usage_of_event

SHAPES = [
    pytest.param(
        {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
        Usage(7, 3),
        id="chat",
    ),
    pytest.param(
        {
            "prompt_tokens": 100,
            "completion_tokens": 50,
            "total_tokens": 150,
            "prompt_tokens_details": {"cached_tokens": 64},
            "completion_tokens_details": {"reasoning_tokens": 20},
        },
        Usage(100, 50, cached_input_tokens=64, reasoning_tokens=20),
        id="chat-details",
    ),
    pytest.param({"prompt_tokens": 8, "total_tokens": 8}, Usage(8, 0), id="embeddings"),
    pytest.param(
        {
            "input_tokens": 3,
            "output_tokens": 4,
            "total_tokens": 7,
            "input_tokens_details": {"cached_tokens": 1},
            "output_tokens_details": {"reasoning_tokens": 2},
        },
        Usage(3, 4, cached_input_tokens=1, reasoning_tokens=2),
        id="responses",
    ),
    pytest.param(
        {
            "input_tokens": 10,
            "output_tokens": 5,
            "cache_read_input_tokens": 30,
            "cache_creation_input_tokens": 2,
        },
        Usage(42, 5, cached_input_tokens=30, cache_creation_input_tokens=2),
        id="anthropic-cache",
    ),
    pytest.param({"input_tokens": 10, "output_tokens": 5}, Usage(10, 5), id="anthropic"),
]


@pytest.mark.parametrize(("raw", "expected"), SHAPES)
def test_every_shape_reads_into_one_usage(raw: dict[str, object], expected: Usage) -> None:
    assert parse_usage(raw) == expected
    body = orjson.dumps({"id": "x", "usage": raw})
    assert usage_in_bytes(body) == expected


@pytest.mark.parametrize(
    "raw", [None, 5, "x", [], {}, {"prompt_tokens": True}, {"input_tokens": -1}, {"foo": 1}]
)
def test_what_is_not_usage_is_none(raw: object) -> None:
    parsed = parse_usage(raw)
    assert parsed is None or parsed == Usage(0, 0)


def test_record_shape_keeps_details_only_when_reported() -> None:
    assert Usage(1, 2).to_record() == {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3}
    assert Usage(1, 2, cached_input_tokens=1).to_record()["cached_input_tokens"] == 1


def test_stream_tail_skips_a_later_null_usage() -> None:
    tail = (
        b'data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":4}}\n\n'
        b'data: {"choices":[{"delta":{}}],"usage":null}\n\n'
    )
    assert usage_in_bytes(tail) == Usage(7, 4)


def test_responses_completed_event_and_anthropic_stream_usage() -> None:
    completed = {"type": "response.completed", "response": {"usage": {"input_tokens": 3}}}
    assert usage_of_event(completed) == Usage(3, 0)
    start = usage_of_event({"type": "message_start", "message": {"usage": {"input_tokens": 9}}})
    delta = usage_of_event({"type": "message_delta", "usage": {"output_tokens": 12}})
    assert merge_stream_usage(start, delta) == Usage(9, 12)


def test_usages_add_up_over_managed_hops() -> None:
    total = Usage(1, 2) + Usage(3, 4, cached_input_tokens=1)
    assert total == Usage(4, 6, cached_input_tokens=1)
