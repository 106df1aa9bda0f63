"""OpenAI chat request -> Anthropic Messages request: every mapped field, every refused one."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from gateway.errors import InvalidRequestError
from gateway.translate.mapping import DEFAULT_MAX_TOKENS, THINKING_BUDGETS
from gateway.translate.request_to_anthropic import to_anthropic_request

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
PDF = base64.b64encode(b"%PDF-1.4 fake").decode()
WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "claude-test", "messages": [{"role": "user", "content": "Hi"}], **fields}


def refused(translate: Any, data: dict[str, Any]) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as caught:
        translate(data)
    assert caught.value.status == 400
    assert caught.value.param is not None
    assert caught.value.param in caught.value.message
    return caught.value


def test_every_mapped_openai_field_reaches_anthropic() -> None:
    data = {
        "model": "claude-test",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use metric."}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Weather here?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://x.test/a.jpg", "detail": "auto"},
                    },
                    {
                        "type": "file",
                        "file": {
                            "file_data": f"data:application/pdf;base64,{PDF}",
                            "filename": "a.pdf",
                        },
                    },
                ],
            },
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "21 C"},
            {"role": "user", "content": "Thanks"},
        ],
        "max_completion_tokens": 300,
        "temperature": 0.5,
        "top_p": 0.9,
        "stop": ["END"],
        "stream": True,
        "stream_options": {"include_usage": True},
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "weather",
                    "description": "Weather by city",
                    "parameters": WEATHER,
                    "strict": True,
                },
            }
        ],
        "tool_choice": {"type": "function", "function": {"name": "weather"}},
        "parallel_tool_calls": False,
        "user": "end-user-7",
    }
    assert to_anthropic_request(data) == {
        "model": "claude-test",
        "system": [
            {"type": "text", "text": "Be brief."},
            {"type": "text", "text": "Use metric."},
        ],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Weather here?"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                    },
                    {"type": "image", "source": {"type": "url", "url": "https://x.test/a.jpg"}},
                    {
                        "type": "document",
                        "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
                        "title": "a.pdf",
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Checking."},
                    {
                        "type": "tool_use",
                        "id": "call_1",
                        "name": "weather",
                        "input": {"city": "Paris"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "21 C"},
                    {"type": "text", "text": "Thanks"},
                ],
            },
        ],
        "max_tokens": 300,
        "temperature": 0.5,
        "top_p": 0.9,
        "stop_sequences": ["END"],
        "stream": True,
        "tools": [
            {
                "name": "weather",
                "description": "Weather by city",
                "input_schema": WEATHER,
                "strict": True,
            }
        ],
        "tool_choice": {"type": "tool", "name": "weather", "disable_parallel_tool_use": True},
        "metadata": {"user_id": "end-user-7"},
    }


def test_defaults_and_simple_forms() -> None:
    out = to_anthropic_request(
        chat(n=1, presence_penalty=0, logprobs=False, store=False, seed=None)
    )
    assert out == {
        "model": "claude-test",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
        "max_tokens": DEFAULT_MAX_TOKENS,
    }
    assert to_anthropic_request(chat(stop="END", max_tokens=9))["stop_sequences"] == ["END"]
    assert to_anthropic_request(chat(max_tokens=9, max_completion_tokens=9))["max_tokens"] == 9
    assert "stream" not in to_anthropic_request(chat(stream=False))
    tools = [{"type": "function", "function": {"name": "now"}}]
    converted = to_anthropic_request(chat(tools=tools))["tools"]
    assert converted == [{"name": "now", "input_schema": {"type": "object", "properties": {}}}]


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("required", None, {"type": "any"}),
        ("none", None, {"type": "none"}),
        ("none", False, {"type": "none"}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        (None, True, None),
    ],
)
def test_tool_choice(choice: Any, parallel: bool | None, expected: dict[str, Any] | None) -> None:
    out = to_anthropic_request(chat(tool_choice=choice, parallel_tool_calls=parallel))
    assert out.get("tool_choice") == expected


@pytest.mark.parametrize("effort", sorted(THINKING_BUDGETS))
def test_reasoning_effort_maps_to_a_thinking_budget(effort: str) -> None:
    budget = THINKING_BUDGETS[effort]
    out = to_anthropic_request(chat(reasoning_effort=effort))
    assert out["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert out["max_tokens"] == budget + DEFAULT_MAX_TOKENS
    given = to_anthropic_request(chat(reasoning_effort=effort, max_tokens=budget + 1))
    assert given["max_tokens"] == budget + 1
    error = refused(to_anthropic_request, chat(reasoning_effort=effort, max_tokens=budget))
    assert error.param == "max_tokens"
    low = chat(reasoning_effort=effort, max_completion_tokens=budget)
    assert refused(to_anthropic_request, low).param == "max_completion_tokens"


def test_response_format() -> None:
    assert "output_config" not in to_anthropic_request(chat(response_format={"type": "text"}))
    spec = {"name": "answer", "description": "d", "schema": WEATHER, "strict": True}
    out = to_anthropic_request(chat(response_format={"type": "json_schema", "json_schema": spec}))
    assert out["output_config"] == {"format": {"type": "json_schema", "schema": WEATHER}}


def test_reasoning_effort_none_disables_thinking() -> None:
    assert to_anthropic_request(chat(reasoning_effort="none"))["thinking"] == {"type": "disabled"}


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"n": 2}, "n"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"frequency_penalty": 1}, "frequency_penalty"),
        ({"logprobs": True}, "logprobs"),
        ({"store": True}, "store"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"logit_bias": {"1": 2}}, "logit_bias"),
        ({"seed": 4}, "seed"),
        ({"response_format": {"type": "json_object"}}, "response_format.type"),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": {}, "strict": False},
                }
            },
            "response_format.json_schema.strict",
        ),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
            "response_format.json_schema.schema",
        ),
        ({"functions": [{"name": "f"}]}, "functions"),
        ({"modalities": ["text", "audio"]}, "modalities"),
        ({"audio": {"voice": "alloy"}}, "audio"),
        ({"metadata": {"k": "v"}}, "metadata"),
        ({"service_tier": "flex"}, "service_tier"),
        ({"prediction": {"type": "content", "content": "x"}}, "prediction"),
        ({"web_search_options": {}}, "web_search_options"),
        ({"temperature": 1.5}, "temperature"),
        ({"top_p": -1}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 5, "max_completion_tokens": 6}, "max_tokens"),
        ({"reasoning_effort": "huge"}, "reasoning_effort"),
        ({"stream_options": {"include_usage": True, "extra": 1}}, "stream_options.extra"),
        ({"stream": "yes"}, "stream"),
        ({"stop": [1]}, "stop[0]"),
        ({"user": 7}, "user"),
        ({"tools": [{"type": "custom", "custom": {"name": "x"}}]}, "tools[0].type"),
        (
            {"tools": [{"type": "function", "function": {"name": "x", "bad": 1}}]},
            "tools[0].function.bad",
        ),
        ({"tool_choice": {"type": "allowed_tools"}}, "tool_choice"),
        ({"tool_choice": "sometimes"}, "tool_choice"),
        ({"messages": "Hi"}, "messages"),
        ({"messages": ["Hi"]}, "messages[0]"),
        ({"messages": [{"role": "function", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": "x", "name": "bob"}]}, "messages[0].name"),
        (
            {"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]},
            "messages[0].content[0].type",
        ),
        (
            {"messages": [{"role": "system", "content": [{"type": "image_url"}]}]},
            "messages[0].content[0].type",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "x", "detail": "high"}}
                        ],
                    }
                ]
            },
            "messages[0].content[0].image_url.detail",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}],
                    }
                ]
            },
            "messages[0].content[0].image_url.url",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}
                        ],
                    }
                ]
            },
            "messages[0].content[0].image_url.url",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image_url",
                                "image_url": {"url": f"data:image/bmp;base64,{PNG}"},
                            }
                        ],
                    }
                ]
            },
            "messages[0].content[0].image_url.url",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "file", "file": {"file_id": "f1"}}]}
                ]
            },
            "messages[0].content[0].file.file_id",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "file", "file": {"file_data": f"data:text/plain;base64,{PDF}"}}
                        ],
                    }
                ]
            },
            "messages[0].content[0].file.file_data",
        ),
        (
            {"messages": [{"role": "assistant", "content": None, "refusal": "no"}]},
            "messages[0].refusal",
        ),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {
                                "id": "c",
                                "type": "function",
                                "function": {"name": "f", "arguments": "{bad"},
                            }
                        ],
                    }
                ]
            },
            "messages[0].tool_calls[0].function.arguments",
        ),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {
                                "id": "c",
                                "type": "function",
                                "function": {"name": "f", "arguments": "[1]"},
                            }
                        ],
                    }
                ]
            },
            "messages[0].tool_calls[0].function.arguments",
        ),
        (
            {"messages": [{"role": "assistant", "tool_calls": [{"id": "c", "type": "custom"}]}]},
            "messages[0].tool_calls[0].type",
        ),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
    ],
)
def test_unmappable_openai_fields_are_refused_by_name(fields: dict[str, Any], param: str) -> None:
    assert refused(to_anthropic_request, chat(**fields)).param == param
