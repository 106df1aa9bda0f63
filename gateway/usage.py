"""The one reader of token usage, whatever shape the upstream reported it in.

Every API names its counts differently: chat and completions say `prompt_tokens` /
`completion_tokens` (details in `prompt_tokens_details.cached_tokens` and
`completion_tokens_details.reasoning_tokens`), embeddings say `prompt_tokens` / `total_tokens`,
the Responses API says `input_tokens` / `output_tokens` (details in `input_tokens_details` and
`output_tokens_details`), Anthropic says `input_tokens` / `output_tokens` plus
`cache_read_input_tokens` / `cache_creation_input_tokens`. `parse_usage` reads all of them into
one `Usage`; the journal, the limits and the usage tallies all use it, so a new endpoint or
provider is metered the day its usage shape is added here.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

_USAGE_KEY = b'"usage":'
#: Largest usage object parsed (OpenAI's, with its token details, is a few hundred bytes).
_USAGE_MAX = 4096


@dataclasses.dataclass(frozen=True, slots=True)
class Usage:
    """Tokens of one request. `input_tokens` includes cached ones; `output_tokens` includes
    reasoning ones (both as the providers bill them). Details are None when not reported."""

    input_tokens: int
    output_tokens: int
    cached_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    reasoning_tokens: int | None = None

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def to_record(self) -> dict[str, int]:
        """The journal's normalized `usage` object (docs/journal.md)."""
        record = {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
        }
        for name in ("cached_input_tokens", "cache_creation_input_tokens", "reasoning_tokens"):
            value = getattr(self, name)
            if value is not None:
                record[name] = value
        return record

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            _add(self.cached_input_tokens, other.cached_input_tokens),
            _add(self.cache_creation_input_tokens, other.cache_creation_input_tokens),
            _add(self.reasoning_tokens, other.reasoning_tokens),
        )


def _add(a: int | None, b: int | None) -> int | None:
    if a is None and b is None:
        return None
    return (a or 0) + (b or 0)


def _count(value: Any) -> int | None:
    """A token count: a non-negative int (bools are not counts)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return max(value, 0)
    return None


def _detail(usage: dict[str, Any], container: str, name: str) -> int | None:
    details = usage.get(container)
    return _count(details.get(name)) if isinstance(details, dict) else None


def parse_usage(value: Any) -> Usage | None:
    """A `Usage` from any provider's usage object, or None when it is not one."""
    if not isinstance(value, dict):
        return None
    prompt = _count(value.get("prompt_tokens"))
    if prompt is not None:  # chat, completions, embeddings
        completion = _count(value.get("completion_tokens"))
        if completion is None:
            total = _count(value.get("total_tokens"))
            completion = max((total or prompt) - prompt, 0)
        return Usage(
            prompt,
            completion,
            cached_input_tokens=_detail(value, "prompt_tokens_details", "cached_tokens"),
            reasoning_tokens=_detail(value, "completion_tokens_details", "reasoning_tokens"),
        )
    given_input = _count(value.get("input_tokens"))
    output = _count(value.get("output_tokens"))
    if given_input is None and output is None:
        return None
    cache_read = _count(value.get("cache_read_input_tokens"))
    cache_creation = _count(value.get("cache_creation_input_tokens"))
    if cache_read is not None or cache_creation is not None:
        # Anthropic counts cached input apart from `input_tokens`; it is input all the same.
        total_input = (given_input or 0) + (cache_read or 0) + (cache_creation or 0)
        return Usage(total_input, output or 0, cache_read, cache_creation)
    return Usage(  # the Responses API (and Anthropic without caching)
        given_input or 0,
        output or 0,
        cached_input_tokens=_detail(value, "input_tokens_details", "cached_tokens"),
        reasoning_tokens=_detail(value, "output_tokens_details", "reasoning_tokens"),
    )


def usage_in_bytes(blob: bytes) -> Usage | None:
    """The usage of a JSON body or of the tail of an SSE stream, without parsing the rest:
    the last `"usage": {...}` object in the bytes (`"usage":` cannot occur unescaped inside a
    JSON string, so an occurrence is a real key). A later `"usage": null` is skipped."""
    at = blob.rfind(_USAGE_KEY)
    while at != -1:
        start = blob.find(b"{", at, at + 32)
        if start != -1 and not blob[at + len(_USAGE_KEY) : start].strip():
            end = _matching_brace(blob, start)
            if end == -1:
                return None
            try:
                return parse_usage(orjson.loads(blob[start : end + 1]))
            except orjson.JSONDecodeError:
                return None
        at = blob.rfind(_USAGE_KEY, 0, at)
    return None


def _matching_brace(blob: bytes, start: int) -> int:
    depth = 0
    for index in range(start, min(len(blob), start + _USAGE_MAX)):
        char = blob[index]
        if char == 0x7B:  # {
            depth += 1
        elif char == 0x7D:  # }
            depth -= 1
            if depth == 0:
                return index
    return -1


def usage_of_event(event: Any) -> Usage | None:
    """The usage an SSE event carries: a chat/completions chunk's `usage`, or a Responses
    stream's `response.completed` event (`response.usage`)."""
    if not isinstance(event, dict):
        return None
    if "usage" in event:
        return parse_usage(event["usage"])
    for container in ("response", "message"):  # Responses' completed event; Anthropic's start
        inner = event.get(container)
        if isinstance(inner, dict) and "usage" in inner:
            return parse_usage(inner["usage"])
    return None


def merge_stream_usage(earlier: Usage | None, later: Usage | None) -> Usage | None:
    """Usage reported over a stream: a later report's non-zero counts win (Anthropic sends
    input in `message_start` and the cumulative output in `message_delta`; OpenAI sends one)."""
    if earlier is None or later is None:
        return later or earlier
    return Usage(
        later.input_tokens or earlier.input_tokens,
        later.output_tokens or earlier.output_tokens,
        later.cached_input_tokens
        if later.cached_input_tokens is not None
        else earlier.cached_input_tokens,
        later.cache_creation_input_tokens
        if later.cache_creation_input_tokens is not None
        else earlier.cache_creation_input_tokens,
        later.reasoning_tokens if later.reasoning_tokens is not None else earlier.reasoning_tokens,
    )
