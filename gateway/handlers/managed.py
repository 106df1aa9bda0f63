"""Managed mode: the gateway runs the tool-call loop for a client (`docs/managed.md`).

The client's policy (defaults, system prompt, aliases ...) has already been applied to `data`.
The plugins selected for the latest user message are offered as tools; each tool call the
model makes to one of them is executed here, the results go back to the model, and the final
answer is returned as one ordinary chat completion (or as an SSE stream of it). At most
`max_hops` model calls are made: the last is made with `tool_choice: "none"`. A call to a tool
the gateway does not own ends the loop: that completion goes to the tenant as it is.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiohttp import web

from gateway import appkeys
from gateway.auth import UserProfile
from gateway.context import RequestContext, context_of
from gateway.errors import InvalidRequestError, UpstreamError
from gateway.handlers.azure import AzureOpenAI
from gateway.handlers.openai import OpenAIPassthrough
from gateway.plugins.manifest import Plugin, parse_plugin
from gateway.plugins.runner import run_tool
from gateway.protocols import OpenAICompatibleChatCompletionResponseType
from gateway.retries import is_retryable_status
from gateway.upstream import is_openai_error, upstream_errors

_UPSTREAMS: dict[str, type[OpenAIPassthrough]] = {"openai": OpenAIPassthrough, "azure": AzureOpenAI}


def latest_user_text(data: dict[str, Any]) -> str:
    for message in reversed(data.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


class ManagedChat:
    """One managed request; calling it follows `ChatHandlerProtocol`."""

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self.ctx: RequestContext = context_of(request)
        assert self.ctx.client is not None
        self.client = self.ctx.client
        kind = _UPSTREAMS.get(self.client.provider)
        if kind is None:
            raise InvalidRequestError(
                f"managed mode needs provider openai or azure, not {self.client.provider!r}",
                code="managed_mode_unsupported",
            )
        app = request.app
        self.upstream = kind(app[appkeys.UPSTREAM_SESSION], app[appkeys.SETTINGS])

    async def __call__(
        self,
        user_profile: UserProfile,
        prompt: str,
        data: dict[str, Any],
        plugins: list[Any] | None,
        functions: list[str] | None,
    ) -> OpenAICompatibleChatCompletionResponseType:
        owned: dict[str, Plugin] = {p.name: p for p in plugins or () if p.name in (functions or ())}
        body = {k: v for k, v in data.items() if k not in ("stream", "stream_options")}
        body["messages"] = list(body.get("messages") or [])
        if owned:
            body["tools"] = [*(body.get("tools") or []), *(p.tool() for p in owned.values())]
        usage: dict[str, int] = {}
        max_hops = self.client.policy.max_hops
        for hop in range(1, max_hops + 1):
            if hop == max_hops and owned:
                body["tool_choice"] = "none"
            hop_record: dict[str, Any] = {"hop": hop, "request": orjson.loads(orjson.dumps(body))}
            self.ctx.hops.append(hop_record)
            answer = await self._call(body, hop)
            if isinstance(answer, web.StreamResponse):
                return answer
            _add_usage(usage, answer.get("usage"))
            message = (answer.get("choices") or [{}])[0].get("message") or {}
            calls = message.get("tool_calls") or []
            hop_record["tool_calls"] = calls
            if (
                not calls
                or hop == max_hops
                or any(c.get("function", {}).get("name") not in owned for c in calls)
            ):
                if usage:
                    answer["usage"] = usage
                return self._deliver(answer, data)
            body["messages"].append(message)
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
            hop_record["tool_results"] = results
        raise AssertionError("unreachable: the last hop always returns")  # pragma: no cover

    async def _call(self, body: dict[str, Any], hop: int) -> dict[str, Any] | web.Response:
        """One model call, falling over to the next upstream on no answer, 429 or 5xx."""
        targets = self.upstream.targets(self.request, self.client, "/chat/completions", body)
        raw = orjson.dumps(body)
        session = self.upstream.session
        for index, target in enumerate(targets):
            last = index == len(targets) - 1
            entry: dict[str, Any] = {"upstream": target.label, "attempt": 1, "hop": hop}
            self.ctx.attempts.append(entry)
            started = time.perf_counter()
            try:
                async with upstream_errors(target.url):
                    self.ctx.upstream_started = self.ctx.upstream_started or started
                    async with session.post(target.url, data=raw, headers=target.headers) as up:
                        entry["status"] = status = up.status
                        payload = await up.read()
            except UpstreamError as exc:
                entry["error"] = exc.code
                if last:
                    raise
                continue
            finally:
                entry["ms"] = round((time.perf_counter() - started) * 1000.0, 3)
            self.ctx.upstream_finished = time.perf_counter()
            if is_retryable_status(status) and not last:
                continue
            if status >= 400:
                if is_openai_error(payload):
                    self.ctx.outcome = "upstream_error"
                    return web.Response(
                        status=status, body=payload, content_type="application/json"
                    )
                raise UpstreamError(
                    f"the upstream provider answered {status}", code="upstream_bad_response"
                )
            try:
                answer = orjson.loads(payload)
            except orjson.JSONDecodeError as exc:
                raise UpstreamError("the upstream sent a body that is not JSON") from exc
            if not isinstance(answer, dict):
                raise UpstreamError("the upstream sent a body that is not a JSON object")
            return answer
        raise UpstreamError("no upstream answered", code="upstream_unreachable")  # pragma: no cover

    def _deliver(
        self, answer: dict[str, Any], data: dict[str, Any]
    ) -> OpenAICompatibleChatCompletionResponseType:
        if data.get("stream") is True:
            return _StreamOf(answer, data)
        return answer


class _StreamOf(dict[str, Any]):
    """Marker: a final completion the view must send as an SSE stream."""

    def __init__(self, answer: dict[str, Any], data: dict[str, Any]) -> None:
        super().__init__(answer)
        options = data.get("stream_options")
        self.include_usage = isinstance(options, dict) and bool(options.get("include_usage"))


def _add_usage(total: dict[str, int], usage: Any) -> None:
    if not isinstance(usage, dict):
        return
    for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
        value = usage.get(key)
        if isinstance(value, int):
            total[key] = total.get(key, 0) + value


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


async def send_stream(request: web.Request, answer: _StreamOf) -> web.StreamResponse:
    ctx = context_of(request)
    ctx.stream = True
    response = web.StreamResponse(headers={"Cache-Control": "no-cache"})
    response.content_type = "text/event-stream"
    await response.prepare(request)
    for chunk in stream_chunks(dict(answer), answer.include_usage):
        ctx.first_byte_at = ctx.first_byte_at or time.perf_counter()
        ctx.chunks += 1
        await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


async def managed_chat(
    request: web.Request, data: dict[str, Any]
) -> web.StreamResponse | dict[str, Any]:
    """Select the client's plugins for this request and run the managed loop."""
    ctx = context_of(request)
    assert ctx.client is not None
    assert ctx.user is not None
    prompt = latest_user_text(data)
    plugins = [parse_plugin(p) for p in ctx.client.policy.plugins]
    selected = [p for p in plugins if p.selected_for(prompt)]
    handler = ManagedChat(request)
    result = await handler(ctx.user, prompt, data, selected, [p.name for p in selected])
    if isinstance(result, _StreamOf):
        return await send_stream(request, result)
    return result
