"""Anthropic Messages request -> OpenAI chat request: every mapped field, every refused one;
and round trips both ways."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.translate.request_to_anthropic import to_anthropic_request
from gateway.translate.request_to_openai import to_openai_request
from tests.test_translate_request_to_anthropic import PDF, PNG, WEATHER, refused


def test_every_mapped_anthropic_field_reaches_openai() -> None:
    data = {
        "model": "gpt-test",
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Look:"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                    },
                    {"type": "image", "source": {"type": "url", "url": "https://x.test/a.jpg"}},
                    {
                        "type": "document",
                        "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "s"},
                    {"type": "text", "text": "Checking."},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "weather",
                        "input": {"city": "Paris"},
                    },
                    {
                        "type": "tool_use",
                        "id": "toolu_2",
                        "name": "weather",
                        "input": {"city": "Rome"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "21 C"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_2",
                        "content": [{"type": "text", "text": "no data"}],
                        "is_error": True,
                    },
                    {"type": "text", "text": "Thanks"},
                ],
            },
        ],
        "max_tokens": 300,
        "temperature": 0.5,
        "top_p": 0.9,
        "stop_sequences": ["END"],
        "stream": True,
        "metadata": {"user_id": "end-user-7"},
        "tools": [
            {
                "name": "weather",
                "description": "Weather by city",
                "input_schema": WEATHER,
                "cache_control": {"type": "ephemeral"},
            }
        ],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "thinking": {"type": "enabled", "budget_tokens": 10000},
    }
    assert to_openai_request(data) == {
        "model": "gpt-test",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Look:"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {"type": "image_url", "image_url": {"url": "https://x.test/a.jpg"}},
                    {
                        "type": "file",
                        "file": {
                            "file_data": f"data:application/pdf;base64,{PDF}",
                            "filename": "document.pdf",
                        },
                    },
                ],
            },
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    {
                        "id": "toolu_1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
                    },
                    {
                        "id": "toolu_2",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city":"Rome"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "toolu_1", "content": "21 C"},
            {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: no data"},
            {"role": "user", "content": [{"type": "text", "text": "Thanks"}]},
        ],
        "max_completion_tokens": 300,
        "temperature": 0.5,
        "top_p": 0.9,
        "stop": ["END"],
        "stream": True,
        "stream_options": {"include_usage": True},
        "user": "end-user-7",
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "weather",
                    "description": "Weather by city",
                    "parameters": WEATHER,
                },
            }
        ],
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "reasoning_effort": "medium",
    }


def anthropic(**fields: Any) -> dict[str, Any]:
    return {
        "model": "gpt-test",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "Hi"}],
        **fields,
    }


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"tool_choice": {"type": "auto"}}, {"tool_choice": "auto"}),
        ({"tool_choice": {"type": "none"}}, {"tool_choice": "none"}),
        (
            {"tool_choice": {"type": "tool", "name": "f"}},
            {"tool_choice": {"type": "function", "function": {"name": "f"}}},
        ),
        ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, {"reasoning_effort": "low"}),
        ({"thinking": {"type": "enabled", "budget_tokens": 20000}}, {"reasoning_effort": "high"}),
        ({"thinking": {"type": "enabled", "budget_tokens": 64000}}, {"reasoning_effort": "xhigh"}),
        ({"thinking": {"type": "disabled"}}, {}),
        ({"thinking": {"type": "adaptive"}}, {}),
        ({"output_config": {"effort": "high"}}, {"reasoning_effort": "high"}),
        (
            {"system": "Be brief."},
            {
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Hi"},
                ]
            },
        ),
        ({"stream": False}, {}),
        ({"metadata": {}}, {}),
        (
            {"output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}}},
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "output", "schema": {"type": "object"}, "strict": True},
                }
            },
        ),
    ],
)
def test_anthropic_forms(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    base = {
        "model": "gpt-test",
        "messages": [{"role": "user", "content": "Hi"}],
        "max_completion_tokens": 10,
    }
    assert to_openai_request(anthropic(**fields)) == {**base, **expected}


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"top_k": 5}, "top_k"),
        ({"service_tier": "auto"}, "service_tier"),
        ({"container": "c1"}, "container"),
        ({"mcp_servers": []}, "mcp_servers"),
        ({"max_tokens": None}, "max_tokens"),
        ({"temperature": 2}, "temperature"),
        ({"metadata": {"user_id": "u", "other": 1}}, "metadata.other"),
        ({"output_config": {"effort": "max"}}, "output_config.effort"),
        ({"output_config": {"format": {"type": "json_schema"}}}, "output_config.format.schema"),
        (
            {"output_config": {"format": {"type": "regex", "schema": {}}}},
            "output_config.format.type",
        ),
        ({"thinking": {"type": "enabled", "budget_tokens": 100}}, "thinking.budget_tokens"),
        ({"thinking": {"type": "sometimes"}}, "thinking.type"),
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools.0.type"),
        ({"tools": [{"name": "f"}]}, "tools.0.input_schema"),
        ({"tool_choice": {"type": "maybe"}}, "tool_choice.type"),
        ({"system": [{"type": "image"}]}, "system.0.type"),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages.0.role"),
        (
            {"messages": [{"role": "user", "content": [{"type": "search_result"}]}]},
            "messages.0.content.0.type",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}],
                    }
                ]
            },
            "messages.0.content.0.source.type",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "document",
                                "source": {
                                    "type": "base64",
                                    "media_type": "text/plain",
                                    "data": "eA==",
                                },
                            }
                        ],
                    }
                ]
            },
            "messages.0.content.0.source.media_type",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "text", "text": "x", "citations": []}]}
                ]
            },
            "messages.0.content.0.citations",
        ),
        (
            {"messages": [{"role": "assistant", "content": [{"type": "server_tool_use"}]}]},
            "messages.0.content.0.type",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "tool_result",
                                "tool_use_id": "t",
                                "content": [{"type": "image"}],
                            }
                        ],
                    }
                ]
            },
            "messages.0.content.0.content.0.type",
        ),
    ],
)
def test_unmappable_anthropic_fields_are_refused_by_name(
    fields: dict[str, Any], param: str
) -> None:
    assert refused(to_openai_request, anthropic(**fields)).param == param


def test_missing_required_anthropic_fields() -> None:
    for name in ("model", "messages", "max_tokens"):
        data = anthropic()
        del data[name]
        assert refused(to_openai_request, data).param == name


def test_openai_request_survives_a_round_trip() -> None:
    """OpenAI -> Anthropic -> OpenAI gives back the request, in its canonical form."""
    original = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Weather?"}]},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "21 C"},
        ],
        "max_completion_tokens": 10000,
        "temperature": 0.2,
        "stop": ["END"],
        "stream": True,
        "stream_options": {"include_usage": True},
        "tools": [{"type": "function", "function": {"name": "weather", "parameters": WEATHER}}],
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "user": "u1",
        "reasoning_effort": "medium",
    }
    back = to_openai_request(to_anthropic_request(original))
    assert back == original


def test_anthropic_request_survives_a_round_trip() -> None:
    original: dict[str, Any] = {
        "model": "m",
        "system": "Be brief.",
        "messages": [
            {"role": "user", "content": "Weather?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "t1", "name": "weather", "input": {"city": "Paris"}}
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "21 C"}],
            },
        ],
        "max_tokens": 100,
        "stop_sequences": ["END"],
        "tools": [{"name": "weather", "input_schema": WEATHER}],
        "tool_choice": {"type": "tool", "name": "weather"},
        "metadata": {"user_id": "u1"},
    }
    back = to_anthropic_request(to_openai_request(original))
    assert back == {
        **original,
        "system": [{"type": "text", "text": "Be brief."}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Weather?"}]},
            original["messages"][1],
            original["messages"][2],
        ],
    }


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        (
            [
                {
                    "role": "user",
                    "content": [{"type": "image", "source": {"type": [], "data": "AA=="}}],
                }
            ],
            "messages.0.content.0.source.type",
        ),
        (
            [{"role": "user", "content": [{"type": "document", "source": {"type": {}}}]}],
            "messages.0.content.0.source.type",
        ),
        (
            [{"role": "user", "content": "a"}, {"role": "assistant", "content": [{"type": {}}]}],
            "messages.1.content.0.type",
        ),
        (
            [{"role": "user", "content": [{"type": ["text"], "text": "a"}]}],
            "messages.0.content.0.type",
        ),
    ],
)
def test_unhashable_block_types_are_a_400_naming_the_field(messages: list[Any], param: str) -> None:
    """An outsider's fuzz found these as 500s (`unhashable type`) on `/v1/messages`."""
    from gateway.errors import InvalidRequestError

    with pytest.raises(InvalidRequestError) as caught:
        to_openai_request({"model": "m", "max_tokens": 5, "messages": messages})
    assert caught.value.param == param
