"""An OpenAI chat completions request -> an Anthropic Messages request.

System and developer messages, wherever they stand, become `system` (in order); user, assistant
and tool turns become `messages`, consecutive turns of one role merged (tool results are user
content in Anthropic's API). Every field is either mapped or refused with its name; see the table
in docs/providers.md.
"""

from __future__ import annotations

import base64
import binascii
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

#: Fields that are fine at their default value (what OpenAI does when they are absent).
_DEFAULTS: dict[str, Any] = {
    "n": 1,
    "presence_penalty": 0,
    "frequency_penalty": 0,
    "logprobs": False,
    "store": False,
}
_MAPPED = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
        "stream",
        "stream_options",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "reasoning_effort",
        "response_format",
        "user",
    }
)
_MESSAGE_KEYS = frozenset({"role", "content", "tool_calls", "tool_call_id", "refusal"})
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


def to_anthropic_request(data: dict[str, Any]) -> dict[str, Any]:
    """The Anthropic request for an OpenAI chat request (`data` already parsed and checked to
    be an object with `model` and `messages`)."""
    for key in sorted(data):
        if key in _MAPPED or data[key] is None:
            continue
        if key not in _DEFAULTS:
            refuse(key, "has no equivalent in Anthropic's Messages API")
        if data[key] != _DEFAULTS[key]:
            refuse(key, f"only {orjson.dumps(_DEFAULTS[key]).decode()} can be translated")
    out: dict[str, Any] = {"model": expect_str(data["model"], "model")}
    system, messages = _messages(expect_list(data["messages"], "messages"))
    if system:
        out["system"] = system
    out["messages"] = messages
    out["max_tokens"] = _max_tokens(data)
    if "temperature" in data and data["temperature"] is not None:
        out["temperature"] = expect_number(data["temperature"], "temperature", 0, 1)
    if "top_p" in data and data["top_p"] is not None:
        out["top_p"] = expect_number(data["top_p"], "top_p", 0, 1)
    if data.get("stop") is not None:
        out["stop_sequences"] = _stop(data["stop"])
    if data.get("stream") is not None and expect_bool(data["stream"], "stream"):
        out["stream"] = True
    _stream_options(data)
    if data.get("tools") is not None:
        out["tools"] = _tools(expect_list(data["tools"], "tools"))
    choice = _tool_choice(data)
    if choice is not None:
        out["tool_choice"] = choice
    if data.get("user") is not None:
        out["metadata"] = {"user_id": expect_str(data["user"], "user")}
    if data.get("reasoning_effort") is not None:
        _thinking(out, data)
    if data.get("response_format") is not None:
        _response_format(out, expect_dict(data["response_format"], "response_format"))
    return out


def _response_format(out: dict[str, Any], value: dict[str, Any]) -> None:
    """`json_schema` becomes Anthropic's structured output (`output_config.format`); its `name`
    and `description` are labels only. `text` is the default; `json_object` has no equivalent."""
    kind = value.get("type")
    if kind == "text":
        check_keys(value, frozenset({"type"}), "response_format.")
        return
    if kind != "json_schema":
        refuse("response_format.type", "only text and json_schema can be translated")
    check_keys(value, frozenset({"type", "json_schema"}), "response_format.")
    spec = expect_dict(value.get("json_schema"), "response_format.json_schema")
    allowed = frozenset({"name", "description", "schema", "strict"})
    check_keys(spec, allowed, "response_format.json_schema.")
    if spec.get("strict") is False:
        refuse("response_format.json_schema.strict", "Anthropic's structured output is strict")
    schema = expect_dict(spec.get("schema"), "response_format.json_schema.schema")
    out["output_config"] = {"format": {"type": "json_schema", "schema": schema}}


def _max_tokens(data: dict[str, Any]) -> int:
    given = [
        (name, expect_int(data[name], name))
        for name in ("max_completion_tokens", "max_tokens")
        if data.get(name) is not None
    ]
    if len(given) == 2 and given[0][1] != given[1][1]:
        invalid("max_tokens", "differs from max_completion_tokens; send one of them")
    return given[0][1] if given else mapping.DEFAULT_MAX_TOKENS


def _thinking(out: dict[str, Any], data: dict[str, Any]) -> None:
    effort = expect_str(data["reasoning_effort"], "reasoning_effort")
    if effort == "none":
        out["thinking"] = {"type": "disabled"}
        return
    if effort not in mapping.THINKING_BUDGETS:
        invalid("reasoning_effort", f"{effort!r} is not a reasoning effort")
    budget = mapping.THINKING_BUDGETS[effort]
    if data.get("max_completion_tokens") is None and data.get("max_tokens") is None:
        out["max_tokens"] = budget + mapping.DEFAULT_MAX_TOKENS
    elif out["max_tokens"] <= budget:
        given = "max_completion_tokens" if data.get("max_completion_tokens") else "max_tokens"
        invalid(
            given,
            f"must exceed the thinking budget of {budget} tokens that reasoning_effort "
            f"{effort!r} maps to",
        )
    out["thinking"] = {"type": "enabled", "budget_tokens": budget}


def _stop(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [expect_str(item, f"stop[{i}]") for i, item in enumerate(expect_list(value, "stop"))]


def _stream_options(data: dict[str, Any]) -> None:
    """`include_usage` is honoured by the reply translator (Anthropic always sends usage)."""
    options = data.get("stream_options")
    if options is None:
        return
    options = expect_dict(options, "stream_options")
    check_keys(options, frozenset({"include_usage", "include_obfuscation"}), "stream_options.")
    for key, value in options.items():
        expect_bool(value, f"stream_options.{key}")


def _tools(tools: list[Any]) -> list[dict[str, Any]]:
    out = []
    for i, raw in enumerate(tools):
        tool = expect_dict(raw, f"tools[{i}]")
        if tool.get("type") != "function":
            refuse(f"tools[{i}].type", "only function tools can be translated")
        check_keys(tool, frozenset({"type", "function"}), f"tools[{i}].")
        function = expect_dict(tool.get("function"), f"tools[{i}].function")
        prefix = f"tools[{i}].function."
        check_keys(function, frozenset({"name", "description", "parameters", "strict"}), prefix)
        entry: dict[str, Any] = {"name": expect_str(function.get("name"), prefix + "name")}
        if function.get("description") is not None:
            entry["description"] = expect_str(function["description"], prefix + "description")
        schema = function.get("parameters")
        entry["input_schema"] = (
            {"type": "object", "properties": {}}
            if schema is None
            else expect_dict(schema, prefix + "parameters")
        )
        if function.get("strict") is not None:
            entry["strict"] = expect_bool(function["strict"], prefix + "strict")
        out.append(entry)
    return out


def _tool_choice(data: dict[str, Any]) -> dict[str, Any] | None:
    value = data.get("tool_choice")
    parallel = data.get("parallel_tool_calls")
    serial = parallel is not None and not expect_bool(parallel, "parallel_tool_calls")
    if value is None:
        return {"type": "auto", "disable_parallel_tool_use": True} if serial else None
    if value == "none":
        return {"type": "none"}
    if value in ("auto", "required"):
        choice: dict[str, Any] = {"type": "auto" if value == "auto" else "any"}
    elif isinstance(value, dict) and value.get("type") == "function":
        function = expect_dict(value.get("function"), "tool_choice.function")
        choice = {"type": "tool", "name": expect_str(function.get("name"), "tool_choice.function")}
    else:
        refuse("tool_choice", "only none, auto, required or one function can be translated")
    if serial:
        choice["disable_parallel_tool_use"] = True
    return choice


def _messages(raw: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for i, item in enumerate(raw):
        message = expect_dict(item, f"messages[{i}]")
        param = f"messages[{i}]"
        role = message.get("role")
        check_keys(message, _MESSAGE_KEYS, param + ".")
        if role in ("system", "developer"):
            system.extend(_text_blocks(message.get("content"), param + ".content"))
            continue
        if role == "user":
            blocks = _user_content(message.get("content"), param + ".content")
        elif role == "assistant":
            blocks = _assistant_content(message, param)
        elif role == "tool":
            blocks = [_tool_result(message, param)]
            role = "user"
        else:
            refuse(param + ".role", f"role {role!r} cannot be translated")
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return system, turns


def _text_blocks(content: Any, param: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    blocks = []
    for j, part in enumerate(expect_list(content, param)):
        part = expect_dict(part, f"{param}[{j}]")
        if part.get("type") != "text":
            refuse(f"{param}[{j}].type", "only text parts can be translated here")
        check_keys(part, frozenset({"type", "text"}), f"{param}[{j}].")
        blocks.append({"type": "text", "text": expect_str(part.get("text"), f"{param}[{j}].text")})
    return blocks


def _user_content(content: Any, param: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    blocks = []
    for j, raw in enumerate(expect_list(content, param)):
        part = expect_dict(raw, f"{param}[{j}]")
        kind = part.get("type")
        if kind == "text":
            blocks.extend(_text_blocks([part], param))
        elif kind == "image_url":
            blocks.append(_image(part, f"{param}[{j}]"))
        elif kind == "file":
            blocks.append(_document(part, f"{param}[{j}]"))
        else:
            refuse(f"{param}[{j}].type", f"content part {kind!r} cannot be translated")
    return blocks


def _data_url(url: str, param: str) -> tuple[str, str]:
    """(media type, base64 data) of a `data:<type>;base64,<data>` URL."""
    header, comma, payload = url.partition(",")
    if not comma or not header.startswith("data:") or not header.endswith(";base64"):
        invalid(param, "must be a base64 data URL (data:<media type>;base64,...)")
    try:
        base64.b64decode(payload, validate=True)
    except binascii.Error:
        invalid(param, "is not valid base64")
    return header[5:-7], payload


def _image(part: dict[str, Any], param: str) -> dict[str, Any]:
    check_keys(part, frozenset({"type", "image_url"}), param + ".")
    image = expect_dict(part.get("image_url"), param + ".image_url")
    check_keys(image, frozenset({"url", "detail"}), param + ".image_url.")
    if image.get("detail", "auto") != "auto":
        refuse(param + ".image_url.detail", "Anthropic has no image detail setting")
    url = expect_str(image.get("url"), param + ".image_url.url")
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    media_type, payload = _data_url(url, param + ".image_url.url")
    if media_type not in _IMAGE_TYPES:
        refuse(param + ".image_url.url", f"image type {media_type!r} is not one Anthropic takes")
    return {
        "type": "image",
        "source": {"type": "base64", "media_type": media_type, "data": payload},
    }


def _document(part: dict[str, Any], param: str) -> dict[str, Any]:
    check_keys(part, frozenset({"type", "file"}), param + ".")
    file = expect_dict(part.get("file"), param + ".file")
    check_keys(file, frozenset({"file_data", "filename"}), param + ".file.")
    url = expect_str(file.get("file_data"), param + ".file.file_data")
    media_type, payload = _data_url(url, param + ".file.file_data")
    if media_type != "application/pdf":
        refuse(param + ".file.file_data", "only PDF files can be translated")
    block: dict[str, Any] = {
        "type": "document",
        "source": {"type": "base64", "media_type": media_type, "data": payload},
    }
    if file.get("filename") is not None:
        block["title"] = expect_str(file["filename"], param + ".file.filename")
    return block


def _assistant_content(message: dict[str, Any], param: str) -> list[dict[str, Any]]:
    if message.get("refusal") is not None:
        refuse(param + ".refusal", "Anthropic has no refusal turns")
    content = message.get("content")
    blocks = [] if content is None else _text_blocks(content, param + ".content")
    blocks = [block for block in blocks if block["text"]]  # Anthropic refuses empty text
    calls = message.get("tool_calls")
    for k, raw in enumerate([] if calls is None else expect_list(calls, param + ".tool_calls")):
        call = expect_dict(raw, f"{param}.tool_calls[{k}]")
        prefix = f"{param}.tool_calls[{k}]."
        if call.get("type", "function") != "function":
            refuse(prefix + "type", "only function calls can be translated")
        function = expect_dict(call.get("function"), prefix + "function")
        arguments = expect_str(function.get("arguments"), prefix + "function.arguments")
        try:
            parsed = orjson.loads(arguments) if arguments.strip() else {}
        except orjson.JSONDecodeError:
            invalid(prefix + "function.arguments", "is not valid JSON")
        blocks.append(
            {
                "type": "tool_use",
                "id": expect_str(call.get("id"), prefix + "id"),
                "name": expect_str(function.get("name"), prefix + "function.name"),
                "input": expect_dict(parsed, prefix + "function.arguments"),
            }
        )
    return blocks


def _tool_result(message: dict[str, Any], param: str) -> dict[str, Any]:
    blocks = _text_blocks(message.get("content"), param + ".content")
    return {
        "type": "tool_result",
        "tool_use_id": expect_str(message.get("tool_call_id"), param + ".tool_call_id"),
        "content": "".join(block["text"] for block in blocks),
    }
