"""Managed mode: the gateway runs the tool-call loop for a client (`docs/managed.md`).

Managed mode is a provider wrapper (`create_managed_provider`): its chat handler wraps the
client's own provider, whose handler makes each model call through the one upstream transport
(retries, backoff, `Retry-After`, fallbacks and error mapping included). The client's policy has
already been applied to `data`. The plugins selected for the latest user message are offered as
tools; each tool call the model makes to one of them is executed here, the results go back to the
model, and the final answer is returned as one ordinary chat completion, or as an event stream of
it that the pipeline's SSE writer sends. At most `max_hops` model calls are made: the last with
`tool_choice: "none"`. A call to a tool the gateway does not own ends the loop: that completion
goes to the tenant as it is. The loop itself (`ManagedChat`) conforms to `ChatHandlerProtocol`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import orjson
from aiohttp import web

from gateway.auth import UserProfile
from gateway.errors import InvalidRequestError, UpstreamError
from gateway.exchange import Exchange, exchange_of
from gateway.plugins.manifest import Plugin, parse_plugin
from gateway.plugins.runner import run_tool
from gateway.protocols import (
    ChatHandlerProtocol,
    OpenAICompatibleChatCompletionResponseType,
    OpenAICompatiblePassthroughProtocol,
    Provider,
)
from gateway.upstream.errors import is_api_error
from gateway.upstream.reply import UpstreamReply
from gateway.usage import Usage, parse_usage


def message_text(content: Any, where: str) -> str:
    """The text of a message's `content` (a string, or text parts); 400 for anything else."""
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        raise InvalidRequestError(
            f"'{where}.content' must be a string or an array of content parts", param=where
        )
    texts = []
    for index, part in enumerate(content):
        if not isinstance(part, dict):
            raise InvalidRequestError(
                f"'{where}.content[{index}]' must be an object", param=f"{where}.content[{index}]"
            )
        if part.get("type", "text") == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise InvalidRequestError(
                    f"'{where}.content[{index}].text' must be a string",
                    param=f"{where}.content[{index}].text",
                )
            texts.append(text)
    return " ".join(texts)


def latest_user_text(data: dict[str, Any]) -> str:
    """The latest user message's text, which selects the plugins (every message is checked)."""
    text = ""
    for index, message in enumerate(data.get("messages") or []):
        if isinstance(message, dict):
            content = message_text(message.get("content"), f"messages[{index}]")
            if message.get("role") == "user":
                text = content
    return text


class ManagedChat:
    """One managed request's tool loop; calling it follows `ChatHandlerProtocol`."""

    def __init__(
        self, request: web.Request, model_call: OpenAICompatiblePassthroughProtocol
    ) -> None:
        self.request = request
        self.exchange: Exchange = exchange_of(request)
        self.model_call = model_call

    async def __call__(
        self,
        user_profile: UserProfile,
        prompt: str,
        data: dict[str, Any],
        plugins: list[Any] | None,
        functions: list[str] | None,
    ) -> OpenAICompatibleChatCompletionResponseType:
        identity = self.exchange.identity
        max_hops = identity.client.policy.max_hops if identity is not None else 1
        owned: dict[str, Plugin] = {p.name: p for p in plugins or () if p.name in (functions or ())}
        body = {k: v for k, v in data.items() if k not in ("stream", "stream_options")}
        body["messages"] = list(body.get("messages") or [])
        if owned:
            body["tools"] = [*(body.get("tools") or []), *(p.tool() for p in owned.values())]
        usage: Usage | None = None
        for hop in range(1, max_hops + 1):
            if hop == max_hops and owned:
                body["tool_choice"] = "none"
            hop_record = self.exchange.hop(hop, orjson.loads(orjson.dumps(body)))
            answer = await self._call(user_profile, body)
            if not isinstance(answer, dict):
                return answer  # the upstream's own error, passed through
            hop_usage = parse_usage(answer.get("usage"))
            if hop_usage is not None:
                usage = hop_usage if usage is None else usage + hop_usage
            message = (answer.get("choices") or [{}])[0].get("message") or {}
            calls = message.get("tool_calls") or []
            hop_record["tool_calls"] = calls
            if (
                not calls
                or hop == max_hops
                or any(c.get("function", {}).get("name") not in owned for c in calls)
            ):
                if usage is not None:
                    answer["usage"] = _chat_usage(usage)
                return self._deliver(answer, data)
            body["messages"].append(message)
            hop_record["tool_results"] = await self._run_tools(owned, calls, body)
        raise AssertionError("unreachable: the last hop always returns")  # pragma: no cover

    async def _call(
        self, user_profile: UserProfile, body: dict[str, Any]
    ) -> dict[str, Any] | web.Response:
        """One model call through the wrapped provider: its JSON answer, or its API error."""
        result = await self.model_call(self.request, user_profile, body)
        if isinstance(result, dict):
            return result
        if not isinstance(result, UpstreamReply):
            raise UpstreamError(
                "managed mode needs a provider that answers chat completions as JSON",
                code="managed_mode_unsupported",
            )
        try:
            if result.status < 400:
                answer = await result.json_object()
                self.exchange.upstream_finished()
                return answer
            payload = await result.read()
        finally:
            result.close()
        self.exchange.upstream_finished()
        if is_api_error(payload):
            self.exchange.ended("upstream_error")
            return web.Response(status=result.status, body=payload, content_type="application/json")
        raise UpstreamError(
            f"the upstream provider answered {result.status} without an API error body",
            code="upstream_bad_response",
        )

    async def _run_tools(
        self, owned: dict[str, Plugin], calls: list[dict[str, Any]], body: dict[str, Any]
    ) -> list[dict[str, Any]]:
        results = []
        for call in calls:
            function = call.get("function") or {}
            content, ok = await run_tool(owned[function["name"]], function.get("arguments"))
            results.append(
                {
                    "tool_call_id": call.get("id"),
                    "name": function["name"],
                    "ok": ok,
                    "content": content,
                }
            )
            body["messages"].append(
                {"role": "tool", "tool_call_id": call.get("id"), "content": content}
            )
        return results

    @staticmethod
    def _deliver(
        answer: dict[str, Any], data: dict[str, Any]
    ) -> OpenAICompatibleChatCompletionResponseType:
        """The answer as JSON, or as the event stream the caller asked for."""
        if data.get("stream") is True:
            options = data.get("stream_options")
            include = isinstance(options, dict) and options.get("include_usage") is True
            return _events(stream_chunks(answer, include))
        return answer


def _chat_usage(usage: Usage) -> dict[str, Any]:
    out: dict[str, Any] = {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }
    if usage.cached_input_tokens is not None:
        out["prompt_tokens_details"] = {"cached_tokens": usage.cached_input_tokens}
    if usage.reasoning_tokens is not None:
        out["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    return out


def stream_chunks(answer: dict[str, Any], include_usage: bool) -> list[dict[str, Any]]:
    """A finished completion as the chunks of a stream: role and content, finish, usage."""
    base = {
        "id": answer.get("id"),
        "object": "chat.completion.chunk",
        "created": answer.get("created"),
        "model": answer.get("model"),
    }
    choice = (answer.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    delta: dict[str, Any] = {"role": "assistant", "content": message.get("content") or ""}
    if message.get("tool_calls"):
        delta["tool_calls"] = [{"index": i, **c} for i, c in enumerate(message["tool_calls"])]
    chunks = [
        {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
        {
            **base,
            "choices": [{"index": 0, "delta": {}, "finish_reason": choice.get("finish_reason")}],
        },
    ]
    if include_usage:
        chunks.append({**base, "choices": [], "usage": answer.get("usage")})
    return chunks


async def _events(chunks: list[dict[str, Any]]) -> AsyncIterator[dict[str, Any] | bytes]:
    for chunk in chunks:
        yield chunk


class ManagedProvider:
    """The chat handler of a managed client: plugin selection, then the tool loop."""

    def __init__(self, inner: Provider) -> None:
        self.inner = inner

    async def chat_completions(
        self, request: web.Request, user_profile: UserProfile, data: dict[str, Any]
    ) -> OpenAICompatibleChatCompletionResponseType:
        prompt = latest_user_text(data)
        identity = exchange_of(request).identity
        manifests = identity.client.policy.plugins if identity is not None else ()
        plugins = [parse_plugin(p) for p in manifests]
        selected = [p for p in plugins if p.selected_for(prompt)]
        loop: ChatHandlerProtocol = ManagedChat(request, self.inner.chat_completions)
        return await loop(user_profile, prompt, data, selected, [p.name for p in selected])


def create_managed_provider(inner: Provider) -> Provider:
    """`inner` (the client's provider) with its chat completions run through the tool loop."""
    managed = ManagedProvider(inner)
    return dataclasses.replace(
        inner, name=f"managed:{inner.name}", chat_completions=managed.chat_completions
    )
