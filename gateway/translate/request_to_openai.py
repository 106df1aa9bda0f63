"""An Anthropic Messages request -> an OpenAI chat completions request.

`system` becomes the first message; a user turn's `tool_result` blocks become `tool` messages
(in place, before the turn's other content); an assistant turn's `tool_use` blocks become
`tool_calls`. A stream always asks for `include_usage`, because Anthropic's `message_delta` carries
usage. What OpenAI cannot take is refused by name; docs/providers.md lists what is mapped, and
the two things accepted without an effect: `cache_control` (OpenAI caches prompt prefixes on its
own) and thinking blocks in earlier assistant turns (OpenAI takes no reasoning back).
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.translate import mapping
from gateway.translate.fields import (
    check_keys,
    expect_bool,
    expect_dict,
    expect_int,
    expect_list,
    expect_number,
    expect_str,
    invalid,
    refuse,
)

_MAPPED = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "metadata",
        "stop_sequences",
        "stream",
        "temperature",
        "top_p",
        "tools",
        "tool_choice",
        "thinking",
        "output_config",
        "cache_control",
    }
)
_TEXT_KEYS = frozenset({"type", "text", "cache_control"})
_HISTORY_ONLY = frozenset({"thinking", "redacted_thinking"})


def to_openai_request(data: dict[str, Any]) -> dict[str, Any]:
    """The OpenAI chat request for an Anthropic request (`data` is a parsed JSON object)."""
    check_keys(data, _MAPPED)
    for required in ("model", "messages", "max_tokens"):
        if required not in data:
            invalid(required, "Field required")
    out: dict[str, Any] = {"model": expect_str(data["model"], "model")}
    messages = _system(data.get("system"))
    for i, raw in enumerate(expect_list(data["messages"], "messages")):
        messages.extend(_turn(expect_dict(raw, f"messages.{i}"), f"messages.{i}"))
    out["messages"] = messages
    out["max_completion_tokens"] = expect_int(data["max_tokens"], "max_tokens")
    for name in ("temperature", "top_p"):
        if data.get(name) is not None:
            out[name] = expect_number(data[name], name, 0, 1)
    if data.get("stop_sequences") is not None:
        stops = expect_list(data["stop_sequences"], "stop_sequences")
        out["stop"] = [expect_str(s, f"stop_sequences.{i}") for i, s in enumerate(stops)]
    if data.get("stream") is not None and expect_bool(data["stream"], "stream"):
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    if data.get("metadata") is not None:
        metadata = expect_dict(data["metadata"], "metadata")
        check_keys(metadata, frozenset({"user_id"}), "metadata.")
        if metadata.get("user_id") is not None:
            out["user"] = expect_str(metadata["user_id"], "metadata.user_id")
    if data.get("tools") is not None:
        out["tools"] = _tools(expect_list(data["tools"], "tools"))
    if data.get("tool_choice") is not None:
        out.update(_tool_choice(expect_dict(data["tool_choice"], "tool_choice")))
    effort = _effort(data)
    if effort is not None:
        out["reasoning_effort"] = effort
    response_format = _response_format(data)
    if response_format is not None:
        out["response_format"] = response_format
    return out


def _response_format(data: dict[str, Any]) -> dict[str, Any] | None:
    """`output_config.format` (a JSON schema) as OpenAI's strict `json_schema` response format."""
    config = data.get("output_config")
    value = config.get("format") if isinstance(config, dict) else None
    if value is None:
        return None
    spec = expect_dict(value, "output_config.format")
    check_keys(spec, frozenset({"type", "schema"}), "output_config.format.")
    if spec.get("type") != "json_schema":
        invalid("output_config.format.type", "must be json_schema")
    schema = expect_dict(spec.get("schema"), "output_config.format.schema")
    return {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema, "strict": True},
    }


def _system(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if isinstance(value, str):
        return [{"role": "system", "content": value}]
    return [{"role": "system", "content": _texts(value, "system")}]


def _texts(blocks: Any, param: str) -> str:
    parts = []
    for j, raw in enumerate(expect_list(blocks, param)):
        block = expect_dict(raw, f"{param}.{j}")
        if block.get("type") != "text":
            refuse(f"{param}.{j}.type", "only text blocks can be translated here")
        check_keys(block, _TEXT_KEYS, f"{param}.{j}.")
        parts.append(expect_str(block.get("text"), f"{param}.{j}.text"))
    return "".join(parts)


def _turn(message: dict[str, Any], param: str) -> list[dict[str, Any]]:
    check_keys(message, frozenset({"role", "content"}), param + ".")
    role = message.get("role")
    content = message.get("content")
    if role not in ("user", "assistant"):
        invalid(param + ".role", "must be user or assistant")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    blocks = expect_list(content, param + ".content")
    if role == "assistant":
        return [_assistant(blocks, param + ".content")]
    return _user(blocks, param + ".content")


def _user(blocks: list[Any], param: str) -> list[dict[str, Any]]:
    """Tool results as `tool` messages; runs of other blocks as one user message each."""
    out: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for j, raw in enumerate(blocks):
        block = expect_dict(raw, f"{param}.{j}")
        where = f"{param}.{j}"
        kind = _block_type(block, where)
        if kind == "tool_result":
            if parts:
                out.append({"role": "user", "content": parts})
                parts = []
            out.append(_tool_result(block, where))
        elif kind == "text":
            check_keys(block, _TEXT_KEYS, where + ".")
            parts.append({"type": "text", "text": expect_str(block.get("text"), where + ".text")})
        elif kind == "image":
            parts.append(_image(block, where))
        elif kind == "document":
            parts.append(_document(block, where))
        else:
            refuse(where + ".type", f"content block {kind!r} cannot be translated")
    if parts:
        out.append({"role": "user", "content": parts})
    return out


def _block_type(block: dict[str, Any], where: str) -> str:
    """A content block's `type`: a string, or a 400 naming it (a list or an object there
    must not reach a set lookup as an unhashable value)."""
    kind = block.get("type")
    if not isinstance(kind, str):
        invalid(where + ".type", "must be a string")
    return kind


def _source(block: dict[str, Any], where: str, kinds: frozenset[str]) -> dict[str, Any]:
    check_keys(block, frozenset({"type", "source", "cache_control"}), where + ".")
    source = expect_dict(block.get("source"), where + ".source")
    kind = source.get("type")
    if not isinstance(kind, str) or kind not in kinds:
        refuse(where + ".source.type", f"only {' or '.join(sorted(kinds))} sources translate")
    return source


def _image(block: dict[str, Any], where: str) -> dict[str, Any]:
    source = _source(block, where, frozenset({"base64", "url"}))
    if source["type"] == "url":
        url = expect_str(source.get("url"), where + ".source.url")
    else:
        media = expect_str(source.get("media_type"), where + ".source.media_type")
        url = f"data:{media};base64,{expect_str(source.get('data'), where + '.source.data')}"
    return {"type": "image_url", "image_url": {"url": url}}


def _document(block: dict[str, Any], where: str) -> dict[str, Any]:
    source = _source(block, where, frozenset({"base64"}))
    media = expect_str(source.get("media_type"), where + ".source.media_type")
    if media != "application/pdf":
        refuse(where + ".source.media_type", "only PDF documents can be translated")
    data = expect_str(source.get("data"), where + ".source.data")
    return {
        "type": "file",
        "file": {"file_data": f"data:{media};base64,{data}", "filename": "document.pdf"},
    }


def _tool_result(block: dict[str, Any], where: str) -> dict[str, Any]:
    check_keys(block, frozenset({"type", "tool_use_id", "content", "is_error", "cache_control"}))
    content = block.get("content", "")
    text = content if isinstance(content, str) else _texts(content, where + ".content")
    if block.get("is_error") is not None and expect_bool(block["is_error"], where + ".is_error"):
        text = "Error: " + text
    tool_id = expect_str(block.get("tool_use_id"), where + ".tool_use_id")
    return {"role": "tool", "tool_call_id": tool_id, "content": text}


def _assistant(blocks: list[Any], param: str) -> dict[str, Any]:
    text: list[str] = []
    calls: list[dict[str, Any]] = []
    for j, raw in enumerate(blocks):
        block = expect_dict(raw, f"{param}.{j}")
        where = f"{param}.{j}"
        kind = _block_type(block, where)
        if kind == "text":
            check_keys(block, _TEXT_KEYS, where + ".")
            text.append(expect_str(block.get("text"), where + ".text"))
        elif kind == "tool_use":
            check_keys(block, frozenset({"type", "id", "name", "input", "cache_control"}))
            arguments = expect_dict(block.get("input", {}), where + ".input")
            calls.append(
                {
                    "id": expect_str(block.get("id"), where + ".id"),
                    "type": "function",
                    "function": {
                        "name": expect_str(block.get("name"), where + ".name"),
                        "arguments": orjson.dumps(arguments).decode(),
                    },
                }
            )
        elif kind not in _HISTORY_ONLY:
            refuse(where + ".type", f"content block {kind!r} cannot be translated")
    message: dict[str, Any] = {"role": "assistant", "content": "".join(text) if text else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _tools(tools: list[Any]) -> list[dict[str, Any]]:
    out = []
    for i, raw in enumerate(tools):
        tool = expect_dict(raw, f"tools.{i}")
        if tool.get("type", "custom") not in ("custom", None):
            refuse(f"tools.{i}.type", "server tools cannot be translated")
        allowed = frozenset({"type", "name", "description", "input_schema", "strict"})
        check_keys(tool, allowed | {"cache_control"}, f"tools.{i}.")
        function: dict[str, Any] = {"name": expect_str(tool.get("name"), f"tools.{i}.name")}
        if tool.get("description") is not None:
            function["description"] = expect_str(tool["description"], f"tools.{i}.description")
        function["parameters"] = expect_dict(tool.get("input_schema"), f"tools.{i}.input_schema")
        if tool.get("strict") is not None:
            function["strict"] = expect_bool(tool["strict"], f"tools.{i}.strict")
        out.append({"type": "function", "function": function})
    return out


def _tool_choice(choice: dict[str, Any]) -> dict[str, Any]:
    check_keys(choice, frozenset({"type", "name", "disable_parallel_tool_use"}), "tool_choice.")
    kind = choice.get("type")
    out: dict[str, Any]
    if kind == "auto":
        out = {"tool_choice": "auto"}
    elif kind == "any":
        out = {"tool_choice": "required"}
    elif kind == "none":
        out = {"tool_choice": "none"}
    elif kind == "tool":
        name = expect_str(choice.get("name"), "tool_choice.name")
        out = {"tool_choice": {"type": "function", "function": {"name": name}}}
    else:
        invalid("tool_choice.type", "must be auto, any, tool or none")
    serial = choice.get("disable_parallel_tool_use")
    if serial is not None and expect_bool(serial, "tool_choice.disable_parallel_tool_use"):
        out["parallel_tool_calls"] = False
    return out


def _effort(data: dict[str, Any]) -> str | None:
    """`output_config.effort`, else a thinking budget, as `reasoning_effort`. Thinking that is
    disabled or adaptive is the model's default: no `reasoning_effort` at all."""
    effort: str | None = None
    if data.get("output_config") is not None:
        config = expect_dict(data["output_config"], "output_config")
        check_keys(config, frozenset({"effort", "format"}), "output_config.")
        if config.get("effort") is not None:
            effort = expect_str(config["effort"], "output_config.effort")
            if effort not in mapping.SHARED_EFFORTS:
                refuse("output_config.effort", f"{effort!r} has no reasoning_effort equivalent")
    if data.get("thinking") is None:
        return effort
    thinking = expect_dict(data["thinking"], "thinking")
    kind = thinking.get("type")
    if kind in ("disabled", "adaptive"):
        check_keys(thinking, frozenset({"type", "display"}), "thinking.")
        return effort
    if kind != "enabled":
        invalid("thinking.type", "must be enabled, disabled or adaptive")
    check_keys(thinking, frozenset({"type", "budget_tokens", "display"}), "thinking.")
    budget = expect_int(thinking.get("budget_tokens"), "thinking.budget_tokens", minimum=1024)
    return effort or mapping.effort_for_budget(budget)
