"""Whatever JSON a caller or an upstream sends, a translator answers with a translation or a
gateway error (400 for a request, 502 for a reply), never another exception (a 500)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gateway.errors import GatewayError, InvalidRequestError
from gateway.translate.reply_from_anthropic import ChatChunksFromAnthropic, to_chat_completion
from gateway.translate.reply_from_openai import AnthropicEventsFromChat, to_anthropic_message
from gateway.translate.request_to_anthropic import to_anthropic_request
from gateway.translate.request_to_openai import to_openai_request

#: Keys either API uses, so generated objects hit the translators' branches, not just refusals.
KEYS = st.sampled_from(
    [
        "model", "messages", "role", "content", "type", "text", "tool_calls", "tool_call_id",
        "function", "name", "arguments", "id", "tools", "tool_choice", "parameters", "stream",
        "stream_options", "include_usage", "max_tokens", "max_completion_tokens", "temperature",
        "top_p", "stop", "user", "reasoning_effort", "response_format", "json_schema", "schema",
        "image_url", "url", "detail", "file", "file_data", "system", "metadata", "user_id",
        "stop_sequences", "thinking", "budget_tokens", "output_config", "effort", "input",
        "input_schema", "tool_use_id", "is_error", "source", "media_type", "data",
        "disable_parallel_tool_use", "parallel_tool_calls", "index", "delta", "choices",
        "usage", "message", "content_block", "partial_json", "stop_reason", "finish_reason",
        "error", "thinking", "reasoning_content", "cache_control", "strict",
    ]
)  # fmt: skip
WORDS = st.sampled_from(
    [
        "user", "assistant", "system", "developer", "tool", "text", "image_url", "image",
        "tool_use", "tool_result", "function", "auto", "none", "required", "any", "enabled",
        "disabled", "json_schema", "base64", "url", "message_start", "content_block_start",
        "content_block_delta", "message_delta", "message_stop", "text_delta",
        "input_json_delta", "thinking_delta", "low", "high", "data:image/png;base64,aGk=",
        "https://x.test/a.png", "{}", '{"a": 1}', "end_turn", "tool_calls", "error", "ping",
    ]
)  # fmt: skip
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-5, 70000)
    | st.floats(-3, 3)
    | WORDS
    | st.text(max_size=5)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=20,
)
OBJECTS = st.dictionaries(KEYS, JSON, max_size=8)

#: A hundred examples each keeps the run short on a shared machine.
T = TypeVar("T")

EXAMPLES = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def attempt(translate: Callable[..., T], *args: Any) -> T | GatewayError:
    """What `translate` returned, or the gateway error it raised (anything else propagates)."""
    try:
        return translate(*args)
    except GatewayError as exc:
        return exc


def refused_properly(result: object, status: int) -> bool:
    """A gateway error with that status (a 400 names its field)."""
    return (
        isinstance(result, GatewayError)
        and result.status == status
        and (status != 400 or bool(result.param))
    )


@EXAMPLES
@given(extra=OBJECTS, messages=st.lists(OBJECTS, min_size=1, max_size=4))
def test_openai_requests_translate_or_are_refused(
    extra: dict[str, Any], messages: list[dict[str, Any]]
) -> None:
    data = {"model": "m", **extra, "messages": messages}
    result = attempt(to_anthropic_request, data)
    if isinstance(result, dict):
        assert isinstance(result["max_tokens"], int)
        assert isinstance(result["messages"], list)
    else:
        assert refused_properly(result, 400), result
        assert isinstance(result, InvalidRequestError)


@EXAMPLES
@given(extra=OBJECTS, messages=st.lists(OBJECTS, min_size=1, max_size=4))
def test_anthropic_requests_translate_or_are_refused(
    extra: dict[str, Any], messages: list[dict[str, Any]]
) -> None:
    data = {"model": "m", "max_tokens": 10, **extra, "messages": messages}
    result = attempt(to_openai_request, data)
    if isinstance(result, dict):
        assert isinstance(result["messages"], list)
    else:
        assert refused_properly(result, 400), result


def feed_all(translator: ChatChunksFromAnthropic, events: list[dict[str, Any]]) -> list[Any]:
    return [chunk for event in events for chunk in translator.feed(event)]


@EXAMPLES
@given(message=OBJECTS, events=st.lists(OBJECTS, max_size=8))
@example(
    message={},
    events=[{"type": "content_block_start", "index": "a", "content_block": {"type": "tool_use"}}],
)
def test_anthropic_replies_translate_or_are_upstream_errors(
    message: dict[str, Any], events: list[dict[str, Any]]
) -> None:
    reply = attempt(to_chat_completion, message, 1)
    assert isinstance(reply, dict) or refused_properly(reply, 502), reply
    translator = ChatChunksFromAnthropic(1, include_usage=True)
    chunks = attempt(feed_all, translator, events)
    assert isinstance(chunks, list) or refused_properly(chunks, 502), chunks


@EXAMPLES
@given(completion=OBJECTS, chunks=st.lists(OBJECTS, max_size=8))
@example(completion={}, chunks=[{"choices": True}])  # found by this test
@example(completion={}, chunks=[{"choices": [{"delta": {"tool_calls": [{"index": []}]}}]}])
def test_openai_replies_translate_or_are_upstream_errors(
    completion: dict[str, Any], chunks: list[dict[str, Any]]
) -> None:
    message = attempt(to_anthropic_message, completion)
    assert isinstance(message, dict) or refused_properly(message, 502), message
    translator = AnthropicEventsFromChat("m")

    def events_of() -> list[tuple[str, dict[str, Any]]]:
        events = [event for chunk in chunks for event in translator.feed(chunk)]
        return events + translator.finish()

    events = attempt(events_of)
    if isinstance(events, GatewayError):
        assert refused_properly(events, 502), events
        return
    names = [name for name, _ in events]
    assert names[0] in ("message_start", "error")
    assert names[-1] in ("message_stop", "error")
