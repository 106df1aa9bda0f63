"""The tables both directions share: stop reasons, usage, reasoning effort, max tokens.

Usage: Anthropic counts `input_tokens` *besides* the cached ones (`cache_read_input_tokens`,
`cache_creation_input_tokens`); OpenAI's `prompt_tokens` includes its cached tokens
(`prompt_tokens_details.cached_tokens`). So prompt_tokens = input + cache read + cache creation.
"""

from __future__ import annotations

from typing import Any

#: Anthropic requires `max_tokens`; an OpenAI request without one gets this many.
DEFAULT_MAX_TOKENS = 4096

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}

#: OpenAI `reasoning_effort` -> Anthropic thinking budget (tokens; Anthropic's minimum is 1024).
THINKING_BUDGETS = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 16384, "xhigh": 32768}

#: Anthropic `output_config.effort` values OpenAI's `reasoning_effort` takes as they are.
SHARED_EFFORTS = frozenset({"low", "medium", "high", "xhigh"})


def finish_reason(stop_reason: str | None) -> str | None:
    if stop_reason is None:
        return None
    return FINISH_REASONS.get(stop_reason, "stop")


def stop_reason(finish: str | None) -> str | None:
    if finish is None:
        return None
    return STOP_REASONS.get(finish, "end_turn")


def effort_for_budget(budget: int) -> str:
    """The greatest effort whose budget `budget` reaches (`low` below them all)."""
    chosen = "low"
    for effort, tokens in THINKING_BUDGETS.items():
        if effort != "minimal" and budget >= tokens:
            chosen = effort
    return chosen


def _count(usage: dict[str, Any], name: str) -> int:
    value = usage.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def openai_usage(usage: dict[str, Any]) -> dict[str, Any]:
    """Anthropic usage -> OpenAI usage; Anthropic's cache counts are kept beside it."""
    read = _count(usage, "cache_read_input_tokens")
    created = _count(usage, "cache_creation_input_tokens")
    prompt = _count(usage, "input_tokens") + read + created
    completion = _count(usage, "output_tokens")
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": read},
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": created,
    }


def anthropic_usage(usage: dict[str, Any]) -> dict[str, Any]:
    """OpenAI usage -> Anthropic usage (cached prompt tokens are cache reads)."""
    details = usage.get("prompt_tokens_details")
    cached = _count(details, "cached_tokens") if isinstance(details, dict) else 0
    prompt = _count(usage, "prompt_tokens")
    return {
        "input_tokens": max(prompt - cached, 0),
        "output_tokens": _count(usage, "completion_tokens"),
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": 0,
    }
